//! Sockets: the only module that touches socket options and raw syscalls.
//!
//! - The listening socket shares its port (`SO_REUSEADDR`: old and new
//!   instance may share a host), is bound on all addresses and joins the
//!   group on the chosen interface; it hears only groups it joined
//!   (`IP_MULTICAST_ALL` off), so another group on the same port is silent.
//! - The sending socket uses TTL 1, loops back (old and new may share a
//!   host), and in host mode sends out of the chosen interface only.
//! - Receiving drains the socket in batches with `recvmmsg`, one syscall for
//!   up to `BATCH` packets, and under a flood lets packets pile up for a
//!   millisecond between batches instead of waking for each one.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::config::{Channel, NetworkMode};

/// Packets taken per `recvmmsg` call.
pub const BATCH: usize = 64;
/// More packets than this in one `LOAD_WINDOW` is a flood (6 400/s).
const FLOOD_PACKETS: usize = 64;
const LOAD_WINDOW: Duration = Duration::from_millis(10);
/// How long a flooded socket may fill before it is read again; also the
/// most a younger announcement is delayed by a flood.
const FLOOD_PAUSE: Duration = Duration::from_millis(1);
/// Room for what piles up during a `FLOOD_PAUSE` (the kernel caps it at
/// `net.core.rmem_max`).
const RECEIVE_BUFFER: usize = 1 << 20;
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
        Err(e) if e.kind() == io::ErrorKind::NotFound => Interface {
            address: None,
            fallback_reason: Some(format!("interface {} not found", channel.interface)),
        },
        Err(e) => Interface {
            address: None,
            fallback_reason: Some(format!(
                "cannot read the address of interface {}: {e}",
                channel.interface
            )),
        },
    }
}

/// The IPv4 address of a named interface: `Ok(None)` when it has none,
/// `Err(NotFound)` when there is no such interface. One `ioctl`, rather than
/// listing every interface of the machine.
pub fn interface_ipv4(name: &str) -> io::Result<Option<Ipv4Addr>> {
    let missing = || io::Error::new(io::ErrorKind::NotFound, format!("no interface named {name}"));
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(missing());
    }
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    // SAFETY: all-zero is a valid ifreq; the name fits with its NUL (checked above).
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    // SAFETY: SIOCGIFADDR reads the name from and writes the address into the ifreq we own.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFADDR as _, &mut request) };
    if rc != 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::ENODEV) => Err(missing()),
            Some(libc::EADDRNOTAVAIL) => Ok(None),
            _ => Err(error),
        };
    }
    // SAFETY: for SIOCGIFADDR the kernel fills ifru_addr with a sockaddr_in.
    let address = unsafe { *(&request.ifr_ifru.ifru_addr as *const libc::sockaddr as *const libc::sockaddr_in) };
    Ok(Some(Ipv4Addr::from(u32::from_be(address.sin_addr.s_addr))))
}

/// Binds the listening socket and joins the group (when the target is one).
pub fn listening_socket(channel: &Channel, interface: &Interface) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.set_recv_buffer_size(RECEIVE_BUFFER)?;
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

/// The sending socket of a peer or status channel: made on first use, then
/// shared by the caller's thread and the tasks that send.
#[derive(Debug, Default)]
pub struct LazySender(Option<Arc<UdpSocket>>);

impl LazySender {
    pub fn get(&mut self, interface: &Interface) -> io::Result<Arc<UdpSocket>> {
        if let Some(socket) = &self.0 {
            return Ok(socket.clone());
        }
        Ok(self.0.insert(Arc::new(sending_socket(interface)?)).clone())
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }
}

/// Where one packet was received from, and its bytes (cut to `SLOT`).
pub struct Packet<'a> {
    pub from: SocketAddrV4,
    pub bytes: &'a [u8],
}

/// A listening socket registered with tokio, plus reusable receive buffers.
pub struct Receiver {
    /// Registered with the reactor; `None` only while paused under a flood.
    socket: Option<AsyncFd<UdpSocket>>,
    /// The socket while it is out of the reactor.
    paused: Option<UdpSocket>,
    buffers: Box<[[u8; SLOT]; BATCH]>,
    lengths: [usize; BATCH],
    sources: [SocketAddrV4; BATCH],
    count: usize,
    load: Load,
    /// The last batch emptied the socket.
    drained: bool,
}

impl Receiver {
    /// Must run inside the tokio runtime.
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        Ok(Receiver {
            socket: Some(register(socket)?),
            paused: None,
            buffers: Box::new([[0; SLOT]; BATCH]),
            lengths: [0; BATCH],
            sources: [SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0); BATCH],
            count: 0,
            load: Load::new(Instant::now()),
            drained: false,
        })
    }

    /// Waits for packets and takes up to `BATCH` of them. Cancel-safe.
    ///
    /// Under a flood, a thread that wakes for every packet or two spends
    /// more on waking than on receiving; so once the socket is flooded and
    /// has just been emptied, it leaves the reactor for `FLOOD_PAUSE` (while
    /// registered, every arriving packet would wake the thread again) and
    /// then takes what piled up in full batches. Quiet sockets are served at once.
    pub async fn next_batch(&mut self) -> io::Result<impl Iterator<Item = Packet<'_>>> {
        if self.drained && self.load.flooded() {
            if let Some(registered) = self.socket.take() {
                self.paused = Some(registered.into_inner());
            }
            tokio::time::sleep(FLOOD_PAUSE).await;
            self.drained = false;
        }
        if let Some(socket) = self.paused.take() {
            self.socket = Some(register(socket)?);
        }
        let Receiver {
            socket,
            buffers,
            lengths,
            sources,
            count,
            load,
            drained,
            ..
        } = self;
        let socket = socket
            .as_ref()
            .ok_or_else(|| io::Error::other("the listening socket was lost"))?;
        loop {
            let mut guard = socket.readable().await?;
            match guard.try_io(|fd| recv_batch(fd.as_raw_fd(), buffers, lengths, sources)) {
                Ok(Ok(n)) => {
                    *drained = n < BATCH;
                    if *drained {
                        // The socket is empty: wait for the next packet instead of asking again.
                        guard.clear_ready();
                    }
                    *count = n;
                    load.record(n, Instant::now());
                    break;
                }
                Ok(Err(e)) => return Err(e),
                // Readiness was stale; `try_io` cleared it.
                Err(_would_block) => continue,
            }
        }
        let (buffers, lengths, sources) = (&**buffers, &*lengths, &*sources);
        Ok((0..*count).map(move |i| Packet {
            from: sources[i],
            bytes: &buffers[i][..lengths[i].min(SLOT)],
        }))
    }
}

fn register(socket: UdpSocket) -> io::Result<AsyncFd<UdpSocket>> {
    // SAFETY: the std socket owns its descriptor, and the AsyncFd owns the
    // socket until it is dropped or taken back with `into_inner`.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }.map_err(io::Error::from)
}

/// Packets per time window, to tell a flood from ordinary traffic (a few
/// announcements a second).
#[derive(Debug)]
struct Load {
    window_start: Instant,
    this_window: usize,
    last_window: usize,
}

impl Load {
    fn new(now: Instant) -> Self {
        Load {
            window_start: now,
            this_window: 0,
            last_window: 0,
        }
    }

    fn record(&mut self, packets: usize, now: Instant) {
        let elapsed = now.duration_since(self.window_start);
        if elapsed >= LOAD_WINDOW {
            self.last_window = if elapsed >= 2 * LOAD_WINDOW {
                0
            } else {
                self.this_window
            };
            self.this_window = 0;
            self.window_start = now;
        }
        self.this_window += packets;
    }

    fn flooded(&self) -> bool {
        self.this_window.max(self.last_window) >= FLOOD_PACKETS
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

    #[test]
    fn load_tells_a_flood_from_ordinary_traffic() {
        let t0 = Instant::now();
        let mut load = Load::new(t0);
        load.record(3, t0 + Duration::from_millis(1));
        assert!(!load.flooded());
        load.record(70, t0 + Duration::from_millis(5));
        assert!(load.flooded());
        // The next window still remembers the flood...
        load.record(1, t0 + Duration::from_millis(12));
        assert!(load.flooded());
        // ...but not once a whole quiet window has passed.
        load.record(1, t0 + Duration::from_millis(40));
        assert!(!load.flooded());
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
