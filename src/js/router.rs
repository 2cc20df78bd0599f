//! `NativeRouter`, the native half of `HandoverRouter` (index.js):
//! converts options and tables, and carries the router's requests to JS
//! (apply this table; this changed) and JS's answers back.

use std::collections::HashMap;
use std::sync::Arc;

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Result, Status, Unknown};
use napi_derive::napi;

use super::errors::thrown;
use super::{log_at, logger, LogFunction, Registration};
use crate::channel::router::{Change, RouterChannel, RouterSink};
use crate::config::{RouterConfig, RouterOptions};
use crate::io::log::Logger;
use crate::protocol::routing::{RouteTable, ServerState};

type EventFunction = ThreadsafeFunction<RouterEvent, Unknown<'static>, RouterEvent, Status, false>;

/// One server of a route table, as an adapter applies it.
#[napi(object)]
pub struct RouteServer {
    /// The instance's timestamp, as text: stable for the instance's life.
    pub id: String,
    pub address: String,
    pub port: u32,
    #[napi(ts_type = "'ready' | 'drain'")]
    pub state: String,
    /// The instance's `startedAt`, ms since the epoch.
    pub timestamp: f64,
}

/// What a proxy should route, as `adapter.apply()` receives it.
#[napi(object)]
pub struct RouteTableObject {
    pub service: String,
    pub generation: f64,
    pub servers: Vec<RouteServer>,
}

/// What the router tells JS: `'apply'` (with `table`), or a change.
#[napi(object)]
pub struct RouterEvent {
    /// `'apply'`, or a change: `'routable' | 'draining' | 'drained' | 'gone' | 'refused' | 'unreachable' | 'recovered'`.
    pub kind: String,
    pub table: Option<RouteTableObject>,
    pub line: Option<String>,
    pub timestamp: Option<f64>,
    pub address: Option<String>,
    /// For `'drained'`: ms from the instance's first DOWN heard to the proxy's confirmation.
    pub elapsed_ms: Option<f64>,
}

#[napi(object)]
pub struct RouterStats {
    pub status_heard: i64,
    pub other_service: i64,
    pub outside_subnets: i64,
    pub refused: i64,
    pub malformed: i64,
    pub applies: i64,
    pub apply_failures: i64,
    pub drained_sent: i64,
    pub hellos_sent: i64,
}

struct JsRouterSink {
    events: EventFunction,
    service: String,
    port: u16,
}

impl JsRouterSink {
    fn send(&self, event: RouterEvent) {
        // Unbounded queue: a change is never dropped.
        self.events.call(event, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

impl RouterSink for JsRouterSink {
    fn apply(&self, table: RouteTable) {
        let table = table_object(table, &self.service, self.port);
        self.send(RouterEvent {
            kind: "apply".into(),
            table: Some(table),
            line: None,
            timestamp: None,
            address: None,
            elapsed_ms: None,
        });
    }

    fn change(&self, change: Change) {
        self.send(RouterEvent {
            kind: change.kind.into(),
            table: None,
            line: Some(change.line),
            timestamp: change.timestamp_ms.map(|t| t as f64),
            address: change.address.map(|a| a.to_string()),
            elapsed_ms: change.elapsed_ms,
        });
    }
}

/// The native half of `HandoverRouter`; use the class exported by `index.js`.
#[napi]
pub struct NativeRouter {
    channel: RouterChannel,
    registration: Registration,
    log: Logger,
    service: String,
    port: u16,
    started: std::sync::atomic::AtomicBool,
}

#[napi]
impl NativeRouter {
    #[napi(constructor)]
    pub fn new(
        node: Env,
        options: RouterOptions,
        environment: HashMap<String, String>,
        host_name: String,
        context_id: String,
        #[napi(ts_arg_type = "((record: LogRecord) => void) | undefined | null")] log_sink: Option<LogFunction>,
    ) -> Result<Self> {
        let config = RouterConfig::resolve(&options, &environment, &host_name).map_err(thrown(&node))?;
        let log = logger(config.log_level, &context_id, log_sink);
        let (service, port) = (config.service.to_string(), config.service_port);
        let channel = RouterChannel::new(config, log.clone());
        let registration = Registration::new(&node, channel.close_handle())?;
        Ok(NativeRouter {
            channel,
            registration,
            log,
            service,
            port,
            started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Starts following the status channel; returns the subnets it routes.
    /// `events` is taken here, not at construction: holding it keeps the
    /// process alive, which a router that was never started must not do.
    #[napi]
    pub fn start(
        &self,
        env: Env,
        #[napi(ts_arg_type = "(event: RouterEvent) => void")] events: EventFunction,
    ) -> Result<Vec<String>> {
        if self.started.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return Ok(self.channel.subnets().iter().map(ToString::to_string).collect());
        }
        let sink = JsRouterSink {
            events,
            service: self.service.clone(),
            port: self.port,
        };
        let subnets = self.channel.start(Arc::new(sink)).map_err(thrown(&env))?;
        Ok(subnets.iter().map(ToString::to_string).collect())
    }

    /// The adapter confirmed the table of `generation`.
    #[napi]
    pub fn applied(&self, generation: f64) {
        self.channel.applied(generation as u64);
    }

    /// The adapter could not apply or confirm the table of `generation`.
    #[napi]
    pub fn failed(&self, generation: f64, message: String) {
        self.channel.failed(generation as u64, message);
    }

    #[napi]
    pub fn table(&self) -> Option<RouteTableObject> {
        Some(table_object(self.channel.table()?, &self.service, self.port))
    }

    #[napi(getter)]
    pub fn id(&self) -> String {
        self.channel.id().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[napi]
    pub fn stats(&self) -> RouterStats {
        let c = self.channel.counts();
        RouterStats {
            status_heard: c.status_heard as i64,
            other_service: c.other_service as i64,
            outside_subnets: c.outside_subnets as i64,
            refused: c.refused as i64,
            malformed: c.malformed as i64,
            applies: c.applies as i64,
            apply_failures: c.apply_failures as i64,
            drained_sent: c.drained_sent as i64,
            hellos_sent: c.hellos_sent as i64,
        }
    }

    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        self.channel.close();
        self.registration.release(&env)
    }

    #[napi]
    pub fn log(&self, level: String, message: String) {
        log_at(&self.log, &level, &message);
    }
}

/// A route table as JS sees it: every server on the service's port.
fn table_object(table: RouteTable, service: &str, port: u16) -> RouteTableObject {
    RouteTableObject {
        service: service.to_string(),
        generation: table.generation as f64,
        servers: table.servers.into_iter().map(|s| server_object(s, port)).collect(),
    }
}

fn server_object(s: crate::protocol::routing::RouteServer, port: u16) -> RouteServer {
    RouteServer {
        id: s.timestamp_ms.to_string(),
        address: s.address.to_string(),
        port: port.into(),
        state: match s.state {
            ServerState::Ready => "ready",
            ServerState::Drain => "drain",
        }
        .to_string(),
        timestamp: s.timestamp_ms as f64,
    }
}
