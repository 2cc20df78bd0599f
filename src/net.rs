//! Sockets: the only module that touches socket options and raw syscalls.
//!
//! - The listening socket shares its port (`SO_REUSEADDR`: old and new
//!   instance may share a host), is bound on all addresses and joins the
//!   group on the chosen interface; it hears only groups it joined
//!   (`IP_MULTICAST_ALL` off), so another group on the same port is silent.
//! - The sending socket uses TTL 1, loops back (old and new may share a
//!   host), and in host mode sends out of the chosen interface only.
//! - Receiving drains the socket in batches with `recvmmsg`, one syscall for
//!   up to `BATCH` packets.

use std::ffi::CStr;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;

use crate::config::{Channel, NetworkMode};

/// Packets taken per `recvmmsg` call.
pub const BATCH: usize = 32;
/// Bytes kept of each packet: more than our largest message; the rest of a
/// longer packet is cut off, which no decoder needs.
pub const SLOT: usize = 256;

/// The interface multicast is joined and sent on, and how it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// `None`: the kernel's default (the default route's interface).
    pub address: Option<Ipv4Addr>,
    /// Set when host mode could not use the configured interface.
    pub fallback_reason: Option<String>,
}

/// Bridge mode uses the default interface; host mode the configured one,
/// given as a name or an IPv4 address.
pub fn choose_interface(channel: &Channel) -> Interface {
    if channel.mode == NetworkMode::Bridge {
        return Interface {
            address: None,
            fallback_reason: None,
        };
    }
    if let Ok(address) = channel.interface.parse::<Ipv4Addr>() {
        return Interface {
            address: Some(address),
            fallback_reason: None,
        };
    }
    match interface_ipv4(&channel.interface) {
        Ok(Some(address)) => Interface {
            address: Some(address),
            fallback_reason: None,
        },
        Ok(None) => Interface {
            address: None,
            fallback_reason: Some(format!("interface {} has no IPv4 address", channel.interface)),
        },
        Err(_) => Interface {
            address: None,
            fallback_reason: Some(format!("interface {} not found", channel.interface)),
        },
    }
}

/// The first IPv4 address of a named interface; `Err` when there is no such interface.
pub fn interface_ipv4(name: &str) -> io::Result<Option<Ipv4Addr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list that we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (mut found, mut address) = (false, None);
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: cursor walks the list getifaddrs returned, which stays valid until freed.
        let entry = unsafe { &*cursor };
        let entry_name = unsafe { CStr::from_ptr(entry.ifa_name) };
        if entry_name.to_bytes() == name.as_bytes() {
            found = true;
            if address.is_none() && !entry.ifa_addr.is_null() {
                // SAFETY: ifa_addr points to a sockaddr whose family says how to read it.
                let family = unsafe { (*entry.ifa_addr).sa_family } as i32;
                if family == libc::AF_INET {
                    let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
                    address = Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
                }
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: list came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    if found {
        Ok(address)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name}"),
        ))
    }
}

/// Binds the listening socket and joins the group (when the target is one).
pub fn listening_socket(channel: &Channel, interface: &Interface) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, channel.port)).into())?;
    if channel.target.is_multicast() {
        socket.set_multicast_all_v4(false)?;
        socket.join_multicast_v4(&channel.target, &interface.address.unwrap_or(Ipv4Addr::UNSPECIFIED))?;
    }
    Ok(socket.into())
}

/// The socket announcements are sent from.
pub fn sending_socket(interface: &Interface) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.set_multicast_ttl_v4(1)?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_broadcast(true)?;
    if let Some(address) = interface.address {
        socket.set_multicast_if_v4(&address)?;
    }
    Ok(socket.into())
}

/// Where one packet was received from, and its bytes (cut to `SLOT`).
pub struct Packet<'a> {
    pub from: SocketAddrV4,
    pub bytes: &'a [u8],
}

/// A listening socket registered with tokio, plus reusable receive buffers.
pub struct Receiver {
    socket: tokio::net::UdpSocket,
    buffers: Box<[[u8; SLOT]; BATCH]>,
    lengths: [usize; BATCH],
    sources: [SocketAddrV4; BATCH],
    count: usize,
}

impl Receiver {
    /// Must run inside the tokio runtime.
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        Ok(Receiver {
            socket: tokio::net::UdpSocket::from_std(socket)?,
            buffers: Box::new([[0; SLOT]; BATCH]),
            lengths: [0; BATCH],
            sources: [SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0); BATCH],
            count: 0,
        })
    }

    /// Waits for packets and takes up to `BATCH` of them. Cancel-safe.
    pub async fn next_batch(&mut self) -> io::Result<impl Iterator<Item = Packet<'_>>> {
        loop {
            self.socket.readable().await?;
            let Receiver {
                socket,
                buffers,
                lengths,
                sources,
                ..
            } = self;
            match socket.try_io(Interest::READABLE, || {
                recv_batch(socket.as_raw_fd(), buffers, lengths, sources)
            }) {
                Ok(n) => {
                    self.count = n;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        let (buffers, lengths, sources) = (&*self.buffers, &self.lengths, &self.sources);
        Ok((0..self.count).map(move |i| Packet {
            from: sources[i],
            bytes: &buffers[i][..lengths[i].min(SLOT)],
        }))
    }
}

fn recv_batch(
    fd: i32,
    buffers: &mut [[u8; SLOT]; BATCH],
    lengths: &mut [usize; BATCH],
    sources: &mut [SocketAddrV4; BATCH],
) -> io::Result<usize> {
    // SAFETY: all-zero is a valid value for these plain C structs.
    let mut names: [libc::sockaddr_in; BATCH] = unsafe { std::mem::zeroed() };
    let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..BATCH {
        iovecs[i] = libc::iovec {
            iov_base: buffers[i].as_mut_ptr().cast(),
            iov_len: SLOT,
        };
        let header = &mut headers[i].msg_hdr;
        header.msg_name = (&mut names[i] as *mut libc::sockaddr_in).cast();
        header.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        header.msg_iov = &mut iovecs[i];
        header.msg_iovlen = 1;
    }
    // SAFETY: every header points into buffers and arrays that outlive the call.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            headers.as_mut_ptr(),
            BATCH as _,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for i in 0..n {
        lengths[i] = headers[i].msg_len as usize;
        let name = &names[i];
        sources[i] = SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr)),
            u16::from_be(name.sin_port),
        );
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_channel(port: u16, target: Ipv4Addr) -> Channel {
        Channel {
            port,
            target,
            mode: NetworkMode::Host,
            interface: "lo".into(),
        }
    }

    #[test]
    fn loopback_has_an_ipv4_address_and_missing_interfaces_are_reported() {
        assert_eq!(interface_ipv4("lo").unwrap(), Some(Ipv4Addr::LOCALHOST));
        assert!(interface_ipv4("no-such-if0").is_err());
        let missing = Channel {
            interface: "no-such-if0".into(),
            ..loopback_channel(1, Ipv4Addr::LOCALHOST)
        };
        let chosen = choose_interface(&missing);
        assert_eq!(chosen.address, None);
        assert!(chosen.fallback_reason.unwrap().contains("not found"));
    }

    #[tokio::test]
    async fn batches_carry_every_packet_over_loopback_multicast() {
        let channel = loopback_channel(47_901, Ipv4Addr::new(239, 192, 16, 99));
        let interface = choose_interface(&channel);
        assert_eq!(interface.address, Some(Ipv4Addr::LOCALHOST));
        let mut receiver = Receiver::new(listening_socket(&channel, &interface).unwrap()).unwrap();
        let sender = sending_socket(&interface).unwrap();
        let to = SocketAddrV4::new(channel.target, channel.port);
        for i in 0..100u8 {
            sender.send_to(&vec![i; usize::from(i) * 3], to).unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < 100 {
            for packet in receiver.next_batch().await.unwrap() {
                assert!(packet.bytes.iter().all(|&b| b as usize == seen.len()));
                assert_eq!(packet.bytes.len(), (seen.len() * 3).min(SLOT));
                assert_eq!(*packet.from.ip(), Ipv4Addr::LOCALHOST);
                seen.push(packet.bytes.len());
            }
        }
    }
}
