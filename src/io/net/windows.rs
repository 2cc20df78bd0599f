//! Windows: tokio takes the socket over (there is no `AsyncFd` for a
//! `SOCKET`), so a batch is read through a second std view of the same raw
//! socket, and tokio's `try_io` clears readiness when that read would block.

use std::io;
use std::net::UdpSocket;

use super::Drain;

pub(super) type Registered = tokio::net::UdpSocket;

pub(super) fn register(socket: UdpSocket) -> io::Result<Registered> {
    tokio::net::UdpSocket::from_std(socket)
}

pub(super) fn unregister(socket: Registered) -> io::Result<UdpSocket> {
    socket.into_std()
}

/// Waits until the socket is readable and takes what it holds, up to `BATCH`.
pub(super) async fn read_batch(socket: &Registered, drain: &mut Drain) -> io::Result<usize> {
    use std::mem::ManuallyDrop;
    use std::os::windows::io::{AsRawSocket, FromRawSocket};
    // SAFETY: a second std view of the same socket, never dropped (so never
    // closed): tokio's socket keeps owning it.
    let view = ManuallyDrop::new(unsafe { UdpSocket::from_raw_socket(socket.as_raw_socket()) });
    loop {
        socket.readable().await?;
        // `try_io` clears readiness when the closure would block.
        match socket.try_io(tokio::io::Interest::READABLE, || drain.receive(&view)) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}
