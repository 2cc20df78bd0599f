//! Packet counters, readable from JS at any time. Updated once per batch of
//! received packets, not once per packet.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

use crate::io::net::Refused;
use crate::protocol::auth::Refusal;

/// What happened to each received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handover channel: a younger instance's announcement.
    Younger,
    /// Status channel: a message handed to the listener.
    Delivered,
    Malformed,
    /// Older than us or the same age.
    Older,
    OtherService,
    Unauthenticated,
    Replayed,
    Own,
    /// Status channel: a valid message dropped because the queue to JS was full.
    Undelivered,
    /// Status channel: a router's HELLO or DRAINED, taken.
    FromRouter,
}

const OUTCOMES: usize = 10;

impl From<Refusal> for Outcome {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Replayed => Outcome::Replayed,
            Refusal::Unsigned | Refusal::Forged => Outcome::Unauthenticated,
        }
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    received: AtomicU64,
    outcomes: [AtomicU64; OUTCOMES],
    sent: AtomicU64,
    send_errors: AtomicU64,
    refused_options: AtomicU8,
}

/// Counts of one batch, added to `Stats` in one go.
#[derive(Debug, Default)]
pub struct Tally {
    outcomes: [u64; OUTCOMES],
}

impl Tally {
    pub fn count(&mut self, outcome: Outcome) {
        self.outcomes[outcome as usize] += 1;
    }
}

/// A consistent-enough copy for reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub received: u64,
    pub accepted: u64,
    pub malformed: u64,
    pub older: u64,
    pub other_service: u64,
    pub unauthenticated: u64,
    pub replayed: u64,
    pub own: u64,
    pub undelivered: u64,
    pub from_routers: u64,
    pub sent: u64,
    pub send_errors: u64,
    /// Optional socket options the OS refused on the listening socket.
    pub refused_options: Refused,
}

impl Stats {
    pub fn add(&self, tally: &Tally) {
        let total: u64 = tally.outcomes.iter().sum();
        if total == 0 {
            return;
        }
        self.received.fetch_add(total, Relaxed);
        for (counter, n) in self.outcomes.iter().zip(tally.outcomes) {
            if n > 0 {
                counter.fetch_add(n, Relaxed);
            }
        }
    }

    pub fn sent(&self, ok: bool) {
        if ok { &self.sent } else { &self.send_errors }.fetch_add(1, Relaxed);
    }

    pub fn refused(&self, refused: Refused) {
        self.refused_options.fetch_or(refused.0, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let o = |outcome: Outcome| self.outcomes[outcome as usize].load(Relaxed);
        Snapshot {
            received: self.received.load(Relaxed),
            // The two channels' kinds of "taken" share the counter JS reads.
            accepted: o(Outcome::Younger) + o(Outcome::Delivered),
            malformed: o(Outcome::Malformed),
            older: o(Outcome::Older),
            other_service: o(Outcome::OtherService),
            unauthenticated: o(Outcome::Unauthenticated),
            replayed: o(Outcome::Replayed),
            own: o(Outcome::Own),
            undelivered: o(Outcome::Undelivered),
            from_routers: o(Outcome::FromRouter),
            sent: self.sent.load(Relaxed),
            send_errors: self.send_errors.load(Relaxed),
            refused_options: Refused(self.refused_options.load(Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_add_up() {
        let stats = Stats::default();
        let mut tally = Tally::default();
        tally.count(Outcome::Malformed);
        tally.count(Outcome::Malformed);
        tally.count(Outcome::Own);
        stats.add(&tally);
        stats.sent(true);
        let s = stats.snapshot();
        assert_eq!((s.received, s.malformed, s.own, s.accepted, s.sent), (3, 2, 1, 0, 1));
    }
}
