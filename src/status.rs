//! The status channel: an instance announces UP (every 10 s) while it
//! serves and DOWN (every 100 ms) once it drains, so routers can follow
//! which instance serves. Every status packet heard, our own included, is
//! handed to the listener.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::config::StatusConfig;
use crate::lifecycle::{Closable, CloseHandle};
use crate::log::{Level, Logger, RateLimit};
use crate::net::{self, Interface, LazySender, Receiver};
use crate::peer::PeerError;
use crate::stats::{Outcome, Snapshot, Stats, Tally};
use crate::ticker;
use crate::wire::{self, StatusMessage};

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
    config: StatusConfig,
    interface: Interface,
    started_at_ms: i64,
    service_name: String,
    addresses: Vec<Ipv4Addr>,
    log: Logger,
    stats: Stats,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    closed: bool,
    sender: LazySender,
    up: Option<AbortHandle>,
    down: Option<AbortHandle>,
    listener: Option<AbortHandle>,
}

#[derive(Clone, Copy)]
enum Announce {
    Up,
    Down,
}

impl Announce {
    fn text(self) -> &'static str {
        match self {
            Announce::Up => "UP",
            Announce::Down => "DOWN",
        }
    }
}

impl StatusChannel {
    /// `service_name` and `addresses` are validated by the caller (see `wire::encode_status`).
    pub fn new(
        started_at_ms: i64,
        service_name: String,
        addresses: Vec<Ipv4Addr>,
        config: StatusConfig,
        log: Logger,
    ) -> Self {
        let interface = net::choose_interface(&config.channel);
        if let Some(reason) = &interface.fallback_reason {
            log.warn(format_args!(
                "host mode: {reason}; falling back to the default interface"
            ));
        }
        StatusChannel {
            core: Arc::new(Core {
                config,
                interface,
                started_at_ms,
                service_name,
                addresses,
                log,
                stats: Stats::default(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    pub fn stats(&self) -> Snapshot {
        self.core.stats.snapshot()
    }

    /// UP now and every 10 s; a second call while UP runs does nothing.
    /// Leaves DOWN running, as handover-lib does.
    pub fn start_up(&self, keep_alive: Arc<dyn KeepAlive>) -> Result<(), PeerError> {
        self.start(Announce::Up, keep_alive)
    }

    /// DOWN now and every 100 ms; a second call restarts the ticker. Leaves
    /// UP running, as handover-lib does: listeners hear both, and DOWN is
    /// terminal for this instance (see docs/MIGRATING.md).
    pub fn start_down(&self, keep_alive: Arc<dyn KeepAlive>) -> Result<(), PeerError> {
        self.start(Announce::Down, keep_alive)
    }

    fn start(&self, what: Announce, keep_alive: Arc<dyn KeepAlive>) -> Result<(), PeerError> {
        let core = &self.core;
        let mut state = core.state.lock().expect("state lock");
        if state.closed {
            return Err(PeerError::Closed("HandoverStatus"));
        }
        let state = &mut *state;
        let (running, period) = match what {
            Announce::Up => (&mut state.up, UP_PERIOD),
            Announce::Down => (&mut state.down, DOWN_PERIOD),
        };
        match (what, running.take()) {
            (Announce::Up, Some(handle)) => {
                *running = Some(handle);
                return Ok(());
            }
            (_, stale) => stale.into_iter().for_each(|h| h.abort()),
        }
        let sender = state.sender.get(&core.interface).map_err(PeerError::sending_socket)?;
        let packet = wire::encode_status(&StatusMessage {
            timestamp_ms: core.started_at_ms,
            service_name: core.service_name.clone(),
            addresses: core.addresses.clone(),
            status: what.text().into(),
        })
        .map_err(|e| PeerError::Io(e.to_string()))?;
        core.send(&sender, &packet, what);
        let task_core = core.clone();
        let start = tokio::time::Instant::now();
        let handle = crate::runtime::spawn(async move {
            let _keep_alive = keep_alive;
            ticker::run(start, ticker::every(period), || {
                task_core.send(&sender, &packet, what);
                async {}
            })
            .await;
        });
        let slot = match what {
            Announce::Up => &mut state.up,
            Announce::Down => &mut state.down,
        };
        *slot = Some(handle.abort_handle());
        Ok(())
    }

    pub fn start_listening(&self, sink: Arc<dyn StatusSink>) -> Result<(), PeerError> {
        let core = &self.core;
        let mut state = core.state.lock().expect("state lock");
        if state.closed {
            return Err(PeerError::Closed("HandoverStatus"));
        }
        if state.listener.is_some() {
            core.log.warn(format_args!(
                "status startListening was already called; ignoring this call"
            ));
            return Ok(());
        }
        let listening = net::listening_socket(&core.config.channel, &core.interface).map_err(|e| {
            let message = format!("cannot listen for status on port {}: {e}", core.config.channel.port);
            core.log.error(format_args!("{message}"));
            PeerError::Io(message)
        })?;
        if let Some(refusals) = listening.refusals() {
            core.log.info(format_args!("{refusals}"));
        }
        core.stats.refused(listening.refused_set());
        let socket = listening.socket;
        core.log.info(format_args!(
            "status socket listening 0.0.0.0:{}",
            core.config.channel.port
        ));
        let task_core = core.clone();
        let handle = crate::runtime::spawn(async move {
            match Receiver::new(socket) {
                Ok(receiver) => task_core.listen(receiver, sink).await,
                Err(e) => task_core
                    .log
                    .error(format_args!("cannot register the status socket: {e}")),
            }
        });
        state.listener = Some(handle.abort_handle());
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
        let mut state = self.state.lock().expect("state lock");
        state.closed = true;
        state.sender.clear();
        for handle in [state.up.take(), state.down.take(), state.listener.take()]
            .into_iter()
            .flatten()
        {
            handle.abort();
        }
    }
}

impl Core {
    fn send(&self, socket: &UdpSocket, packet: &[u8], what: Announce) {
        let target = SocketAddrV4::new(self.config.channel.target, self.config.channel.port);
        match socket.send_to(packet, target) {
            Ok(_) => {
                self.stats.sent(true);
                self.log.debug(format_args!("status {} sent to {target}", what.text()));
            }
            Err(e) => {
                self.stats.sent(false);
                self.log.error(format_args!(
                    "Error when sending status {} to {target}: {e}",
                    what.text()
                ));
            }
        }
    }

    async fn listen(&self, mut receiver: Receiver, sink: Arc<dyn StatusSink>) {
        let mut malformed_log = RateLimit::new(Duration::from_secs(1));
        loop {
            let packets = match receiver.next_batch().await {
                Ok(packets) => packets,
                Err(e) => {
                    self.log.error(format_args!("status socket error: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let mut tally = Tally::default();
            for packet in packets {
                match wire::decode_status(packet.bytes) {
                    Ok(message) => {
                        let delivered = sink.deliver(message, packet.from);
                        tally.count(if delivered {
                            Outcome::Accepted
                        } else {
                            Outcome::Undelivered
                        });
                    }
                    Err(reason) => {
                        tally.count(Outcome::Malformed);
                        if self.log.enabled(Level::Debug) {
                            if let Some(held_back) = malformed_log.admit(std::time::Instant::now()) {
                                self.log.debug(format_args!(
                                    "dropped a malformed status packet from {}: {reason} ({held_back} more dropped since the last report)",
                                    packet.from
                                ));
                            }
                        }
                    }
                }
            }
            self.stats.add(&tally);
        }
    }
}
