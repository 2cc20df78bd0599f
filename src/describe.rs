//! Human-oriented description of any packet of either channel, for the CLI
//! (`handover watch`, `handover decode`). Pure.

use serde_json::{json, Value};

use crate::wire::{self, ANNOUNCEMENT_VERSION, STATUS_VERSION};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn describe(packet: &[u8]) -> Value {
    match packet.first() {
        Some(&STATUS_VERSION) => match wire::decode_status(packet) {
            Ok(m) => json!({
                "kind": "status",
                "timestamp": m.timestamp_ms,
                "serviceName": m.service_name,
                "addresses": m.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "status": m.status,
            }),
            Err(reason) => malformed(packet, &reason.to_string()),
        },
        Some(&ANNOUNCEMENT_VERSION) => match wire::decode_announcement(packet) {
            Ok(a) => match a.extension {
                None => json!({ "kind": "announcement", "timestamp": a.started_at_ms, "extended": false }),
                Some(ext) => json!({
                    "kind": "announcement",
                    "timestamp": a.started_at_ms,
                    "extended": true,
                    "extensionVersion": ext.version,
                    "service": ext.service.map(|s| String::from_utf8_lossy(s).into_owned()),
                    "instance": ext.instance.map(|i| hex(&i)),
                    "bootId": ext.boot.map(|b| hex(&b.boot_id)),
                    "bootStartedAtUs": ext.boot.map(|b| b.started_at_us),
                    "sentAt": ext.freshness.map(|f| f.sent_at_ms),
                    "sequence": ext.freshness.map(|f| f.sequence),
                    "signed": ext.mac.is_some(),
                }),
            },
            Err(reason) => malformed(packet, &reason.to_string()),
        },
        _ => malformed(
            packet,
            &match packet.first() {
                None => "empty".to_string(),
                Some(v) => format!("unknown version byte 0x{v:02x}"),
            },
        ),
    }
}

fn malformed(packet: &[u8], reason: &str) -> Value {
    json!({
        "kind": "malformed",
        "reason": reason,
        "length": packet.len(),
        "preview": hex(&packet[..packet.len().min(32)]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_each_kind() {
        let plain = describe(&wire::encode_announcement(1_700_000_000_000));
        assert_eq!(plain["kind"], "announcement");
        assert_eq!(plain["timestamp"], 1_700_000_000_000i64);
        assert_eq!(plain["extended"], false);

        let ours = describe(&wire::encode_extended(
            5,
            &wire::ExtensionFields {
                service: Some(wire::ServiceScope::fixed("api")),
                instance: Some([1; 8]),
                ..Default::default()
            },
        ));
        assert_eq!(ours["service"], "api");
        assert_eq!(ours["instance"], "0101010101010101");
        assert_eq!(ours["signed"], false);

        let bad = describe(&[0x09, 1, 2]);
        assert_eq!(bad["kind"], "malformed");
        assert_eq!(bad["length"], 3);
        assert_eq!(bad["preview"], "090102");
        assert_eq!(describe(&[1, 2])["reason"], "too short (2 bytes)");
    }
}
