//! The protocol layer: what instances say to each other and the rules about
//! it, with no I/O and no clock of its own, so that all of it is tested with
//! plain values.
//! - `wire`: byte-exact announcements and status messages, and the checked
//!   types of what we send (`wire::limits`);
//! - `seniority`: which of two instances is younger;
//! - `auth`: signatures and the replay guard;
//! - `describe`: a packet of either channel, explained (for tools);
//! - `routing`: what a router routes, from the status messages it heard;
//! - `drain`: the routers an instance heard, and which let it go;
//! - `schedule`: when announcements and status ticks are due;
//! - `time_value`: times as JS gives them;
//! - `level`: syslog severities.
//!
//! Uses nothing else of the crate.

pub mod auth;
pub mod describe;
pub mod drain;
pub mod level;
pub mod routing;
pub mod schedule;
pub mod seniority;
pub mod time_value;
pub mod wire;

#[cfg(test)]
mod fuzz;
