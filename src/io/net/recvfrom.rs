//! Any system: a batch received one `recvfrom` per packet, each into room
//! for the largest datagram and then sorted into the batch. Every system
//! but Linux reads this way (`other.rs`); Linux, which has `recvmmsg`,
//! compiles it only for its tests, so the path is tested where CI runs.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::{Batch, BATCH, MAX_DATAGRAM, SLOT};

/// Where each packet is received before it is sorted into the batch (one
/// `recvfrom` at a time): room for the largest datagram.
pub(super) struct PortableSpill(Box<[u8]>);

impl PortableSpill {
    pub(super) fn new() -> Self {
        PortableSpill(vec![0; MAX_DATAGRAM].into_boxed_slice())
    }
}

/// Receives packets one call each until the socket is empty or the batch
/// full; `WouldBlock` only when not one packet was there. Each packet is
/// received whole into `spill`, then a short one is copied into its slot
/// and a long one into `batch.long`.
pub(super) fn recv_each(
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
    use crate::io::net::{tests::numbered, Packet};

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
