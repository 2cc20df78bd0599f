//! Every system but Linux: no cBPF steering of a reuseport group, no
//! `tcp_migrate_req`, and `SO_REUSEPORT` elsewhere either balances
//! differently (the BSDs, macOS: the last socket bound takes all) or means
//! something else (Windows has none). The shared listener is refused with a
//! clear error; `listenShared` then tells the caller to listen plainly.

use std::io;
use std::net::SocketAddr;

use socket2::Socket;

pub use super::tcp_table::PortSockets;

pub const SUPPORTED: bool = false;

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a shared listener needs Linux (SO_REUSEPORT groups with cBPF steering)",
    )
}

pub fn shared_listener(_address: SocketAddr, _backlog: i32) -> io::Result<Socket> {
    Err(unsupported())
}

pub fn steer_to(_socket: &Socket, _index: u32) -> io::Result<()> {
    Err(unsupported())
}

pub fn accept_queue(_socket: &Socket) -> io::Result<u32> {
    Err(unsupported())
}

pub fn migrate_requests() -> Option<bool> {
    None
}

pub fn enable_migrate_requests() -> io::Result<()> {
    Err(unsupported())
}

pub fn port_sockets(_address: SocketAddr) -> io::Result<PortSockets> {
    Err(unsupported())
}

pub struct Claim;

pub fn claim(_address: SocketAddr, _service: &str) -> io::Result<(Claim, Vec<String>)> {
    Err(unsupported())
}
