//! Linux: one `recvmmsg` takes a whole batch, each packet whole (its
//! slot, then its own region of a lazily touched spill area); one `ioctl`
//! finds an interface's address; and `IP_MULTICAST_ALL`, which only Linux
//! has, must be turned off so that the socket hears only the group it
//! joined.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use socket2::{Domain, Socket, Type};

use super::{Batch, BATCH, MAX_DATAGRAM, SLOT};

/// The IPv4 address of a named interface: `Ok(None)` when it has none,
/// `Err(NotFound)` when there is no such interface. One `ioctl`, rather than
/// listing every interface of the machine.
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

/// Linux delivers every group joined by any socket on the host to every
/// socket bound to the port, unless `IP_MULTICAST_ALL` is off. Other systems
/// deliver only the groups the socket itself joined.
pub(super) fn hear_only_joined_groups(socket: &Socket) -> io::Result<()> {
    socket.set_multicast_all_v4(false)
}

/// Where the part of each packet beyond its slot lands during one
/// `recvmmsg`: a region of `TAIL` bytes per packet of the batch. About
/// 4 MiB of address space, never written before use: only the pages long
/// packets reach become resident.
pub(super) struct Spill(Vec<u8>);

/// The most of one packet that does not fit its slot.
const TAIL: usize = MAX_DATAGRAM - SLOT;

impl Spill {
    pub(super) fn new() -> Self {
        Spill(Vec::with_capacity(BATCH * TAIL))
    }
}

/// One `recvmmsg` for up to `max` (≤ `BATCH`) packets, each received whole:
/// its first `SLOT` bytes into its slot, the rest (if any) into its region
/// of `spill`.
pub(super) fn recv_batch(socket: &UdpSocket, batch: &mut Batch, spill: &mut Spill, max: usize) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    debug_assert!(spill.0.capacity() >= BATCH * TAIL);
    let tails = spill.0.as_mut_ptr();
    // SAFETY: all-zero is a valid value for these plain C structs.
    let mut names: [libc::sockaddr_in; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut iovecs: [[libc::iovec; 2]; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
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

/// The netmask of the interface that holds `address`: `Ok(None)` when no
/// interface does. Reads the list of interface addresses once.
pub fn ipv4_netmask(address: Ipv4Addr) -> io::Result<Option<Ipv4Addr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we own until freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = None;
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: a non-null entry of the list getifaddrs made, alive until freeifaddrs below.
        let current = unsafe { &*entry };
        entry = current.ifa_next;
        if current.ifa_addr.is_null() || current.ifa_netmask.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is a valid sockaddr; its family says which kind.
        if i32::from(unsafe { (*current.ifa_addr).sa_family }) != libc::AF_INET {
            continue;
        }
        // SAFETY: AF_INET entries hold sockaddr_in for both the address and the netmask.
        let (own, mask) = unsafe {
            (
                *(current.ifa_addr as *const libc::sockaddr_in),
                *(current.ifa_netmask as *const libc::sockaddr_in),
            )
        };
        if Ipv4Addr::from(u32::from_be(own.sin_addr.s_addr)) == address {
            found = Some(Ipv4Addr::from(u32::from_be(mask.sin_addr.s_addr)));
            break;
        }
    }
    // SAFETY: the list came from getifaddrs and is freed once; no reference into it outlives this.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}
