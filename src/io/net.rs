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
//! - Every datagram is received whole, up to the 65,507 bytes UDP over IPv4
//!   can carry, so that extension fields added later never make a packet
//!   look malformed. The first `SLOT` bytes of each land in a small dense
//!   buffer (all that today's messages need); only longer packets touch more
//!   memory, and they are copied whole once.
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
/// The largest UDP payload over IPv4: 65,535 bytes minus the IPv4 (20) and
/// UDP (8) headers. No datagram is cut short.
pub const MAX_DATAGRAM: usize = 65_507;
/// Bytes of each packet received into the dense slots: more than our
/// largest message, so the usual packet never touches any other memory.
const SLOT: usize = 256;

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
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name}"),
        ))
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

/// Where one packet was received from, and all of its bytes.
pub struct Packet<'a> {
    pub from: SocketAddrV4,
    pub bytes: &'a [u8],
}

/// The packets of one receive call: each packet's first `SLOT` bytes in a
/// dense slot, and every packet longer than that copied whole into `long`.
struct Batch {
    slots: Box<[[u8; SLOT]; BATCH]>,
    lengths: [usize; BATCH],
    sources: [SocketAddrV4; BATCH],
    /// Where packet `i` starts in `long`, when `lengths[i] > SLOT`.
    long_at: [usize; BATCH],
    /// Packets longer than a slot, whole, one after another.
    long: Vec<u8>,
    count: usize,
}

/// Capacity `long` keeps between batches; a batch of long packets may grow it
/// further, and the next batch gives the excess back.
const LONG_KEPT: usize = 64 * 1024;

impl Batch {
    fn new() -> Self {
        Batch {
            slots: Box::new([[0; SLOT]; BATCH]),
            lengths: [0; BATCH],
            sources: [SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0); BATCH],
            long_at: [0; BATCH],
            long: Vec::new(),
            count: 0,
        }
    }

    /// Empties the batch before a receive call.
    fn clear(&mut self) {
        self.count = 0;
        self.long.clear();
        self.long.shrink_to(LONG_KEPT);
    }

    /// Records packet `i` as long: its head is in slot `i`, then `tail`.
    fn keep_long(&mut self, i: usize, tail: &[u8]) {
        self.long_at[i] = self.long.len();
        self.long.extend_from_slice(&self.slots[i]);
        self.long.extend_from_slice(tail);
    }

    fn bytes(&self, i: usize) -> &[u8] {
        let length = self.lengths[i];
        if length <= SLOT {
            &self.slots[i][..length]
        } else {
            &self.long[self.long_at[i]..self.long_at[i] + length]
        }
    }

    fn packets(&self) -> impl Iterator<Item = Packet<'_>> {
        (0..self.count).map(move |i| Packet {
            from: self.sources[i],
            bytes: self.bytes(i),
        })
    }
}

/// When a reader should look at its socket again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRead {
    /// At once: more is waiting (after letting other work run).
    Now,
    /// As soon as it is readable.
    WhenReadable,
    /// Not before this pause, readable or not.
    After(Duration),
}

/// How long a reader leaves its socket alone after a socket error.
pub const ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Takes what a non-blocking socket holds, a batch at a time, into reusable
/// buffers, on whichever thread drives it; and keeps the load, to say when
/// reading again should wait.
///
/// Under a flood, a thread that wakes for every packet or two spends more on
/// waking than on receiving; so once the socket is flooded and has just been
/// emptied, the reader leaves it for `FLOOD_PAUSE` and then takes what piled
/// up in full batches. Quiet sockets are served at once.
pub struct Drain {
    batch: Batch,
    /// Room for the part of a packet that does not fit its slot.
    spill: Spill,
    load: Load,
    /// The last batch emptied the socket.
    emptied: bool,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            batch: Batch::new(),
            spill: Spill::new(),
            load: Load::new(Instant::now()),
            emptied: false,
        }
    }
}

impl Drain {
    /// What the socket holds (one packet while it is quiet, up to `BATCH`
    /// under a flood), without waiting: none when it is empty.
    pub fn take(&mut self, socket: &UdpSocket) -> io::Result<impl Iterator<Item = Packet<'_>>> {
        match self.receive(socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.received(0, 1);
            }
            Err(e) => return Err(e),
        }
        Ok(self.packets())
    }

    /// One receive call; `WouldBlock` when the socket was empty. A quiet
    /// socket is read one packet a call: the packet that matters (a younger
    /// announcement) is acted on before anything else is read, and the
    /// call is cheaper to set up. A busy one is read in full batches.
    fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.batch.clear();
        let max = if self.load.flooded() { BATCH } else { 1 };
        let n = recv_batch(socket, &mut self.batch, &mut self.spill, max)?;
        Ok(self.received(n, max))
    }

    fn received(&mut self, n: usize, max: usize) -> usize {
        self.batch.count = n;
        self.emptied = n < max;
        self.load.record(n, Instant::now());
        n
    }

    /// The last take left the socket empty (its packets may still be read).
    pub fn emptied(&self) -> bool {
        self.emptied
    }

    /// When to read again, once the socket was emptied.
    pub fn next_read(&mut self) -> NextRead {
        if self.emptied && self.load.flooded() {
            // The pause is taken once: what piled up is read in full batches.
            self.emptied = false;
            NextRead::After(FLOOD_PAUSE)
        } else {
            NextRead::WhenReadable
        }
    }

    fn packets(&self) -> impl Iterator<Item = Packet<'_>> {
        self.batch.packets()
    }
}

/// A listening socket registered with tokio, with its `Drain`.
pub struct Receiver {
    /// Registered with the reactor; `None` only while paused under a flood.
    socket: Option<Registered>,
    /// The socket while it is out of the reactor.
    paused: Option<UdpSocket>,
    drain: Drain,
}

impl Receiver {
    /// Must run inside the tokio runtime.
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        Ok(Receiver {
            socket: Some(register(socket)?),
            paused: None,
            drain: Drain::default(),
        })
    }

    /// Waits for packets and takes up to `BATCH` of them. Cancel-safe.
    /// A flooded socket leaves the reactor during its pause: while
    /// registered, every arriving packet would wake the thread again.
    pub async fn next_batch(&mut self) -> io::Result<impl Iterator<Item = Packet<'_>>> {
        if let NextRead::After(pause) = self.drain.next_read() {
            if let Some(registered) = self.socket.take() {
                self.paused = Some(unregister(registered)?);
            }
            tokio::time::sleep(pause).await;
        }
        if let Some(socket) = self.paused.take() {
            self.socket = Some(register(socket)?);
        }
        let socket = self
            .socket
            .as_ref()
            .ok_or_else(|| io::Error::other("the listening socket was lost"))?;
        read_batch(socket, &mut self.drain).await?;
        Ok(self.drain.packets())
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
async fn read_batch(socket: &Registered, drain: &mut Drain) -> io::Result<usize> {
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

#[cfg(not(unix))]
async fn read_batch(socket: &Registered, drain: &mut Drain) -> io::Result<usize> {
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

/// Where the part of each packet beyond its slot lands during one
/// `recvmmsg`: a region of `TAIL` bytes per packet of the batch. About
/// 4 MiB of address space, never written before use: only the pages long
/// packets reach become resident.
#[cfg(target_os = "linux")]
struct Spill(Vec<u8>);

/// The most of one packet that does not fit its slot.
#[cfg(target_os = "linux")]
const TAIL: usize = MAX_DATAGRAM - SLOT;

#[cfg(target_os = "linux")]
impl Spill {
    fn new() -> Self {
        Spill(Vec::with_capacity(BATCH * TAIL))
    }
}

/// One `recvmmsg` for up to `max` (≤ `BATCH`) packets, each received whole:
/// its first `SLOT` bytes into its slot, the rest (if any) into its region
/// of `spill`.
#[cfg(target_os = "linux")]
fn recv_batch(socket: &UdpSocket, batch: &mut Batch, spill: &mut Spill, max: usize) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    debug_assert!(spill.0.capacity() >= BATCH * TAIL);
    let tails = spill.0.as_mut_ptr();
    // SAFETY: all-zero is a valid value for these plain C structs.
    let mut names: [libc::sockaddr_in; BATCH] = unsafe { std::mem::zeroed() };
    let mut iovecs: [[libc::iovec; 2]; BATCH] = unsafe { std::mem::zeroed() };
    let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let max = max.min(BATCH);
    for i in 0..max {
        iovecs[i] = [
            libc::iovec {
                iov_base: batch.slots[i].as_mut_ptr().cast(),
                iov_len: SLOT,
            },
            libc::iovec {
                // SAFETY: region `i` lies within the spill's capacity (asserted above).
                iov_base: unsafe { tails.add(i * TAIL) }.cast(),
                iov_len: TAIL,
            },
        ];
        let header = &mut headers[i].msg_hdr;
        header.msg_name = (&mut names[i] as *mut libc::sockaddr_in).cast();
        header.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        header.msg_iov = iovecs[i].as_mut_ptr();
        header.msg_iovlen = 2;
    }
    // SAFETY: every header points into buffers and arrays that outlive the call.
    // The flags are `c_int` on glibc and `c_uint` on musl, hence the cast.
    let n = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            max as _,
            libc::MSG_DONTWAIT as _,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for i in 0..n {
        // Without MSG_TRUNC in the call's flags, `msg_len` counts the bytes
        // received, so it never exceeds SLOT + TAIL.
        let length = headers[i].msg_len as usize;
        batch.lengths[i] = length;
        if length > SLOT {
            // SAFETY: the kernel wrote `length - SLOT` bytes into region `i`.
            let tail = unsafe { std::slice::from_raw_parts(tails.add(i * TAIL), length - SLOT) };
            batch.keep_long(i, tail);
        }
        let name = &names[i];
        batch.sources[i] = SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr)),
            u16::from_be(name.sin_port),
        );
    }
    Ok(n)
}

/// Where each packet is received before it is sorted into the batch (one
/// `recvfrom` at a time): room for the largest datagram.
#[cfg(any(not(target_os = "linux"), test))]
struct PortableSpill(Box<[u8]>);

#[cfg(any(not(target_os = "linux"), test))]
impl PortableSpill {
    fn new() -> Self {
        PortableSpill(vec![0; MAX_DATAGRAM].into_boxed_slice())
    }
}

#[cfg(not(target_os = "linux"))]
type Spill = PortableSpill;

/// The portable batch: one `recvfrom` per packet.
#[cfg(not(target_os = "linux"))]
fn recv_batch(socket: &UdpSocket, batch: &mut Batch, spill: &mut Spill, max: usize) -> io::Result<usize> {
    recv_each(|buffer| socket.recv_from(buffer), batch, spill, max)
}

/// Receives packets one call each until the socket is empty or the batch
/// full; `WouldBlock` only when not one packet was there. Each packet is
/// received whole into `spill`, then a short one is copied into its slot
/// and a long one into `batch.long`.
#[cfg(any(not(target_os = "linux"), test))]
fn recv_each(
    mut recv_from: impl FnMut(&mut [u8]) -> io::Result<(usize, SocketAddr)>,
    batch: &mut Batch,
    spill: &mut PortableSpill,
    max: usize,
) -> io::Result<usize> {
    let mut n = 0;
    while n < max.min(BATCH) {
        let (length, from) = match recv_from(&mut spill.0) {
            Ok((length, from)) => (length, Some(from)),
            // Windows reports a datagram longer than the buffer as an error
            // (WSAEMSGSIZE) after filling the buffer. The buffer holds the
            // largest IPv4 datagram, so this cannot happen; keep what fitted.
            #[cfg(windows)]
            Err(e) if e.raw_os_error() == Some(10040) => (spill.0.len(), None),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => break,
            Err(e) => return Err(e),
        };
        let length = length.min(spill.0.len());
        batch.lengths[n] = length;
        let head = length.min(SLOT);
        batch.slots[n][..head].copy_from_slice(&spill.0[..head]);
        if length > SLOT {
            batch.keep_long(n, &spill.0[SLOT..length]);
        }
        batch.sources[n] = match from {
            Some(SocketAddr::V4(from)) => from,
            _ => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        };
        n += 1;
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
        assert_eq!(
            listening.refused_set(),
            Refused::default(),
            "{:?}",
            listening.refusals()
        );
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
                assert_eq!(packet.bytes.len(), seen.len() * 3);
                assert_eq!(*packet.from.ip(), Ipv4Addr::LOCALHOST);
                seen.push(packet.bytes.len());
            }
        }
    }

    /// A packet's bytes that say which packet it is at every offset, so that
    /// a tail received into another packet's room would show.
    fn numbered(number: u8, length: usize) -> Vec<u8> {
        (0..length)
            .map(|at| number.wrapping_mul(31).wrapping_add((at % 251) as u8))
            .collect()
    }

    #[tokio::test]
    async fn packets_of_any_length_arrive_whole_several_long_ones_in_one_batch() {
        let channel = loopback_channel(47_902, Ipv4Addr::new(239, 192, 16, 98));
        let interface = choose_interface(&channel);
        let listening = listening_socket(&channel, &interface).unwrap();
        let mut receiver = Receiver::new(listening.socket).unwrap();
        let sender = sending_socket(&interface).unwrap();
        let to = SocketAddrV4::new(channel.target, channel.port);
        let lengths = [9, SLOT, SLOT + 1, 120, 3_000, MAX_DATAGRAM, 0, 700, 40_000, 1];
        // Sent before the first read, so that one batch holds several long packets.
        for (number, &length) in lengths.iter().enumerate() {
            sender.send_to(&numbered(number as u8, length), to).unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < lengths.len() {
            for packet in receiver.next_batch().await.unwrap() {
                let number = seen.len();
                assert_eq!(packet.bytes.len(), lengths[number], "packet {number}");
                assert!(
                    packet.bytes == numbered(number as u8, lengths[number]),
                    "packet {number}"
                );
                seen.push(number);
            }
        }
        // Short packets afterwards are served from the slots again.
        sender.send_to(&numbered(7, 9), to).unwrap();
        let packet_bytes: Vec<Vec<u8>> = receiver.next_batch().await.unwrap().map(|p| p.bytes.to_vec()).collect();
        assert_eq!(packet_bytes, vec![numbered(7, 9)]);
    }

    #[test]
    fn the_portable_path_keeps_packets_whole_too() {
        let lengths = [0, 9, SLOT, SLOT + 1, MAX_DATAGRAM, 120, 2_000];
        let mut queue: Vec<Vec<u8>> = lengths
            .iter()
            .enumerate()
            .map(|(number, &length)| numbered(number as u8, length))
            .rev()
            .collect();
        let from = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 7), 4242));
        let recv_from = |buffer: &mut [u8]| match queue.pop() {
            Some(packet) => {
                buffer[..packet.len()].copy_from_slice(&packet);
                Ok((packet.len(), from))
            }
            None => Err(io::Error::from(io::ErrorKind::WouldBlock)),
        };
        let mut batch = Batch::new();
        let mut spill = PortableSpill::new();
        batch.count = recv_each(recv_from, &mut batch, &mut spill, BATCH).unwrap();
        let packets: Vec<Packet<'_>> = batch.packets().collect();
        assert_eq!(packets.len(), lengths.len());
        for (number, packet) in packets.iter().enumerate() {
            assert!(
                packet.bytes == numbered(number as u8, lengths[number]),
                "packet {number}"
            );
            assert_eq!(packet.from, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 7), 4242));
        }
        // An empty socket is `WouldBlock`, not an empty batch.
        batch.clear();
        let error = recv_each(|_| Err(io::ErrorKind::WouldBlock.into()), &mut batch, &mut spill, BATCH).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }
}
