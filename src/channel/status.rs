//! The status channel: an instance announces UP (every 10 s) while it
//! serves and DOWN (every 100 ms) once it drains, so routers can follow
//! which instance serves. Every status packet heard, our own included, is
//! handed to the listener.

use std::net::{SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use crate::channel::endpoint::{ChannelState, Endpoint, MalformedLog, Role};
use crate::channel::lifecycle::{Closable, CloseHandle, HostLoop, Slot};
use crate::channel::stats::{Outcome, Snapshot, Tally};
use crate::channel::ChannelError;
use crate::config::StatusConfig;
use crate::io::log::Logger;
use crate::io::net::Receiver;
use crate::protocol::schedule;
use crate::protocol::wire::{self, StatusIdentity, StatusLabel, StatusMessage};

pub const UP_PERIOD: Duration = Duration::from_secs(10);
pub const DOWN_PERIOD: Duration = Duration::from_millis(100);

/// Receives decoded status messages. Holding one keeps the JS process alive.
pub trait StatusSink: Send + Sync + 'static {
    /// False when the message was dropped (the queue to JS is full).
    fn deliver(&self, message: StatusMessage, from: SocketAddrV4) -> bool;
}

#[derive(Clone)]
pub struct StatusChannel {
    core: Arc<Core>,
}

struct Core {
    endpoint: Endpoint<Tickers>,
    /// What each UP and DOWN message says, made once: the identity is fixed.
    up: Vec<u8>,
    down: Vec<u8>,
}

/// What the channel knows of its tickers; the tickers themselves run on the
/// JS thread's loop (`HostLoop`), in the environment's registry.
#[derive(Default)]
struct Tickers {
    /// UP runs: a second `start_up` changes nothing.
    up: bool,
}

impl ChannelState for Tickers {
    fn close(&mut self) {
        self.up = false;
    }
}

/// Which status an instance announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announce {
    Up,
    Down,
}

impl Announce {
    fn label(self) -> StatusLabel {
        match self {
            Announce::Up => StatusLabel::UP,
            Announce::Down => StatusLabel::DOWN,
        }
    }

    fn period(self) -> Duration {
        match self {
            Announce::Up => UP_PERIOD,
            Announce::Down => DOWN_PERIOD,
        }
    }

    fn slot(self) -> Slot {
        match self {
            Announce::Up => Slot::Up,
            Announce::Down => Slot::Down,
        }
    }
}

impl StatusChannel {
    pub fn new(identity: StatusIdentity, config: StatusConfig, log: Logger) -> Self {
        let role = Role {
            class: "HandoverStatus",
            socket: "status socket",
        };
        StatusChannel {
            core: Arc::new(Core {
                endpoint: Endpoint::new(role, config.channel, log),
                up: wire::encode_status(&identity, &Announce::Up.label()).to_vec(),
                down: wire::encode_status(&identity, &Announce::Down.label()).to_vec(),
            }),
        }
    }

    pub fn stats(&self) -> Snapshot {
        self.core.endpoint.stats.snapshot()
    }

    /// UP now and every 10 s, on the host's loop; a second call while UP
    /// runs does nothing. Leaves DOWN running, as handover-lib does.
    /// DOWN now and every 100 ms; a second call restarts its ticker. Leaves
    /// UP running, as handover-lib does: listeners hear both, and DOWN is
    /// terminal for this instance (see docs/MIGRATING.md). Like a JS
    /// interval, a running ticker keeps the process alive.
    pub fn start_on(&self, host: &HostLoop<'_>, what: Announce) -> Result<(), ChannelError> {
        if !self.start(what)? {
            return Ok(());
        }
        let channel = self.clone();
        host.run_schedule(what.slot(), schedule::every(what.period()), move || {
            channel.announce(what)
        })
    }

    /// Sends the first message now; true when its ticker should (re)start.
    fn start(&self, what: Announce) -> Result<bool, ChannelError> {
        let core = &self.core;
        let mut shared = core.endpoint.lock_open()?;
        if what == Announce::Up {
            if shared.channel.up {
                return Ok(false);
            }
            shared.channel.up = true;
        }
        let sender = core.endpoint.sender(&mut shared)?;
        drop(shared);
        core.send(&sender, what);
        Ok(true)
    }

    /// One scheduled message; false once closed (the ticker stops).
    pub fn announce(&self, what: Announce) -> bool {
        let core = &self.core;
        core.endpoint.send_scheduled(|_| true, |socket| core.send(socket, what))
    }

    pub fn start_listening(&self, sink: Arc<dyn StatusSink>) -> Result<(), ChannelError> {
        let mut shared = self.core.endpoint.lock_open()?;
        let core = self.core.clone();
        self.core.endpoint.start_listening(
            &mut shared,
            move |receiver| async move { core.listen(receiver, sink).await },
        )?;
        Ok(())
    }

    /// See `Peer::close_handle`.
    pub fn close_handle(&self) -> CloseHandle {
        CloseHandle::new(&self.core)
    }

    pub fn close(&self) {
        self.core.close();
    }
}

impl Closable for Core {
    fn close(&self) {
        self.endpoint.close();
    }
}

impl Core {
    fn send(&self, socket: &UdpSocket, what: Announce) {
        let packet = match what {
            Announce::Up => &self.up,
            Announce::Down => &self.down,
        };
        self.endpoint
            .send(socket, packet, format_args!("status {}", what.label()));
    }

    async fn listen(&self, mut receiver: Receiver, sink: Arc<dyn StatusSink>) {
        let mut malformed_log = MalformedLog::default();
        loop {
            let packets = match receiver.next_batch().await {
                Ok(packets) => packets,
                Err(e) => {
                    self.endpoint.after_socket_error(e).await;
                    continue;
                }
            };
            let mut tally = Tally::default();
            for packet in packets {
                match wire::decode_status(packet.bytes) {
                    Ok(message) => {
                        let delivered = sink.deliver(message, packet.from);
                        tally.count(if delivered {
                            Outcome::Delivered
                        } else {
                            Outcome::Undelivered
                        });
                    }
                    Err(reason) => {
                        tally.count(Outcome::Malformed);
                        malformed_log.dropped(&self.endpoint.log, "status packet", packet.from, reason);
                    }
                }
            }
            self.endpoint.stats.add(&tally);
        }
    }
}
