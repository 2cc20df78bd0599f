//! The status channel: an instance announces UP (at once, quickly repeated for 6 s, then every 10 s) while it
//! serves and DOWN (every 100 ms) once it drains, so routers can follow
//! which instance serves. Every status packet heard, our own included, is
//! handed to the listener.
//!
//! Once UP runs, the channel also listens on the router port: routers say
//! HELLO there, and DRAINED for this instance once their proxy sends it no
//! new requests. `drain` waits for every router heard recently.

use std::borrow::Cow;
use std::net::{SocketAddrV4, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::channel::endpoint::{ChannelState, Endpoint, MalformedLog, NoState, Role};
use crate::channel::lifecycle::{Closable, CloseHandle, HostLoop, Slot};
use crate::channel::stats::{Outcome, Snapshot, Tally};
use crate::channel::ChannelError;
use crate::config::StatusConfig;
use crate::io::clock;
use crate::io::log::Logger;
use crate::io::net::Receiver;
use crate::protocol::auth::{Signer, Verifier, DEFAULT_REPLAY_WINDOW_MS};
use crate::protocol::drain::{RoutersHeard, Standing};
use crate::protocol::schedule;
use crate::protocol::wire::router::decode_router;
use crate::protocol::wire::{self, ExtensionFields, StatusIdentity, StatusLabel, StatusMessage, INSTANCE_ID_LEN};

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
    identity: StatusIdentity,
    /// What each UP and DOWN message says, made once when unsigned: the identity is fixed.
    up: Vec<u8>,
    down: Vec<u8>,
    signing: Option<Signing>,
    /// The router port: HELLO and DRAINED are heard there.
    routers: Endpoint<NoState>,
    heard: Mutex<RoutersHeard>,
    /// Woken whenever a router message of our service was heard.
    router_news: Notify,
    verifier: Option<Mutex<Verifier>>,
    /// When the router port was bound; `None` before.
    hearing_since: Mutex<Option<tokio::time::Instant>>,
}

/// How long a drain that began listening itself waits for a first HELLO.
const FIRST_HELLO_WAIT: Duration = Duration::from_millis(crate::protocol::drain::HELLO_PERIOD_MS as u64 + 100);

/// With a secret, each status message carries the sender's id, a fresh
/// time and sequence, and is signed.
struct Signing {
    signer: Signer,
    instance: [u8; INSTANCE_ID_LEN],
}

/// How a drain ended.
#[derive(Debug, Clone)]
pub struct DrainOutcome {
    /// Routers present that said DRAINED, and those still waited for at the deadline.
    pub standing: Standing,
    pub waited: Duration,
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
        let router_role = Role {
            class: "HandoverStatus",
            socket: "router socket",
        };
        let router_channel = crate::config::Channel {
            port: config.router_port,
            ..config.channel.clone()
        };
        StatusChannel {
            core: Arc::new(Core {
                endpoint: Endpoint::new(role, config.channel, log.clone()),
                up: wire::encode_status(&identity, &Announce::Up.label()).to_vec(),
                down: wire::encode_status(&identity, &Announce::Down.label()).to_vec(),
                heard: Mutex::new(RoutersHeard::new(&identity.service_name, identity.timestamp_ms)),
                identity,
                verifier: config
                    .secret
                    .clone()
                    .map(|s| Mutex::new(Verifier::new(s, DEFAULT_REPLAY_WINDOW_MS))),
                signing: config.secret.map(|secret| Signing {
                    signer: Signer::new(secret),
                    instance: clock::random_instance_id(),
                }),
                routers: Endpoint::new(router_role, router_channel, log),
                router_news: Notify::new(),
                hearing_since: Mutex::new(None),
            }),
        }
    }

    pub fn stats(&self) -> Snapshot {
        self.core.endpoint.stats.snapshot()
    }

    /// UP now, at 0.1 … 6.3 s, then every 10 s, on the host's loop; a second call while UP
    /// runs does nothing. Leaves DOWN running, as handover-lib does.
    /// DOWN now and every 100 ms; a second call restarts its ticker. Leaves
    /// UP running, as handover-lib does: listeners hear both, and DOWN is
    /// terminal for this instance (see docs/MIGRATING.md). Like a JS
    /// interval, a running ticker keeps the process alive.
    pub fn start_on(&self, host: &HostLoop<'_>, what: Announce) -> Result<(), ChannelError> {
        if what == Announce::Up {
            // Routers are heard from before the first UP, which they answer
            // with a HELLO: a drain then knows whom to wait for.
            if let Err(e) = self.listen_for_routers() {
                self.core.endpoint.log.warn(format_args!(
                    "cannot hear routers, so drain() will not wait for them: {e}"
                ));
            }
        }
        if !self.start(what)? {
            return Ok(());
        }
        let channel = self.clone();
        let offsets: Box<dyn Iterator<Item = Duration>> = match what {
            // UP repeats quickly at first, as announcements do: a router
            // that lost the first UP learns of the instance within 100 ms,
            // not 10 s.
            Announce::Up => Box::new(schedule::announcement_offsets(UP_PERIOD)),
            Announce::Down => Box::new(schedule::every(DOWN_PERIOD)),
        };
        host.run_schedule(what.slot(), offsets, move || channel.announce(what))
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

    /// Binds the router port (once) and hears routers on the runtime.
    pub fn listen_for_routers(&self) -> Result<(), ChannelError> {
        let core = self.core.clone();
        let routers = &self.core.routers;
        let mut shared = routers.lock_open()?;
        let mut since = self.core.hearing_since.lock().expect("hearing since");
        if since.is_some() {
            return Ok(());
        }
        routers.start_listening(
            &mut shared,
            move |receiver| async move { core.hear_routers(receiver).await },
        )?;
        *since = Some(tokio::time::Instant::now());
        Ok(())
    }

    /// Waits until every router of this service heard recently said
    /// DRAINED for this instance, or `timeout`. With no router heard, at once.
    pub async fn drained(&self, timeout: Duration) -> DrainOutcome {
        let core = &self.core;
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        loop {
            let news = core.router_news.notified();
            tokio::pin!(news);
            news.as_mut().enable();
            let now_ms = clock::wall_now_ms();
            let (standing, expiry) = {
                let heard = core.heard.lock().expect("routers heard");
                (heard.standing(now_ms), heard.next_expiry_ms(now_ms))
            };
            let now = tokio::time::Instant::now();
            let closed = core.endpoint.lock().closed;
            // Listening only just began (no UP before the drain): a router
            // says HELLO once a period, so give it one before concluding
            // that there is none.
            let hearing_since = *core.hearing_since.lock().expect("hearing since");
            let first_hello = hearing_since.map(|since| since + FIRST_HELLO_WAIT);
            if standing.acknowledged.is_empty() && standing.waiting.is_empty() && !closed {
                if let Some(at) = first_hello.filter(|at| *at > now && now < deadline) {
                    tokio::select! {
                        _ = news => {}
                        _ = tokio::time::sleep_until(at.min(deadline)) => {}
                    }
                    continue;
                }
            }
            if standing.waiting.is_empty() || now >= deadline || closed {
                return DrainOutcome {
                    standing,
                    waited: now - started,
                };
            }
            let wake = match expiry {
                Some(at) => deadline.min(now + Duration::from_millis((at - now_ms).max(1) as u64)),
                None => deadline,
            };
            tokio::select! {
                _ = news => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
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
        self.routers.close();
        // A drain under way ends now: nobody will be heard any more.
        self.router_news.notify_waiters();
    }
}

impl Core {
    fn send(&self, socket: &UdpSocket, what: Announce) {
        self.endpoint
            .send(socket, &self.message(what), format_args!("status {}", what.label()));
    }

    /// The status message to send now: the same 120 bytes every time, or
    /// with a secret our extension after them, fresh and signed (the
    /// original reads the 120 bytes only).
    fn message(&self, what: Announce) -> Cow<'_, [u8]> {
        let Some(signing) = &self.signing else {
            return Cow::Borrowed(match what {
                Announce::Up => &self.up,
                Announce::Down => &self.down,
            });
        };
        let fields = ExtensionFields {
            instance: Some(signing.instance),
            freshness: Some(signing.signer.next_freshness(clock::wall_now_ms())),
            ..ExtensionFields::default()
        };
        let mut packet = wire::encode_status_extended(&self.identity, &what.label(), &fields);
        signing.signer.sign(&mut packet);
        Cow::Owned(packet)
    }

    async fn hear_routers(&self, mut receiver: Receiver) {
        let mut malformed_log = MalformedLog::default();
        loop {
            let packets = match receiver.next_batch().await {
                Ok(packets) => packets,
                Err(e) => {
                    self.routers.after_socket_error(e).await;
                    continue;
                }
            };
            let mut news = false;
            let mut tally = Tally::default();
            for packet in packets {
                let message = match decode_router(packet.bytes) {
                    Ok(message) => message,
                    Err(reason) => {
                        tally.count(Outcome::Malformed);
                        malformed_log.dropped(&self.routers.log, "router packet", packet.from, reason);
                        continue;
                    }
                };
                if let Some(verifier) = &self.verifier {
                    let checked = verifier.lock().expect("verifier").check_extension(
                        packet.bytes,
                        message.extension.as_ref(),
                        clock::wall_now_ms(),
                    );
                    if let Err(refusal) = checked {
                        tally.count(Outcome::from(refusal));
                        malformed_log.dropped(
                            &self.routers.log,
                            "router packet",
                            packet.from,
                            format_args!("{refusal:?}"),
                        );
                        continue;
                    }
                }
                tally.count(Outcome::FromRouter);
                let now_ms = clock::wall_now_ms();
                news |= self
                    .heard
                    .lock()
                    .expect("routers heard")
                    .hear(&message, *packet.from.ip(), now_ms);
            }
            // One set of counters per status channel: stats() reads the status endpoint's.
            self.endpoint.stats.add(&tally);
            if news {
                self.router_news.notify_waiters();
            }
        }
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
