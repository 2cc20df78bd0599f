//! Who is younger: the one rule that decides whether an announcement makes
//! this instance hand over. Pure.
//!
//! - An announcement carrying our own instance id is our own (multicast loops back).
//! - One scoped to another service is not for us; an unscoped one (the
//!   original library's) is honoured, so mixed fleets keep working.
//! - Two peers of ours on the same boot compare `startedAt` on the boot
//!   clock, which NTP steps do not move; otherwise (or when the boot stamps
//!   are within the projection's error) the wall-clock stamp.
//! - Equal stamps between two peers of ours are broken by the instance id,
//!   so exactly one of them survives. An equal stamp from a peer without an
//!   id (the original) is not younger, as in the original.

use crate::protocol::wire::{Announcement, BootStamp, ServiceScope, INSTANCE_ID_LEN};
use std::cmp::Ordering;

/// What this instance announces about itself.
/// Projecting `startedAt` onto the boot clock reads two clocks one after the
/// other; stamps closer than this are the same instant.
pub const BOOT_CLOCK_TOLERANCE_US: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub started_at_ms: i64,
    pub instance: [u8; INSTANCE_ID_LEN],
    pub boot: Option<BootStamp>,
    pub service: Option<ServiceScope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Own,
    OtherService,
    /// Older than us, or the same age without a way to break the tie.
    NotYounger,
    Younger,
}

pub fn judge(own: &Identity, heard: &Announcement<'_>) -> Verdict {
    let ext = heard.extension.as_ref();
    if ext.and_then(|e| e.instance) == Some(own.instance) {
        return Verdict::Own;
    }
    if let (Some(theirs), Some(ours)) = (ext.and_then(|e| e.service), own.service.as_deref()) {
        if theirs != ours.as_bytes() {
            return Verdict::OtherService;
        }
    }
    let by_boot_clock = match (ext.and_then(|e| e.boot), own.boot) {
        (Some(theirs), Some(ours)) if theirs.boot_id == ours.boot_id => {
            let gap = theirs.started_at_us.saturating_sub(ours.started_at_us);
            if gap.abs() < BOOT_CLOCK_TOLERANCE_US {
                Ordering::Equal
            } else {
                gap.cmp(&0)
            }
        }
        _ => Ordering::Equal,
    };
    let order = by_boot_clock
        .then(heard.started_at_ms.cmp(&own.started_at_ms))
        .then_with(|| match ext.and_then(|e| e.instance) {
            Some(theirs) => theirs.cmp(&own.instance),
            None => Ordering::Equal,
        });
    if order == Ordering::Greater {
        Verdict::Younger
    } else {
        Verdict::NotYounger
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::{decode_announcement, encode_announcement, encode_extended, ExtensionFields};

    fn identity(ms: i64, id: u8, boot: Option<([u8; 16], i64)>, service: Option<&str>) -> Identity {
        Identity {
            started_at_ms: ms,
            instance: [id; 8],
            boot: boot.map(|(boot_id, started_at_us)| BootStamp { boot_id, started_at_us }),
            service: service.map(ServiceScope::fixed),
        }
    }

    fn packet_of(who: &Identity) -> Vec<u8> {
        encode_extended(
            who.started_at_ms,
            &ExtensionFields {
                service: who.service.clone(),
                instance: Some(who.instance),
                boot: who.boot,
                freshness: None,
                name: None,
            },
        )
    }

    fn verdict(own: &Identity, packet: &[u8]) -> Verdict {
        judge(own, &decode_announcement(packet).unwrap())
    }

    #[test]
    fn original_rule_for_plain_announcements() {
        let me = identity(1000, 1, None, Some("api"));
        assert_eq!(verdict(&me, &encode_announcement(1001)), Verdict::Younger);
        assert_eq!(verdict(&me, &encode_announcement(1000)), Verdict::NotYounger);
        assert_eq!(verdict(&me, &encode_announcement(999)), Verdict::NotYounger);
    }

    #[test]
    fn own_packets_are_recognised() {
        let me = identity(1000, 1, None, None);
        assert_eq!(verdict(&me, &packet_of(&me)), Verdict::Own);
    }

    #[test]
    fn other_services_are_ignored_and_unscoped_honoured() {
        let me = identity(1000, 1, None, Some("worker"));
        let api = identity(2000, 2, None, Some("api"));
        assert_eq!(verdict(&me, &packet_of(&api)), Verdict::OtherService);
        let unscoped = identity(2000, 2, None, None);
        assert_eq!(verdict(&me, &packet_of(&unscoped)), Verdict::Younger);
        // An unscoped peer of ours honours every service, like the original.
        let me_unscoped = identity(1000, 1, None, None);
        assert_eq!(verdict(&me_unscoped, &packet_of(&api)), Verdict::Younger);
    }

    #[test]
    fn equal_stamps_leave_exactly_one_survivor() {
        for (a, b) in [(1u8, 2u8), (200, 7)] {
            let first = identity(1000, a, None, None);
            let second = identity(1000, b, None, None);
            let first_yields = verdict(&first, &packet_of(&second)) == Verdict::Younger;
            let second_yields = verdict(&second, &packet_of(&first)) == Verdict::Younger;
            assert!(first_yields ^ second_yields);
        }
    }

    #[test]
    fn boot_clock_wins_over_a_stepped_wall_clock() {
        let boot = [7u8; 16];
        // Old started at wall 5000 (clock ahead); NTP stepped back; new starts at wall 2000.
        let old = identity(5000, 1, Some((boot, 10_000_000)), None);
        let new = identity(2000, 2, Some((boot, 70_000_000)), None);
        assert_eq!(verdict(&old, &packet_of(&new)), Verdict::Younger);
        assert_eq!(verdict(&new, &packet_of(&old)), Verdict::NotYounger);
    }

    #[test]
    fn different_boots_fall_back_to_the_wall_clock() {
        let old = identity(1000, 1, Some(([1; 16], 90_000_000)), None);
        let new = identity(2000, 2, Some(([2; 16], 5_000_000)), None);
        assert_eq!(verdict(&old, &packet_of(&new)), Verdict::Younger);
        assert_eq!(verdict(&new, &packet_of(&old)), Verdict::NotYounger);
    }

    #[test]
    fn boot_stamps_within_the_projection_error_fall_back_to_wall_and_instance() {
        let boot = [7u8; 16];
        let a = identity(1000, 9, Some((boot, 5_000)), None);
        let b = identity(1000, 1, Some((boot, 5_400)), None);
        // b's boot stamp is 0.4 ms later, but that is noise: a's higher id wins.
        assert_eq!(verdict(&b, &packet_of(&a)), Verdict::Younger);
        assert_eq!(verdict(&a, &packet_of(&b)), Verdict::NotYounger);
        let c = identity(999, 1, Some((boot, 5_400)), None);
        assert_eq!(verdict(&c, &packet_of(&a)), Verdict::Younger, "then the wall clock");
    }

    #[test]
    fn equal_boot_stamps_break_ties_by_instance() {
        let boot = [7u8; 16];
        let a = identity(1000, 1, Some((boot, 5)), None);
        let b = identity(1000, 9, Some((boot, 5)), None);
        assert_eq!(verdict(&a, &packet_of(&b)), Verdict::Younger);
        assert_eq!(verdict(&b, &packet_of(&a)), Verdict::NotYounger);
    }
}
