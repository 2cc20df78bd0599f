//! `NativeStatus`, the native half of `HandoverStatus` (index.js):
//! converts, forwards to `channel::status`, maps errors.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::Arc;

use napi::bindgen_prelude::BigInt;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Result, Status, Unknown};
use napi_derive::napi;

use super::arguments;
use super::errors::{started_at, thrown};
use super::{log_at, logger, HandoverStats, LogFunction, Registration};
use crate::channel::status::{Announce, StatusChannel, StatusSink};
use crate::config::{self, StatusConfig};
use crate::io::log::Logger;
use crate::protocol::drain::KnownRouter;
use crate::protocol::wire::StatusMessage;

/// Bounded: a flood of valid status packets is dropped here rather than
/// queued without limit for a JS thread that cannot keep up.
type StatusFunction =
    ThreadsafeFunction<HandoverStatusMessage, Unknown<'static>, HandoverStatusMessage, Status, false, false, 4096>;

/// What a status listener receives for every status packet heard.
#[napi(object)]
pub struct HandoverStatusMessage {
    /// The sender's `startedAt`, ms since the epoch.
    pub timestamp: BigInt,
    pub service_name: String,
    pub addresses: Vec<String>,
    /// `'UP'`, `'DOWN'`, or another status of up to 8 bytes.
    pub status: String,
}

impl From<StatusMessage> for HandoverStatusMessage {
    fn from(message: StatusMessage) -> Self {
        HandoverStatusMessage {
            timestamp: BigInt::from(message.timestamp_ms),
            service_name: message.service_name,
            addresses: message.addresses.iter().map(ToString::to_string).collect(),
            status: message.status,
        }
    }
}

struct JsStatusSink(StatusFunction);

impl StatusSink for JsStatusSink {
    fn deliver(&self, message: StatusMessage, _from: SocketAddrV4) -> bool {
        self.0.call(message.into(), ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
    }
}

/// The native half of `HandoverStatus`; use the class exported by `index.js`.
#[napi]
pub struct NativeStatus {
    channel: StatusChannel,
    registration: Registration,
    log: Logger,
    port: u16,
    address: String,
}

#[napi]
impl NativeStatus {
    #[napi(constructor)]
    #[allow(clippy::too_many_arguments)] // mirrors the JS constructor it backs
    pub fn new(
        node: Env,
        started_at_ms: f64,
        #[napi(ts_arg_type = "string")] service_name: Unknown<'_>,
        #[napi(ts_arg_type = "string[]")] addresses: Unknown<'_>,
        context_id: String,
        #[napi(ts_arg_type = "HandoverOptions | undefined | null")] options: Option<Unknown<'_>>,
        environment: HashMap<String, String>,
        #[napi(ts_arg_type = "((record: LogRecord) => void) | undefined | null")] log_sink: Option<LogFunction>,
    ) -> Result<Self> {
        let started_at_ms = started_at(started_at_ms).map_err(thrown(&node))?;
        let service_name = arguments::string(service_name, "serviceName")?.map_err(thrown(&node))?;
        let addresses = arguments::addresses(addresses)?.map_err(thrown(&node))?;
        let identity = config::status_identity(started_at_ms, &service_name, &addresses).map_err(thrown(&node))?;
        let config = StatusConfig::resolve(&arguments::options(options)?.map_err(thrown(&node))?, &environment)
            .map_err(thrown(&node))?;
        let log = logger(config.log_level, &context_id, log_sink);
        let (port, address) = (config.channel.port, config.channel.target.to_string());
        let channel = StatusChannel::new(identity, config, log.clone());
        let registration = Registration::new(&node, channel.close_handle())?;
        Ok(NativeStatus {
            channel,
            registration,
            log,
            port,
            address,
        })
    }

    #[napi(getter)]
    pub fn port(&self) -> u32 {
        self.port.into()
    }

    #[napi(getter)]
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// UP now and every 10 s, from a timer on this thread's loop.
    #[napi]
    pub fn start_up(&self, env: Env) -> Result<()> {
        self.start(&env, Announce::Up)
    }

    /// DOWN now and every 100 ms, from a timer on this thread's loop.
    #[napi]
    pub fn start_down(&self, env: Env) -> Result<()> {
        self.start(&env, Announce::Down)
    }

    #[napi]
    pub fn start_listening(
        &self,
        #[napi(ts_arg_type = "(message: HandoverStatusMessage) => void")] callback: StatusFunction,
        env: Env,
    ) -> Result<()> {
        self.channel
            .start_listening(Arc::new(JsStatusSink(callback)))
            .map_err(thrown(&env))
    }

    /// DOWN (as `startDown`), then calls `done` once every router heard
    /// recently confirmed it, or after `timeout_ms`. Holding `done` keeps
    /// the process alive meanwhile.
    #[napi]
    pub fn drain(
        &self,
        env: Env,
        timeout_ms: f64,
        #[napi(ts_arg_type = "(report: DrainReport) => void")] done: DrainFunction,
    ) -> Result<()> {
        self.start(&env, Announce::Down)?;
        if let Err(e) = self.channel.listen_for_routers() {
            self.log
                .warn(format_args!("cannot hear routers, so the drain waits for none: {e}"));
        }
        let channel = self.channel.clone();
        let timeout = std::time::Duration::from_millis(timeout_ms.max(0.0) as u64);
        crate::io::runtime::spawn(async move {
            let outcome = channel.drained(timeout).await;
            let report = DrainReport {
                acknowledged: outcome.standing.acknowledged.into_iter().map(router_info).collect(),
                timed_out: outcome.standing.waiting.into_iter().map(router_info).collect(),
                waited_ms: outcome.waited.as_secs_f64() * 1000.0,
            };
            done.call(report, ThreadsafeFunctionCallMode::NonBlocking);
        });
        Ok(())
    }

    #[napi]
    pub fn stats(&self) -> HandoverStats {
        self.channel.stats().into()
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

/// A router heard on the router port.
#[napi(object)]
pub struct RouterInfo {
    /// 16 hex digits, random per router.
    pub id: String,
    pub name: String,
    /// The IPv4 address it spoke from.
    pub address: String,
}

/// How `drain()` ended.
#[napi(object)]
pub struct DrainReport {
    /// Routers heard recently that confirmed they send no new requests here.
    pub acknowledged: Vec<RouterInfo>,
    /// Routers still waited for when the timeout passed.
    pub timed_out: Vec<RouterInfo>,
    pub waited_ms: f64,
}

fn router_info(router: KnownRouter) -> RouterInfo {
    RouterInfo {
        id: router.id_hex(),
        name: router.name,
        address: router.address.to_string(),
    }
}

type DrainFunction = ThreadsafeFunction<DrainReport, Unknown<'static>, DrainReport, Status, false>;

impl NativeStatus {
    fn start(&self, env: &Env, what: Announce) -> Result<()> {
        let host = self.registration.host_loop(env)?;
        self.channel.start_on(&host, what).map_err(thrown(env))
    }
}
