//! The handover peer: announces this instance, listens for younger ones, and
//! hands over exactly once.
//!
//! Announcing happens on the caller's thread: `start_broadcasting()` is one
//! `sendto` on a socket made with the peer, and later announcements are
//! sent by `announce()`, which the JS side calls from its own timers on the
//! schedule of `ticker` (so starting to broadcast never wakes the runtime).
//!
//! Tasks (on the addon's tokio runtime):
//! - the listener drains the socket in batches, classifies every packet
//!   without leaving Rust, and on the first younger announcement queues the
//!   shutdown callback, then starts
//! - the handover: stop announcing, await the shutdown callback (with an
//!   optional deadline), write the complete file, report, stop listening.
//!
//! What keeps the JS process alive is owned by what needs it: the listener
//! and the handover hold the shutdown callback's bridge. `close()` aborts the
//! listener; a handover already under way still finishes, so a shutdown
//! callback may call `close()` itself.

use std::future::Future;
use std::net::{SocketAddrV4, UdpSocket};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant, SystemTime};

use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::auth::{Refusal, Verifier, DEFAULT_REPLAY_WINDOW_MS};
use crate::clock;
use crate::complete;
use crate::config::PeerConfig;
use crate::lifecycle::{Closable, CloseHandle};
use crate::log::{Logger, RateLimit};
use crate::net::{self, Interface, LazySender, Packet, Receiver};
use crate::seniority::{judge, Identity, Verdict};
use crate::stats::{Outcome, Snapshot, Stats, Tally};
use crate::ticker;
use crate::wire::{self, ExtensionFields, Freshness};

/// Starts the user's shutdown callback at once (the call is queued to JS
/// before it returns), telling it who was heard. Holding it keeps the JS
/// process alive (a listening peer does).
pub type ShutdownCallback = Box<dyn FnOnce(ShuttingDown) -> CallbackCalled + Send>;
/// Settles with the callback; `Err` carries its error (message and stack).
pub type CallbackSettled = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A shutdown callback under way.
pub struct CallbackCalled {
    pub settled: CallbackSettled,
    /// Keeps the JS process alive until the handover has finished, or until
    /// `close()`: a callback that never settles (and has no deadline) then no
    /// longer holds the process open.
    pub keep_alive: Box<dyn Send>,
}

/// Tells JS that the handover finished. Does not keep the process alive;
/// dropped with the listener, so it holds the JS peer only while listening.
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
/// the complete file was written, or could not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverReport {
    pub heard_started_at: i64,
    pub from: SocketAddrV4,
    pub callback_error: Option<String>,
    pub callback_timed_out: bool,
    pub complete_file: Option<String>,
    pub complete_file_error: Option<String>,
}

#[derive(Debug)]
pub enum PeerError {
    /// The object was closed; names its JS class.
    Closed(&'static str),
    Io(String),
}

impl PeerError {
    pub fn sending_socket(e: std::io::Error) -> Self {
        PeerError::Io(format!("cannot create the sending socket: {e}"))
    }
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::Closed(class) => write!(f, "this {class} is closed"),
            PeerError::Io(m) => f.write_str(m),
        }
    }
}

pub struct Peer {
    core: Arc<Core>,
}

struct Core {
    config: PeerConfig,
    identity: Identity,
    interface: Interface,
    log: Logger,
    stats: Stats,
    shutting_down: AtomicBool,
    sequence: AtomicU64,
    tasks: Mutex<Tasks>,
}

#[derive(Default)]
struct Tasks {
    closed: bool,
    /// `start_broadcasting()` was called, and no handover has stopped it.
    broadcasting: bool,
    listener: Option<AbortHandle>,
    /// Held while a handover runs; `close()` lets go of it.
    handover_keep_alive: Option<Box<dyn Send>>,
    /// Made with the peer, so that `startBroadcasting()` is one `sendto`.
    sender: LazySender,
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
        let interface = net::choose_interface(&config.channel);
        if let Some(reason) = &interface.fallback_reason {
            log.warn(format_args!(
                "host mode: {reason}; falling back to the default interface, so announcements may reach other devices on the LAN"
            ));
        }
        log.info(format_args!(
            "Using shutdownBroadcastAddress: {}:{}{}",
            config.channel.target,
            config.channel.port,
            interface
                .address
                .map(|a| format!(" on interface {a}"))
                .unwrap_or_default()
        ));
        let mut tasks = Tasks::default();
        // Now rather than in startBroadcasting(); a failure is reported there.
        let _ = tasks.sender.get(&interface);
        Peer {
            core: Arc::new(Core {
                config,
                identity,
                interface,
                log,
                stats: Stats::default(),
                shutting_down: AtomicBool::new(false),
                sequence: AtomicU64::new(0),
                tasks: Mutex::new(tasks),
            }),
        }
    }

    /// When `announce()` is due after `start_broadcasting()`: the quick
    /// repeats (ms from the first announcement), then the heartbeat period.
    pub fn schedule(&self) -> (Vec<u32>, u32) {
        let heartbeat = self.core.config.heartbeat;
        let burst = ticker::announcement_offsets(heartbeat)
            .take_while(|offset| *offset < heartbeat)
            .map(|offset| offset.as_millis() as u32)
            .collect();
        (burst, heartbeat.as_millis() as u32)
    }

    pub fn shutting_down(&self) -> bool {
        self.core.shutting_down.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> Snapshot {
        self.core.stats.snapshot()
    }

    pub fn instance_id(&self) -> [u8; wire::INSTANCE_ID_LEN] {
        self.core.identity.instance
    }

    pub fn interface(&self) -> &Interface {
        &self.core.interface
    }

    /// Sends the first announcement now, on the caller's thread, so that a
    /// new instance is heard without waiting for any scheduler. `Ok(true)`
    /// when the caller should now call `announce()` on the schedule;
    /// `Ok(false)` when broadcasting already runs or the peer is shutting down.
    pub fn start_broadcasting(&self) -> Result<bool, PeerError> {
        let core = &self.core;
        let mut tasks = core.tasks.lock().expect("tasks lock");
        if tasks.closed {
            return Err(PeerError::Closed("HandoverPeer"));
        }
        if self.shutting_down() {
            core.log
                .warn(format_args!("Not starting ticker because we're shutting down"));
            return Ok(false);
        }
        if tasks.broadcasting {
            return Ok(false);
        }
        let socket = tasks.sender.get(&core.interface).map_err(PeerError::sending_socket)?;
        core.announce(&socket);
        tasks.broadcasting = true;
        // After the send; queuing a line costs the caller no wait (`log_writer`).
        let started_at = core.identity.started_at_ms;
        core.log.info(format_args!(
            "ticker started. timestamp = {started_at} ( {} )",
            crate::log::iso_time_ms(started_at)
        ));
        Ok(true)
    }

    /// One scheduled announcement. False once there is nothing more to
    /// announce (closed, or handing over): the caller stops its schedule.
    pub fn announce(&self) -> bool {
        let mut tasks = self.core.tasks.lock().expect("tasks lock");
        if !tasks.broadcasting || tasks.closed || self.shutting_down() {
            return false;
        }
        let Ok(socket) = tasks.sender.get(&self.core.interface) else {
            self.core.stats.sent(false);
            return true;
        };
        drop(tasks);
        self.core.announce(&socket);
        true
    }

    /// Binds and joins now, so that a port problem is reported at once.
    pub fn start_listening(&self, callback: ShutdownCallback, events: Arc<dyn Events>) -> Result<(), PeerError> {
        let core = &self.core;
        let mut tasks = core.tasks.lock().expect("tasks lock");
        if tasks.closed {
            return Err(PeerError::Closed("HandoverPeer"));
        }
        if tasks.listener.is_some() {
            core.log
                .warn(format_args!("startListening was already called; ignoring this call"));
            return Ok(());
        }
        let channel = &core.config.channel;
        let listening = net::listening_socket(channel, &core.interface).map_err(|e| {
            let message = if e.kind() == std::io::ErrorKind::AddrInUse {
                format!("port {} is in use by a socket without SO_REUSEADDR: {e}", channel.port)
            } else {
                format!("cannot listen on port {} for {}: {e}", channel.port, channel.target)
            };
            core.log.error(format_args!("heartbeatClientSocket error: {message}"));
            PeerError::Io(message)
        })?;
        if let Some(refusals) = listening.refusals() {
            core.log.info(format_args!("{refusals}"));
        }
        core.stats.refused(listening.refused_set());
        let socket = listening.socket;
        core.log
            .info(format_args!("heartbeatClientSocket listening 0.0.0.0:{}", channel.port));
        let task_core = core.clone();
        let handle = crate::runtime::spawn(async move {
            match Receiver::new(socket) {
                Ok(receiver) => task_core.listen(receiver, callback, events).await,
                Err(e) => task_core
                    .log
                    .error(format_args!("cannot register the listening socket: {e}")),
            }
        });
        tasks.listener = Some(handle.abort_handle());
        Ok(())
    }

    /// A handle that closes this peer without keeping it alive (for the JS
    /// environment's teardown).
    pub fn close_handle(&self) -> CloseHandle {
        CloseHandle::new(&self.core)
    }

    /// Stops announcing and listening and releases the sending socket. A
    /// handover under way still completes.
    pub fn close(&self) {
        self.core.close();
    }
}

impl Closable for Core {
    fn close(&self) {
        let mut tasks = self.tasks.lock().expect("tasks lock");
        tasks.closed = true;
        tasks.broadcasting = false;
        // Only the caller's thread sends: dropping the socket here closes it now.
        tasks.sender.clear();
        if let Some(listener) = tasks.listener.take() {
            listener.abort();
        }
        tasks.handover_keep_alive = None;
    }
}

impl Core {
    fn announcement(&self) -> Vec<u8> {
        let identity = &self.identity;
        let mut fields = ExtensionFields {
            service: identity.service.clone(),
            instance: Some(identity.instance),
            boot: identity.boot,
            freshness: None,
        };
        if self.config.secret.is_some() {
            fields.freshness = Some(Freshness {
                sent_at_ms: clock::wall_now_ms(),
                sequence: self.sequence.fetch_add(1, Ordering::Relaxed) + 1,
            });
        }
        let mut packet = wire::encode_extended(identity.started_at_ms, &fields);
        if let Some(secret) = &self.config.secret {
            secret.sign(&mut packet);
        }
        packet
    }

    fn announce(&self, socket: &UdpSocket) {
        let target = SocketAddrV4::new(self.config.channel.target, self.config.channel.port);
        match socket.send_to(&self.announcement(), target) {
            Ok(bytes) => {
                self.stats.sent(true);
                self.log.debug(format_args!(
                    "heartbeat sent. timestamp {} ( {} bytes )",
                    self.identity.started_at_ms, bytes
                ));
            }
            Err(e) => {
                self.stats.sent(false);
                self.log
                    .error(format_args!("Error when sending packet to {target}: {e}"));
            }
        }
    }

    async fn listen(self: Arc<Self>, mut receiver: Receiver, callback: ShutdownCallback, events: Arc<dyn Events>) {
        let mut classifier = Classifier {
            identity: &self.identity,
            verifier: self
                .config
                .secret
                .clone()
                .map(|s| Verifier::new(s, DEFAULT_REPLAY_WINDOW_MS)),
            malformed_log: RateLimit::new(Duration::from_secs(1)),
            log: &self.log,
        };
        let mut callback = Some(callback);
        let mut handover_done: Option<oneshot::Receiver<()>> = None;
        loop {
            let batch = tokio::select! {
                _ = async { handover_done.as_mut().expect("guarded").await }, if handover_done.is_some() => break,
                batch = receiver.next_batch() => batch,
            };
            let packets = match batch {
                Ok(packets) => packets,
                Err(e) => {
                    self.log.error(format_args!("heartbeatClientSocket error: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let mut tally = Tally::default();
            let mut younger = None;
            let now_ms = clock::wall_now_ms();
            for packet in packets {
                let (outcome, started_at) = classifier.classify(&packet, now_ms);
                tally.count(outcome);
                if outcome == Outcome::Accepted && younger.is_none() {
                    younger = Some((started_at, packet.from));
                }
            }
            if let (Some((heard, from)), Some(_)) = (younger, callback.as_ref()) {
                if !self.shutting_down.swap(true, Ordering::SeqCst) {
                    let callback = callback.take().expect("checked above");
                    // The callback first: it is what the new instance is waiting for.
                    let called = callback(ShuttingDown {
                        heard_started_at: heard,
                        own_started_at: self.identity.started_at_ms,
                        from,
                    });
                    let (done, done_rx) = oneshot::channel();
                    handover_done = Some(done_rx);
                    let mut tasks = self.tasks.lock().expect("tasks lock");
                    if !tasks.closed {
                        tasks.handover_keep_alive = Some(called.keep_alive);
                    }
                    drop(tasks);
                    tokio::spawn(
                        self.clone()
                            .hand_over(heard, from, called.settled, events.clone(), done),
                    );
                }
            }
            self.stats.add(&tally);
        }
        self.log.info(format_args!("Waiting for shutdown"));
    }

    async fn hand_over(
        self: Arc<Self>,
        heard: i64,
        from: SocketAddrV4,
        settled: CallbackSettled,
        events: Arc<dyn Events>,
        done: oneshot::Sender<()>,
    ) {
        self.tasks.lock().expect("tasks lock").broadcasting = false;
        let own = self.identity.started_at_ms;
        self.log.info(format_args!(
            "Shutting down, theres a new server running with timestamp : {heard} and we have {own} (announced from {from})"
        ));
        let mut report = HandoverReport {
            heard_started_at: heard,
            from,
            callback_error: None,
            callback_timed_out: false,
            complete_file: None,
            complete_file_error: None,
        };
        let outcome = match self.config.callback_timeout {
            Some(deadline) => tokio::time::timeout(deadline, settled).await.ok(),
            None => Some(settled.await),
        };
        match outcome {
            Some(Ok(())) => {}
            Some(Err(error)) => {
                self.log
                    .error(format_args!("shutdownCallback failed; handing over anyway: {error}"));
                report.callback_error = Some(error);
            }
            None => {
                self.log.warn(format_args!(
                    "shutdownCallback did not settle within {} ms; handing over anyway",
                    self.config.callback_timeout.unwrap_or_default().as_millis()
                ));
                report.callback_timed_out = true;
            }
        }

        self.log.info(format_args!("About to write the shutdown file"));
        // Off the runtime's one thread: a slow file system must not stall other peers.
        let complete_path = self.config.complete_path.clone();
        let written = tokio::task::spawn_blocking(move || complete::write(&complete_path, SystemTime::now()))
            .await
            .unwrap_or_else(|e| Err(format!("the complete-file writer failed: {e}")));
        match written {
            Ok(path) => {
                self.log
                    .info(format_args!("shut-me-down file written at {}", path.display()));
                report.complete_file = Some(path.display().to_string());
            }
            Err(error) => {
                self.log
                    .warn(format_args!("error when writing shut-me-down file: {error}"));
                report.complete_file_error = Some(error);
            }
        }
        events.handover(report);
        let _ = done.send(());
        // Only now may the process exit: the report is on its way to JS.
        self.tasks.lock().expect("tasks lock").handover_keep_alive = None;
    }
}

/// Sorts received packets into outcomes; owned by the listener task.
struct Classifier<'a> {
    identity: &'a Identity,
    verifier: Option<Verifier>,
    malformed_log: RateLimit,
    log: &'a Logger,
}

impl Classifier<'_> {
    fn classify(&mut self, packet: &Packet<'_>, now_ms: i64) -> (Outcome, i64) {
        let announcement = match wire::decode_announcement(packet.bytes) {
            Ok(a) => a,
            Err(reason) => {
                if self.log.enabled(crate::log::Level::Debug) {
                    if let Some(held_back) = self.malformed_log.admit(StdInstant::now()) {
                        self.log.debug(format_args!(
                            "dropped a malformed packet from {}: {reason} ({held_back} more dropped since the last report)",
                            packet.from
                        ));
                    }
                }
                return (Outcome::Malformed, 0);
            }
        };
        if let Some(verifier) = &mut self.verifier {
            match verifier.check(packet.bytes, &announcement, now_ms) {
                Ok(()) => {}
                Err(Refusal::Replayed) => return (Outcome::Replayed, 0),
                Err(Refusal::Unsigned | Refusal::Forged) => return (Outcome::Unauthenticated, 0),
            }
        }
        let outcome = match judge(self.identity, &announcement) {
            Verdict::Own => Outcome::Own,
            Verdict::OtherService => Outcome::OtherService,
            Verdict::NotYounger => Outcome::Older,
            Verdict::Younger => Outcome::Accepted,
        };
        (outcome, announcement.started_at_ms)
    }
}
