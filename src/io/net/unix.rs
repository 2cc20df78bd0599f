//! Unix: the std socket itself is registered with tokio's reactor through
//! an `AsyncFd` over its descriptor, so the batch is read from the very
//! socket, and readiness is cleared by hand once a batch emptied it.

use std::io;
use std::net::UdpSocket;

use super::Drain;

pub(super) type Registered = tokio::io::unix::AsyncFd<UdpSocket>;

pub(super) fn register(socket: UdpSocket) -> io::Result<Registered> {
    use tokio::io::{unix::AsyncFd, Interest};
    // SAFETY: the std socket owns its descriptor, and the AsyncFd owns the
    // socket until it is dropped or taken back with `into_inner`.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }.map_err(io::Error::from)
}

pub(super) fn unregister(socket: Registered) -> io::Result<UdpSocket> {
    Ok(socket.into_inner())
}

/// Waits until the socket is readable and takes what it holds, up to `BATCH`.
pub(super) async fn read_batch(socket: &Registered, drain: &mut Drain) -> io::Result<usize> {
    loop {
        let mut guard = socket.readable().await?;
        match guard.try_io(|fd| drain.receive(fd.get_ref())) {
            Ok(Ok(n)) => {
                if drain.emptied() {
                    // The socket is empty: wait for the next packet instead of asking again.
                    guard.clear_ready();
                }
                return Ok(n);
            }
            Ok(Err(e)) => return Err(e),
            // Readiness was stale; `try_io` cleared it.
            Err(_would_block) => continue,
        }
    }
}
