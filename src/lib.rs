//! handover: zero-downtime hand-over between the old and the new instance
//! of a balenaOS service, as a native Node.js addon that replaces the npm
//! package `handover-lib`.
//!
//! Pure parts (no I/O): `wire` (byte formats), `config` (options >
//! environment > defaults), `seniority` (who is younger), `auth` (MAC and
//! replay guard), `stats`, `ticker` (schedules), `time_value` (times from JS).
//! I/O: `net` (sockets), `clock` (wall and boot clocks), `complete` (the
//! handover-complete file), `log`, `log_writer` (stdout without blocking).
//! Behaviour: `peer` (the handover state machine), `status` (the status channel).
//! JS glue: `js` (napi classes: convert, forward, map errors), `uv` (socket
//! readiness on the JS thread, for the peer's listener).
#![deny(clippy::all)]

pub mod auth;
pub mod clock;
pub mod complete;
pub mod config;
pub mod describe;
pub mod endpoint;
pub mod lifecycle;
pub mod log;
pub mod log_writer;
pub mod net;
pub mod peer;
pub mod runtime;
pub mod seniority;
pub mod stats;
pub mod status;
pub mod ticker;
pub mod time_value;
pub mod wire;

// The glue needs a Node process; `cargo test` covers the pure modules and
// `uv`, against a fake libuv.
#[cfg(not(test))]
mod js;
#[cfg_attr(test, allow(dead_code))]
mod uv;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod state_machine_tests;
