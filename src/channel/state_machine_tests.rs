//! Tests of the two state machines, `peer::Peer` and `status::StatusChannel`,
//! through their Rust API with fake callbacks, events and sinks that record
//! what happened. Real sockets, pinned to loopback (host mode on `lo`, one
//! port and group per test, ports 47950–47999), so nothing leaves this machine.
//!
//! Time is paused (`start_paused`): the tasks run on the test's runtime
//! (`runtime::spawn` uses the caller's runtime), so timers — the callback
//! deadline, the status tickers — follow the test's clock. Two ways of
//! waiting keep that clock honest:
//! - `until` waits for something a packet causes without moving the clock
//!   (it only yields), bounded by real time, since a packet takes real time;
//! - `tokio::time::sleep` in a test moves the clock, through every timer due
//!   on the way, in order. The times slept to are off the tickers' grid, so
//!   that no tick and no check fall on the same instant.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::channel::lifecycle::{HostLoop, Registry};
use crate::channel::peer::{
    CallbackCalled, CallbackFailure, Events, HandoverReport, Peer, ShutdownCallback, ShuttingDown,
};
use crate::channel::status::{Announce, StatusChannel, StatusSink};
use crate::channel::ChannelError;
use crate::config::{Options, PeerConfig, StatusConfig};
use crate::io::clock;
use crate::io::log::{Level, Logger, Sink};
use crate::io::net;
use crate::io::uv::fake;
use crate::protocol::wire::{self, StatusMessage};

// ---------------------------------------------------------------- helpers

/// Options for a channel on loopback only: host mode on `lo`, a group of its
/// own (239.192.17.x, x from the port) and the given port; a status
/// channel's router port is 100 below it (47850–47899).
fn loopback(port: u16, options: Options) -> Options {
    assert!(
        (47_950..=47_999).contains(&port),
        "ports of these tests are 47950–47999"
    );
    Options {
        port: Some(f64::from(port)),
        router_port: Some(f64::from(port - 100)),
        address: Some(group(port).to_string()),
        network_mode: Some("host".into()),
        network_interface: Some("lo".into()),
        log_level: Some("debug".into()),
        ..options
    }
}

fn group(port: u16) -> Ipv4Addr {
    Ipv4Addr::new(239, 192, 17, (port - 47_900) as u8)
}

/// A logger that keeps its lines, so that a test may look for one.
fn logger() -> (Logger, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let store = lines.clone();
    let sink: Sink =
        Arc::new(move |level: Level, line: &str| store.lock().unwrap().push(format!("[{}] {line}", level.name())));
    (Logger::new(Level::Debug, "state-machine-test", Some(sink)), lines)
}

/// A folder of the test's own for the handover-complete file, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("handover-state-machine-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn file(&self) -> PathBuf {
        self.0.join("handover-complete")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The old instance of these tests; younger ones announce later stamps.
fn own_started_at() -> i64 {
    clock::wall_now_ms() - 60_000
}

/// Makes a peer on the test's loopback channel, writing its complete file in `dir`.
fn peer(started_at: i64, port: u16, dir: &TempDir, options: Options) -> (Peer, Arc<Mutex<Vec<String>>>) {
    let options = loopback(
        port,
        Options {
            handover_complete_path: Some(dir.file().display().to_string()),
            ..options
        },
    );
    let config = PeerConfig::resolve(&options, &HashMap::new()).unwrap();
    let (log, lines) = logger();
    let peer = Peer::new(started_at, config, log);
    assert_eq!(
        peer.interface().address,
        Some(Ipv4Addr::LOCALHOST),
        "pinned to loopback: {:?}",
        peer.interface()
    );
    (peer, lines)
}

/// How the fake shutdown callback settles.
enum Settles {
    /// When the test sends on the other end (dropping it counts as success).
    Later(oneshot::Receiver<Result<(), CallbackFailure>>),
    Never,
    Now(Result<(), CallbackFailure>),
}

/// Drops to say that whatever held it let go.
struct Held(Arc<AtomicBool>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What the fake callback and events saw.
#[derive(Clone, Default)]
struct Probe {
    calls: Arc<AtomicUsize>,
    heard: Arc<Mutex<Vec<ShuttingDown>>>,
    /// When (on the test's clock) the callback was called.
    called_at: Arc<Mutex<Option<Instant>>>,
    events_let_go: Arc<AtomicBool>,
    reports: Arc<Mutex<Vec<HandoverReport>>>,
}

impl Probe {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn report_count(&self) -> usize {
        self.reports.lock().unwrap().len()
    }

    fn report(&self) -> HandoverReport {
        let reports = self.reports.lock().unwrap();
        assert_eq!(reports.len(), 1, "exactly one report: {reports:?}");
        reports[0].clone()
    }

    fn events_let_go(&self) -> bool {
        self.events_let_go.load(Ordering::SeqCst)
    }
}

/// Records each report, and passes it on for a test that awaits one.
/// Whoever holds it keeps the process alive, as the addon's events do:
/// `Held` says when the last holder let go.
struct RecordingEvents {
    probe: Probe,
    reports: mpsc::UnboundedSender<HandoverReport>,
    _held: Held,
}

impl Events for RecordingEvents {
    fn handover(&self, report: HandoverReport) {
        self.probe.reports.lock().unwrap().push(report.clone());
        let _ = self.reports.send(report);
    }
}

/// A shutdown callback and events that record into one `Probe`.
fn fakes(
    settles: Settles,
) -> (
    ShutdownCallback,
    Arc<dyn Events>,
    Probe,
    mpsc::UnboundedReceiver<HandoverReport>,
) {
    let probe = Probe::default();
    let seen = probe.clone();
    let callback: ShutdownCallback = Box::new(move |shutting_down| {
        seen.calls.fetch_add(1, Ordering::SeqCst);
        seen.heard.lock().unwrap().push(shutting_down);
        *seen.called_at.lock().unwrap() = Some(Instant::now());
        CallbackCalled {
            settled: match settles {
                Settles::Later(settle) => Box::pin(async move { settle.await.unwrap_or(Ok(())) }),
                Settles::Never => Box::pin(std::future::pending()),
                Settles::Now(result) => Box::pin(std::future::ready(result)),
            },
        }
    });
    let (sender, receiver) = mpsc::unbounded_channel();
    let events = Arc::new(RecordingEvents {
        probe: probe.clone(),
        reports: sender,
        _held: Held(probe.events_let_go.clone()),
    });
    (callback, events, probe, receiver)
}

/// Waits, without moving the test's clock, until `done` holds; gives up
/// after 10 s of real time. For what a packet causes: a packet takes real
/// time to arrive, and moving the clock meanwhile would fire timers early.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    let mut tries = 0u32;
    while !done() {
        assert!(std::time::Instant::now() < give_up, "gave up waiting for {what}");
        // Lets the listener run and the reactor look at the sockets; a
        // paused clock does not move while a task is ready.
        tokio::task::yield_now().await;
        tries += 1;
        if tries > 100 {
            // Slow to come (the CPU is busy elsewhere): spin less.
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// Waits until `done` holds, moving the test's clock 1 ms at a time; gives
/// up after 10 s of real time. For floods: once a burst has filled the
/// socket, the listener leaves it alone for a moment (`net::Receiver`), and
/// that pause is a timer on the test's clock.
async fn until_moving_the_clock(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < give_up, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Sends `count` announcements of instances younger than `own` to the
/// peer's channel, the first `own + first_offset`.
fn announce_younger(sender: &UdpSocket, port: u16, own: i64, first_offset: i64, count: i64) {
    let to = SocketAddrV4::new(group(port), port);
    for i in 0..count {
        sender
            .send_to(&wire::encode_announcement(own + first_offset + i), to)
            .unwrap();
    }
}

fn loopback_sender(peer: &Peer) -> UdpSocket {
    net::sending_socket(peer.interface()).unwrap()
}

fn assert_complete_file_written(report: &HandoverReport, dir: &TempDir) {
    assert_eq!(
        report.complete_file.as_deref(),
        Some(dir.file().to_str().unwrap()),
        "{report:?}"
    );
    assert_eq!(report.complete_file_error, None);
    let content = std::fs::read_to_string(dir.file()).unwrap();
    assert!(content.starts_with("Shutting down at "), "{content}");
}

// ---------------------------------------------------------------- peer

#[tokio::test(start_paused = true)]
async fn a_burst_of_younger_announcements_hands_over_exactly_once() {
    const PORT: u16 = 47_950;
    let dir = TempDir::new("burst");
    let own = own_started_at();
    let (peer, _lines) = peer(own, PORT, &dir, Options::default());
    let (settle, settled) = oneshot::channel();
    let (callback, events, probe, _reports) = fakes(Settles::Later(settled));
    peer.listen_on_runtime(callback, events).unwrap();
    let sender = loopback_sender(&peer);

    // One batch's worth, sent before the listener first runs: many younger
    // announcements in one batch.
    announce_younger(&sender, PORT, own, 1, net::BATCH as i64);
    until_moving_the_clock("the first burst", || peer.stats().accepted == net::BATCH as u64).await;
    assert_eq!(probe.calls(), 1);
    assert!(peer.shutting_down());
    let heard = probe.heard.lock().unwrap()[0].clone();
    assert_eq!(heard.heard_started_at, own + 1, "the first younger one of the batch");
    assert_eq!(heard.own_started_at, own);
    assert_eq!(*heard.from.ip(), Ipv4Addr::LOCALHOST);

    // More batches while the callback has not settled: still once.
    for burst in 1..=3 {
        announce_younger(&sender, PORT, own, 1_000 * burst, 50);
        let heard = net::BATCH as u64 + 50 * burst as u64;
        until_moving_the_clock("a later burst", || peer.stats().accepted == heard).await;
    }
    assert_eq!(probe.calls(), 1);
    assert_eq!(probe.report_count(), 0, "no report before the callback settles");
    assert!(!probe.events_let_go(), "the handover holds the process");

    settle.send(Ok(())).unwrap();
    until("the report", || probe.report_count() > 0).await;
    let report = probe.report();
    assert_eq!(report.heard_started_at, own + 1);
    assert_eq!(
        (report.callback_error.as_deref(), report.callback_timed_out),
        (None, false)
    );
    assert_complete_file_written(&report, &dir);
    until("the events (what keeps the process alive) to be let go", || {
        probe.events_let_go()
    })
    .await;

    // Younger announcements after the handover change nothing.
    announce_younger(&sender, PORT, own, 5_000, 20);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!((probe.calls(), probe.report_count()), (1, 1));
    assert!(peer.shutting_down());
}

#[tokio::test(start_paused = true)]
async fn a_callback_that_never_settles_is_given_up_at_the_callback_timeout() {
    const PORT: u16 = 47_951;
    let dir = TempDir::new("timeout");
    let own = own_started_at();
    let options = Options {
        callback_timeout_ms: Some(5_000.0),
        ..Options::default()
    };
    let (peer, lines) = peer(own, PORT, &dir, options);
    let (callback, events, probe, mut reports) = fakes(Settles::Never);
    peer.listen_on_runtime(callback, events).unwrap();
    announce_younger(&loopback_sender(&peer), PORT, own, 1, 1);
    until("the callback", || probe.calls() == 1).await;
    let called_at = probe.called_at.lock().unwrap().unwrap();

    // Not before the deadline...
    tokio::time::sleep_until(called_at + Duration::from_millis(4_990)).await;
    assert_eq!(probe.report_count(), 0, "reported before the deadline");
    assert!(!dir.file().exists());

    // ...but at it, with the file written all the same.
    let report = tokio::time::timeout(Duration::from_secs(60), reports.recv())
        .await
        .expect("a report after the deadline")
        .unwrap();
    let waited = called_at.elapsed();
    assert!(
        (Duration::from_millis(5_000)..Duration::from_millis(5_010)).contains(&waited),
        "reported {waited:?} after the callback"
    );
    assert!(report.callback_timed_out, "{report:?}");
    assert_eq!(report.callback_error, None);
    assert_complete_file_written(&report, &dir);
    assert_eq!(probe.report(), report);
    until("the events (what keeps the process alive) to be let go", || {
        probe.events_let_go()
    })
    .await;
    assert!(lines
        .lock()
        .unwrap()
        .iter()
        .any(|line| line.contains("did not settle within 5000 ms")));
}

#[tokio::test(start_paused = true)]
async fn a_failing_callback_is_reported_and_the_file_still_written() {
    const PORT: u16 = 47_952;
    let dir = TempDir::new("failing");
    let own = own_started_at();
    let (peer, _lines) = peer(own, PORT, &dir, Options::default());
    let (callback, events, probe, _reports) = fakes(Settles::Now(Err(CallbackFailure::Failed(
        "Error: boom\n    at stop (app.js:1:1)".into(),
    ))));
    peer.listen_on_runtime(callback, events).unwrap();
    announce_younger(&loopback_sender(&peer), PORT, own, 7, 1);
    until("the report", || probe.report_count() > 0).await;
    let report = probe.report();
    assert_eq!(report.heard_started_at, own + 7);
    assert_eq!(
        report.callback_error.as_deref(),
        Some("Error: boom\n    at stop (app.js:1:1)")
    );
    assert!(!report.callback_timed_out);
    assert_complete_file_written(&report, &dir);
    assert_eq!(probe.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn close_during_a_handover_lets_it_finish() {
    const PORT: u16 = 47_953;
    let dir = TempDir::new("close");
    let own = own_started_at();
    let (peer, _lines) = peer(own, PORT, &dir, Options::default());
    let (settle, settled) = oneshot::channel();
    let (callback, events, probe, _reports) = fakes(Settles::Later(settled));
    peer.listen_on_runtime(callback, events).unwrap();
    assert!(peer.start_broadcasting().unwrap());
    announce_younger(&loopback_sender(&peer), PORT, own, 1, 1);
    until("the callback", || probe.calls() == 1).await;

    peer.close();
    // The handover still holds the process open, whatever close() does.
    tokio::task::yield_now().await;
    assert!(
        !probe.events_let_go(),
        "close() must not let go of a handover under way"
    );
    assert!(matches!(
        peer.start_broadcasting(),
        Err(ChannelError::Closed("HandoverPeer"))
    ));
    assert!(!peer.announce());
    let (callback, events, _, _) = fakes(Settles::Never);
    assert!(matches!(
        peer.listen_on_runtime(callback, events),
        Err(ChannelError::Closed("HandoverPeer"))
    ));

    // The handover under way still finishes and reports.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(probe.report_count(), 0);
    settle.send(Ok(())).unwrap();
    until("the report", || probe.report_count() > 0).await;
    let report = probe.report();
    assert_eq!(
        (report.callback_error.as_deref(), report.callback_timed_out),
        (None, false)
    );
    assert_complete_file_written(&report, &dir);
    assert_eq!(probe.calls(), 1);
    until("the events (what keeps the process alive) to be let go", || {
        probe.events_let_go()
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_environment_that_ends_before_the_callback_settles_gives_the_handover_up() {
    const PORT: u16 = 47_960;
    let dir = TempDir::new("ended");
    let own = own_started_at();
    let (peer, lines) = peer(own, PORT, &dir, Options::default());
    let (callback, events, probe, _reports) = fakes(Settles::Never);
    peer.listen_on_runtime(callback, events).unwrap();
    announce_younger(&loopback_sender(&peer), PORT, own, 1, 1);
    until("the callback", || probe.calls() == 1).await;

    // What the JS environment's teardown does (a worker terminated).
    peer.close_handle().environment_ended();
    until("the events (what keeps the process alive) to be let go", || {
        probe.events_let_go()
    })
    .await;
    assert_eq!(probe.report_count(), 0, "no report: nobody is left to hear it");
    assert!(
        !dir.file().exists(),
        "no complete file: the service did not shut down in order"
    );
    assert!(lines
        .lock()
        .unwrap()
        .iter()
        .any(|line| line.contains("JS environment ended")));
}

#[tokio::test(start_paused = true)]
async fn a_callback_that_could_not_run_for_an_ended_environment_writes_no_file() {
    const PORT: u16 = 47_961;
    let dir = TempDir::new("could-not-run");
    let own = own_started_at();
    let (peer, lines) = peer(own, PORT, &dir, Options::default());
    let (callback, events, probe, _reports) = fakes(Settles::Now(Err(CallbackFailure::EnvironmentEnded)));
    peer.listen_on_runtime(callback, events).unwrap();
    announce_younger(&loopback_sender(&peer), PORT, own, 1, 1);
    until("the handover to be given up", || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains("JS environment ended"))
    })
    .await;
    assert_eq!((probe.calls(), probe.report_count()), (1, 0));
    assert!(!dir.file().exists());
    // The teardown that follows closes the listener, the last holder.
    peer.close_handle().environment_ended();
    until("the events (what keeps the process alive) to be let go", || {
        probe.events_let_go()
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_held_peer_ignores_younger_instances_until_released() {
    const PORT: u16 = 47_962;
    let dir = TempDir::new("held");
    let own = own_started_at();
    let (peer, _lines) = peer(own, PORT, &dir, Options::default());
    let (callback, events, probe, _reports) = fakes(Settles::Now(Ok(())));
    peer.listen_on_runtime(callback, events).unwrap();
    peer.hold(true);
    assert!(peer.shutting_down());
    assert!(!peer.start_broadcasting().unwrap(), "held: broadcasting does not start");
    let sender = loopback_sender(&peer);
    announce_younger(&sender, PORT, own, 1, 1);
    until("the announcement", || peer.stats().accepted == 1).await;
    assert_eq!(probe.calls(), 0, "ignored while held, as the original's flag did");

    peer.hold(false);
    assert!(!peer.shutting_down());
    announce_younger(&sender, PORT, own, 2, 1);
    until("the report", || probe.report_count() == 1).await;
    assert_eq!(probe.report().heard_started_at, own + 2);
    peer.hold(false);
    assert!(peer.shutting_down(), "a handover, once begun, is not undone");
}

#[test]
fn the_schedule_is_the_quick_repeats_below_the_heartbeat_then_the_heartbeat() {
    let dir = TempDir::new("schedule");
    let schedule = |heartbeat_ms: Option<f64>| -> Vec<u128> {
        let options = Options {
            heartbeat_interval_ms: heartbeat_ms,
            ..Options::default()
        };
        // No socket is bound: the port only has to be one of ours.
        let peer = peer(own_started_at(), 47_954, &dir, options).0;
        peer.announcement_offsets()
            .take(8)
            .map(|offset| offset.as_millis())
            .collect()
    };
    assert_eq!(schedule(None), [100, 300, 700, 1_500, 3_100, 6_300, 10_000, 20_000]);
    assert_eq!(
        schedule(Some(500.0)),
        [100, 300, 500, 1_000, 1_500, 2_000, 2_500, 3_000]
    );
    assert_eq!(
        schedule(Some(300.0))[..3],
        [100, 300, 600],
        "an offset equal to the heartbeat is the heartbeat"
    );
    assert_eq!(
        schedule(Some(10.0))[..3],
        [10, 20, 30],
        "the shortest heartbeat has no quick repeats"
    );
}

#[tokio::test(start_paused = true)]
async fn start_broadcasting_sends_once_and_announce_sends_until_closed() {
    const PORT: u16 = 47_955;
    let dir = TempDir::new("broadcasting");
    let (peer, _lines) = peer(own_started_at(), PORT, &dir, Options::default());
    let (callback, events, probe, _reports) = fakes(Settles::Never);
    peer.listen_on_runtime(callback, events).unwrap();

    assert!(!peer.announce(), "nothing to announce before start_broadcasting");
    assert_eq!(peer.stats().sent, 0);
    assert!(peer.start_broadcasting().unwrap());
    assert_eq!(
        peer.stats().sent,
        1,
        "the first announcement is sent by the call itself"
    );
    assert!(!peer.start_broadcasting().unwrap(), "idempotent");
    assert_eq!(peer.stats().sent, 1);
    assert!(peer.announce());
    assert!(peer.announce());
    assert_eq!(peer.stats().sent, 3);
    // Our own announcements come back (multicast loops back) and are recognised.
    until("our own three announcements", || peer.stats().own == 3).await;
    assert_eq!(peer.stats().accepted, 0);
    assert_eq!(probe.calls(), 0);
    assert!(!peer.shutting_down());

    peer.close();
    assert!(!peer.announce());
    assert!(matches!(peer.start_broadcasting(), Err(ChannelError::Closed(_))));
    assert_eq!(peer.stats().sent, 3);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_is_shutting_down_stops_announcing_and_does_not_start_again() {
    const PORT: u16 = 47_956;
    let dir = TempDir::new("shutting-down");
    let own = own_started_at();

    // Broadcasting when the younger instance is heard: `announce` says stop.
    let (broadcasting, _lines) = peer(own, PORT, &dir, Options::default());
    let (callback, events, probe, _reports) = fakes(Settles::Never);
    broadcasting.listen_on_runtime(callback, events).unwrap();
    assert!(broadcasting.start_broadcasting().unwrap());
    announce_younger(&loopback_sender(&broadcasting), PORT, own, 1, 1);
    until("the callback", || probe.calls() == 1).await;
    assert!(broadcasting.shutting_down());
    let sent = broadcasting.stats().sent;
    assert!(!broadcasting.announce());
    assert!(!broadcasting.start_broadcasting().unwrap());
    assert_eq!(broadcasting.stats().sent, sent, "nothing sent once shutting down");
    broadcasting.close();

    // Not broadcasting yet when it is heard: start_broadcasting refuses quietly.
    let dir = TempDir::new("shutting-down-2");
    let (quiet, lines) = peer(own, PORT, &dir, Options::default());
    let (callback, events, probe, _reports) = fakes(Settles::Never);
    quiet.listen_on_runtime(callback, events).unwrap();
    announce_younger(&loopback_sender(&quiet), PORT, own, 1, 1);
    until("the callback", || probe.calls() == 1).await;
    assert!(!quiet.start_broadcasting().unwrap());
    assert!(!quiet.announce());
    assert_eq!(quiet.stats().sent, 0);
    assert!(lines
        .lock()
        .unwrap()
        .iter()
        .any(|line| line.contains("Not starting ticker because we're shutting down")));
}

#[tokio::test(start_paused = true)]
async fn a_younger_peer_makes_the_older_one_hand_over_and_not_the_reverse() {
    const PORT: u16 = 47_957;
    let dir = TempDir::new("two-peers");
    let old_started_at = own_started_at();
    let (old, _) = peer(old_started_at, PORT, &dir, Options::default());
    let (new, _) = peer(old_started_at + 1_000, PORT, &dir, Options::default());
    let (callback, events, old_probe, _old_reports) = fakes(Settles::Now(Ok(())));
    old.listen_on_runtime(callback, events).unwrap();
    let (callback, events, new_probe, _new_reports) = fakes(Settles::Never);
    new.listen_on_runtime(callback, events).unwrap();

    assert!(old.start_broadcasting().unwrap());
    until("the new peer to hear the old one", || new.stats().older == 1).await;
    assert_eq!(new_probe.calls(), 0, "an older announcement is no reason to hand over");

    assert!(new.start_broadcasting().unwrap());
    until("the old peer's report", || old_probe.report_count() == 1).await;
    let heard = old_probe.heard.lock().unwrap()[0].clone();
    assert_eq!(heard.heard_started_at, old_started_at + 1_000);
    assert_eq!(old_probe.report().complete_file_error, None);
    assert!(old.shutting_down());
    assert!(!new.shutting_down());
    assert_eq!(new_probe.calls(), 0);
    assert_eq!(old.stats().accepted, 1);
}

// ---------------------------------------------------------------- status
//
// The tickers run as the addon runs them, on a JS thread's libuv loop
// (`HostLoop::run_schedule`), here the fake one of `io::uv::fake`, whose
// clock the test moves. An active timer is what keeps a process alive.

/// Records every status message heard.
#[derive(Default)]
struct RecordingSink {
    heard: Mutex<Vec<StatusMessage>>,
}

impl RecordingSink {
    fn count(&self, status: &str) -> usize {
        self.heard.lock().unwrap().iter().filter(|m| m.status == status).count()
    }
}

impl StatusSink for RecordingSink {
    fn deliver(&self, message: StatusMessage, _from: SocketAddrV4) -> bool {
        self.heard.lock().unwrap().push(message);
        true
    }
}

fn status_channel(port: u16) -> StatusChannel {
    let config = StatusConfig::resolve(&loopback(port, Options::default()), &HashMap::new()).unwrap();
    let (log, _lines) = logger();
    let identity = crate::config::status_identity(1_700_000_000_000, "api", &["10.0.0.2".into()]).unwrap();
    StatusChannel::new(identity, config, log)
}

/// A status channel registered with a fresh fake loop, as the addon
/// registers one with its environment.
struct OnFakeLoop {
    status: StatusChannel,
    registry: Registry,
    key: u64,
}

impl OnFakeLoop {
    fn new(port: u16) -> Self {
        fake::reset();
        let status = status_channel(port);
        let registry = Registry::default();
        let key = registry.add(status.close_handle()).unwrap();
        OnFakeLoop { status, registry, key }
    }

    fn host(&self) -> HostLoop<'_> {
        HostLoop {
            api: &fake::FAKE,
            event_loop: fake::LOOP_PTR,
            registry: &self.registry,
            key: self.key,
            now: fake::now,
        }
    }

    fn start(&self, what: Announce) -> Result<(), ChannelError> {
        self.status.start_on(&self.host(), what)
    }

    /// What `close()` on the JS object does.
    fn close(&self) {
        self.status.close();
        drop(self.registry.remove(self.key).unwrap());
    }

    fn sent(&self) -> u64 {
        self.status.stats().sent
    }
}

/// Moves the fake loop's clock to `at_ms`, through every tick due on the way.
fn clock_to(at_ms: u64) {
    fake::advance_by(at_ms - fake::now_ms());
}

#[test]
fn a_second_start_down_restarts_the_down_ticker() {
    let on = OnFakeLoop::new(47_970);
    on.start(Announce::Down).unwrap();
    assert_eq!(on.sent(), 1, "DOWN at once");
    assert_eq!(fake::active_timers(), 1);

    clock_to(50);
    on.start(Announce::Down).unwrap();
    assert_eq!(on.sent(), 2, "DOWN at once again");
    assert_eq!(fake::active_timers(), 1, "the replaced ticker stopped");

    // The old grid (100, 200, …) is gone; the new one is 150, 250, …
    clock_to(120);
    assert_eq!(on.sent(), 2, "no tick at 100 ms");
    clock_to(160);
    assert_eq!(on.sent(), 3, "a tick at 150 ms");
    clock_to(560);
    assert_eq!(on.sent(), 7, "ticks at 150, 250, 350, 450, 550 ms");

    on.close();
    assert_eq!(fake::active_timers(), 0, "close() stops the ticker");
    clock_to(1_000);
    assert_eq!(on.sent(), 7, "nothing after close");
    assert!(matches!(
        on.start(Announce::Down),
        Err(ChannelError::Closed("HandoverStatus"))
    ));
    assert_eq!(fake::run_closes(), 2, "both tickers' handles are closed");
}

#[test]
fn a_second_start_up_changes_nothing() {
    let on = OnFakeLoop::new(47_971);
    on.start(Announce::Up).unwrap();
    assert_eq!(on.sent(), 1, "UP at once");

    // The quick repeats: 0.1, 0.3, 0.7 s.
    clock_to(1_000);
    assert_eq!(on.sent(), 4, "UP at 0, 100, 300 and 700 ms");
    on.start(Announce::Up).unwrap();
    assert_eq!(on.sent(), 4, "no extra UP");
    assert_eq!(fake::active_timers(), 1, "no second ticker");

    // Still the first grid: 1.5, 3.1, 6.3, 10 and 20 s (a second ticker
    // would add its own from 1 s on).
    clock_to(10_500);
    assert_eq!(on.sent(), 8);
    clock_to(20_500);
    assert_eq!(on.sent(), 9);
    on.close();
    fake::run_closes();
}

#[tokio::test(start_paused = true)]
async fn up_and_down_both_run_as_in_handover_lib() {
    const PORT: u16 = 47_972;
    let on = OnFakeLoop::new(PORT);
    let sink = Arc::new(RecordingSink::default());
    on.status.start_listening(sink.clone()).unwrap();
    on.start(Announce::Up).unwrap();
    clock_to(50);
    on.start(Announce::Down).unwrap();
    assert_eq!(fake::active_timers(), 2, "both tickers run");

    // UP at 0, 100, 300, 700 ms; DOWN at 50, 150, …, 950.
    clock_to(1_020);
    assert_eq!(on.sent(), 14);
    until("four UP and ten DOWN heard", || sink.heard.lock().unwrap().len() == 14).await;
    assert_eq!((sink.count("UP"), sink.count("DOWN")), (4, 10));

    // UP at 1.5, 3.1, 6.3 and 10 s too: DOWN did not stop it. DOWN at 50, …, 9 950 ms.
    clock_to(10_020);
    assert_eq!(on.sent(), 108);
    until("108 messages heard", || sink.heard.lock().unwrap().len() == 108).await;
    assert_eq!((sink.count("UP"), sink.count("DOWN")), (8, 100));
    let message = sink.heard.lock().unwrap()[0].clone();
    assert_eq!(
        message,
        StatusMessage {
            timestamp_ms: 1_700_000_000_000,
            service_name: "api".into(),
            addresses: vec![Ipv4Addr::new(10, 0, 0, 2)],
            status: "UP".into(),
        }
    );
    assert_eq!(on.status.stats().accepted, 108);

    // A second UP while DOWN runs still changes nothing.
    on.start(Announce::Up).unwrap();
    assert_eq!(on.sent(), 108);

    on.close();
    clock_to(11_000);
    assert_eq!(on.sent(), 108);
    assert_eq!(fake::active_timers(), 0, "close() stops both tickers");
    assert!(matches!(on.start(Announce::Up), Err(ChannelError::Closed(_))));
    fake::run_closes();
}
