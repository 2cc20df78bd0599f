//! Human-oriented description of any packet of either channel, for the CLI
//! (`handover watch`, `handover decode`). Pure: `js` turns it into JS values.

use crate::protocol::wire::{self, Extension, ANNOUNCEMENT_VERSION, STATUS_VERSION};

/// What a packet says, with bytes already shown as text (hex, dotted IPv4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketDescription {
    /// A handover announcement (v1): the original 9 bytes, and our extension when present.
    Announcement {
        started_at_ms: i64,
        extension: Option<ExtensionDescription>,
    },
    /// A status message (v2).
    Status {
        timestamp_ms: i64,
        service_name: String,
        addresses: Vec<String>,
        status: String,
    },
    /// Neither decodes: why, and the start of the bytes.
    Malformed {
        reason: String,
        length: usize,
        /// Hex of at most the first `PREVIEW_LEN` bytes.
        preview: String,
    },
}

/// Our fields after an announcement's 9 bytes; `None` for a field the packet lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionDescription {
    pub version: u8,
    /// Not validated as UTF-8 on the wire, so shown lossily.
    pub service: Option<String>,
    /// Hex.
    pub instance: Option<String>,
    /// Hex.
    pub boot_id: Option<String>,
    pub boot_started_at_us: Option<i64>,
    pub sent_at_ms: Option<i64>,
    pub sequence: Option<u64>,
    /// Whether a MAC field is present (not whether it verifies).
    pub signed: bool,
}

/// Bytes of a malformed packet its preview shows.
const PREVIEW_LEN: usize = 32;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn describe(packet: &[u8]) -> PacketDescription {
    match packet.first() {
        Some(&STATUS_VERSION) => match wire::decode_status(packet) {
            Ok(m) => PacketDescription::Status {
                timestamp_ms: m.timestamp_ms,
                service_name: m.service_name,
                addresses: m.addresses.iter().map(ToString::to_string).collect(),
                status: m.status,
            },
            Err(reason) => malformed(packet, reason.to_string()),
        },
        Some(&ANNOUNCEMENT_VERSION) => match wire::decode_announcement(packet) {
            Ok(a) => PacketDescription::Announcement {
                started_at_ms: a.started_at_ms,
                extension: a.extension.as_ref().map(describe_extension),
            },
            Err(reason) => malformed(packet, reason.to_string()),
        },
        Some(v) => malformed(packet, format!("unknown version byte 0x{v:02x}")),
        None => malformed(packet, "empty".to_string()),
    }
}

fn describe_extension(ext: &Extension<'_>) -> ExtensionDescription {
    ExtensionDescription {
        version: ext.version,
        service: ext.service.map(|s| String::from_utf8_lossy(s).into_owned()),
        instance: ext.instance.map(|i| hex(&i)),
        boot_id: ext.boot.map(|b| hex(&b.boot_id)),
        boot_started_at_us: ext.boot.map(|b| b.started_at_us),
        sent_at_ms: ext.freshness.map(|f| f.sent_at_ms),
        sequence: ext.freshness.map(|f| f.sequence),
        signed: ext.mac.is_some(),
    }
}

fn malformed(packet: &[u8], reason: String) -> PacketDescription {
    PacketDescription::Malformed {
        reason,
        length: packet.len(),
        preview: hex(&packet[..packet.len().min(PREVIEW_LEN)]),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::protocol::wire::{BootStamp, ExtensionFields, Freshness, MAC_LEN};

    fn malformed_as(reason: &str, packet: &[u8], preview: &str) -> PacketDescription {
        PacketDescription::Malformed {
            reason: reason.into(),
            length: packet.len(),
            preview: preview.into(),
        }
    }

    #[test]
    fn a_plain_announcement_has_no_extension() {
        assert_eq!(
            describe(&wire::encode_announcement(1_700_000_000_000)),
            PacketDescription::Announcement {
                started_at_ms: 1_700_000_000_000,
                extension: None,
            }
        );
    }

    #[test]
    fn an_extension_without_fields_describes_every_field_as_absent() {
        assert_eq!(
            describe(&wire::encode_extended(5, &ExtensionFields::default())),
            PacketDescription::Announcement {
                started_at_ms: 5,
                extension: Some(ExtensionDescription {
                    version: wire::EXTENSION_VERSION,
                    service: None,
                    instance: None,
                    boot_id: None,
                    boot_started_at_us: None,
                    sent_at_ms: None,
                    sequence: None,
                    signed: false,
                }),
            }
        );
    }

    #[test]
    fn a_signed_extension_with_every_field_shows_them_as_text_and_numbers() {
        let mut packet = wire::encode_extended(
            -7,
            &ExtensionFields {
                service: Some(wire::ServiceScope::fixed("api")),
                instance: Some([1; 8]),
                boot: Some(BootStamp {
                    boot_id: [0xab; 16],
                    started_at_us: 123_456_789_012,
                }),
                freshness: Some(Freshness {
                    sent_at_ms: 1_700_000_000_001,
                    sequence: u64::MAX,
                }),
                name: None,
            },
        );
        wire::append_mac(&mut packet, &[9; MAC_LEN]);
        assert_eq!(
            describe(&packet),
            PacketDescription::Announcement {
                started_at_ms: -7,
                extension: Some(ExtensionDescription {
                    version: wire::EXTENSION_VERSION,
                    service: Some("api".into()),
                    instance: Some("0101010101010101".into()),
                    boot_id: Some("ab".repeat(16)),
                    boot_started_at_us: Some(123_456_789_012),
                    sent_at_ms: Some(1_700_000_000_001),
                    sequence: Some(u64::MAX),
                    signed: true,
                }),
            }
        );
    }

    #[test]
    fn a_service_name_that_is_not_utf8_is_shown_lossily() {
        let mut packet = wire::encode_extended(1, &ExtensionFields::default());
        packet.extend_from_slice(&[wire::field::SERVICE, 2, 0xff, b'a']);
        let PacketDescription::Announcement {
            extension: Some(ext), ..
        } = describe(&packet)
        else {
            panic!("not an extended announcement");
        };
        assert_eq!(ext.service.as_deref(), Some("\u{fffd}a"));
    }

    #[test]
    fn a_status_message_shows_its_addresses_dotted() {
        let sender = wire::StatusIdentity {
            timestamp_ms: 1_700_000_000_000,
            service_name: wire::ServiceName::new("api").unwrap(),
            addresses: wire::StatusAddresses::new(vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::LOCALHOST]).unwrap(),
        };
        let packet = wire::encode_status(&sender, &wire::StatusLabel::UP);
        assert_eq!(
            describe(&packet),
            PacketDescription::Status {
                timestamp_ms: 1_700_000_000_000,
                service_name: "api".into(),
                addresses: vec!["10.0.0.2".into(), "127.0.0.1".into()],
                status: "UP".into(),
            }
        );
    }

    #[test]
    fn malformed_packets_say_why_with_their_length_and_a_hex_preview() {
        assert_eq!(describe(&[]), malformed_as("empty", &[], ""));
        assert_eq!(
            describe(&[0x09, 1, 2]),
            malformed_as("unknown version byte 0x09", &[0x09, 1, 2], "090102")
        );
        assert_eq!(describe(&[1, 2]), malformed_as("too short (2 bytes)", &[1, 2], "0102"));
        assert_eq!(
            describe(&[2, 0, 0]),
            malformed_as("too short (3 bytes)", &[2, 0, 0], "020000")
        );
    }

    #[test]
    fn the_preview_of_a_long_packet_stops_after_its_first_bytes() {
        let packet = [0x07; 100];
        let PacketDescription::Malformed { length, preview, .. } = describe(&packet) else {
            panic!("not malformed");
        };
        assert_eq!(length, 100);
        assert_eq!(preview, "07".repeat(PREVIEW_LEN));
    }
}
