//! The status channel: an instance announces UP (every 10 s) while it
//! serves and DOWN (every 100 ms) once it drains, so routers can follow
//! which instance serves. Every status packet heard, our own included, is
//! handed to the listener.

use std::net::{SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::channel::endpoint::{ChannelState, Endpoint, MalformedLog, Role};
use crate::channel::lifecycle::{Closable, CloseHandle};
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

/// Holding one keeps the JS process alive (a ticker is like a JS interval).
pub trait KeepAlive: Send + Sync + 'static {}

pub struct StatusChannel {
    core: Arc<Core>,
}

struct Core {
    endpoint: Endpoint<Tickers>,
    /// What every message of this channel says about this instance.
    identity: StatusIdentity,
}

/// The one slot of each ticker.
#[derive(Default)]
struct Tickers {
    up: Option<AbortHandle>,
    down: Option<AbortHandle>,
}

impl Tickers {
    fn slot(&mut self, what: Announce) -> &mut Option<AbortHandle> {
        match what {
            Announce::Up => &mut self.up,
            Announce::Down => &mut self.down,
        }
    }
}

impl ChannelState for Tickers {
    fn close(&mut self) {
        for ticker in [self.up.take(), self.down.take()].into_iter().flatten() {
            ticker.abort();
        }
    }
}

#[derive(Clone, Copy)]
enum Announce {
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
                identity,
            }),
        }
    }

    pub fn stats(&self) -> Snapshot {
        self.core.endpoint.stats.snapshot()
    }

    /// UP now and every 10 s; a second call while UP runs does nothing.
    /// Leaves DOWN running, as handover-lib does.
    pub fn start_up(&self, keep_alive: Arc<dyn KeepAlive>) -> Result<(), ChannelError> {
        self.start(Announce::Up, keep_alive)
    }

    /// DOWN now and every 100 ms; a second call restarts the ticker. Leaves
    /// UP running, as handover-lib does: listeners hear both, and DOWN is
    /// terminal for this instance (see docs/MIGRATING.md).
    pub fn start_down(&self, keep_alive: Arc<dyn KeepAlive>) -> Result<(), ChannelError> {
        self.start(Announce::Down, keep_alive)
    }

    fn start(&self, what: Announce, keep_alive: Arc<dyn KeepAlive>) -> Result<(), ChannelError> {
        let core = &self.core;
        let endpoint = &core.endpoint;
        let mut shared = endpoint.lock_open()?;
        let slot = shared.channel.slot(what);
        if let Announce::Up = what {
            if slot.is_some() {
                return Ok(());
            }
        }
        if let Some(stale) = slot.take() {
            stale.abort();
        }
        let sender = endpoint.sender(&mut shared)?;
        let packet = wire::encode_status(&core.identity, &what.label());
        core.send(&sender, &packet, what);
        let task_core = core.clone();
        let start = tokio::time::Instant::now();
        let handle = crate::io::runtime::spawn(async move {
            let _keep_alive = keep_alive;
            schedule::run(start, schedule::every(what.period()), || {
                task_core.send(&sender, &packet, what);
                async {}
            })
            .await;
        });
        *shared.channel.slot(what) = Some(handle.abort_handle());
        Ok(())
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
    fn send(&self, socket: &UdpSocket, packet: &[u8], what: Announce) {
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
