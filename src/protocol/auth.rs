//! Optional authentication of announcements: an HMAC-SHA256 over the whole
//! packet, keyed by a secret every instance of the app shares, and a replay
//! guard (send time within a window, sequence strictly increasing per
//! instance). Pure: the caller passes the current time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::wire::{self, Announcement, Extension, Freshness, MAC_LEN};

type HmacSha256 = Hmac<Sha256>;

/// How far an announcement's send time may be from ours. Both instances of a
/// hand-over read the same device clock, so a small window suffices.
pub const DEFAULT_REPLAY_WINDOW_MS: i64 = 30_000;
/// Instances remembered by the replay guard; a hand-over involves two or three.
const REMEMBERED_INSTANCES: usize = 32;

#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length")
    }

    /// Appends a MAC field covering every byte of `packet`.
    pub fn sign(&self, packet: &mut Vec<u8>) {
        let mut mac = self.mac();
        mac.update(packet);
        let tag: [u8; MAC_LEN] = mac.finalize().into_bytes().into();
        wire::append_mac(packet, &tag);
    }
}

/// Signs what one sender sends (announcements, status or router messages):
/// each message carries its send time and the next of the sender's
/// sequence numbers, from 1, which receivers' replay guards check.
#[derive(Debug)]
pub struct Signer {
    secret: Secret,
    sequence: AtomicU64,
}

impl Signer {
    pub fn new(secret: Secret) -> Self {
        Signer {
            secret,
            sequence: AtomicU64::new(0),
        }
    }

    /// The freshness field of the next message, sent at `now_ms`.
    pub fn next_freshness(&self, now_ms: i64) -> Freshness {
        Freshness {
            sent_at_ms: now_ms,
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    pub fn sign(&self, packet: &mut Vec<u8>) {
        self.secret.sign(packet);
    }
}

/// Why an announcement was refused under authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No MAC, or no freshness field to guard against replay.
    Unsigned,
    /// The MAC does not match.
    Forged,
    /// Sent too long ago (or in the future), or a sequence already seen.
    Replayed,
}

/// Checks MACs and remembers the last sequence of each instance.
#[derive(Debug)]
pub struct Verifier {
    secret: Secret,
    window_ms: i64,
    last_sequence: Vec<([u8; wire::INSTANCE_ID_LEN], u64)>,
}

impl Verifier {
    pub fn new(secret: Secret, window_ms: i64) -> Self {
        Verifier {
            secret,
            window_ms,
            last_sequence: Vec::new(),
        }
    }

    pub fn check(&mut self, packet: &[u8], announcement: &Announcement<'_>, now_ms: i64) -> Result<(), Refusal> {
        self.check_extension(packet, announcement.extension.as_ref(), now_ms)
    }

    /// The same check for any message that carries our extension (status
    /// and router messages): `extension` was decoded from `packet`.
    pub fn check_extension(
        &mut self,
        packet: &[u8],
        extension: Option<&Extension<'_>>,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        let ext = extension.ok_or(Refusal::Unsigned)?;
        let tag = ext.mac.ok_or(Refusal::Unsigned)?;
        let mut mac = self.secret.mac();
        mac.update(&packet[..ext.signed_len]);
        mac.verify_slice(tag).map_err(|_| Refusal::Forged)?;

        let (freshness, instance) = match (ext.freshness, ext.instance) {
            (Some(f), Some(i)) => (f, i),
            _ => return Err(Refusal::Unsigned),
        };
        if (now_ms - freshness.sent_at_ms).abs() > self.window_ms {
            return Err(Refusal::Replayed);
        }
        match self.last_sequence.iter_mut().find(|(id, _)| *id == instance) {
            Some((_, last)) if freshness.sequence <= *last => return Err(Refusal::Replayed),
            Some((_, last)) => *last = freshness.sequence,
            None => {
                if self.last_sequence.len() == REMEMBERED_INSTANCES {
                    self.last_sequence.remove(0);
                }
                self.last_sequence.push((instance, freshness.sequence));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::{decode_announcement, encode_extended, ExtensionFields, Freshness};

    fn signed(secret: &Secret, instance: u8, sent_at_ms: i64, sequence: u64) -> Vec<u8> {
        let mut packet = encode_extended(
            1000,
            &ExtensionFields {
                instance: Some([instance; 8]),
                freshness: Some(Freshness { sent_at_ms, sequence }),
                ..Default::default()
            },
        );
        secret.sign(&mut packet);
        packet
    }

    fn check(v: &mut Verifier, packet: &[u8], now: i64) -> Result<(), Refusal> {
        v.check(packet, &decode_announcement(packet).unwrap(), now)
    }

    #[test]
    fn accepts_signed_and_refuses_replays() {
        let secret = Secret::new("s3cret");
        let mut v = Verifier::new(secret.clone(), DEFAULT_REPLAY_WINDOW_MS);
        let first = signed(&secret, 1, 10_000, 1);
        assert_eq!(check(&mut v, &first, 10_000), Ok(()));
        assert_eq!(check(&mut v, &first, 10_001), Err(Refusal::Replayed));
        assert_eq!(check(&mut v, &signed(&secret, 1, 10_100, 2), 10_100), Ok(()));
        // Another instance has its own sequence.
        assert_eq!(check(&mut v, &signed(&secret, 2, 10_100, 1), 10_100), Ok(()));
    }

    #[test]
    fn a_signer_numbers_its_messages_from_one_and_they_verify_once() {
        let secret = Secret::new("k");
        let signer = Signer::new(secret.clone());
        let mut v = Verifier::new(secret, 30_000);
        for expected in 1..=3 {
            let freshness = signer.next_freshness(5_000);
            assert_eq!(
                freshness,
                Freshness {
                    sent_at_ms: 5_000,
                    sequence: expected
                }
            );
            let mut packet = encode_extended(
                1000,
                &ExtensionFields {
                    instance: Some([9; 8]),
                    freshness: Some(freshness),
                    ..Default::default()
                },
            );
            signer.sign(&mut packet);
            assert_eq!(check(&mut v, &packet, 5_000), Ok(()));
            assert_eq!(check(&mut v, &packet, 5_000), Err(Refusal::Replayed));
        }
    }

    #[test]
    fn refuses_stale_and_future_packets() {
        let secret = Secret::new("k");
        let mut v = Verifier::new(secret.clone(), 30_000);
        assert_eq!(check(&mut v, &signed(&secret, 1, 0, 1), 30_001), Err(Refusal::Replayed));
        assert_eq!(
            check(&mut v, &signed(&secret, 1, 60_002, 1), 30_001),
            Err(Refusal::Replayed)
        );
    }

    #[test]
    fn refuses_unsigned_forged_and_wrong_key() {
        let secret = Secret::new("right");
        let mut v = Verifier::new(secret.clone(), 30_000);
        let plain = crate::protocol::wire::encode_announcement(i64::MAX);
        assert_eq!(check(&mut v, &plain, 0), Err(Refusal::Unsigned));

        let wrong_key = signed(&Secret::new("wrong"), 1, 0, 1);
        assert_eq!(check(&mut v, &wrong_key, 0), Err(Refusal::Forged));

        let mut tampered = signed(&secret, 1, 0, 1);
        tampered[8] ^= 1; // the wall-clock timestamp
        assert_eq!(check(&mut v, &tampered, 0), Err(Refusal::Forged));
    }
}
