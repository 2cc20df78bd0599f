//! Property tests over every decoder: arbitrary bytes, and bytes shaped like
//! our extension, never panic; encoders and decoders round-trip.
//!
//! `cargo test --release fuzz` runs each property a few thousand times;
//! `PROPTEST_CASES=1000000 cargo test --release fuzz` is the long run.

use proptest::prelude::*;

use crate::protocol::auth::{Secret, Verifier};
use crate::protocol::seniority::{judge, Identity};
use crate::protocol::wire::{
    self, BootStamp, ExtensionFields, Freshness, ServiceName, ServiceScope, StatusAddresses, StatusIdentity,
    StatusLabel, StatusMessage,
};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A v1 header, our magic and version, then random type-length-value fields
/// (known and unknown types, right and wrong lengths, truncated tails).
fn extended_packet() -> impl Strategy<Value = Vec<u8>> {
    let field = (
        prop_oneof![Just(1u8), Just(2), Just(3), Just(4), Just(0x7f), any::<u8>()],
        0usize..40,
        any::<bool>(),
    )
        .prop_flat_map(|(kind, len, honest)| (Just(kind), proptest::collection::vec(any::<u8>(), len), Just(honest)))
        .prop_map(|(kind, value, honest)| {
            let mut out = vec![
                kind,
                if honest {
                    value.len() as u8
                } else {
                    value.len() as u8 ^ 0x5a
                },
            ];
            out.extend(value);
            out
        });
    (
        any::<i64>(),
        any::<u8>(),
        proptest::collection::vec(field, 0..8),
        0usize..4,
    )
        .prop_map(|(ms, version, fields, cut)| {
            let mut packet = wire::encode_announcement(ms).to_vec();
            packet.extend_from_slice(&wire::EXTENSION_MAGIC);
            packet.push(version);
            fields.iter().for_each(|f| packet.extend(f));
            packet.truncate(packet.len().saturating_sub(cut));
            packet
        })
}

fn identity() -> Identity {
    Identity {
        started_at_ms: 1_700_000_000_000,
        instance: [7; 8],
        boot: Some(BootStamp {
            boot_id: [1; 16],
            started_at_us: 5_000_000,
        }),
        service: Some(ServiceScope::fixed("api")),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_arbitrary_bytes_never_panic(packet in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = wire::decode_status(&packet);
        let _ = crate::protocol::describe::describe(&packet);
        if let Ok(announcement) = wire::decode_announcement(&packet) {
            let _ = judge(&identity(), &announcement);
        }
    }

    #[test]
    fn fuzz_extension_shaped_bytes_never_panic(packet in extended_packet()) {
        let _ = crate::protocol::describe::describe(&packet);
        if let Ok(announcement) = wire::decode_announcement(&packet) {
            let _ = judge(&identity(), &announcement);
            if let Some(ext) = announcement.extension {
                prop_assert!(ext.signed_len <= packet.len());
            }
            let mut verifier = Verifier::new(Secret::new("k"), 30_000);
            let _ = verifier.check(&packet, &announcement, 0);
        }
    }

    #[test]
    fn fuzz_extension_round_trips(
        ms in any::<i64>(),
        service in proptest::option::of("[a-z0-9-]{1,63}"),
        instance in proptest::option::of(any::<[u8; 8]>()),
        boot in proptest::option::of((any::<[u8; 16]>(), any::<i64>())),
        freshness in proptest::option::of((any::<i64>(), any::<u64>())),
    ) {
        let fields = ExtensionFields {
            service: service.as_deref().map(ServiceScope::fixed),
            instance,
            boot: boot.map(|(boot_id, started_at_us)| BootStamp { boot_id, started_at_us }),
            freshness: freshness.map(|(sent_at_ms, sequence)| Freshness { sent_at_ms, sequence }),
            name: None,
        };
        let packet = wire::encode_extended(ms, &fields);
        let decoded = wire::decode_announcement(&packet).unwrap();
        prop_assert_eq!(decoded.started_at_ms, ms);
        let ext = decoded.extension.unwrap();
        prop_assert_eq!(ext.service.map(|s| String::from_utf8(s.to_vec()).unwrap()), service);
        prop_assert_eq!(ext.instance, fields.instance);
        prop_assert_eq!(ext.boot, fields.boot);
        prop_assert_eq!(ext.freshness, fields.freshness);
    }

    #[test]
    fn fuzz_status_round_trips(
        ms in any::<i64>(),
        name in "\\PC{0,15}",
        addresses in proptest::collection::vec((1u8..=255, any::<u8>(), any::<u8>(), any::<u8>()), 0..=10),
        status in "[A-Z]{0,8}",
    ) {
        prop_assume!(name.len() <= wire::SERVICE_NAME_MAX && !name.contains('\0'));
        let addresses: Vec<_> = addresses.into_iter().map(|(a, b, c, d)| std::net::Ipv4Addr::new(a, b, c, d)).collect();
        let sender = StatusIdentity {
            timestamp_ms: ms,
            service_name: ServiceName::new(&name).unwrap(),
            addresses: StatusAddresses::new(addresses.clone()).unwrap(),
        };
        let packet = wire::encode_status(&sender, &StatusLabel::new(&status).unwrap());
        let message = StatusMessage { timestamp_ms: ms, service_name: name, addresses, status };
        prop_assert_eq!(wire::decode_status(&packet).unwrap(), message);
    }
}
