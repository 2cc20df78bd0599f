//! Linux: a TCP listener that shares its port with the other instance of
//! the service (`SO_REUSEPORT`), the classic-BPF program that steers new
//! connections to one socket of the group (`SO_ATTACH_REUSEPORT_CBPF`),
//! and what the drain reads: the listener's accept queue (`TCP_INFO`), the
//! port's listeners and half-open connections (`/proc/net/tcp{,6}`), and
//! `net.ipv4.tcp_migrate_req`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Socket, Type};

pub use super::tcp_table::PortSockets;

/// Whether this system can share a TCP port between instances.
pub const SUPPORTED: bool = true;

/// A listening socket bound to `address` with `SO_REUSEPORT` (and
/// `SO_REUSEADDR`, as Node sets it), non-blocking, close-on-exec. `::`
/// takes IPv4 too (the system's `bindv6only`, 0 by default), as Node's
/// own listen does.
pub fn shared_listener(address: SocketAddr, backlog: i32) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM.nonblocking().cloexec(), None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(backlog)?;
    Ok(socket)
}

/// Attaches to the socket's reuseport group a program that picks the
/// socket at `index` (group order: the order the sockets started listening;
/// when one leaves, the last takes its place). An index past the end makes
/// the kernel fall back to its hash, so the program is harmless once the
/// group shrank. One program per group: this replaces any other.
pub fn steer_to(socket: &Socket, index: u32) -> io::Result<()> {
    let program = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: index,
    }];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the kernel copies the program during the call; `fprog` and the
    // array it points to outlive it, and the size is that of `fprog`.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Connections the kernel completed on this listener that nobody accepted
/// yet (for a listener, `TCP_INFO`'s `tcpi_unacked` is its accept queue).
pub fn accept_queue(socket: &Socket) -> io::Result<u32> {
    // SAFETY: all-zero is a valid tcp_info.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut length = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `length` bytes into `info`, which we own.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut length,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info.tcpi_unacked)
}

/// `net.ipv4.tcp_migrate_req` of this network namespace (Linux 5.14+):
/// `None` where the kernel does not have it.
pub fn migrate_requests() -> Option<bool> {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req")
        .ok()
        .map(|text| text.trim() == "1")
}

/// Turns `net.ipv4.tcp_migrate_req` on in this network namespace (needs
/// CAP_NET_ADMIN over it: root in a test's own namespace).
pub fn enable_migrate_requests() -> io::Result<()> {
    std::fs::write("/proc/sys/net/ipv4/tcp_migrate_req", "1")
}

/// Reads the table of this socket's family for `address`.
pub fn port_sockets(address: SocketAddr) -> io::Result<PortSockets> {
    let table = if address.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let text = std::fs::read_to_string(table)?;
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    Ok(super::tcp_table::port_sockets(&text, address, uid))
}

/// This instance's claim on a shared port, naming its service: an abstract
/// Unix socket, which lives in the network namespace (so host-network
/// containers see each other's) and goes when the process does.
pub struct Claim(#[allow(dead_code)] std::os::unix::net::UnixDatagram);

fn claim_prefix(address: SocketAddr) -> String {
    format!("handover-native/tcp/{}/{}/", address.ip(), address.port())
}

/// Claims `address` for `service`; gives back the services that claimed it
/// before (one entry per instance).
pub fn claim(address: SocketAddr, service: &str) -> io::Result<(Claim, Vec<String>)> {
    use std::os::linux::net::SocketAddrExt;
    let prefix = claim_prefix(address);
    let text = std::fs::read_to_string("/proc/net/unix")?;
    let others = super::tcp_table::claims(&text, &prefix);
    let nonce = crate::io::clock::random_instance_id();
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("{prefix}{nonce}/{service}");
    let socket = std::os::unix::net::UnixDatagram::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name(
        name.as_bytes(),
    )?)?;
    Ok((Claim(socket), others))
}
