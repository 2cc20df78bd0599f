//! Sockets: the only module that touches socket options and raw syscalls.
//!
//! - The listening socket shares its port (`SO_REUSEADDR`: old and new
//!   instance may share a host), is bound on all addresses and joins the
//!   group on the chosen interface; it hears only groups it joined
//!   (`IP_MULTICAST_ALL` off), so another group on the same port is silent.
//! - The sending socket uses TTL 1, loops back (old and new may share a
//!   host), and in host mode sends out of the chosen interface only.
//! - Receiving drains the socket in batches (on Linux with `recvmmsg`, one
//!   syscall for up to `BATCH` packets; elsewhere one `recvfrom` each), and
//!   under a flood lets packets pile up for a millisecond between batches
//!   instead of waking for each one.
//! - Options that only sharpen or speed things up (`IP_MULTICAST_ALL` off, a
//!   larger receive buffer) degrade when the OS refuses them: the listen goes
//!   on and the refusal is recorded in `OptionalOption` flags for `stats()`.
//!
//! Platform differences stay in this module: Linux-only calls sit behind
//! `cfg(target_os = "linux")`, with a portable path beside them.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

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
#[cfg(target_os = "linux")]
pub fn interface_ipv4(name: &str) -> io::Result<Option<Ipv4Addr>> {
    use std::os::fd::AsRawFd;
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

/// The IPv4 address of a named interface, from the list of all of them
/// (macOS, Windows: no single portable `ioctl` there).
#[cfg(not(target_os = "linux"))]
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
        Err(io::Error::new(io::ErrorKind::NotFound, format!("no interface named {name}")))
    }
}

/// Socket options the listening socket can do without; a bit each in `Refused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionalOption {
    /// `IP_MULTICAST_ALL` off: hear only the joined group on this port.
    /// Without it, another group's traffic to the same port is heard too
    /// (and classified like any other packet). Linux only.
    MulticastAllOff = 1,
    /// A 1 MiB receive buffer, for what piles up under a flood.
    ReceiveBuffer = 2,
}

impl OptionalOption {
    pub const ALL: [OptionalOption; 2] = [OptionalOption::MulticastAllOff, OptionalOption::ReceiveBuffer];

    /// The socket option's C name, as an operator would search for it.
    pub fn name(self) -> &'static str {
        match self {
            OptionalOption::MulticastAllOff => "IP_MULTICAST_ALL",
            OptionalOption::ReceiveBuffer => "SO_RCVBUF",
        }
    }
}

/// The optional options the OS refused, as a bit set of `OptionalOption`s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused(pub u8);

impl Refused {
    pub fn options(self) -> impl Iterator<Item = OptionalOption> {
        OptionalOption::ALL.into_iter().filter(move |o| self.0 & *o as u8 != 0)
    }
}

/// A bound listening socket, and what it had to do without.
pub struct Listening {
    pub socket: UdpSocket,
    /// Each refused option with the OS's reason, for a log line.
    pub refused: Vec<(OptionalOption, io::Error)>,
}

impl Listening {
    pub fn refused_set(&self) -> Refused {
        Refused(self.refused.iter().fold(0, |bits, (option, _)| bits | *option as u8))
    }

    /// One line for the log, when anything was refused.
    pub fn refusals(&self) -> Option<String> {
        if self.refused.is_empty() {
            return None;
        }
        let each: Vec<String> = self
            .refused
            .iter()
            .map(|(option, e)| format!("{} ({e})", option.name()))
            .collect();
        Some(format!(
            "the OS refused optional socket options, listening without them: {}",
            each.join(", ")
        ))
    }
}

/// Binds the listening socket and joins the group (when the target is one).
/// Fails only for what the channel cannot work without; see `Listening`.
pub fn listening_socket(channel: &Channel, interface: &Interface) -> io::Result<Listening> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    let mut refused = Vec::new();
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    if let Err(e) = socket.set_recv_buffer_size(RECEIVE_BUFFER) {
        refused.push((OptionalOption::ReceiveBuffer, e));
    }
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, channel.port)).into())?;
    if channel.target.is_multicast() {
        if let Err(e) = hear_only_joined_groups(&socket) {
            refused.push((OptionalOption::MulticastAllOff, e));
        }
        socket.join_multicast_v4(&channel.target, &interface.address.unwrap_or(Ipv4Addr::UNSPECIFIED))?;
    }
    Ok(Listening {
        socket: socket.into(),
        refused,
    })
}

/// Linux delivers every group joined by any socket on the host to every
/// socket bound to the port, unless `IP_MULTICAST_ALL` is off. Other systems
/// deliver only the groups the socket itself joined.
#[cfg(target_os = "linux")]
fn hear_only_joined_groups(socket: &Socket) -> io::Result<()> {
    socket.set_multicast_all_v4(false)
}

#[cfg(not(target_os = "linux"))]
fn hear_only_joined_groups(_socket: &Socket) -> io::Result<()> {
    Ok(())
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
    socket: Option<Registered>,
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
                self.paused = Some(unregister(registered)?);
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
        let n = read_batch(socket, buffers, lengths, sources).await?;
        *drained = n < BATCH;
        *count = n;
        load.record(n, Instant::now());
        let (buffers, lengths, sources) = (&**buffers, &*lengths, &*sources);
        Ok((0..*count).map(move |i| Packet {
            from: sources[i],
            bytes: &buffers[i][..lengths[i].min(SLOT)],
        }))
    }
}

#[cfg(unix)]
type Registered = tokio::io::unix::AsyncFd<UdpSocket>;
#[cfg(not(unix))]
type Registered = tokio::net::UdpSocket;

#[cfg(unix)]
fn register(socket: UdpSocket) -> io::Result<Registered> {
    use tokio::io::{unix::AsyncFd, Interest};
    // SAFETY: the std socket owns its descriptor, and the AsyncFd owns the
    // socket until it is dropped or taken back with `into_inner`.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }.map_err(io::Error::from)
}

#[cfg(not(unix))]
fn register(socket: UdpSocket) -> io::Result<Registered> {
    tokio::net::UdpSocket::from_std(socket)
}

#[cfg(unix)]
fn unregister(socket: Registered) -> io::Result<UdpSocket> {
    Ok(socket.into_inner())
}

#[cfg(not(unix))]
fn unregister(socket: Registered) -> io::Result<UdpSocket> {
    socket.into_std()
}

/// Waits until the socket is readable and takes what it holds, up to `BATCH`.
#[cfg(unix)]
async fn read_batch(
    socket: &Registered,
    buffers: &mut [[u8; SLOT]; BATCH],
    lengths: &mut [usize; BATCH],
    sources: &mut [SocketAddrV4; BATCH],
) -> io::Result<usize> {
    loop {
        let mut guard = socket.readable().await?;
        match guard.try_io(|fd| recv_batch(fd.get_ref(), buffers, lengths, sources)) {
            Ok(Ok(n)) => {
                if n < BATCH {
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

#[cfg(not(unix))]
async fn read_batch(
    socket: &Registered,
    buffers: &mut [[u8; SLOT]; BATCH],
    lengths: &mut [usize; BATCH],
    sources: &mut [SocketAddrV4; BATCH],
) -> io::Result<usize> {
    loop {
        socket.readable().await?;
        // `try_io` clears readiness when the closure would block.
        match socket.try_io(tokio::io::Interest::READABLE, || {
            recv_each(|buffer| socket.try_recv_from(buffer), buffers, lengths, sources)
        }) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
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

/// One `recvmmsg` for up to `BATCH` packets.
#[cfg(target_os = "linux")]
fn recv_batch(
    socket: &UdpSocket,
    buffers: &mut [[u8; SLOT]; BATCH],
    lengths: &mut [usize; BATCH],
    sources: &mut [SocketAddrV4; BATCH],
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
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
    // The flags are `c_int` on glibc and `c_uint` on musl, hence the cast.
    let n = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            BATCH as _,
            libc::MSG_DONTWAIT as _,
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

/// The portable batch: one `recvfrom` per packet.
#[cfg(all(unix, not(target_os = "linux")))]
fn recv_batch(
    socket: &UdpSocket,
    buffers: &mut [[u8; SLOT]; BATCH],
    lengths: &mut [usize; BATCH],
    sources: &mut [SocketAddrV4; BATCH],
) -> io::Result<usize> {
    recv_each(|buffer| socket.recv_from(buffer), buffers, lengths, sources)
}

/// Receives packets one call each until the socket is empty or the batch
/// full; `WouldBlock` only when not one packet was there.
#[cfg(not(target_os = "linux"))]
fn recv_each(
    mut recv_from: impl FnMut(&mut [u8]) -> io::Result<(usize, SocketAddr)>,
    buffers: &mut [[u8; SLOT]; BATCH],
    lengths: &mut [usize; BATCH],
    sources: &mut [SocketAddrV4; BATCH],
) -> io::Result<usize> {
    let mut n = 0;
    while n < BATCH {
        match recv_from(&mut buffers[n]) {
            Ok((length, from)) => {
                lengths[n] = length;
                sources[n] = match from {
                    SocketAddr::V4(from) => from,
                    SocketAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                };
                n += 1;
            }
            // Windows reports a datagram longer than the buffer as an error
            // (WSAEMSGSIZE) after filling the buffer; keep what fitted.
            #[cfg(windows)]
            Err(e) if e.raw_os_error() == Some(10040) => {
                lengths[n] = SLOT;
                sources[n] = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
                n += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => break,
            Err(e) => return Err(e),
        }
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
        let listening = listening_socket(&channel, &interface).unwrap();
        assert_eq!(listening.refused_set(), Refused::default(), "{:?}", listening.refusals());
        let mut receiver = Receiver::new(listening.socket).unwrap();
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
