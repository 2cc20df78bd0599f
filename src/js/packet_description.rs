//! `describePacket`: `crate::protocol::describe` as typed JS objects, one interface per
//! shape, so that `binding.d.ts` declares exactly what JS receives.
//!
//! Fields are declared in alphabetical order: `handover decode` lists them
//! in property order, which was alphabetical while this crossed as JSON.

use napi::bindgen_prelude::{Buffer, Either4};
use napi_derive::napi;

use crate::protocol::describe::{self, ExtensionDescription};

/// An announcement as the original library sends it: 9 bytes, no extension.
#[napi(object, object_from_js = false)]
pub struct PlainAnnouncementDescription {
    #[napi(ts_type = "false")]
    pub extended: bool,
    #[napi(ts_type = "'announcement'")]
    pub kind: &'static str,
    /// `startedAt`, ms since the epoch.
    pub timestamp: i64,
}

/// An announcement with our extension; a field the packet lacks is `null`.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct ExtendedAnnouncementDescription {
    /// Hex of the boot id.
    pub boot_id: Option<String>,
    /// `startedAt` on the boot clock, µs.
    pub boot_started_at_us: Option<i64>,
    #[napi(ts_type = "true")]
    pub extended: bool,
    pub extension_version: u32,
    /// Hex of the instance id.
    pub instance: Option<String>,
    #[napi(ts_type = "'announcement'")]
    pub kind: &'static str,
    /// Wall-clock send time, ms since the epoch.
    pub sent_at: Option<i64>,
    /// The sender's sequence number; as a JS number, so above 2^53 it is rounded.
    pub sequence: Option<f64>,
    /// The service the announcement is scoped to.
    pub service: Option<String>,
    /// Whether it carries a MAC (not whether the MAC verifies).
    pub signed: bool,
    /// `startedAt`, ms since the epoch.
    pub timestamp: i64,
}

/// A status message.
#[napi(object, object_from_js = false)]
pub struct StatusPacketDescription {
    /// IPv4 addresses, dotted.
    pub addresses: Vec<String>,
    #[napi(ts_type = "'status'")]
    pub kind: &'static str,
    pub service_name: String,
    /// `UP`, `DOWN` or what else the sender put there.
    pub status: String,
    /// When it was sent, ms since the epoch.
    pub timestamp: i64,
}

/// Bytes that are not a packet of either channel.
#[napi(object, object_from_js = false)]
pub struct MalformedPacketDescription {
    #[napi(ts_type = "'malformed'")]
    pub kind: &'static str,
    /// Bytes in the packet.
    // Not a `usize`: that would cross as a BigInt.
    pub length: f64,
    /// Hex of the first 32 bytes.
    pub preview: String,
    /// Why it does not decode.
    pub reason: String,
}

/// A decoded packet of either channel, for tools; `kind`, then `extended`, tell the shapes apart.
#[napi]
pub type PacketDescription = Either4<
    PlainAnnouncementDescription,
    ExtendedAnnouncementDescription,
    StatusPacketDescription,
    MalformedPacketDescription,
>;

/// Decodes one packet of either channel, for tools.
#[napi]
pub fn describe_packet(packet: Buffer) -> PacketDescription {
    match describe::describe(&packet) {
        describe::PacketDescription::Announcement {
            started_at_ms,
            extension: None,
        } => Either4::A(PlainAnnouncementDescription {
            extended: false,
            kind: "announcement",
            timestamp: started_at_ms,
        }),
        describe::PacketDescription::Announcement {
            started_at_ms,
            extension: Some(extension),
        } => Either4::B(extended_announcement(started_at_ms, extension)),
        describe::PacketDescription::Status {
            timestamp_ms,
            service_name,
            addresses,
            status,
        } => Either4::C(StatusPacketDescription {
            addresses,
            kind: "status",
            service_name,
            status,
            timestamp: timestamp_ms,
        }),
        describe::PacketDescription::Malformed {
            reason,
            length,
            preview,
        } => Either4::D(MalformedPacketDescription {
            kind: "malformed",
            length: length as f64,
            preview,
            reason,
        }),
    }
}

fn extended_announcement(started_at_ms: i64, extension: ExtensionDescription) -> ExtendedAnnouncementDescription {
    ExtendedAnnouncementDescription {
        boot_id: extension.boot_id,
        boot_started_at_us: extension.boot_started_at_us,
        extended: true,
        extension_version: extension.version.into(),
        instance: extension.instance,
        kind: "announcement",
        sent_at: extension.sent_at_ms,
        // A number, not the BigInt a u64 crosses as; rounds to the nearest double.
        sequence: extension.sequence.map(|s| s as f64),
        service: extension.service,
        signed: extension.signed,
        timestamp: started_at_ms,
    }
}
