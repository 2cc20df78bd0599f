//! Router messages, on the router port (the status port's companion): a
//! router says HELLO while it runs, and DRAINED for an instance once its
//! proxy confirmed that the instance gets no new requests. They travel on
//! a port of their own because handover-lib's status listener throws on
//! any packet that is not a 120-byte status message, and hands every
//! status message to its user's code.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version = `0x03` |
//! | 1 | 1 | kind: `0x01` HELLO, `0x02` DRAINED |
//! | 2 | 8 | router id, random per router |
//! | 10 | 8 | the drained instance's timestamp (i64 BE); 0 in a HELLO |
//! | 18 | 63 | service name, UTF-8, NUL-padded |
//! | 81 | … | our extension: instance (= router id), name, freshness, MAC |

use super::{
    decode_extension_at, nul_padded_text, push_extension, read_i64, Extension, ExtensionFields, Freshness, Malformed,
    ServiceName, INSTANCE_ID_LEN, SERVICE_NAME_MAX,
};

pub const ROUTER_VERSION: u8 = 0x03;
pub const ROUTER_LEN: usize = 81;
const KIND_AT: usize = 1;
const ID_AT: usize = 2;
const TIMESTAMP_AT: usize = 10;
const SERVICE_AT: usize = 18;

/// What a router says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterSays {
    /// "I route this service": instances then wait for my DRAINED.
    Hello,
    /// "I send no new requests to the instance with this timestamp."
    Drained { timestamp_ms: i64 },
}

/// A decoded router message, borrowing the packet's extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterMessage<'a> {
    pub says: RouterSays,
    pub router_id: [u8; INSTANCE_ID_LEN],
    pub service_name: String,
    pub extension: Option<Extension<'a>>,
}

impl RouterMessage<'_> {
    /// The router's name, when it sent one.
    pub fn name(&self) -> Option<String> {
        let name = self.extension.as_ref()?.name?;
        Some(String::from_utf8_lossy(name).into_owned())
    }
}

/// Encodes a router message without a MAC (`auth::Secret::sign` appends it).
pub fn encode_router(
    says: RouterSays,
    router_id: [u8; INSTANCE_ID_LEN],
    service: &ServiceName,
    name: Option<&ServiceName>,
    freshness: Option<Freshness>,
) -> Vec<u8> {
    let mut out = vec![0u8; ROUTER_LEN];
    out[0] = ROUTER_VERSION;
    let (kind, timestamp_ms) = match says {
        RouterSays::Hello => (0x01, 0),
        RouterSays::Drained { timestamp_ms } => (0x02, timestamp_ms),
    };
    out[KIND_AT] = kind;
    out[ID_AT..TIMESTAMP_AT].copy_from_slice(&router_id);
    out[TIMESTAMP_AT..SERVICE_AT].copy_from_slice(&timestamp_ms.to_be_bytes());
    let service = service.as_bytes();
    debug_assert!(service.len() <= SERVICE_NAME_MAX);
    out[SERVICE_AT..SERVICE_AT + service.len()].copy_from_slice(service);
    push_extension(
        &mut out,
        &ExtensionFields {
            instance: Some(router_id),
            name: name.cloned(),
            freshness,
            ..ExtensionFields::default()
        },
    );
    out
}

/// Decodes a router message; a kind this version does not know is malformed.
pub fn decode_router(packet: &[u8]) -> Result<RouterMessage<'_>, Malformed> {
    match packet.first() {
        None => return Err(Malformed::TooShort { len: 0 }),
        Some(&ROUTER_VERSION) => {}
        Some(&version) => return Err(Malformed::WrongVersion { version }),
    }
    if packet.len() < ROUTER_LEN {
        return Err(Malformed::TooShort { len: packet.len() });
    }
    let says = match packet[KIND_AT] {
        0x01 => RouterSays::Hello,
        0x02 => RouterSays::Drained {
            timestamp_ms: read_i64(&packet[TIMESTAMP_AT..SERVICE_AT]),
        },
        kind => return Err(Malformed::UnknownKind { kind }),
    };
    Ok(RouterMessage {
        says,
        router_id: packet[ID_AT..TIMESTAMP_AT].try_into().expect("8 bytes"),
        service_name: nul_padded_text(&packet[SERVICE_AT..ROUTER_LEN]),
        extension: decode_extension_at(packet, ROUTER_LEN)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::auth::{Secret, Verifier};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn drained_is_byte_exact() {
        let packet = encode_router(
            RouterSays::Drained {
                timestamp_ms: 1_700_000_000_000,
            },
            [0xab; 8],
            &ServiceName::new("api").unwrap(),
            None,
            None,
        );
        assert_eq!(hex(&packet[..18]), "0302abababababababab0000018bcfe56800");
        assert_eq!(&packet[18..21], b"api");
        assert!(packet[21..ROUTER_LEN].iter().all(|&b| b == 0));
        assert_eq!(hex(&packet[ROUTER_LEN..]), "484f010208abababababababab");
    }

    #[test]
    fn round_trips_with_name_and_signature() {
        let secret = Secret::new("k");
        let name = ServiceName::new("haproxy@edge").unwrap();
        let mut packet = encode_router(
            RouterSays::Hello,
            [7; 8],
            &ServiceName::new("api").unwrap(),
            Some(&name),
            Some(Freshness {
                sent_at_ms: 5_000,
                sequence: 1,
            }),
        );
        secret.sign(&mut packet);
        let message = decode_router(&packet).unwrap();
        assert_eq!(message.says, RouterSays::Hello);
        assert_eq!(message.router_id, [7; 8]);
        assert_eq!(message.service_name, "api");
        assert_eq!(message.name().as_deref(), Some("haproxy@edge"));
        let mut verifier = Verifier::new(secret, 30_000);
        assert_eq!(
            verifier.check_extension(&packet, message.extension.as_ref(), 5_000),
            Ok(())
        );
        assert!(verifier
            .check_extension(&packet, message.extension.as_ref(), 5_001)
            .is_err());
    }

    #[test]
    fn refuses_what_is_not_a_router_message() {
        assert_eq!(decode_router(&[]), Err(Malformed::TooShort { len: 0 }));
        assert_eq!(decode_router(&[2; 120]), Err(Malformed::WrongVersion { version: 2 }));
        assert_eq!(decode_router(&[3; 80]), Err(Malformed::TooShort { len: 80 }));
        let mut unknown = vec![0u8; ROUTER_LEN];
        unknown[0] = ROUTER_VERSION;
        unknown[1] = 9;
        assert_eq!(decode_router(&unknown), Err(Malformed::UnknownKind { kind: 9 }));
    }
}
