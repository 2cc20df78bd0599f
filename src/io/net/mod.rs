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
//! This file is the portable part: the API above, and all of batching,
//! slots and flood pacing. What differs between systems lives in one file
//! per platform, chosen by a single `cfg` on its `mod` line and always
//! mounted under the same name, so that the code here reads the same on
//! every system:
//! - `sys`, the receive call and the interface lookup: `linux.rs`
//!   (`recvmmsg`, one `ioctl`, `IP_MULTICAST_ALL`) or `other.rs` (every
//!   other system: one `recvfrom` per packet, the list of interfaces);
//! - `recvfrom`: that one-`recvfrom`-per-packet loop, which `other.rs`
//!   reads with and which Linux compiles for its tests;
//! - `reactor`, how a socket waits for readiness in tokio: `unix.rs` (an
//!   `AsyncFd` over the descriptor) or `windows.rs` (tokio's own socket,
//!   read through a borrowed std view).
//! - `tcp`, the shared TCP listener of host-network services
//!   (`SO_REUSEPORT`, cBPF steering, accept-queue and `/proc/net/tcp`
//!   reads): `tcp_linux.rs`, or `tcp_other.rs` which refuses; `tcp_table`
//!   parses `/proc/net/tcp{,6}`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{Channel, NetworkMode};

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod sys;
#[cfg(not(target_os = "linux"))]
#[path = "other.rs"]
mod sys;

#[cfg(any(not(target_os = "linux"), test))]
mod recvfrom;

/// The shared TCP listener's socket calls (host-network handover).
#[cfg(target_os = "linux")]
#[path = "tcp_linux.rs"]
pub mod tcp;
#[cfg(not(target_os = "linux"))]
#[path = "tcp_other.rs"]
pub mod tcp;
mod tcp_table;

#[cfg(unix)]
#[path = "unix.rs"]
mod reactor;
#[cfg(windows)]
#[path = "windows.rs"]
mod reactor;

pub use sys::interface_ipv4;

/// The address this host sends from towards `target`, and its interface's
/// netmask: `connect` on a UDP socket picks the route and sends nothing.
/// With `address` given, that address and its interface's netmask.
pub fn local_subnet(address: Option<Ipv4Addr>, target: SocketAddrV4) -> io::Result<(Ipv4Addr, Ipv4Addr)> {
    let address = match address {
        Some(address) => address,
        None => {
            let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            probe.connect(target)?;
            match probe.local_addr()? {
                SocketAddr::V4(local) => *local.ip(),
                SocketAddr::V6(_) => return Err(io::Error::other("no IPv4 route to the group")),
            }
        }
    };
    match sys::ipv4_netmask(address)? {
        Some(netmask) => Ok((address, netmask)),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface holds {address}"),
        )),
    }
}

use reactor::{read_batch, register, unregister, Registered};
use sys::{hear_only_joined_groups, recv_batch, Spill};

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
    pub(super) fn numbered(number: u8, length: usize) -> Vec<u8> {
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
}
