//! A fake libuv for tests, keeping the real one's rules: handles are
//! initialised into memory the caller provides, libuv writes into that
//! memory, timers fire in order on a clock of their own, and close callbacks
//! come later, on a later turn of the loop. `FAKE` is its `Api`; the rest
//! drives it (`fire_poll`, `fire_timer`, `advance_by`, `run_closes`).
//! Thread-local: each test thread has its own loop.

use std::cell::RefCell;
use std::ffi::{c_char, c_int};

use napi::sys::uv_loop_s;

use super::{Api, CloseCallback, Handle, PollCallback, RawSocket, TimerCallback, UV_POLL, UV_READABLE, UV_TIMER};

#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Kind {
    Poll,
    Timer,
}

pub(crate) struct FakeHandle {
    pub handle: *mut Handle,
    pub kind: Kind,
    pub active: bool,
    pub closing: bool,
    pub poll_callback: Option<PollCallback>,
    pub timer_callback: Option<TimerCallback>,
    /// A timer's timeout as started, and when it is due on the loop's clock.
    pub timeout_ms: u64,
    pub due_ms: u64,
}

#[derive(Default)]
pub(crate) struct FakeLoop {
    pub handles: Vec<FakeHandle>,
    pub pending_closes: Vec<(*mut Handle, CloseCallback)>,
    /// The next call of these fails with this code.
    pub fail_timer_init: Option<c_int>,
    pub fail_poll_start: Option<c_int>,
    pub fail_timer_start: Option<c_int>,
    pub poll_starts: usize,
    /// The loop's clock, in ms: timers fire in the order they are due on it.
    pub now_ms: u64,
}

thread_local! {
    static LOOP: RefCell<FakeLoop> = RefCell::new(FakeLoop::default());
}

pub(crate) fn with_loop<R>(f: impl FnOnce(&mut FakeLoop) -> R) -> R {
    LOOP.with(|l| f(&mut l.borrow_mut()))
}

pub(crate) fn find(l: &mut FakeLoop, handle: *mut Handle) -> &mut FakeHandle {
    l.handles
        .iter_mut()
        .find(|h| h.handle == handle)
        .expect("a handle this loop initialised")
}

pub(crate) const POLL_SIZE: usize = 160;
pub(crate) const TIMER_SIZE: usize = 152;

unsafe extern "C" fn handle_size(kind: c_int) -> usize {
    match kind {
        UV_POLL => POLL_SIZE,
        UV_TIMER => TIMER_SIZE,
        _ => panic!("unexpected handle kind {kind}"),
    }
}

/// What libuv's init does to the memory: writes its own fields.
unsafe fn scribble(handle: *mut Handle, size: usize) {
    let bytes = handle.cast::<u8>();
    for i in std::mem::size_of::<Handle>()..size {
        // SAFETY: within the handle memory of `size` bytes the caller gave libuv.
        unsafe { bytes.add(i).write(0xA5) };
    }
}

/// What libuv's init of a handle does: writes its memory and registers it.
///
/// # Safety
/// `handle` points at `size` bytes the caller gave for this handle.
unsafe fn init(handle: *mut Handle, kind: Kind, size: usize) {
    // SAFETY: as the caller promises.
    unsafe { scribble(handle, size) };
    with_loop(|l| {
        l.handles.push(FakeHandle {
            handle,
            kind,
            active: false,
            closing: false,
            poll_callback: None,
            timer_callback: None,
            timeout_ms: 0,
            due_ms: 0,
        })
    });
}

unsafe extern "C" fn poll_init_socket(_loop: *mut uv_loop_s, handle: *mut Handle, _socket: RawSocket) -> c_int {
    // SAFETY: `uv` gives init memory of `handle_size(UV_POLL)` bytes.
    unsafe { init(handle, Kind::Poll, POLL_SIZE) };
    0
}

unsafe extern "C" fn timer_init(_loop: *mut uv_loop_s, handle: *mut Handle) -> c_int {
    if let Some(code) = with_loop(|l| l.fail_timer_init.take()) {
        return code;
    }
    // SAFETY: `uv` gives init memory of `handle_size(UV_TIMER)` bytes.
    unsafe { init(handle, Kind::Timer, TIMER_SIZE) };
    0
}

unsafe extern "C" fn poll_start(handle: *mut Handle, events: c_int, callback: PollCallback) -> c_int {
    assert_eq!(events, UV_READABLE);
    with_loop(|l| {
        if let Some(code) = l.fail_poll_start.take() {
            return code;
        }
        l.poll_starts += 1;
        let h = find(l, handle);
        assert!(!h.closing, "poll_start on a closing handle");
        h.active = true;
        h.poll_callback = Some(callback);
        0
    })
}

unsafe extern "C" fn poll_stop(handle: *mut Handle) -> c_int {
    with_loop(|l| find(l, handle).active = false);
    0
}

unsafe extern "C" fn timer_start(handle: *mut Handle, callback: TimerCallback, timeout: u64, repeat: u64) -> c_int {
    assert_eq!(repeat, 0);
    with_loop(|l| {
        if let Some(code) = l.fail_timer_start.take() {
            return code;
        }
        let now_ms = l.now_ms;
        let h = find(l, handle);
        assert!(!h.closing, "timer_start on a closing handle");
        h.active = true;
        h.timer_callback = Some(callback);
        h.timeout_ms = timeout;
        h.due_ms = now_ms + timeout;
        0
    })
}

unsafe extern "C" fn close(handle: *mut Handle, callback: Option<CloseCallback>) {
    with_loop(|l| {
        let h = find(l, handle);
        assert!(!h.closing, "a handle closed twice");
        h.closing = true;
        h.active = false;
        l.pending_closes.push((handle, callback.expect("a close callback")));
    });
}

unsafe extern "C" fn strerror(_code: c_int) -> *const c_char {
    c"fake error".as_ptr()
}

pub(crate) static FAKE: Api = Api {
    handle_size,
    poll_init_socket,
    poll_start,
    poll_stop,
    timer_init,
    timer_start,
    close,
    strerror,
};

pub(crate) const LOOP_PTR: *mut uv_loop_s = std::ptr::null_mut();
pub(crate) const SOCKET: RawSocket = 7;

/// The poll's callback, as libuv would call it, if the poll is active.
pub(crate) fn fire_poll(status: c_int) -> bool {
    let target = with_loop(|l| {
        l.handles
            .iter()
            .find(|h| h.kind == Kind::Poll && h.active && !h.closing)
            .map(|h| (h.handle, h.poll_callback.unwrap()))
    });
    match target {
        Some((handle, callback)) => {
            // SAFETY: an active, open poll handle, as libuv would call it.
            unsafe { callback(handle, status, UV_READABLE) };
            true
        }
        None => false,
    }
}

/// The timer due first, if any is active: moves the clock to when it is
/// due and fires it; returns the timeout it was started with.
pub(crate) fn fire_timer() -> Option<u64> {
    let (handle, callback, timeout) = with_loop(|l| {
        let h = l
            .handles
            .iter_mut()
            .filter(|h| h.kind == Kind::Timer && h.active && !h.closing)
            .min_by_key(|h| h.due_ms)?;
        h.active = false; // one-shot, as started
        let fired = (h.handle, h.timer_callback.unwrap(), h.timeout_ms);
        l.now_ms = l.now_ms.max(h.due_ms);
        Some(fired)
    })?;
    // SAFETY: an active, open timer handle, as libuv would call it.
    unsafe { callback(handle) };
    Some(timeout)
}

/// The loop's clock as an `Instant`, for schedules computed on it.
pub(crate) fn now() -> std::time::Instant {
    thread_local! {
        static BASE: std::time::Instant = std::time::Instant::now();
    }
    BASE.with(|base| *base + std::time::Duration::from_millis(with_loop(|l| l.now_ms)))
}

/// The loop's clock, in ms since the last `reset`.
pub(crate) fn now_ms() -> u64 {
    with_loop(|l| l.now_ms)
}

/// Timers that are started: what would keep a real loop, and a process, alive.
pub(crate) fn active_timers() -> usize {
    with_loop(|l| {
        l.handles
            .iter()
            .filter(|h| h.kind == Kind::Timer && h.active && !h.closing)
            .count()
    })
}

/// Moves the clock on by `ms`, firing every timer due on the way, in order.
pub(crate) fn advance_by(ms: u64) {
    let until = with_loop(|l| l.now_ms + ms);
    loop {
        let next_due = with_loop(|l| {
            l.handles
                .iter()
                .filter(|h| h.kind == Kind::Timer && h.active && !h.closing)
                .map(|h| h.due_ms)
                .min()
        });
        match next_due {
            Some(due) if due <= until => {
                fire_timer();
            }
            _ => break,
        }
    }
    with_loop(|l| l.now_ms = until);
}

pub(crate) fn poll_active() -> bool {
    with_loop(|l| l.handles.iter().any(|h| h.kind == Kind::Poll && h.active))
}

pub(crate) fn poll_closing() -> bool {
    with_loop(|l| l.handles.iter().any(|h| h.kind == Kind::Poll && h.closing))
}

/// The close-callback phase of a loop turn.
pub(crate) fn run_closes() -> usize {
    let pending = with_loop(|l| {
        let pending = std::mem::take(&mut l.pending_closes);
        l.handles.retain(|h| !pending.iter().any(|(p, _)| *p == h.handle));
        pending
    });
    for (handle, callback) in &pending {
        // SAFETY: a handle closed with this callback, called once, as libuv does.
        unsafe { callback(*handle) };
    }
    pending.len()
}

pub(crate) fn reset() {
    with_loop(|l| *l = FakeLoop::default());
}
