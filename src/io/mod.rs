//! The I/O layer: the operating system and the host's event loop, each
//! behind a small API the behaviour layer drives.
//! - `net`: UDP sockets, interfaces, batched reads, and the shared TCP
//!   listener of host-network services (one file per platform);
//! - `uv`: socket readiness and timers on the JS thread's libuv loop;
//! - `complete`: the handover-complete file;
//! - `clock`: wall and boot clocks, random instance ids;
//! - `log`: log lines, and the thread that writes them without blocking;
//! - `runtime`: the addon's tokio runtime.
//!
//! Uses `protocol` and `config`; errors are `std::io::Error` (or text, for
//! what is only ever reported).

pub mod clock;
pub mod complete;
pub mod log;
pub mod net;
pub mod runtime;
pub mod uv;
