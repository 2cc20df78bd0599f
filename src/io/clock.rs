//! Clocks and identities an instance announces: the wall clock (what the
//! original compares), the boot clock (`CLOCK_BOOTTIME`, which NTP steps do
//! not move) with the boot id that says when two stamps are comparable, and
//! a random instance id.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::protocol::wire::{BootStamp, BOOT_ID_LEN, INSTANCE_ID_LEN};

const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

pub fn wall_now_ms() -> i64 {
    wall_now_us().div_euclid(1000)
}

pub fn wall_now_us() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// Microseconds on `CLOCK_BOOTTIME`: monotonic, and counts time suspended.
/// Linux only: elsewhere there is no boot id either, so no boot stamp.
#[cfg(target_os = "linux")]
pub fn boot_clock_now_us() -> Option<i64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    // time_t and c_long are 32 bits on armv7.
    #[allow(clippy::useless_conversion)]
    (rc == 0).then(|| i64::from(ts.tv_sec) * 1_000_000 + i64::from(ts.tv_nsec) / 1000)
}

#[cfg(not(target_os = "linux"))]
pub fn boot_clock_now_us() -> Option<i64> {
    None
}

/// Read once: it cannot change while this process lives.
pub fn boot_id() -> Option<[u8; BOOT_ID_LEN]> {
    static BOOT_ID: std::sync::OnceLock<Option<[u8; BOOT_ID_LEN]>> = std::sync::OnceLock::new();
    *BOOT_ID.get_or_init(|| parse_boot_id(&std::fs::read_to_string(BOOT_ID_PATH).ok()?))
}

/// Parses the kernel's `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` boot id.
pub fn parse_boot_id(text: &str) -> Option<[u8; BOOT_ID_LEN]> {
    let hex: Vec<u8> = text.trim().bytes().filter(|&b| b != b'-').collect();
    if hex.len() != 2 * BOOT_ID_LEN {
        return None;
    }
    let mut out = [0u8; BOOT_ID_LEN];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// `startedAt` projected onto the boot clock: how long ago it was on the
/// wall clock, taken back from the boot clock now.
pub fn boot_stamp(started_at_ms: i64) -> Option<BootStamp> {
    let boot_id = boot_id()?;
    let boot_now_us = boot_clock_now_us()?;
    let age_us = wall_now_us().saturating_sub(started_at_ms.saturating_mul(1000));
    Some(BootStamp {
        boot_id,
        started_at_us: boot_now_us.saturating_sub(age_us),
    })
}

pub fn random_instance_id() -> [u8; INSTANCE_ID_LEN] {
    let mut id = [0u8; INSTANCE_ID_LEN];
    // Without OS randomness, fall back to something that still differs per process and moment.
    if getrandom::fill(&mut id).is_err() {
        let seed = (std::process::id() as u64) << 32 ^ boot_clock_now_us().unwrap_or_default() as u64;
        id = seed.to_be_bytes();
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_id_parses_the_kernel_format() {
        let id = parse_boot_id("4b85a5ef-3602-443a-a17f-7021077ac2d7\n").unwrap();
        assert_eq!(id[0], 0x4b);
        assert_eq!(id[15], 0xd7);
        assert_eq!(parse_boot_id("nonsense"), None);
        assert_eq!(parse_boot_id("zz85a5ef-3602-443a-a17f-7021077ac2d7"), None);
    }

    #[test]
    fn boot_stamp_projects_back_by_the_age() {
        let now = wall_now_ms();
        let (young, old) = (boot_stamp(now).unwrap(), boot_stamp(now - 60_000).unwrap());
        assert_eq!(young.boot_id, old.boot_id);
        let gap = young.started_at_us - old.started_at_us;
        assert!((59_000_000..61_000_000).contains(&gap), "gap {gap}");
    }

    #[test]
    fn instance_ids_differ() {
        assert_ne!(random_instance_id(), random_instance_id());
    }
}
