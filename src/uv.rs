//! Socket readiness on the JS thread, from the libuv loop Node already runs.
//!
//! The peer's listener reads here rather than on the runtime thread: the
//! shutdown callback has to run on the JS thread anyway, so a younger
//! announcement then reaches it with one wake-up (the kernel waking the JS
//! thread) instead of three (kernel → runtime thread → JS thread, and the
//! runtime thread preempting JS on the way).
//!
//! Node exports libuv to addons. Its functions are looked up in the running
//! process once, so a host without them gets an error from the call that
//! needs them, never a failed load or a crash. Handle memory is sized by
//! `uv_handle_size`, so no libuv struct layout is assumed beyond the public
//! `data` pointer that starts every handle.
//!
//! A `Watch` is not `Send`: it is made, used and closed on the JS thread of
//! one environment, like the loop it is registered with.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::io;
use std::sync::OnceLock;

use napi::sys::uv_loop_s;

use crate::net::NextRead;

#[cfg(unix)]
type RawSocket = c_int;
#[cfg(windows)]
type RawSocket = usize;

// From `uv_handle_type` and `uv_poll_event`, stable across libuv 1.x.
const UV_POLL: c_int = 8;
const UV_TIMER: c_int = 13;
const UV_READABLE: c_int = 1;

/// The start of every libuv handle; the rest is libuv's.
#[repr(C)]
struct Handle {
    data: *mut c_void,
}

type PollCallback = unsafe extern "C" fn(*mut Handle, c_int, c_int);
type TimerCallback = unsafe extern "C" fn(*mut Handle);
type CloseCallback = unsafe extern "C" fn(*mut Handle);

/// The libuv functions this module calls.
struct Api {
    handle_size: unsafe extern "C" fn(c_int) -> usize,
    poll_init_socket: unsafe extern "C" fn(*mut uv_loop_s, *mut Handle, RawSocket) -> c_int,
    poll_start: unsafe extern "C" fn(*mut Handle, c_int, PollCallback) -> c_int,
    poll_stop: unsafe extern "C" fn(*mut Handle) -> c_int,
    timer_init: unsafe extern "C" fn(*mut uv_loop_s, *mut Handle) -> c_int,
    timer_start: unsafe extern "C" fn(*mut Handle, TimerCallback, u64, u64) -> c_int,
    close: unsafe extern "C" fn(*mut Handle, Option<CloseCallback>),
    strerror: unsafe extern "C" fn(c_int) -> *const c_char,
}

fn api() -> io::Result<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(|| {
        // SAFETY: each symbol is libuv's function of that name, whose C
        // signature (libuv 1.x, stable) is the field's type.
        unsafe {
            Some(Api {
                handle_size: function(c"uv_handle_size")?,
                poll_init_socket: function(c"uv_poll_init_socket")?,
                poll_start: function(c"uv_poll_start")?,
                poll_stop: function(c"uv_poll_stop")?,
                timer_init: function(c"uv_timer_init")?,
                timer_start: function(c"uv_timer_start")?,
                close: function(c"uv_close")?,
                strerror: function(c"uv_strerror")?,
            })
        }
    })
    .as_ref()
    .ok_or_else(|| io::Error::other("this JS runtime does not export libuv, which listening needs"))
}

/// The function of that name exported by the running process, as `F`.
///
/// # Safety
/// `F` must be the function pointer type of that symbol.
unsafe fn function<F: Copy>(name: &CStr) -> Option<F> {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    let address = symbol(name)?;
    // SAFETY: a function pointer of the same size, as the caller promises.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) })
}

/// A function exported by the running process (Node links libuv in).
#[cfg(unix)]
fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT searches the process's global symbols.
    let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!address.is_null()).then_some(address)
}

#[cfg(windows)]
fn symbol(name: &CStr) -> Option<*mut c_void> {
    extern "system" {
        fn GetModuleHandleW(module: *const u16) -> *mut c_void;
        fn GetProcAddress(module: *mut c_void, name: *const c_char) -> *mut c_void;
    }
    // SAFETY: a null module name is the executable (node.exe, which exports
    // libuv); `name` is NUL-terminated.
    let address = unsafe { GetProcAddress(GetModuleHandleW(std::ptr::null()), name.as_ptr()) };
    (!address.is_null()).then_some(address)
}

fn failed(api: &Api, what: &str, code: c_int) -> io::Error {
    // SAFETY: uv_strerror returns a static NUL-terminated string for any code.
    let reason = unsafe { CStr::from_ptr((api.strerror)(code)) }.to_string_lossy();
    io::Error::other(format!("{what}: {reason}"))
}

/// What the watch calls when the socket is readable; it says when to look again.
pub type OnReadable = Box<dyn FnMut() -> NextRead>;

/// Memory for one libuv handle, of the size libuv asks for, 8-byte aligned.
fn handle_memory(api: &Api, kind: c_int) -> Box<[u64]> {
    // SAFETY: plain query of a size.
    let bytes = unsafe { (api.handle_size)(kind) };
    vec![0u64; bytes.div_ceil(8)].into_boxed_slice()
}

/// What the handles' `data` points to. Freed once both handles are closed.
struct Inner {
    api: &'static Api,
    poll: Box<[u64]>,
    /// Wakes the poll again after a pause (a flood, a socket error).
    timer: Box<[u64]>,
    /// `None` once closed.
    on_readable: Option<OnReadable>,
    /// `on_readable` is running: a close from inside it (a callback that
    /// closes the peer) must not drop it under its own feet.
    running: bool,
    /// The watch was dropped: the handles are closing.
    closed: bool,
    /// Close callbacks still to come; the memory goes when this reaches 0.
    closing: u8,
}

impl Inner {
    fn poll(&mut self) -> *mut Handle {
        self.poll.as_mut_ptr().cast()
    }

    fn timer(&mut self) -> *mut Handle {
        self.timer.as_mut_ptr().cast()
    }
}

/// Calls `on_readable` on the JS thread whenever the socket has packets.
/// An active watch keeps the Node process alive, as a listening socket does.
pub struct Watch(*mut Inner);

impl Watch {
    /// Starts watching `socket`; the watch must not outlive it (the owner
    /// of `on_readable` normally owns the socket too).
    pub fn start(event_loop: *mut uv_loop_s, socket: RawSocket, on_readable: OnReadable) -> io::Result<Watch> {
        let api = api()?;
        let inner = Box::into_raw(Box::new(Inner {
            api,
            poll: handle_memory(api, UV_POLL),
            timer: handle_memory(api, UV_TIMER),
            on_readable: Some(on_readable),
            running: false,
            closed: false,
            closing: 0,
        }));
        // SAFETY: `inner` is a live allocation that only this watch and the
        // handles' callbacks (on this thread) use; handle memory is sized by
        // libuv; `event_loop` is the environment's loop.
        unsafe {
            let state = &mut *inner;
            let code = (api.poll_init_socket)(event_loop, state.poll(), socket);
            if code != 0 {
                drop(Box::from_raw(inner));
                return Err(failed(api, "cannot watch the listening socket", code));
            }
            (*state.poll()).data = inner.cast();
            state.closing = 1;
            let code = (api.timer_init)(event_loop, state.timer());
            if code == 0 {
                (*state.timer()).data = inner.cast();
                state.closing = 2;
            }
            let watch = Watch(inner);
            if code != 0 {
                return Err(failed(api, "cannot make the listener's timer", code));
            }
            let code = (api.poll_start)(state.poll(), UV_READABLE, on_poll);
            if code != 0 {
                return Err(failed(api, "cannot watch the listening socket", code));
            }
            Ok(watch)
        }
    }
}

impl Drop for Watch {
    /// Stops watching now and drops `on_readable` (and what it owns) now,
    /// while the environment is surely alive; libuv frees the handles later.
    fn drop(&mut self) {
        // SAFETY: `self.0` lives until the last close callback, which cannot
        // have run yet: the handles are closed here, once.
        unsafe {
            let state = &mut *self.0;
            state.closed = true;
            if !state.running {
                state.on_readable = None;
            }
            let handles = [state.poll(), state.timer()];
            for handle in handles.into_iter().take(state.closing as usize) {
                (state.api.close)(handle, Some(on_closed));
            }
            if state.closing == 0 {
                drop(Box::from_raw(self.0));
            }
        }
    }
}

unsafe extern "C" fn on_poll(handle: *mut Handle, status: c_int, _events: c_int) {
    // SAFETY: the poll's `data` is its `Inner`, alive until its close callback.
    let inner = unsafe { (*handle).data.cast::<Inner>() };
    let _ = status; // an error status still means "look at the socket": the read reports it
    unsafe { run(inner) };
}

unsafe extern "C" fn on_timer(handle: *mut Handle) {
    // SAFETY: as for the poll.
    let inner = unsafe { (*handle).data.cast::<Inner>() };
    unsafe {
        let state = &mut *inner;
        if !state.closed {
            (state.api.poll_start)(state.poll(), UV_READABLE, on_poll);
            run(inner);
        }
    }
}

/// Reads, then waits as the reader says: for readiness, or for the timer.
unsafe fn run(inner: *mut Inner) {
    // SAFETY: `inner` is alive (see the callers); JS thread only.
    let state = unsafe { &mut *inner };
    let Some(on_readable) = state.on_readable.as_mut() else {
        return;
    };
    state.running = true;
    let next = on_readable();
    state.running = false;
    if state.closed {
        // Closed from inside `on_readable`: drop it now that it has returned.
        state.on_readable = None;
        return;
    }
    // `Now` and `WhenReadable` both wait for the poll: it reports a socket
    // that still holds packets again on the loop's next turn.
    if let NextRead::After(pause) = next {
        // libuv's timer counts whole milliseconds.
        let milliseconds = pause.as_millis().max(1) as u64;
        // SAFETY: both handles are initialised and open.
        unsafe {
            (state.api.poll_stop)(state.poll());
            (state.api.timer_start)(state.timer(), on_timer, milliseconds, 0);
        }
    }
}

unsafe extern "C" fn on_closed(handle: *mut Handle) {
    // SAFETY: both handles point at the same `Inner`; the second close
    // callback is the last use of it.
    unsafe {
        let inner = (*handle).data.cast::<Inner>();
        (*inner).closing -= 1;
        if (*inner).closing == 0 {
            drop(Box::from_raw(inner));
        }
    }
}
