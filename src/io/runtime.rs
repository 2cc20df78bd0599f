//! The addon's tokio runtime: one worker thread, started on first use, so
//! that `require()` starts no thread and a few sockets and timers cost one
//! thread rather than one per core.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            // The blocking thread (complete-file writes) leaves soon after its work.
            .thread_keep_alive(std::time::Duration::from_secs(1))
            .thread_name("handover")
            .enable_all()
            .build()
            .expect("cannot start the handover runtime")
    })
}

/// Spawns a task on the runtime the caller runs in, or on the addon's
/// runtime when the caller runs in none.
///
/// Production calls come from the JS thread, which is in no runtime, so
/// every task lands on the addon's runtime (and calls from its own tasks
/// stay there). Rust tests call from a `#[tokio::test]` runtime: spawning
/// there puts the tasks under the test's clock, which the test may pause
/// and advance; the addon's runtime keeps a clock of its own that no test
/// controls.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match Handle::try_current() {
        Ok(current) => current.spawn(future),
        Err(_) => runtime().spawn(future),
    }
}

/// Enters the addon's runtime on this thread, for registering I/O with it
/// from a thread that runs in none (the JS thread).
pub fn enter() -> tokio::runtime::EnterGuard<'static> {
    runtime().enter()
}
