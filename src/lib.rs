//! handover: zero-downtime hand-over between the old and the new instance
//! of a balenaOS service, as a native Node.js addon that replaces the npm
//! package `handover-lib`.
//!
//! Five layers, each a folder; a layer uses only the ones above it in this
//! list (docs/ARCHITECTURE.md draws it; `npm run layers` checks it):
//! - `protocol`: what goes on the wire and the rules about it, pure (no I/O,
//!   no clock): byte formats, seniority, signatures, schedules, time values.
//! - `config`: options > environment > defaults, resolved and checked once,
//!   pure too.
//! - `io`: the operating system and the host's event loop: sockets (one file
//!   per platform), libuv handles, the complete file, clocks, log output,
//!   the addon's runtime.
//! - `channel`: behaviour: the handover peer's state machine, the status
//!   channel, what they share, and closing them.
//! - `js`: the N-API glue: convert, forward, map errors. Nothing else.
#![deny(clippy::all, clippy::undocumented_unsafe_blocks)]

pub mod channel;
pub mod config;
pub mod io;
pub mod protocol;

// The glue needs a Node process; `cargo test` covers every other layer
// (`io::uv` against a fake libuv).
#[cfg(not(test))]
mod js;
