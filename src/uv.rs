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
//! needs them, never a failed load or a crash. Handle memory is sized by
//! `uv_handle_size`, so no libuv struct layout is assumed beyond the public
//! `data` pointer that starts every handle.
//!
//! Two users: the peer's listener (`Watch`, a poll handle, plus a timer for
//! pauses) and its announcement schedule (`Ticker`, a timer), so that
//! starting to broadcast is one `sendto` and one `uv_timer_start`, with no
//! JS timer to build on the way.
//!
//! Neither is `Send`: each is made, used and closed on the JS thread of one
//! environment, like the loop it is registered with.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use napi::sys::uv_loop_s;

use crate::net::NextRead;

/// `uv_os_sock_t`: a descriptor on Unix, a `SOCKET` on Windows.
#[cfg(unix)]
pub type RawSocket = c_int;
#[cfg(windows)]
pub type RawSocket = usize;

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

/// Memory for one libuv handle, of the size libuv asks for, 8-byte aligned.
fn handle_memory(api: &Api, kind: c_int) -> Box<[u64]> {
    // SAFETY: plain query of a size.
    let bytes = unsafe { (api.handle_size)(kind) };
    vec![0u64; bytes.div_ceil(8)].into_boxed_slice()
}

/// What a watch or ticker does next, as its callback says.
enum Then {
    /// Wait for the socket (a watch) or for nothing (a ticker).
    Wait,
    /// Run the callback again after this long (a watch stops polling meanwhile).
    After(Duration),
}

type Callback = Box<dyn FnMut() -> Then>;

/// What the handles' `data` points to: their memory and the callback.
/// Freed once every initialised handle is closed.
struct Inner {
    api: &'static Api,
    /// Only for a watch.
    poll: Option<Box<[u64]>>,
    /// A ticker's clock; a watch's wake-up after a pause (a flood, a socket error).
    timer: Box<[u64]>,
    /// `None` once closed.
    callback: Option<Callback>,
    /// The callback is running: a close from inside it (a callback that
    /// closes the peer) must not drop it under its own feet.
    running: bool,
    /// The owner was dropped: the handles are closing.
    closed: bool,
    /// Handles initialised, then close callbacks still to come; the memory
    /// goes when this falls back to 0.
    open: u8,
}

impl Inner {
    fn poll(&mut self) -> Option<*mut Handle> {
        self.poll.as_mut().map(|memory| memory.as_mut_ptr().cast())
    }

    fn timer(&mut self) -> *mut Handle {
        self.timer.as_mut_ptr().cast()
    }
}

/// The handles of one watch or ticker; closing them is dropping this.
struct Handles(*mut Inner);

impl Handles {
    /// Initialises the timer, and the poll for `socket` when given; nothing runs yet.
    fn new(event_loop: *mut uv_loop_s, socket: Option<RawSocket>, callback: Callback) -> io::Result<Handles> {
        let api = api()?;
        let inner = Box::into_raw(Box::new(Inner {
            api,
            poll: socket.map(|_| handle_memory(api, UV_POLL)),
            timer: handle_memory(api, UV_TIMER),
            callback: Some(callback),
            running: false,
            closed: false,
            open: 0,
        }));
        let handles = Handles(inner);
        // SAFETY: `inner` is a live allocation that only these handles and
        // their callbacks (on this thread) use; handle memory is sized by
        // libuv; `event_loop` is the environment's loop. A failure leaves
        // the handles initialised so far to `Drop`.
        unsafe {
            let state = &mut *inner;
            let code = (api.timer_init)(event_loop, state.timer());
            if code != 0 {
                return Err(failed(api, "cannot make a timer", code));
            }
            (*state.timer()).data = inner.cast();
            state.open = 1;
            if let (Some(socket), Some(poll)) = (socket, state.poll()) {
                let code = (api.poll_init_socket)(event_loop, poll, socket);
                if code != 0 {
                    return Err(failed(api, "cannot watch the listening socket", code));
                }
                (*poll).data = inner.cast();
                state.open = 2;
            }
        }
        Ok(handles)
    }

    fn start_polling(&self) -> io::Result<()> {
        // SAFETY: the poll is initialised (`new` with a socket).
        unsafe {
            let state = &mut *self.0;
            let poll = state.poll().expect("a watch has a poll");
            let code = (state.api.poll_start)(poll, UV_READABLE, on_poll);
            if code != 0 {
                return Err(failed(state.api, "cannot watch the listening socket", code));
            }
        }
        Ok(())
    }

    fn start_timer(&self, after: Duration) -> io::Result<()> {
        // SAFETY: the timer is initialised.
        unsafe {
            let state = &mut *self.0;
            let code = (state.api.timer_start)(state.timer(), on_timer, milliseconds(after), 0);
            if code != 0 {
                return Err(failed(state.api, "cannot start a timer", code));
            }
        }
        Ok(())
    }
}

impl Drop for Handles {
    /// Stops now and drops the callback (and what it owns) now, while the
    /// environment is surely alive; libuv frees the handles later.
    fn drop(&mut self) {
        // SAFETY: `self.0` lives until the last close callback, which cannot
        // have run yet: the handles are closed here, once.
        unsafe {
            let state = &mut *self.0;
            state.closed = true;
            if !state.running {
                state.callback = None;
            }
            let open = [Some(state.timer()), state.poll()];
            for handle in open.into_iter().flatten().take(state.open as usize) {
                (state.api.close)(handle, Some(on_closed));
            }
            if state.open == 0 {
                drop(Box::from_raw(self.0));
            }
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
    /// of `on_readable` normally owns the socket too).
    pub fn start(
        event_loop: *mut uv_loop_s,
        socket: RawSocket,
        mut on_readable: impl FnMut() -> NextRead + 'static,
    ) -> io::Result<Watch> {
        let callback: Callback = Box::new(move || match on_readable() {
            NextRead::After(pause) => Then::After(pause),
            // The poll reports a socket that still holds packets again on
            // the loop's next turn.
            NextRead::Now | NextRead::WhenReadable => Then::Wait,
        });
        let handles = Handles::new(event_loop, Some(socket), callback)?;
        handles.start_polling()?;
        Ok(Watch(handles))
    }
}

/// Calls `on_tick` on the JS thread after `first`, then after each delay it
/// returns, until it returns `None`. A running ticker keeps the Node process
/// alive, as a JS timer does.
pub struct Ticker(#[allow(dead_code)] Handles);

impl Ticker {
    pub fn start(
        event_loop: *mut uv_loop_s,
        first: Duration,
        mut on_tick: impl FnMut() -> Option<Duration> + 'static,
    ) -> io::Result<Ticker> {
        let callback: Callback = Box::new(move || on_tick().map_or(Then::Wait, Then::After));
        let handles = Handles::new(event_loop, None, callback)?;
        handles.start_timer(first)?;
        Ok(Ticker(handles))
    }
}

/// libuv's timers count whole milliseconds; a pause is at least one.
fn milliseconds(duration: Duration) -> u64 {
    duration.as_millis().clamp(1, u64::MAX as u128) as u64
}

unsafe extern "C" fn on_poll(handle: *mut Handle, _status: c_int, _events: c_int) {
    // An error status still means "look at the socket": the read reports it.
    // SAFETY: the poll's `data` is its `Inner`, alive until its close callback.
    unsafe { run((*handle).data.cast::<Inner>()) };
}

unsafe extern "C" fn on_timer(handle: *mut Handle) {
    // SAFETY: as for the poll.
    unsafe {
        let inner = (*handle).data.cast::<Inner>();
        let state = &mut *inner;
        if state.closed {
            return;
        }
        // A watch's pause is over: poll again, and read what piled up now.
        if let Some(poll) = state.poll() {
            (state.api.poll_start)(poll, UV_READABLE, on_poll);
        }
        run(inner);
    }
}

/// Runs the callback, then does what it says.
unsafe fn run(inner: *mut Inner) {
    // SAFETY: `inner` is alive (see the callers); JS thread only.
    let state = unsafe { &mut *inner };
    let Some(callback) = state.callback.as_mut() else {
        return;
    };
    state.running = true;
    let then = callback();
    state.running = false;
    if state.closed {
        // Closed from inside the callback: drop it now that it has returned.
        state.callback = None;
        return;
    }
    if let Then::After(pause) = then {
        // SAFETY: the handles are initialised and open.
        unsafe {
            if let Some(poll) = state.poll() {
                (state.api.poll_stop)(poll);
            }
            (state.api.timer_start)(state.timer(), on_timer, milliseconds(pause), 0);
        }
    }
}

unsafe extern "C" fn on_closed(handle: *mut Handle) {
    // SAFETY: every handle points at the same `Inner`; the last close
    // callback is the last use of it.
    unsafe {
        let inner = (*handle).data.cast::<Inner>();
        (*inner).open -= 1;
        if (*inner).open == 0 {
            drop(Box::from_raw(inner));
        }
    }
}
