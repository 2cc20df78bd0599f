//! Byte-exact codecs for the two channels: the 9-byte handover announcement
//! (v1) with our optional extension after it, and the 120-byte status
//! message (v2). Pure functions: no I/O, no clocks, no allocation when
//! decoding an announcement (it runs once per received packet).
//!
//! The byte layouts are documented in `docs/PROTOCOL.md`.

use std::fmt;
use std::net::Ipv4Addr;

mod limits;
pub mod router;
pub use limits::{
    ServiceName, ServiceNameError, ServiceScope, StatusAddresses, StatusAddressesError, StatusLabel, StatusLabelTooLong,
};

/// First byte of a handover announcement.
pub const ANNOUNCEMENT_VERSION: u8 = 0x01;
/// Length of the announcement the original library sends and reads.
pub const ANNOUNCEMENT_LEN: usize = 9;
/// First byte of a status message.
pub const STATUS_VERSION: u8 = 0x02;
/// Length of a status message.
pub const STATUS_LEN: usize = 120;

/// Marks the bytes after the 9-byte announcement as our extension.
pub const EXTENSION_MAGIC: [u8; 2] = *b"HO";
/// Extension layout version this code writes.
pub const EXTENSION_VERSION: u8 = 1;

/// Extension field types (type byte, length byte, value).
pub mod field {
    /// Service name the announcement is scoped to (UTF-8, 1..=63 bytes).
    pub const SERVICE: u8 = 0x01;
    /// Random per-instance id (8 bytes): breaks ties and recognises our own packets.
    pub const INSTANCE: u8 = 0x02;
    /// Boot id (16 bytes) + `startedAt` on the boot clock in µs (i64 BE).
    pub const BOOT_CLOCK: u8 = 0x03;
    /// Wall-clock send time in ms (i64 BE) + per-instance sequence (u64 BE).
    pub const FRESHNESS: u8 = 0x04;
    /// A router's name (UTF-8, 1..=63 bytes), in router messages.
    pub const NAME: u8 = 0x05;
    /// HMAC-SHA256 over every byte before this field; always the last field.
    pub const MAC: u8 = 0x7f;
}

/// Field limits; values we send are checked against them in `limits`.
pub const SERVICE_NAME_MAX: usize = 63;
pub const STATUS_ADDRESSES_MAX: usize = 10;
pub const STATUS_TEXT_MAX: usize = 8;
pub const INSTANCE_ID_LEN: usize = 8;
pub const BOOT_ID_LEN: usize = 16;
pub const MAC_LEN: usize = 32;

const STATUS_NAME_AT: usize = 9;
const STATUS_ADDRESSES_AT: usize = 72;
const STATUS_TEXT_AT: usize = 112;

/// Why a received packet was not a message. Cheap to build: it is made once
/// per dropped packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Fewer bytes than the fixed part of the message.
    TooShort { len: usize },
    /// The first byte is not the version this channel carries.
    WrongVersion { version: u8 },
    /// Our extension is present but a field runs past the end of the packet.
    TruncatedField { field: u8 },
    /// A field we know has a length other than its defined one.
    BadFieldLength { field: u8, len: usize },
    /// The MAC field is not the last one.
    MacNotLast,
    /// A router message of a kind this version does not know.
    UnknownKind { kind: u8 },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::TooShort { len } => write!(f, "too short ({len} bytes)"),
            Malformed::WrongVersion { version } => write!(f, "wrong version byte 0x{version:02x}"),
            Malformed::TruncatedField { field } => write!(f, "extension field 0x{field:02x} truncated"),
            Malformed::BadFieldLength { field, len } => {
                write!(f, "extension field 0x{field:02x} has length {len}")
            }
            Malformed::MacNotLast => write!(f, "MAC is not the last extension field"),
            Malformed::UnknownKind { kind } => write!(f, "unknown router message kind 0x{kind:02x}"),
        }
    }
}

/// `startedAt` on the boot clock, comparable only between peers with the same boot id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootStamp {
    pub boot_id: [u8; BOOT_ID_LEN],
    pub started_at_us: i64,
}

/// Replay protection carried by signed announcements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub sent_at_ms: i64,
    pub sequence: u64,
}

/// A decoded announcement, borrowing from the packet it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement<'a> {
    pub started_at_ms: i64,
    /// `None` for a plain 9-byte announcement (the original library's).
    pub extension: Option<Extension<'a>>,
}

/// Our fields after byte 9. Every field is optional on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extension<'a> {
    pub version: u8,
    pub service: Option<&'a [u8]>,
    pub instance: Option<[u8; INSTANCE_ID_LEN]>,
    pub boot: Option<BootStamp>,
    pub freshness: Option<Freshness>,
    pub name: Option<&'a [u8]>,
    pub mac: Option<&'a [u8; MAC_LEN]>,
    /// Number of leading bytes the MAC covers (everything before the MAC field).
    pub signed_len: usize,
}

/// Encodes the 9-byte announcement the original library sends.
pub fn encode_announcement(started_at_ms: i64) -> [u8; ANNOUNCEMENT_LEN] {
    let mut out = [0u8; ANNOUNCEMENT_LEN];
    out[0] = ANNOUNCEMENT_VERSION;
    out[1..].copy_from_slice(&started_at_ms.to_be_bytes());
    out
}

/// What we append after the 9 bytes; the MAC is added by `auth`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionFields {
    pub service: Option<ServiceScope>,
    pub instance: Option<[u8; INSTANCE_ID_LEN]>,
    pub boot: Option<BootStamp>,
    pub freshness: Option<Freshness>,
    /// A router's name (router messages only); at most 63 bytes.
    pub name: Option<ServiceName>,
}

/// Encodes an announcement with our extension (without a MAC).
pub fn encode_extended(started_at_ms: i64, fields: &ExtensionFields) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(&encode_announcement(started_at_ms));
    push_extension(&mut out, fields);
    out
}

/// Appends the magic, the extension version and `fields` (without a MAC).
fn push_extension(out: &mut Vec<u8>, fields: &ExtensionFields) {
    out.extend_from_slice(&EXTENSION_MAGIC);
    out.push(EXTENSION_VERSION);
    if let Some(service) = &fields.service {
        push_field(out, field::SERVICE, service.as_bytes());
    }
    if let Some(instance) = &fields.instance {
        push_field(out, field::INSTANCE, instance);
    }
    if let Some(boot) = &fields.boot {
        let mut value = [0u8; BOOT_ID_LEN + 8];
        value[..BOOT_ID_LEN].copy_from_slice(&boot.boot_id);
        value[BOOT_ID_LEN..].copy_from_slice(&boot.started_at_us.to_be_bytes());
        push_field(out, field::BOOT_CLOCK, &value);
    }
    if let Some(freshness) = &fields.freshness {
        let mut value = [0u8; 16];
        value[..8].copy_from_slice(&freshness.sent_at_ms.to_be_bytes());
        value[8..].copy_from_slice(&freshness.sequence.to_be_bytes());
        push_field(out, field::FRESHNESS, &value);
    }
    if let Some(name) = &fields.name {
        push_field(out, field::NAME, name.as_bytes());
    }
}

/// Appends a MAC field; `mac` covers every byte already in `packet`.
pub fn append_mac(packet: &mut Vec<u8>, mac: &[u8; MAC_LEN]) {
    push_field(packet, field::MAC, mac);
}

fn push_field(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    // Every field we write is far below 255 bytes (service names are capped at 63).
    debug_assert!(value.len() <= u8::MAX as usize);
    out.push(kind);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

/// Decodes an announcement. Like the original, only the first 9 bytes are
/// required; trailing bytes that are not our extension are ignored.
pub fn decode_announcement(packet: &[u8]) -> Result<Announcement<'_>, Malformed> {
    if packet.is_empty() {
        return Err(Malformed::TooShort { len: 0 });
    }
    if packet[0] != ANNOUNCEMENT_VERSION {
        return Err(Malformed::WrongVersion { version: packet[0] });
    }
    if packet.len() < ANNOUNCEMENT_LEN {
        return Err(Malformed::TooShort { len: packet.len() });
    }
    let started_at_ms = read_i64(&packet[1..9]);
    Ok(Announcement {
        started_at_ms,
        extension: decode_extension_at(packet, ANNOUNCEMENT_LEN)?,
    })
}

/// Our extension when the bytes from `base` on start with the magic;
/// `None` for anything else there (trailing bytes of another sender).
pub(crate) fn decode_extension_at(packet: &[u8], base: usize) -> Result<Option<Extension<'_>>, Malformed> {
    let rest = packet.get(base..).unwrap_or_default();
    if rest.len() < 3 || rest[..2] != EXTENSION_MAGIC {
        return Ok(None);
    }
    let mut ext = Extension {
        version: packet[base + 2],
        ..Extension::default()
    };
    let mut at = base + 3;
    while at < packet.len() {
        let kind = packet[at];
        let len = *packet.get(at + 1).ok_or(Malformed::TruncatedField { field: kind })? as usize;
        let value = packet
            .get(at + 2..at + 2 + len)
            .ok_or(Malformed::TruncatedField { field: kind })?;
        let expect = |wanted: usize| {
            if len == wanted {
                Ok(())
            } else {
                Err(Malformed::BadFieldLength { field: kind, len })
            }
        };
        match kind {
            field::SERVICE => {
                if len == 0 || len > SERVICE_NAME_MAX {
                    return Err(Malformed::BadFieldLength { field: kind, len });
                }
                ext.service = Some(value);
            }
            field::INSTANCE => {
                expect(INSTANCE_ID_LEN)?;
                ext.instance = Some(value.try_into().expect("length checked"));
            }
            field::BOOT_CLOCK => {
                expect(BOOT_ID_LEN + 8)?;
                ext.boot = Some(BootStamp {
                    boot_id: value[..BOOT_ID_LEN].try_into().expect("length checked"),
                    started_at_us: read_i64(&value[BOOT_ID_LEN..]),
                });
            }
            field::FRESHNESS => {
                expect(16)?;
                ext.freshness = Some(Freshness {
                    sent_at_ms: read_i64(&value[..8]),
                    sequence: u64::from_be_bytes(value[8..].try_into().expect("length checked")),
                });
            }
            field::MAC => {
                expect(MAC_LEN)?;
                if at + 2 + len != packet.len() {
                    return Err(Malformed::MacNotLast);
                }
                ext.mac = Some(value.try_into().expect("length checked"));
                ext.signed_len = at;
            }
            field::NAME => {
                if len == 0 || len > SERVICE_NAME_MAX {
                    return Err(Malformed::BadFieldLength { field: kind, len });
                }
                ext.name = Some(value);
            }
            // Unknown fields come from a later version: skip them.
            _ => {}
        }
        at += 2 + len;
    }
    Ok(Some(ext))
}

fn read_i64(bytes: &[u8]) -> i64 {
    i64::from_be_bytes(bytes[..8].try_into().expect("caller passes 8 bytes"))
}

/// A status message as delivered to the listener: what the packet said,
/// unchecked (another sender's text may be anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMessage {
    pub timestamp_ms: i64,
    pub service_name: String,
    pub addresses: Vec<Ipv4Addr>,
    pub status: String,
}

/// What a status message says about its sender, made of values that were
/// checked when they were built: encoding it cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusIdentity {
    /// The sender's `startedAt`, ms since the epoch.
    pub timestamp_ms: i64,
    pub service_name: ServiceName,
    pub addresses: StatusAddresses,
}

/// Encodes a status message. Every limit was checked when `sender` and
/// `status` were built, so the bytes always fit.
pub fn encode_status(sender: &StatusIdentity, status: &StatusLabel) -> [u8; STATUS_LEN] {
    let name = sender.service_name.as_bytes();
    let status = status.as_bytes();
    let mut out = [0u8; STATUS_LEN];
    out[0] = STATUS_VERSION;
    out[1..9].copy_from_slice(&sender.timestamp_ms.to_be_bytes());
    out[STATUS_NAME_AT..STATUS_NAME_AT + name.len()].copy_from_slice(name);
    for (i, address) in sender.addresses.iter().enumerate() {
        let at = STATUS_ADDRESSES_AT + 4 * i;
        out[at..at + 4].copy_from_slice(&address.octets());
    }
    out[STATUS_TEXT_AT..STATUS_TEXT_AT + status.len()].copy_from_slice(status);
    out
}

/// A status message with our extension after its 120 bytes (an instance
/// id, and with a secret the freshness the MAC then covers). The original
/// reads the 120 bytes and never looks further.
pub fn encode_status_extended(sender: &StatusIdentity, status: &StatusLabel, fields: &ExtensionFields) -> Vec<u8> {
    let mut out = Vec::with_capacity(STATUS_LEN + 72);
    out.extend_from_slice(&encode_status(sender, status));
    push_extension(&mut out, fields);
    out
}

/// Our extension after a status message's 120 bytes, when there is one.
/// `packet` decoded as a status message already.
pub fn decode_status_extension(packet: &[u8]) -> Result<Option<Extension<'_>>, Malformed> {
    decode_extension_at(packet, STATUS_LEN)
}

/// Decodes a status message; bytes past the 120th are ignored.
pub fn decode_status(packet: &[u8]) -> Result<StatusMessage, Malformed> {
    if packet.is_empty() {
        return Err(Malformed::TooShort { len: 0 });
    }
    if packet[0] != STATUS_VERSION {
        return Err(Malformed::WrongVersion { version: packet[0] });
    }
    if packet.len() < STATUS_LEN {
        return Err(Malformed::TooShort { len: packet.len() });
    }
    let addresses = packet[STATUS_ADDRESSES_AT..STATUS_TEXT_AT]
        .chunks_exact(4)
        .take_while(|octets| octets[0] != 0)
        .map(|o| Ipv4Addr::new(o[0], o[1], o[2], o[3]))
        .collect();
    Ok(StatusMessage {
        timestamp_ms: read_i64(&packet[1..9]),
        service_name: nul_padded_text(&packet[STATUS_NAME_AT..STATUS_ADDRESSES_AT]),
        addresses,
        status: nul_padded_text(&packet[STATUS_TEXT_AT..STATUS_LEN]),
    })
}

fn nul_padded_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn announcement_is_byte_exact() {
        assert_eq!(hex(&encode_announcement(1_700_000_000_000)), "010000018bcfe56800");
        assert_eq!(hex(&encode_announcement(-1)), "01ffffffffffffffff");
        assert_eq!(hex(&encode_announcement(0)), "010000000000000000");
    }

    #[test]
    fn plain_announcement_round_trips() {
        for ms in [0, 1, -1, 1_700_000_000_000, i64::MAX, i64::MIN] {
            let packet = encode_announcement(ms);
            let decoded = decode_announcement(&packet).unwrap();
            assert_eq!(
                decoded,
                Announcement {
                    started_at_ms: ms,
                    extension: None
                }
            );
        }
    }

    #[test]
    fn trailing_bytes_that_are_not_ours_are_ignored_like_the_original() {
        let mut packet = encode_announcement(42).to_vec();
        packet.extend_from_slice(b"garbage after the message");
        assert_eq!(decode_announcement(&packet).unwrap().extension, None);
        packet.truncate(10);
        assert_eq!(decode_announcement(&packet).unwrap().started_at_ms, 42);
    }

    #[test]
    fn short_and_wrong_version_packets_are_malformed() {
        assert_eq!(decode_announcement(&[]), Err(Malformed::TooShort { len: 0 }));
        assert_eq!(decode_announcement(&[1, 0, 0]), Err(Malformed::TooShort { len: 3 }));
        assert_eq!(
            decode_announcement(&encode_status(&status_fixture(), &StatusLabel::UP)),
            Err(Malformed::WrongVersion { version: 2 })
        );
    }

    fn extension_fixture() -> ExtensionFields {
        ExtensionFields {
            service: Some(ServiceScope::fixed("api")),
            instance: Some([1, 2, 3, 4, 5, 6, 7, 8]),
            boot: Some(BootStamp {
                boot_id: [9; 16],
                started_at_us: 123_456_789,
            }),
            freshness: Some(Freshness {
                sent_at_ms: 1_700_000_000_500,
                sequence: 7,
            }),
            name: None,
        }
    }

    #[test]
    fn extension_round_trips_and_keeps_the_first_nine_bytes() {
        let fields = extension_fixture();
        let packet = encode_extended(1_700_000_000_000, &fields);
        assert_eq!(hex(&packet[..9]), "010000018bcfe56800");
        assert_eq!(&packet[9..12], b"HO\x01");
        let decoded = decode_announcement(&packet).unwrap();
        let ext = decoded.extension.unwrap();
        assert_eq!(ext.service, Some(&b"api"[..]));
        assert_eq!(ext.instance, fields.instance);
        assert_eq!(ext.boot, fields.boot);
        assert_eq!(ext.freshness, fields.freshness);
        assert_eq!(ext.mac, None);
    }

    #[test]
    fn extension_layout_is_byte_exact() {
        let fields = ExtensionFields {
            service: Some(ServiceScope::fixed("api")),
            instance: Some([0xaa; 8]),
            ..Default::default()
        };
        assert_eq!(
            hex(&encode_extended(1_700_000_000_000, &fields)),
            "010000018bcfe56800\
             484f01\
             0103617069\
             0208aaaaaaaaaaaaaaaa"
        );
    }

    #[test]
    fn mac_is_last_and_covers_everything_before_it() {
        let mut packet = encode_extended(5, &extension_fixture());
        let signed = packet.len();
        append_mac(&mut packet, &[0x55; MAC_LEN]);
        let ext = decode_announcement(&packet).unwrap().extension.unwrap();
        assert_eq!(ext.signed_len, signed);
        assert_eq!(ext.mac, Some(&[0x55; MAC_LEN]));

        packet.extend_from_slice(&[field::INSTANCE, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode_announcement(&packet), Err(Malformed::MacNotLast));
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut packet = encode_announcement(5).to_vec();
        packet.extend_from_slice(b"HO\x02");
        packet.extend_from_slice(&[0x42, 3, 1, 2, 3]);
        packet.extend_from_slice(&[field::SERVICE, 1, b'x']);
        let ext = decode_announcement(&packet).unwrap().extension.unwrap();
        assert_eq!(ext.version, 2);
        assert_eq!(ext.service, Some(&b"x"[..]));
    }

    #[test]
    fn a_packet_as_long_as_a_datagram_decodes_with_fields_after_the_unknown_ones() {
        // Receivers take datagrams of up to 65,507 bytes whole (docs/PROTOCOL.md).
        let mut packet = encode_announcement(5).to_vec();
        packet.extend_from_slice(b"HO\x01");
        while packet.len() + 2 + 255 + 3 + 2 + MAC_LEN <= 65_507 {
            packet.extend_from_slice(&[0x42, 255]);
            packet.extend_from_slice(&[0xee; 255]);
        }
        packet.extend_from_slice(&[field::SERVICE, 1, b'x']);
        let signed_len = packet.len();
        append_mac(&mut packet, &[0x55; MAC_LEN]);
        assert!(packet.len() > 65_000);
        let ext = decode_announcement(&packet).unwrap().extension.unwrap();
        assert_eq!(ext.service, Some(&b"x"[..]));
        assert_eq!((ext.mac, ext.signed_len), (Some(&[0x55; MAC_LEN]), signed_len));
    }

    #[test]
    fn bad_field_lengths_are_malformed() {
        let base = |tail: &[u8]| {
            let mut p = encode_announcement(5).to_vec();
            p.extend_from_slice(b"HO\x01");
            p.extend_from_slice(tail);
            p
        };
        assert_eq!(
            decode_announcement(&base(&[field::INSTANCE, 7, 0, 0, 0, 0, 0, 0, 0])),
            Err(Malformed::BadFieldLength {
                field: field::INSTANCE,
                len: 7
            })
        );
        assert_eq!(
            decode_announcement(&base(&[field::SERVICE, 0])),
            Err(Malformed::BadFieldLength {
                field: field::SERVICE,
                len: 0
            })
        );
        assert_eq!(
            decode_announcement(&base(&[field::SERVICE, 5, b'a'])),
            Err(Malformed::TruncatedField { field: field::SERVICE })
        );
        assert_eq!(
            decode_announcement(&base(&[field::SERVICE])),
            Err(Malformed::TruncatedField { field: field::SERVICE })
        );
    }

    fn status_fixture() -> StatusIdentity {
        StatusIdentity {
            timestamp_ms: 1_700_000_000_000,
            service_name: ServiceName::new("api").unwrap(),
            addresses: StatusAddresses::new(vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(172, 17, 0, 5)]).unwrap(),
        }
    }

    /// What a listener reads from `sender`'s message with `status`.
    fn as_heard(sender: &StatusIdentity, status: &StatusLabel) -> StatusMessage {
        StatusMessage {
            timestamp_ms: sender.timestamp_ms,
            service_name: sender.service_name.to_string(),
            addresses: sender.addresses.to_vec(),
            status: status.to_string(),
        }
    }

    #[test]
    fn status_is_byte_exact() {
        let bytes = encode_status(&status_fixture(), &StatusLabel::UP);
        assert_eq!(bytes.len(), 120);
        assert_eq!(hex(&bytes[..9]), "020000018bcfe56800");
        assert_eq!(&bytes[9..12], b"api");
        assert!(bytes[12..72].iter().all(|&b| b == 0));
        assert_eq!(&bytes[72..80], &[10, 0, 0, 2, 172, 17, 0, 5]);
        assert!(bytes[80..112].iter().all(|&b| b == 0));
        assert_eq!(&bytes[112..114], b"UP");
        assert!(bytes[114..].iter().all(|&b| b == 0));
    }

    #[test]
    fn status_round_trips_at_the_limits() {
        let sender = StatusIdentity {
            timestamp_ms: -5,
            service_name: ServiceName::new(&("é".repeat(31) + "x")).unwrap(),
            addresses: StatusAddresses::new((1..=10).map(|i| Ipv4Addr::new(i, 2, 3, 4)).collect()).unwrap(),
        };
        let status = StatusLabel::new("DRAINING").unwrap();
        let message = as_heard(&sender, &status);
        assert_eq!(decode_status(&encode_status(&sender, &status)).unwrap(), message);
        let mut longer = encode_status(&sender, &status).to_vec();
        longer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode_status(&longer).unwrap(), message);
    }

    #[test]
    fn status_fields_at_the_limits_fill_them_without_a_terminator() {
        let sender = StatusIdentity {
            service_name: ServiceName::new(&"n".repeat(SERVICE_NAME_MAX)).unwrap(),
            ..status_fixture()
        };
        let bytes = encode_status(&sender, &StatusLabel::new("DRAINING").unwrap());
        assert!(bytes[9..72].iter().all(|&b| b == b'n'));
        assert_eq!(&bytes[112..], b"DRAINING");
    }

    #[test]
    fn status_over_the_limits_is_refused() {
        // Refused when the values are built, so that encoding cannot fail.
        assert_eq!(
            ServiceName::new(&"a".repeat(64)),
            Err(ServiceNameError::TooLong { len: 64 })
        );
        assert_eq!(
            StatusAddresses::new(vec![Ipv4Addr::new(1, 1, 1, 1); 11]),
            Err(StatusAddressesError::TooMany { count: 11 })
        );
        assert_eq!(StatusLabel::new("SHUTTINGDOWN"), Err(StatusLabelTooLong { len: 12 }));
    }

    #[test]
    fn every_length_decodes_without_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..=200 {
            for first in [0u8, 1, 2, 0xff] {
                let packet: Vec<u8> = (0..len)
                    .map(|i| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        if i == 0 {
                            first
                        } else {
                            seed as u8
                        }
                    })
                    .collect();
                let _ = decode_announcement(&packet);
                let _ = decode_status(&packet);
                // With our magic in place, the TLV walker sees random fields too.
                if len > 12 {
                    let mut ours = packet.clone();
                    ours[0] = ANNOUNCEMENT_VERSION;
                    ours[9..12].copy_from_slice(b"HO\x01");
                    let _ = decode_announcement(&ours);
                }
            }
        }
    }
}
