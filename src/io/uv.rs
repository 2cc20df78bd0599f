//! Socket readiness and timers on the JS thread, from the libuv loop Node
//! already runs.
//!
//! The peer's listener reads here rather than on the runtime thread: the
//! shutdown callback has to run on the JS thread anyway, so a younger
//! announcement then reaches it with one wake-up (the kernel waking the JS
//! thread) instead of two (kernel → runtime thread → JS thread), and no
//! woken runtime thread preempts JS on a shared CPU on the way.
//!
//! Node exports libuv to addons. Its functions are looked up in the running
//! process once, so a host without them gets an error from the call that
//! needs them, never a failed load or a crash. (A host that exports them as
//! stubs that abort, as Bun does, cannot be told apart by the lookup: the
//! addon asks the host who it is before it comes here, see `js::host`.)
//! Handle memory is sized by `uv_handle_size`, so no libuv struct layout is
//! assumed beyond the public `data` pointer that starts every handle.
//!
//! Two users: the peer's listener (`Watch`, a poll handle, plus a timer for
//! pauses) and its announcement schedule (`Ticker`, a timer), so that
//! starting to broadcast is one `sendto` and one `uv_timer_start`, with no
//! JS timer to build on the way.
//!
//! Neither is `Send`: each is made, used and closed on the JS thread of one
//! environment, like the loop it is registered with.
//!
//! The rules this module keeps, each where it matters:
//! - the state the handles point to (`Inner`) is only ever reached through
//!   shared references, its mutable parts in `Cell`s, so a callback that
//!   closes its own watch (JS calling `close()` from the shutdown callback)
//!   makes no second `&mut`;
//! - a poll handle is closed before its socket: `uv_close` first, then the
//!   callback (which owns the socket) is dropped;
//! - an error from the poll, or a poll that cannot be restarted, is handed
//!   to the callback, and polling is restarted after the pause it asks for.
//!
//! The tests at the end run all of this against a fake libuv (`Api`), and
//! `cargo miri test uv::` checks them under Stacked and Tree Borrows.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::io;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::time::Duration;

use napi::sys::uv_loop_s;

/// `uv_os_sock_t`: a descriptor on Unix, a `SOCKET` on Windows.
#[cfg(unix)]
pub type RawSocket = c_int;
#[cfg(windows)]
pub type RawSocket = usize;

// From `uv_handle_type` and `uv_poll_event`, stable across libuv 1.x.
const UV_POLL: c_int = 8;
const UV_TIMER: c_int = 13;
const UV_READABLE: c_int = 1;

/// How long a watch waits before it tries to poll again when polling
/// failed and its callback asked for no pause of its own.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// The start of every libuv handle; the rest is libuv's.
#[repr(C)]
pub struct Handle {
    data: *mut c_void,
}

type PollCallback = unsafe extern "C" fn(*mut Handle, c_int, c_int);
type TimerCallback = unsafe extern "C" fn(*mut Handle);
type CloseCallback = unsafe extern "C" fn(*mut Handle);

/// The libuv functions this module calls: Node's, or a test's fake.
pub struct Api {
    pub handle_size: unsafe extern "C" fn(c_int) -> usize,
    pub poll_init_socket: unsafe extern "C" fn(*mut uv_loop_s, *mut Handle, RawSocket) -> c_int,
    pub poll_start: unsafe extern "C" fn(*mut Handle, c_int, PollCallback) -> c_int,
    pub poll_stop: unsafe extern "C" fn(*mut Handle) -> c_int,
    pub timer_init: unsafe extern "C" fn(*mut uv_loop_s, *mut Handle) -> c_int,
    pub timer_start: unsafe extern "C" fn(*mut Handle, TimerCallback, u64, u64) -> c_int,
    pub close: unsafe extern "C" fn(*mut Handle, Option<CloseCallback>),
    pub strerror: unsafe extern "C" fn(c_int) -> *const c_char,
}

/// Node's libuv, looked up once.
pub fn node_api() -> io::Result<&'static Api> {
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

/// Memory for one libuv handle, of the size libuv asks for, 8-byte aligned.
/// Owned through a raw pointer: libuv writes into it while `Inner` is
/// shared, so no Rust reference may cover it.
struct HandleMemory(NonNull<[u64]>);

impl HandleMemory {
    fn new(api: &Api, kind: c_int) -> HandleMemory {
        // SAFETY: plain query of a size.
        let bytes = unsafe { (api.handle_size)(kind) }.max(std::mem::size_of::<Handle>());
        let memory = vec![0u64; bytes.div_ceil(8)].into_boxed_slice();
        HandleMemory(NonNull::from(Box::leak(memory)))
    }

    fn handle(&self) -> *mut Handle {
        self.0.as_ptr().cast()
    }
}

impl Drop for HandleMemory {
    fn drop(&mut self) {
        // SAFETY: made by `Box::leak` in `new`, freed once, here; only after
        // libuv's close callback (or before init), when libuv is done with it.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// What a watch's callback is told.
pub enum Readiness {
    /// The socket may hold packets (or it is a ticker's time).
    Ready,
    /// libuv reported an error for the poll, or could not restart it.
    Failed(io::Error),
}

/// What a watch or ticker does next, as its callback says.
pub enum Then {
    /// Wait for the socket (a watch) or for nothing (a ticker: it ends).
    Wait,
    /// Run the callback again after this long (a watch stops polling meanwhile).
    After(Duration),
}

type Callback = Box<dyn FnMut(Readiness) -> Then>;

/// What the handles' `data` points to. Freed once every initialised handle
/// is closed. Only ever reached through `&Inner`: see the module's rules.
struct Inner {
    api: &'static Api,
    /// Only for a watch.
    poll: Option<HandleMemory>,
    /// A ticker's clock; a watch's wake-up after a pause (a flood, an error).
    timer: HandleMemory,
    /// `None` while it runs, and once closed.
    callback: Cell<Option<Callback>>,
    /// The owner was dropped: the handles are closing.
    closed: Cell<bool>,
    /// Handles initialised, then close callbacks still to come; the memory
    /// goes when this falls back to 0.
    open: Cell<u8>,
}

/// The handles of one watch or ticker; closing them is dropping this.
struct Handles(NonNull<Inner>);

impl Handles {
    /// Initialises the timer, and the poll for `socket` when given; nothing runs yet.
    fn new(
        api: &'static Api,
        event_loop: *mut uv_loop_s,
        socket: Option<RawSocket>,
        callback: Callback,
    ) -> io::Result<Handles> {
        let inner = NonNull::from(Box::leak(Box::new(Inner {
            api,
            poll: socket.map(|_| HandleMemory::new(api, UV_POLL)),
            timer: HandleMemory::new(api, UV_TIMER),
            callback: Cell::new(Some(callback)),
            closed: Cell::new(false),
            open: Cell::new(0),
        })));
        let handles = Handles(inner);
        let state = handles.inner();
        let data = inner.as_ptr().cast::<c_void>();
        // SAFETY: handle memory is sized by libuv and outlives the handles
        // (freed with `Inner`, after the last close callback); `event_loop`
        // is the environment's loop. A failure leaves the handles
        // initialised so far (counted in `open`) to `Drop`.
        unsafe {
            let code = (api.timer_init)(event_loop, state.timer.handle());
            if code != 0 {
                return Err(failed(api, "cannot make a timer", code));
            }
            (*state.timer.handle()).data = data;
            state.open.set(1);
            if let (Some(socket), Some(poll)) = (socket, &state.poll) {
                let code = (api.poll_init_socket)(event_loop, poll.handle(), socket);
                if code != 0 {
                    return Err(failed(api, "cannot watch the listening socket", code));
                }
                (*poll.handle()).data = data;
                state.open.set(2);
            }
        }
        Ok(handles)
    }

    fn inner(&self) -> &Inner {
        // SAFETY: `Inner` lives until the last close callback, which comes
        // after `Drop` of this owner; only shared references are made.
        unsafe { self.0.as_ref() }
    }
}

impl Drop for Handles {
    /// Closes the handles, then drops the callback (and the socket and JS
    /// references it owns) now, while the environment is surely alive;
    /// libuv frees the handles later. From inside the callback, the
    /// callback is dropped once it returns (`run`).
    fn drop(&mut self) {
        let state = self.inner();
        state.closed.set(true);
        let open = [
            Some(state.timer.handle()),
            state.poll.as_ref().map(HandleMemory::handle),
        ];
        for handle in open.into_iter().flatten().take(state.open.get().into()) {
            // SAFETY: an initialised handle, closed once, here. uv_close
            // stops a poll at once (the descriptor leaves epoll/kqueue before
            // it returns), so the socket may close after it.
            unsafe { (state.api.close)(handle, Some(on_closed)) };
        }
        drop(state.callback.take());
        if state.open.get() == 0 {
            // SAFETY: no handle was initialised, so no callback will come.
            drop(unsafe { Box::from_raw(self.0.as_ptr()) });
        }
    }
}

/// Calls `on_readable` on the JS thread whenever the socket has packets.
/// An active watch keeps the Node process alive, as a listening socket does.
pub struct Watch(#[allow(dead_code)] Handles);

impl Watch {
    /// What libuv calls `socket`.
    pub fn socket_of(socket: &std::net::UdpSocket) -> RawSocket {
        #[cfg(unix)]
        return std::os::fd::AsRawFd::as_raw_fd(socket);
        #[cfg(windows)]
        return std::os::windows::io::AsRawSocket::as_raw_socket(socket) as RawSocket;
    }

    /// Starts watching `socket`; the watch must not outlive it (the owner
    /// of `on_readable` normally owns the socket too). `on_readable` is
    /// told of poll errors too, and says when to look again.
    pub fn start(
        api: &'static Api,
        event_loop: *mut uv_loop_s,
        socket: RawSocket,
        on_readable: impl FnMut(Readiness) -> Then + 'static,
    ) -> io::Result<Watch> {
        let handles = Handles::new(api, event_loop, Some(socket), Box::new(on_readable))?;
        start_polling(handles.inner())?;
        Ok(Watch(handles))
    }
}

/// Calls `on_tick` on the JS thread after `first`, then after each delay it
/// returns, until it returns `None`. A running ticker keeps the Node process
/// alive, as a JS timer does.
pub struct Ticker(#[allow(dead_code)] Handles);

impl Ticker {
    pub fn start(
        api: &'static Api,
        event_loop: *mut uv_loop_s,
        first: Duration,
        mut on_tick: impl FnMut() -> Option<Duration> + 'static,
    ) -> io::Result<Ticker> {
        let callback: Callback = Box::new(move |_| on_tick().map_or(Then::Wait, Then::After));
        let handles = Handles::new(api, event_loop, None, callback)?;
        start_timer(handles.inner(), first)?;
        Ok(Ticker(handles))
    }
}

fn start_polling(state: &Inner) -> io::Result<()> {
    let Some(poll) = &state.poll else {
        return Ok(());
    };
    // SAFETY: an initialised, open poll handle.
    let code = unsafe { (state.api.poll_start)(poll.handle(), UV_READABLE, on_poll) };
    if code != 0 {
        return Err(failed(state.api, "cannot watch the listening socket", code));
    }
    Ok(())
}

fn start_timer(state: &Inner, after: Duration) -> io::Result<()> {
    // SAFETY: an initialised, open timer handle.
    let code = unsafe { (state.api.timer_start)(state.timer.handle(), on_timer, milliseconds(after), 0) };
    if code != 0 {
        return Err(failed(state.api, "cannot start a timer", code));
    }
    Ok(())
}

/// libuv's timers count whole milliseconds; a pause is at least one.
fn milliseconds(duration: Duration) -> u64 {
    duration.as_millis().clamp(1, u64::MAX as u128) as u64
}

/// The `Inner` a handle's `data` points to.
///
/// # Safety
/// `handle` is one of an `Inner`'s handles, before its close callback.
unsafe fn inner_of<'a>(handle: *mut Handle) -> &'a Inner {
    // SAFETY: as the caller promises; `Inner` outlives its handles' callbacks.
    unsafe { &*(*handle).data.cast::<Inner>() }
}

unsafe extern "C" fn on_poll(handle: *mut Handle, status: c_int, _events: c_int) {
    // SAFETY: libuv calls this for a poll it has not closed yet.
    let state = unsafe { inner_of(handle) };
    let readiness = if status < 0 {
        // libuv stops a poll that reported an error (Unix): `run` restarts it.
        Readiness::Failed(failed(state.api, "polling the listening socket failed", status))
    } else {
        Readiness::Ready
    };
    run(state, readiness);
}

unsafe extern "C" fn on_timer(handle: *mut Handle) {
    // SAFETY: libuv calls this for a timer it has not closed yet.
    let state = unsafe { inner_of(handle) };
    // A watch's pause is over: poll again, and read what piled up now.
    let readiness = match start_polling(state) {
        Ok(()) => Readiness::Ready,
        Err(e) => Readiness::Failed(e),
    };
    run(state, readiness);
}

/// Runs the callback, then does what it says. The callback is taken out of
/// `Inner` while it runs: it may close its own handles (`Drop` then finds
/// none to drop) and is dropped here once it returns.
fn run(state: &Inner, readiness: Readiness) {
    if state.closed.get() {
        return;
    }
    let failed = matches!(readiness, Readiness::Failed(_));
    let Some(mut callback) = state.callback.take() else {
        return;
    };
    let then = callback(readiness);
    if state.closed.get() {
        // Closed from inside: the handles are closing, the socket may go now.
        drop(callback);
        return;
    }
    state.callback.set(Some(callback));
    let pause = match then {
        Then::After(pause) => Some(pause),
        // The poll may be stopped (libuv stops it on an error, or it could not restart).
        Then::Wait if failed && state.poll.is_some() => Some(RETRY_PAUSE),
        Then::Wait => None,
    };
    let Some(pause) = pause else {
        return;
    };
    if let Some(poll) = &state.poll {
        // SAFETY: an initialised, open poll; stopping a stopped poll is allowed.
        unsafe { (state.api.poll_stop)(poll.handle()) };
    }
    if let Err(e) = start_timer(state, pause) {
        // Nothing can wake this watch again: say so, rather than go deaf silently.
        if let Some(mut callback) = state.callback.take() {
            callback(Readiness::Failed(e));
            if !state.closed.get() {
                state.callback.set(Some(callback));
            }
        }
    }
}

unsafe extern "C" fn on_closed(handle: *mut Handle) {
    // SAFETY: every handle points at the same `Inner`, whose close callbacks
    // are counted; the last one is the last use of it.
    unsafe {
        let inner = (*handle).data.cast::<Inner>();
        let open = &(*inner).open;
        open.set(open.get() - 1);
        if open.get() == 0 {
            drop(Box::from_raw(inner));
        }
    }
}

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;
