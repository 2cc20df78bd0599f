//! When announcements and status messages are due, as offsets from the
//! first (which the call that starts them sends). A lost announcement must
//! not cost a whole heartbeat, so a new instance repeats its first
//! announcement quickly and then backs off to the regular heartbeat: 0,
//! 0.1, 0.3, 0.7, 1.5, 3.1, 6.3 s, then every heartbeat on its grid (10,
//! 20, 30 s …). JS peers only see a few more packets in the first seconds.
//! What runs them is `channel::lifecycle::HostLoop::run_schedule`.

use std::time::Duration;

/// Offsets from the first announcement of every later one.
pub fn announcement_offsets(heartbeat: Duration) -> impl Iterator<Item = Duration> {
    let burst = (0..)
        .map(|i| Duration::from_millis(100 * ((1u64 << (i + 1)) - 1)))
        .take_while(move |offset| *offset < heartbeat);
    burst.chain((1..).map(move |n| heartbeat * n))
}

/// Offsets of a fixed-period ticker.
pub fn every(period: Duration) -> impl Iterator<Item = Duration> {
    (1..).map(move |n| period * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_heartbeat_grid() {
        let offsets: Vec<u64> = announcement_offsets(Duration::from_secs(10))
            .take(10)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(
            offsets,
            [100, 300, 700, 1500, 3100, 6300, 10_000, 20_000, 30_000, 40_000]
        );
    }

    #[test]
    fn short_heartbeats_cut_the_burst() {
        let offsets: Vec<u64> = announcement_offsets(Duration::from_millis(500))
            .take(5)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(offsets, [100, 300, 500, 1000, 1500]);
    }

    #[test]
    fn a_fixed_period_counts_from_the_first() {
        let offsets: Vec<u64> = every(Duration::from_millis(100))
            .take(3)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(offsets, [100, 200, 300]);
    }
}
