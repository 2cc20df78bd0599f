//! The behaviour layer: the two channels and what they share.
//! - `peer`: the handover state machine (announce, listen, hand over once);
//! - `status`: the UP/DOWN status channel;
//! - `endpoint`: one UDP endpoint of a channel (sockets, send, bind, close);
//! - `stats`: packet counters;
//! - `shared_listener`: the TCP port both instances of a host-network
//!   service listen on, steered to the younger and drained by the older;
//! - `lifecycle`: closing from outside, and the objects a JS environment
//!   still has open.
//!
//! Uses `protocol`, `config` and `io`; its one error type is `ChannelError`.

pub mod endpoint;
pub mod lifecycle;
pub mod peer;
pub mod router;
pub mod shared_listener;
pub mod stats;
pub mod status;

#[cfg(test)]
mod state_machine_tests;

/// What a channel's calls can fail with.
#[derive(Debug)]
pub enum ChannelError {
    /// The object was closed; names its JS class.
    Closed(&'static str),
    /// The OS refused a socket (or the host its loop).
    Io(String),
    /// The environment's registry was already in use: a bug, said loudly.
    Reentrant,
}

impl ChannelError {
    pub fn sending_socket(e: std::io::Error) -> Self {
        ChannelError::Io(format!("cannot create the sending socket: {e}"))
    }
}

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelError::Closed(class) => write!(f, "this {class} is closed"),
            ChannelError::Io(m) => f.write_str(m),
            ChannelError::Reentrant => f.write_str("the object registry is already in use (a re-entrant call)"),
        }
    }
}
