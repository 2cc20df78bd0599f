//! A router: follows the status channel of one service, keeps the route
//! table (`protocol::routing`), asks the adapter (in JS) to apply each new
//! table and to check the proxy against it every `reconcile`, and speaks
//! on the router port: HELLO while it runs, DRAINED for an instance once a
//! proxy confirmed a table that sends it no new requests.
//!
//! One task on the runtime owns the state; JS answers each apply with
//! `applied` or `failed`, which reach the task as commands. Only one apply
//! is under way at a time: changes that arrive meanwhile make the next one.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::channel::endpoint::{Endpoint, MalformedLog, NoState, Role};
use crate::channel::lifecycle::{Closable, CloseHandle};
use crate::channel::ChannelError;
use crate::config::{Channel, RouterConfig};
use crate::io::clock;
use crate::io::log::Logger;
use crate::io::net::{self, Receiver};
use crate::protocol::auth::{Signer, Verifier, DEFAULT_REPLAY_WINDOW_MS};
use crate::protocol::drain::HELLO_PERIOD_MS;
use crate::protocol::routing::{Gone, Heard, Ignored, RouteTable, Router as Table, Rules, Subnet};
use crate::protocol::wire::router::{encode_router, RouterSays};
use crate::protocol::wire::{self, INSTANCE_ID_LEN};

/// Where the router's news goes (JS, in the addon).
pub trait RouterSink: Send + Sync + 'static {
    /// Apply `table` through the adapter, then answer `applied` or `failed`.
    fn apply(&self, table: RouteTable);
    /// A state change, as a line for people and its facts for programs.
    fn change(&self, change: Change);
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: &'static str,
    pub line: String,
    pub timestamp_ms: Option<i64>,
    pub address: Option<Ipv4Addr>,
    /// For `drained`: ms from the instance's first DOWN heard to the proxy's confirmation.
    pub elapsed_ms: Option<f64>,
}

impl Change {
    fn new(kind: &'static str, line: String) -> Self {
        Change {
            kind,
            line,
            timestamp_ms: None,
            address: None,
            elapsed_ms: None,
        }
    }
}

/// Counters for `stats()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterCounts {
    pub status_heard: u64,
    pub other_service: u64,
    pub outside_subnets: u64,
    /// Unsigned, forged or replayed while a secret is set.
    pub refused: u64,
    pub malformed: u64,
    pub applies: u64,
    pub apply_failures: u64,
    pub drained_sent: u64,
    pub hellos_sent: u64,
}

enum Command {
    Applied(u64),
    Failed(u64, String),
}

#[derive(Clone)]
pub struct RouterChannel {
    core: Arc<Core>,
}

struct Core {
    config: RouterConfig,
    /// Listens on the status port.
    status: Endpoint<NoState>,
    /// Sends HELLO and DRAINED on the router port.
    routers: Endpoint<NoState>,
    id: [u8; INSTANCE_ID_LEN],
    commands: mpsc::UnboundedSender<Command>,
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    view: Mutex<View>,
}

/// What `table()` and `stats()` read, kept by the task.
#[derive(Default)]
struct View {
    table: Option<RouteTable>,
    subnets: Vec<Subnet>,
    counts: RouterCounts,
}

impl RouterChannel {
    pub fn new(config: RouterConfig, log: Logger) -> Self {
        let (commands, inbox) = mpsc::unbounded_channel();
        let routers_channel = Channel {
            port: config.router_port,
            ..config.status.clone()
        };
        RouterChannel {
            core: Arc::new(Core {
                status: Endpoint::new(
                    Role {
                        class: "HandoverRouter",
                        socket: "status socket",
                    },
                    config.status.clone(),
                    log.clone(),
                ),
                routers: Endpoint::new(
                    Role {
                        class: "HandoverRouter",
                        socket: "router socket",
                    },
                    routers_channel,
                    log,
                ),
                config,
                id: clock::random_instance_id(),
                commands,
                inbox: Mutex::new(Some(inbox)),
                view: Mutex::new(View::default()),
            }),
        }
    }

    pub fn id(&self) -> [u8; INSTANCE_ID_LEN] {
        self.core.id
    }

    /// Finds the subnets, binds the status port (errors reach the caller)
    /// and starts the task. A second call does nothing.
    pub fn start(&self, sink: Arc<dyn RouterSink>) -> Result<Vec<Subnet>, ChannelError> {
        let core = self.core.clone();
        let subnets = match &core.config.subnets {
            Some(subnets) => subnets.clone(),
            None => {
                let group = SocketAddrV4::new(core.config.status.target, core.config.status.port);
                let (address, netmask) = net::local_subnet(core.status.interface.address, group).map_err(|e| {
                    ChannelError::Io(format!(
                        "cannot find the listening interface's subnet (set subnets): {e}"
                    ))
                })?;
                vec![Subnet::of_interface(address, netmask)]
            }
        };
        let Some(inbox) = core.inbox.lock().expect("inbox").take() else {
            return Ok(subnets);
        };
        core.view.lock().expect("view").subnets = subnets.clone();
        let rules = Rules {
            service: core.config.service.to_string(),
            subnets: subnets.clone(),
            up_period_ms: core.config.up_period.as_millis() as i64,
        };
        let task_core = core.clone();
        let mut shared = core.status.lock_open()?;
        core.status.start_listening(&mut shared, move |receiver| async move {
            Task::new(task_core, rules, sink, inbox).run(receiver).await
        })?;
        Ok(subnets)
    }

    pub fn applied(&self, generation: u64) {
        let _ = self.core.commands.send(Command::Applied(generation));
    }

    pub fn failed(&self, generation: u64, message: String) {
        let _ = self.core.commands.send(Command::Failed(generation, message));
    }

    pub fn table(&self) -> Option<RouteTable> {
        self.core.view.lock().expect("view").table.clone()
    }

    pub fn subnets(&self) -> Vec<Subnet> {
        self.core.view.lock().expect("view").subnets.clone()
    }

    pub fn counts(&self) -> RouterCounts {
        self.core.view.lock().expect("view").counts.clone()
    }

    pub fn close_handle(&self) -> CloseHandle {
        CloseHandle::new(&self.core)
    }

    pub fn close(&self) {
        self.core.close();
    }
}

impl Closable for Core {
    fn close(&self) {
        self.status.close();
        self.routers.close();
    }
}

/// Retries of a failed apply wait this long, doubling up to `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Silent instances are looked for this often.
const EXPIRY_TICK: Duration = Duration::from_millis(250);

struct Task {
    core: Arc<Core>,
    table: Table,
    sink: Arc<dyn RouterSink>,
    inbox: mpsc::UnboundedReceiver<Command>,
    verifier: Option<Verifier>,
    malformed_log: MalformedLog,
    started: Instant,
    /// The generation an apply is under way for.
    in_flight: Option<u64>,
    last_apply: Option<Instant>,
    retry_at: Option<Instant>,
    retry_delay: Duration,
    /// The last failure's message while the proxy fails; `None` while it works.
    failing: Option<String>,
    /// Draining instances and when their first DOWN was heard.
    draining: BTreeMap<i64, Instant>,
    /// Instances refused for their addresses, said once each.
    refused_said: Vec<i64>,
    /// With a secret: what signs HELLO and DRAINED.
    signer: Option<Signer>,
}

impl Task {
    fn new(core: Arc<Core>, rules: Rules, sink: Arc<dyn RouterSink>, inbox: mpsc::UnboundedReceiver<Command>) -> Self {
        Task {
            signer: core.config.secret.clone().map(Signer::new),
            verifier: core
                .config
                .secret
                .clone()
                .map(|s| Verifier::new(s, DEFAULT_REPLAY_WINDOW_MS)),
            core,
            table: Table::new(rules),
            sink,
            inbox,
            malformed_log: MalformedLog::default(),
            started: Instant::now(),
            in_flight: None,
            last_apply: None,
            retry_at: None,
            retry_delay: RETRY_FIRST,
            failing: None,
            draining: BTreeMap::new(),
            refused_said: Vec::new(),
        }
    }

    async fn run(mut self, mut receiver: Receiver) {
        let mut hello = tokio::time::interval(Duration::from_millis(HELLO_PERIOD_MS as u64));
        hello.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut expiry = tokio::time::interval(EXPIRY_TICK);
        expiry.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let wake = self.next_apply_at();
            tokio::select! {
                batch = receiver.next_batch() => match batch {
                    Ok(packets) => {
                        for packet in packets {
                            self.heard(packet.bytes, packet.from);
                        }
                    }
                    Err(e) => self.core.status.after_socket_error(e).await,
                },
                _ = hello.tick() => self.say(RouterSays::Hello),
                _ = expiry.tick() => self.expire(),
                Some(command) = self.inbox.recv() => self.answered(command),
                _ = sleep_until_some(wake) => {}
            }
            self.apply_if_due();
        }
    }

    fn count(&self, bump: impl FnOnce(&mut RouterCounts)) {
        bump(&mut self.core.view.lock().expect("view").counts);
    }

    fn heard(&mut self, bytes: &[u8], from: SocketAddrV4) {
        let log = &self.core.status.log;
        let message = match wire::decode_status(bytes) {
            Ok(message) => message,
            Err(reason) => {
                self.count(|c| c.malformed += 1);
                self.malformed_log.dropped(log, "status packet", from, reason);
                return;
            }
        };
        if message.service_name != *self.core.config.service {
            self.count(|c| c.other_service += 1);
            return;
        }
        if let Some(verifier) = &mut self.verifier {
            let checked = wire::decode_status_extension(bytes)
                .map_err(|_| crate::protocol::auth::Refusal::Unsigned)
                .and_then(|ext| verifier.check_extension(bytes, ext.as_ref(), clock::wall_now_ms()));
            if let Err(refusal) = checked {
                self.count(|c| c.refused += 1);
                self.malformed_log.dropped(
                    log,
                    "status message",
                    from,
                    format_args!("{refusal:?} under HANDOVER_SECRET"),
                );
                return;
            }
        }
        self.count(|c| c.status_heard += 1);
        let timestamp_ms = message.timestamp_ms;
        match self.table.hear(&message, clock::wall_now_ms()) {
            Heard::Routable { address, .. } => {
                let mut change = Change::new(
                    "routable",
                    format!(
                        "instance {timestamp_ms} of {} at {address}: routable",
                        message.service_name
                    ),
                );
                change.timestamp_ms = Some(timestamp_ms);
                change.address = Some(address);
                self.sink.change(change);
                // The instance learns of this router now, not at the next HELLO.
                self.say(RouterSays::Hello);
            }
            Heard::Draining { routed, .. } => {
                self.draining.insert(timestamp_ms, Instant::now());
                let mut change = Change::new(
                    "draining",
                    format!(
                        "instance {timestamp_ms} of {}: DOWN, {}",
                        message.service_name,
                        if routed { "draining" } else { "never routed here" }
                    ),
                );
                change.timestamp_ms = Some(timestamp_ms);
                change.address = message.addresses.first().copied();
                self.sink.change(change);
                self.acknowledge(timestamp_ms);
            }
            Heard::Held { .. } => {
                self.draining.insert(timestamp_ms, Instant::now());
                let mut change = Change::new(
                    "held",
                    format!(
                        "instance {timestamp_ms} of {}: DOWN, but it is the only ready server: held until another is ready",
                        message.service_name
                    ),
                );
                change.timestamp_ms = Some(timestamp_ms);
                self.sink.change(change);
            }
            Heard::Nothing if message.status == "DOWN" => self.acknowledge(timestamp_ms),
            Heard::Nothing => {}
            Heard::Ignored(Ignored::OutsideSubnets(addresses)) => {
                self.count(|c| c.outside_subnets += 1);
                if !self.refused_said.contains(&timestamp_ms) {
                    if self.refused_said.len() == 64 {
                        self.refused_said.remove(0);
                    }
                    self.refused_said.push(timestamp_ms);
                    let shown: Vec<String> = addresses.iter().map(ToString::to_string).collect();
                    self.sink.change(Change::new(
                        "refused",
                        format!(
                            "instance {timestamp_ms} of {} from {from}: not routed, its addresses [{}] are outside the router's subnets",
                            message.service_name,
                            shown.join(", ")
                        ),
                    ));
                }
            }
            Heard::Ignored(_) => {}
        }
    }

    /// DRAINED for an instance that said DOWN, once no proxy sends it new requests.
    fn acknowledge(&mut self, timestamp_ms: i64) {
        if !self.table.drained(timestamp_ms) {
            return;
        }
        self.say(RouterSays::Drained { timestamp_ms });
    }

    fn say(&mut self, says: RouterSays) {
        let config = &self.core.config;
        let freshness = self.signer.as_ref().map(|s| s.next_freshness(clock::wall_now_ms()));
        let mut packet = encode_router(says, self.core.id, &config.service, Some(&config.name), freshness);
        if let Some(signer) = &self.signer {
            signer.sign(&mut packet);
        }
        let routers = &self.core.routers;
        let sent = routers.send_scheduled(
            |_| true,
            |socket| routers.send(socket, &packet, format_args!("router {says:?}")),
        );
        if sent {
            self.count(|c| match says {
                RouterSays::Hello => c.hellos_sent += 1,
                RouterSays::Drained { .. } => c.drained_sent += 1,
            });
        }
    }

    fn expire(&mut self) {
        let gone = self.table.expire(clock::wall_now_ms());
        for Gone {
            timestamp_ms, address, ..
        } in gone
        {
            self.draining.remove(&timestamp_ms);
            let mut change = Change::new(
                "gone",
                format!("instance {timestamp_ms} at {address}: silent, no longer in the table"),
            );
            change.timestamp_ms = Some(timestamp_ms);
            change.address = Some(address);
            self.sink.change(change);
        }
    }

    fn answered(&mut self, command: Command) {
        match command {
            Command::Applied(generation) => {
                if self.in_flight == Some(generation) {
                    self.in_flight = None;
                }
                self.table.applied(generation);
                self.retry_at = None;
                self.retry_delay = RETRY_FIRST;
                self.count(|c| c.applies += 1);
                if let Some(failure) = self.failing.take() {
                    self.sink.change(Change::new(
                        "recovered",
                        format!("proxy confirmed the table again (after: {failure})"),
                    ));
                }
                let confirmed: Vec<(i64, Instant)> = self
                    .draining
                    .iter()
                    .filter(|(timestamp, _)| self.table.drained(**timestamp))
                    .map(|(t, at)| (*t, *at))
                    .collect();
                for (timestamp_ms, first_down) in confirmed {
                    self.draining.remove(&timestamp_ms);
                    let elapsed = first_down.elapsed().as_secs_f64() * 1000.0;
                    let mut change = Change::new(
                        "drained",
                        format!("instance {timestamp_ms}: drain confirmed by the proxy {elapsed:.1} ms after its DOWN"),
                    );
                    change.timestamp_ms = Some(timestamp_ms);
                    change.elapsed_ms = Some(elapsed);
                    self.sink.change(change);
                    self.say(RouterSays::Drained { timestamp_ms });
                }
            }
            Command::Failed(generation, message) => {
                if self.in_flight == Some(generation) {
                    self.in_flight = None;
                }
                self.count(|c| c.apply_failures += 1);
                if self.failing.as_deref() != Some(message.as_str()) {
                    self.sink.change(Change::new(
                        "unreachable",
                        format!("proxy did not confirm table {generation}: {message}; retrying"),
                    ));
                }
                self.failing = Some(message);
                self.retry_at = Some(Instant::now() + self.retry_delay);
                self.retry_delay = (self.retry_delay * 2).min(RETRY_MAX);
            }
        }
    }

    /// Until one UP period (and a HELLO) passed, a table without a ready
    /// server may only mean the router has not heard the instances yet:
    /// applying it would empty a proxy that serves.
    fn warming_up(&self) -> bool {
        self.started.elapsed() < self.core.config.up_period + Duration::from_millis(HELLO_PERIOD_MS as u64)
    }

    /// When the next apply is due, if one is wanted and none is under way.
    fn next_apply_at(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            return None;
        }
        let changed = self.table.applied_generation() != Some(self.table.generation());
        if !self.table.has_ready() && self.warming_up() && self.table.applied_generation().is_none() {
            return Some(self.started + self.core.config.up_period + Duration::from_millis(HELLO_PERIOD_MS as u64));
        }
        let due = match (changed, self.last_apply) {
            (true, _) | (_, None) => Instant::now(),
            (false, Some(last)) => last + self.core.config.reconcile,
        };
        Some(match self.retry_at {
            Some(retry) => due.max(retry),
            None => due,
        })
    }

    fn apply_if_due(&mut self) {
        let Some(at) = self.next_apply_at() else { return };
        if at > Instant::now() {
            return;
        }
        let table = self.table.table();
        self.in_flight = Some(table.generation);
        self.last_apply = Some(Instant::now());
        self.retry_at = None;
        // What `table()` shows: the table last handed to the adapter.
        self.core.view.lock().expect("view").table = Some(table.clone());
        self.sink.apply(table);
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
