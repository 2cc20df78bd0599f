//! The handover peer: announces this instance, listens for younger ones, and
//! hands over exactly once.
//!
//! Announcing happens on the caller's thread: `start_broadcasting()` is one
//! `sendto` on a socket made with the peer, and later announcements are
//! sent by `announce()`, which the addon calls from a timer on the JS
//! thread's loop at `announcement_offsets()` (so starting to broadcast never
//! wakes the runtime).
//!
//! Listening:
//! - the `Listener` drains the socket in batches whenever its driver says it
//!   is readable, classifies every packet without leaving Rust, and on the
//!   first younger announcement calls the shutdown callback at once, then
//!   spawns
//! - the handover, on the addon's runtime: await the shutdown callback (with
//!   an optional deadline), write the complete file, report.
//!
//! Two drivers run the listener: the JS thread's loop (`listen_on_loop`,
//! a libuv poll), so the callback is called with no thread in between; and
//! a task on the runtime (`listen_on_runtime`), for hosts whose loop cannot
//! watch a socket (Bun) and for the Rust tests. The driver owns the
//! listener and stops it: on `close()`, or once the report is out.
//!
//! What keeps the JS process alive is whoever holds the `Events`: the
//! listener while it listens, and the handover task until the report is
//! out. `close()` touches neither, so a handover under way finishes, and a
//! shutdown callback may call `close()` itself. The socket plumbing shared
//! with the status channel is in `endpoint`.

use std::borrow::Cow;
use std::future::Future;
use std::net::{SocketAddrV4, UdpSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::channel::endpoint::{ChannelState, Endpoint, MalformedLog, Role};
use crate::channel::lifecycle::{Closable, CloseHandle, HostLoop, Slot};
use crate::channel::stats::{Outcome, Snapshot, Tally};
use crate::channel::ChannelError;
use crate::config::PeerConfig;
use crate::io::clock;
use crate::io::complete;
use crate::io::log::{Level, Logger};
use crate::io::net::{Drain, Interface, NextRead, Packet};
use crate::io::uv::{Readiness, Then, Watch};
use crate::protocol::auth::{Signer, Verifier, DEFAULT_REPLAY_WINDOW_MS};
use crate::protocol::schedule;
use crate::protocol::seniority::{judge, Identity, Verdict};
use crate::protocol::wire::{self, ExtensionFields, Freshness};

/// Starts the user's shutdown callback at once, telling it who was heard.
pub type ShutdownCallback = Box<dyn FnOnce(ShuttingDown) -> CallbackCalled + Send>;
/// Settles with the callback: `Ok`, its error (message and stack), or the
/// news that its JS environment ended first.
pub type CallbackSettled = Pin<Box<dyn Future<Output = Result<(), CallbackFailure>> + Send>>;

/// A shutdown callback under way.
pub struct CallbackCalled {
    pub settled: CallbackSettled,
}

/// Why a shutdown callback did not settle normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackFailure {
    /// It threw or rejected: message and stack.
    Failed(String),
    /// Its JS environment ended (a worker terminated or exited) before it
    /// ran or settled: the instance did not shut down in order.
    EnvironmentEnded,
}

/// Tells JS that the handover finished. Whoever holds it keeps the JS
/// process alive (the addon's holds a referenced threadsafe function): the
/// listener while it listens, and the handover task until the report is out,
/// whatever `close()` does meanwhile.
pub trait Events: Send + Sync + 'static {
    fn handover(&self, report: HandoverReport);
}

/// A younger instance was heard; the shutdown callback is about to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShuttingDown {
    pub heard_started_at: i64,
    pub own_started_at: i64,
    pub from: SocketAddrV4,
}

/// The handover finished: the callback settled (or its deadline passed) and
/// the complete file was written, or could not be. Crosses to JS as itself:
/// emitted as `'handover'`, and the value of `peer.handover`.
#[cfg_attr(not(test), napi_derive::napi(object, object_from_js = false, use_nullable = true))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverReport {
    #[cfg_attr(not(test), napi(ts_type = "'handover'"))]
    pub r#type: &'static str,
    /// The younger instance's `startedAt`, ms since the epoch.
    pub heard_started_at: i64,
    /// `address:port` the announcement came from.
    pub from: String,
    /// Message and stack of what the shutdown callback threw or rejected with.
    pub callback_error: Option<String>,
    /// True when the callback did not settle within `callbackTimeoutMs`.
    pub callback_timed_out: bool,
    /// Where the handover-complete file was written.
    pub complete_file: Option<String>,
    /// Why it could not be written (path and OS error).
    pub complete_file_error: Option<String>,
}

/// A handle on one peer; clones are the same peer.
#[derive(Clone)]
pub struct Peer {
    core: Arc<Core>,
}

struct Core {
    endpoint: Endpoint<PeerState>,
    config: PeerConfig,
    identity: Identity,
    /// With a secret: what signs each announcement.
    signer: Option<Signer>,
    /// Every unsigned announcement is the same bytes: made once.
    unsigned_announcement: Vec<u8>,
    /// The original's "ticker started" line, made once: it is logged on the
    /// handover path, by `start_broadcasting()`.
    ticker_started: Arc<str>,
    /// Set once the JS environment that owns the peer has ended: a handover
    /// still waiting for its callback is given up.
    ended: EnvironmentEnded,
}

/// The news that the JS environment ended, for a handover task to await.
struct EnvironmentEnded(tokio::sync::watch::Sender<bool>);

impl EnvironmentEnded {
    fn new() -> Self {
        EnvironmentEnded(tokio::sync::watch::Sender::new(false))
    }

    fn set(&self) {
        self.0.send_replace(true);
    }

    async fn wait(&self) {
        let mut ended = self.0.subscribe();
        // The sender lives in `Core`, which the waiting task holds.
        let _ = ended.wait_for(|ended| *ended).await;
    }
}

/// The peer's own state, under the endpoint's lock.
#[derive(Default)]
struct PeerState {
    /// `start_broadcasting()` was called, and no handover has stopped it.
    broadcasting: bool,
    phase: Phase,
    /// The younger instance that made this one hand over.
    heard: Option<ShuttingDown>,
    /// `shuttingDown` was set from JS, as the original allowed: younger
    /// instances are ignored and broadcasting does not start.
    held: bool,
}

/// Where the peer is in its one handover. Only the listener moves it on.
#[derive(Default)]
enum Phase {
    /// No younger instance heard (listening or not).
    #[default]
    Serving,
    /// A younger instance was heard: the callback runs, then the file is
    /// written. Not stopped by `close()`.
    HandingOver,
    /// The report is out and the listener has stopped.
    HandedOver,
}

impl ChannelState for PeerState {
    fn close(&mut self) {
        self.broadcasting = false;
    }
}

impl Peer {
    pub fn new(started_at_ms: i64, config: PeerConfig, log: Logger) -> Self {
        let identity = Identity {
            started_at_ms,
            instance: clock::random_instance_id(),
            boot: clock::boot_stamp(started_at_ms),
            service: config.service.clone(),
        };
        if let Some(warning) = config.service_warning() {
            log.warn(format_args!("{warning}"));
        }
        let role = Role {
            class: "HandoverPeer",
            socket: "heartbeatClientSocket",
        };
        let endpoint = Endpoint::new(role, config.channel.clone(), log);
        endpoint.log.info(format_args!(
            "Using shutdownBroadcastAddress: {}:{}{}",
            config.channel.target,
            config.channel.port,
            endpoint
                .interface
                .address
                .map(|a| format!(" on interface {a}"))
                .unwrap_or_default()
        ));
        // Now rather than in startBroadcasting(); a failure is reported there.
        let _ = endpoint.sender(&mut endpoint.lock());
        let unsigned_announcement = wire::encode_extended(started_at_ms, &extension_fields(&identity, None));
        let ticker_started = format!(
            "ticker started. timestamp = {started_at_ms} ( {} )",
            crate::io::log::iso_time_ms(started_at_ms)
        )
        .into();
        Peer {
            core: Arc::new(Core {
                endpoint,
                signer: config.secret.clone().map(Signer::new),
                config,
                identity,
                unsigned_announcement,
                ticker_started,
                ended: EnvironmentEnded::new(),
            }),
        }
    }

    /// When `announce()` is due after `start_broadcasting()`, from the first
    /// announcement: the quick repeats below the heartbeat, then every heartbeat.
    pub fn announcement_offsets(&self) -> impl Iterator<Item = Duration> + Send + 'static {
        schedule::announcement_offsets(self.core.config.heartbeat)
    }

    /// True once a younger instance was heard, or while held (`hold`).
    pub fn shutting_down(&self) -> bool {
        let shared = self.core.endpoint.lock();
        shared.channel.held || !matches!(shared.channel.phase, Phase::Serving)
    }

    /// What setting the original's `shuttingDown` field did: `true` makes
    /// the peer ignore younger instances and refuse to start broadcasting,
    /// `false` undoes that. A handover under way or done stays so: it
    /// happens once.
    pub fn hold(&self, held: bool) {
        self.core.endpoint.lock().channel.held = held;
    }

    /// Who was heard, once a younger instance was.
    pub fn heard(&self) -> Option<ShuttingDown> {
        self.core.endpoint.lock().channel.heard.clone()
    }

    pub fn stats(&self) -> Snapshot {
        self.core.endpoint.stats.snapshot()
    }

    pub fn instance_id(&self) -> [u8; wire::INSTANCE_ID_LEN] {
        self.core.identity.instance
    }

    pub fn interface(&self) -> &Interface {
        &self.core.endpoint.interface
    }

    /// Sends the first announcement now, on the caller's thread, so that a
    /// new instance is heard without waiting for any scheduler. `Ok(true)`
    /// when the caller should now call `announce()` at `announcement_offsets()`;
    /// `Ok(false)` when broadcasting already runs or the peer is shutting down.
    pub fn start_broadcasting(&self) -> Result<bool, ChannelError> {
        let core = &self.core;
        let endpoint = &core.endpoint;
        let mut shared = endpoint.lock_open()?;
        if shared.channel.held || !matches!(shared.channel.phase, Phase::Serving) {
            endpoint
                .log
                .warn(format_args!("Not starting ticker because we're shutting down"));
            return Ok(false);
        }
        if shared.channel.broadcasting {
            return Ok(false);
        }
        let socket = endpoint.sender(&mut shared)?;
        core.announce(&socket);
        shared.channel.broadcasting = true;
        drop(shared);
        // After the send; queuing a line costs the caller no wait (`log_writer`).
        endpoint.log.log_prepared(Level::Info, &core.ticker_started);
        Ok(true)
    }

    /// `start_broadcasting()`, then the rest of the schedule on the host's
    /// loop, until closed or handing over. Like the original's interval, the
    /// schedule keeps the process alive.
    pub fn broadcast_on(&self, host: &HostLoop<'_>) -> Result<(), ChannelError> {
        if !self.start_broadcasting()? {
            return Ok(());
        }
        let peer = self.clone();
        host.run_schedule(Slot::Announcements, self.announcement_offsets(), move || {
            peer.announce()
        })
    }

    /// One scheduled announcement. False once there is nothing more to
    /// announce (closed, or handing over): the caller stops its schedule.
    pub fn announce(&self) -> bool {
        let core = &self.core;
        core.endpoint
            .send_scheduled(|peer| peer.broadcasting, |socket| core.announce(socket))
    }

    /// Binds and joins now, so that a port problem is reported at once, and
    /// returns the listener for the caller to drive. `None` when the peer
    /// already listens.
    pub fn listen<C>(&self, callback: C, events: Arc<dyn Events>) -> Result<Option<Listener<C>>, ChannelError>
    where
        C: FnOnce(ShuttingDown) -> CallbackCalled,
    {
        let endpoint = &self.core.endpoint;
        let mut shared = endpoint.lock_open()?;
        let Some(socket) = endpoint.bind(&mut shared)? else {
            return Ok(None);
        };
        Ok(Some(Listener {
            core: self.core.clone(),
            socket,
            drain: Drain::default(),
            classifier: Classifier {
                verifier: self
                    .core
                    .config
                    .secret
                    .clone()
                    .map(|s| Verifier::new(s, DEFAULT_REPLAY_WINDOW_MS)),
                malformed_log: MalformedLog::default(),
            },
            callback: Some(callback),
            events,
        }))
    }

    /// Listens with the listener driven by the host's loop on the JS thread
    /// (see `io::uv`): a younger announcement reaches the callback with one
    /// wake-up. The watch is kept in the registry, which stops it on
    /// `close()`; the caller takes it out once the report is out.
    pub fn listen_on_loop<C>(
        &self,
        host: &HostLoop<'_>,
        callback: C,
        events: Arc<dyn Events>,
    ) -> Result<(), ChannelError>
    where
        C: FnOnce(ShuttingDown) -> CallbackCalled + 'static,
    {
        let Some(mut listener) = self.listen(callback, events)? else {
            return Ok(());
        };
        let socket = Watch::socket_of(listener.socket());
        let watch = Watch::start(host.api, host.event_loop, socket, move |readiness| {
            let next = match readiness {
                Readiness::Ready => listener.readable(),
                Readiness::Failed(e) => listener.socket_failed(e),
            };
            match next {
                NextRead::After(pause) => Then::After(pause),
                // The poll reports a socket that still holds packets again
                // on the loop's next turn.
                NextRead::Now | NextRead::WhenReadable => Then::Wait,
            }
        })
        .map_err(|e| ChannelError::Io(e.to_string()))?;
        drop(host.registry.put(host.key, Slot::Listener, Box::new(watch))?);
        Ok(())
    }

    /// Listens with the listener driven by a task on the runtime: for hosts
    /// whose event loop cannot watch a socket for us (Bun), and for the Rust
    /// tests. The task stops on `close()`, or once the report is out.
    pub fn listen_on_runtime(&self, callback: ShutdownCallback, events: Arc<dyn Events>) -> Result<(), ChannelError> {
        let reported = Arc::new(tokio::sync::Notify::new());
        let events = Arc::new(runtime_driver::Reported {
            events,
            reported: reported.clone(),
        });
        let Some(listener) = self.listen(callback, events)? else {
            return Ok(());
        };
        let registered = runtime_driver::Readiness::new(listener.socket())
            .map_err(|e| ChannelError::Io(format!("cannot register {}: {e}", self.core.endpoint.role.socket)))?;
        let endpoint = &self.core.endpoint;
        endpoint.run_listener(
            &mut endpoint.lock(),
            runtime_driver::drive(listener, registered, reported),
        );
        Ok(())
    }

    /// A handle that closes this peer without keeping it alive (for the JS
    /// environment's teardown).
    pub fn close_handle(&self) -> CloseHandle {
        CloseHandle::new(&self.core)
    }

    /// Stops announcing and listening and releases the sockets. A handover
    /// under way still completes.
    pub fn close(&self) {
        self.core.close();
    }
}

impl Closable for Core {
    fn close(&self) {
        self.endpoint.close();
    }

    fn environment_ended(&self) {
        self.ended.set();
        self.close();
    }
}

impl Core {
    /// The announcement to send now. Without a secret it is the same bytes
    /// every time, made once with the peer; with one, each carries a fresh
    /// time and sequence (replay protection) and is signed.
    fn announcement(&self) -> Cow<'_, [u8]> {
        let Some(signer) = &self.signer else {
            return Cow::Borrowed(&self.unsigned_announcement);
        };
        let freshness = signer.next_freshness(clock::wall_now_ms());
        let mut packet = wire::encode_extended(
            self.identity.started_at_ms,
            &extension_fields(&self.identity, Some(freshness)),
        );
        signer.sign(&mut packet);
        Cow::Owned(packet)
    }

    fn announce(&self, socket: &UdpSocket) {
        self.endpoint
            .send(socket, &self.announcement(), format_args!("heartbeat"));
    }

    async fn hand_over(
        self: Arc<Self>,
        heard: i64,
        from: SocketAddrV4,
        settled: CallbackSettled,
        events: Arc<dyn Events>,
    ) {
        let log = &self.endpoint.log;
        let own = self.identity.started_at_ms;
        log.info(format_args!(
            "Shutting down, theres a new server running with timestamp : {heard} and we have {own} (announced from {from})"
        ));
        let mut report = HandoverReport {
            r#type: "handover",
            heard_started_at: heard,
            from: from.to_string(),
            callback_error: None,
            callback_timed_out: false,
            complete_file: None,
            complete_file_error: None,
        };
        let settled = async {
            tokio::select! {
                outcome = settled => outcome,
                () = self.ended.wait() => Err(CallbackFailure::EnvironmentEnded),
            }
        };
        let outcome = match self.config.callback_timeout {
            Some(deadline) => tokio::time::timeout(deadline, settled).await.ok(),
            None => Some(settled.await),
        };
        match outcome {
            Some(Ok(())) => {}
            Some(Err(CallbackFailure::EnvironmentEnded)) => {
                log.warn(format_args!(
                    "the JS environment ended (a worker was terminated or exited) before shutdownCallback settled; not handing over: no complete file written"
                ));
                self.endpoint.lock().channel.phase = Phase::HandedOver;
                return;
            }
            Some(Err(CallbackFailure::Failed(error))) => {
                log.error(format_args!("shutdownCallback failed; handing over anyway: {error}"));
                report.callback_error = Some(error);
            }
            None => {
                log.warn(format_args!(
                    "shutdownCallback did not settle within {} ms; handing over anyway",
                    self.config.callback_timeout.unwrap_or_default().as_millis()
                ));
                report.callback_timed_out = true;
            }
        }

        log.info(format_args!("About to write the shutdown file"));
        // Off the runtime's one thread: a slow file system must not stall other peers.
        let complete_path = self.config.complete_path.clone();
        let written = tokio::task::spawn_blocking(move || complete::write(&complete_path, SystemTime::now()))
            .await
            .unwrap_or_else(|e| Err(format!("the complete-file writer failed: {e}")));
        match written {
            Ok(path) => {
                log.info(format_args!("shut-me-down file written at {}", path.display()));
                report.complete_file = Some(path.display().to_string());
            }
            Err(error) => {
                log.warn(format_args!("error when writing shut-me-down file: {error}"));
                report.complete_file_error = Some(error);
            }
        }
        self.endpoint.lock().channel.phase = Phase::HandedOver;
        log.info(format_args!("Waiting for shutdown"));
        // Last, so that nothing of this handover still runs when JS gets the
        // report. Whatever keeps the process alive (the listener's driver) is
        // let go once the report is out.
        events.handover(report);
    }
}

/// What an announcement of `identity` carries after the 9 bytes.
fn extension_fields(identity: &Identity, freshness: Option<Freshness>) -> ExtensionFields {
    ExtensionFields {
        service: identity.service.clone(),
        instance: Some(identity.instance),
        boot: identity.boot,
        freshness,
        name: None,
    }
}

/// Most batches taken per `readable()`: a flood cannot hold the driving
/// thread (the JS thread, in the addon) for long; the rest waits for the next turn.
const BATCHES_PER_READ: usize = 8;

/// The peer's listening socket and what it does with each packet: sorts
/// and counts them, and on the first younger announcement starts the
/// handover. Its driver calls `readable()` when the socket is readable.
pub struct Listener<C> {
    core: Arc<Core>,
    socket: UdpSocket,
    drain: Drain,
    classifier: Classifier,
    /// Taken by the first younger announcement: exactly once.
    callback: Option<C>,
    events: Arc<dyn Events>,
}

impl<C: FnOnce(ShuttingDown) -> CallbackCalled> Listener<C> {
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Takes what the socket holds and acts on it; says when to read again.
    pub fn readable(&mut self) -> NextRead {
        for _ in 0..BATCHES_PER_READ {
            let now_ms = clock::wall_now_ms();
            let core = &self.core;
            let packets = match self.drain.take(&self.socket) {
                Ok(packets) => packets,
                Err(e) => return NextRead::After(core.endpoint.socket_error(e)),
            };
            let mut tally = Tally::default();
            let mut younger = None;
            for packet in packets {
                let (outcome, started_at) = self.classifier.classify(core, &packet, now_ms);
                tally.count(outcome);
                if outcome == Outcome::Younger && younger.is_none() {
                    younger = Some((started_at, packet.from));
                }
            }
            if let Some((heard, from)) = younger {
                self.hand_over(heard, from);
            }
            self.core.endpoint.stats.add(&tally);
            if self.drain.emptied() {
                return self.drain.next_read();
            }
        }
        // More is waiting: the driver comes back to it on its next turn.
        NextRead::Now
    }

    /// The driver could not watch the socket: says so, and when to look again.
    pub fn socket_failed(&mut self, e: std::io::Error) -> NextRead {
        NextRead::After(self.core.endpoint.socket_error(e))
    }

    /// Calls the shutdown callback (the first time only), then leaves the
    /// rest of the handover to a task on the runtime.
    fn hand_over(&mut self, heard: i64, from: SocketAddrV4) {
        let core = &self.core;
        if core.endpoint.lock().channel.held {
            core.endpoint.log.debug(format_args!(
                "a younger instance ({heard}) was heard while shuttingDown is set: ignored"
            ));
            return;
        }
        let Some(callback) = self.callback.take() else {
            return;
        };
        let event = ShuttingDown {
            heard_started_at: heard,
            own_started_at: core.identity.started_at_ms,
            from,
        };
        let mut shared = core.endpoint.lock();
        // Shutting down before the callback runs: it may read `shuttingDown`.
        shared.channel.phase = Phase::HandingOver;
        shared.channel.broadcasting = false;
        shared.channel.heard = Some(event.clone());
        drop(shared);
        // The callback first: it is what the new instance is waiting for.
        let called = callback(event);
        // Not stopped by close(): a handover under way finishes, and the
        // task's `events` keep the process alive until the report is out.
        crate::io::runtime::spawn(core.clone().hand_over(heard, from, called.settled, self.events.clone()));
    }
}

/// Sorts received packets into outcomes; owned by the listener.
struct Classifier {
    verifier: Option<Verifier>,
    malformed_log: MalformedLog,
}

impl Classifier {
    fn classify(&mut self, core: &Core, packet: &Packet<'_>, now_ms: i64) -> (Outcome, i64) {
        let announcement = match wire::decode_announcement(packet.bytes) {
            Ok(a) => a,
            Err(reason) => {
                self.malformed_log
                    .dropped(&core.endpoint.log, "packet", packet.from, reason);
                return (Outcome::Malformed, 0);
            }
        };
        if let Some(verifier) = &mut self.verifier {
            if let Err(refusal) = verifier.check(packet.bytes, &announcement, now_ms) {
                return (Outcome::from(refusal), 0);
            }
        }
        let outcome = match judge(&core.identity, &announcement) {
            Verdict::Own => Outcome::Own,
            Verdict::OtherService => Outcome::OtherService,
            Verdict::NotYounger => Outcome::Older,
            Verdict::Younger => Outcome::Younger,
        };
        (outcome, announcement.started_at_ms)
    }
}

/// Drives a `Listener` from a task on the runtime.
mod runtime_driver {
    use std::io;
    use std::net::UdpSocket;
    use std::sync::Arc;

    use tokio::io::Interest;
    use tokio::sync::Notify;

    use super::{CallbackCalled, Events, HandoverReport, Listener, NextRead, ShuttingDown};

    /// Passes the report on, then tells the driver to stop.
    pub struct Reported {
        pub events: Arc<dyn Events>,
        pub reported: Arc<Notify>,
    }

    impl Events for Reported {
        fn handover(&self, report: HandoverReport) {
            self.events.handover(report);
            self.reported.notify_one();
        }
    }

    /// A second handle of the listening socket, registered with the
    /// reactor for readiness only; the listener reads through its own.
    pub struct Readiness(tokio::net::UdpSocket);

    impl Readiness {
        /// Must be called within the runtime the driver will run on, or
        /// outside any (then the addon's runtime registers it).
        pub fn new(socket: &UdpSocket) -> io::Result<Readiness> {
            let duplicate = socket.try_clone()?;
            duplicate.set_nonblocking(true)?;
            let _entered = match tokio::runtime::Handle::try_current() {
                Ok(_) => None,
                Err(_) => Some(crate::io::runtime::enter()),
            };
            Ok(Readiness(tokio::net::UdpSocket::from_std(duplicate)?))
        }

        async fn readable(&self) {
            if self.0.readable().await.is_ok() {
                // Cleared before reading, so a packet arriving after the
                // read wakes the driver again.
                let _ = self
                    .0
                    .try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
            }
        }
    }

    /// Reads whenever the socket is readable (or the pause is over) until the report is out.
    pub async fn drive<C>(mut listener: Listener<C>, readiness: Readiness, reported: Arc<Notify>)
    where
        C: FnOnce(ShuttingDown) -> CallbackCalled + Send,
    {
        loop {
            let next = listener.readable();
            tokio::select! {
                () = reported.notified() => return,
                () = wait(&readiness, next) => {}
            }
        }
    }

    async fn wait(readiness: &Readiness, next: NextRead) {
        match next {
            NextRead::Now => tokio::task::yield_now().await,
            NextRead::WhenReadable => readiness.readable().await,
            NextRead::After(pause) => tokio::time::sleep(pause).await,
        }
    }
}
