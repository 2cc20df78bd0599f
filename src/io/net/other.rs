//! Every system but Linux (macOS, the BSDs, Windows): no `recvmmsg`, so
//! packets are received one `recvfrom` each (`super::recvfrom`); no single
//! portable `ioctl` for an interface's address, so it is looked up in the
//! list of all interfaces; and no `IP_MULTICAST_ALL` to turn off, as these
//! systems deliver only the groups the socket itself joined.

use std::io;
use std::net::{Ipv4Addr, UdpSocket};

use socket2::Socket;

use super::recvfrom::{recv_each, PortableSpill};
use super::Batch;

/// The IPv4 address of a named interface, from the list of all of them
/// (macOS, Windows: no single portable `ioctl` there).
pub fn interface_ipv4(name: &str) -> io::Result<Option<Ipv4Addr>> {
    let interfaces = if_addrs::get_if_addrs()?;
    let mut found = false;
    for interface in interfaces.iter().filter(|i| i.name == name) {
        found = true;
        if let std::net::IpAddr::V4(address) = interface.ip() {
            return Ok(Some(address));
        }
    }
    if found {
        Ok(None)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name}"),
        ))
    }
}

/// Nothing to turn off: only Linux delivers groups the socket did not join.
pub(super) fn hear_only_joined_groups(_socket: &Socket) -> io::Result<()> {
    Ok(())
}

pub(super) type Spill = PortableSpill;

/// The portable batch: one `recvfrom` per packet.
pub(super) fn recv_batch(socket: &UdpSocket, batch: &mut Batch, spill: &mut Spill, max: usize) -> io::Result<usize> {
    recv_each(|buffer| socket.recv_from(buffer), batch, spill, max)
}

/// The netmask of the interface that holds `address`: `Ok(None)` when no
/// interface does.
pub fn ipv4_netmask(address: Ipv4Addr) -> io::Result<Option<Ipv4Addr>> {
    for interface in if_addrs::get_if_addrs()? {
        if let if_addrs::IfAddr::V4(v4) = &interface.addr {
            if v4.ip == address {
                return Ok(Some(v4.netmask));
            }
        }
    }
    Ok(None)
}
