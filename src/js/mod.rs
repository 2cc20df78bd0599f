//! The N-API glue: classes and functions that convert JS values, forward
//! to the `channel` layer, and map errors (`errors`). Nothing else lives
//! here: no schedule, no registry, no accounting.
//! - `peer`: `NativePeer`, the native half of `HandoverPeer`;
//! - `shared_listener`: `NativeSharedListener`, the native half of
//!   `listenShared`'s handle;
//! - `status`: `NativeStatus`, the native half of `HandoverStatus`;
//! - `tools`: settings, descriptions and codecs for the CLI and tools;
//! - `errors`: every error this addon throws.

use napi::bindgen_prelude::{JsObjectValue, Object};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Result, Status, Unknown};
use napi_derive::napi;

use crate::channel::lifecycle::{CloseHandle, HostLoop, Registry, Released, Slot};
use crate::channel::stats::Snapshot;
use crate::io::log::{bounded_sink, Level, Logger};
use crate::io::uv;

mod arguments;
mod errors;
mod packet_description;
mod peer;
mod router;
mod shared_listener;
mod status;
mod tools;

use errors::Failure;

/// Packet counters of a peer or a status channel.
#[napi(object)]
pub struct HandoverStats {
    /// Packets received on the listening socket (status: and on the router
    /// port, once `drain()` or a router's HELLO bound it).
    pub received: i64,
    /// Announcements from a younger instance (status: messages delivered).
    pub accepted: i64,
    /// Packets that were not a valid message (status: router packets too).
    pub malformed: i64,
    /// Announcements from an older or same-age instance.
    pub older: i64,
    /// Announcements scoped to another service.
    pub other_service: i64,
    /// Unsigned or forged announcements (status: router messages) while a secret is set.
    pub unauthenticated: i64,
    /// Signed announcements (status: router messages) that were stale or already seen.
    pub replayed: i64,
    /// Our own announcements, looped back.
    pub own: i64,
    /// Status messages dropped because JS did not keep up (the queue to it was full).
    pub undelivered: i64,
    /// Status channel: routers' HELLO and DRAINED messages taken.
    pub from_routers: i64,
    /// Packets sent.
    pub sent: i64,
    /// Packets that could not be sent.
    pub send_errors: i64,
    /// Optional socket options the OS refused on the listening socket (for
    /// example `IP_MULTICAST_ALL` under qemu-user); listening went on without them.
    pub refused_socket_options: Vec<String>,
}

impl From<Snapshot> for HandoverStats {
    fn from(s: Snapshot) -> Self {
        let n = |v: u64| v as i64;
        HandoverStats {
            received: n(s.received),
            accepted: n(s.accepted),
            malformed: n(s.malformed),
            older: n(s.older),
            other_service: n(s.other_service),
            unauthenticated: n(s.unauthenticated),
            replayed: n(s.replayed),
            own: n(s.own),
            undelivered: n(s.undelivered),
            from_routers: n(s.from_routers),
            sent: n(s.sent),
            send_errors: n(s.send_errors),
            refused_socket_options: s.refused_options.options().map(|o| o.name().to_string()).collect(),
        }
    }
}

/// One log line for a custom logger.
#[napi(object)]
pub struct LogRecord {
    /// Syslog level name.
    pub level: String,
    pub message: String,
}

/// Weak: a custom logger must not keep the process alive. Bounded: a JS
/// thread that cannot keep up loses lines (counted) rather than memory.
type LogFunction = ThreadsafeFunction<LogRecord, Unknown<'static>, LogRecord, Status, false, true, 1024>;

/// A logger with the object's context id, writing to stdout or to the
/// user's logger (through a bounded queue, see `io::log::bounded_sink`).
fn logger(level: Level, context_id: &str, sink: Option<LogFunction>) -> Logger {
    let sink = sink.map(|function| {
        bounded_sink(move |level, message| {
            let record = LogRecord {
                level: level.name().to_string(),
                message,
            };
            function.call(record, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
        })
    });
    Logger::new(level, context_id, sink)
}

fn log_at(log: &Logger, level: &str, message: &str) {
    log.log(Level::parse(level).unwrap_or(Level::Info), format_args!("{message}"));
}

/// This environment's registry of open objects (`channel::lifecycle`),
/// made on first use, and closed with the environment (a worker ending).
fn registry(env: &Env) -> Result<Registry> {
    if let Some(registry) = env.get_instance_data::<Registry>()? {
        return Ok(registry.clone());
    }
    let registry = Registry::default();
    env.set_instance_data(registry.clone(), (), |teardown| {
        // Dropped here, after the registry let go.
        drop(teardown.value.environment_ended());
    })?;
    Ok(registry)
}

/// An object's entry in its environment's registry, from construction
/// until `close()`: what closes it with the environment, and what owns the
/// handles it runs on this thread's loop.
#[derive(Clone)]
struct Registration {
    registry: Registry,
    key: u64,
}

impl Registration {
    fn new(env: &Env, handle: CloseHandle) -> Result<Self> {
        let registry = registry(env)?;
        let key = registry.add(handle).map_err(errors::thrown(env))?;
        Ok(Registration { registry, key })
    }

    /// Where the object's handles run: this thread's loop, with Node's libuv.
    fn host_loop(&self, env: &Env) -> Result<HostLoop<'_>> {
        let api = uv::node_api().map_err(|e| Failure::Socket(e.to_string()).throw(env))?;
        let event_loop = env
            .get_uv_event_loop()
            .map_err(|e| Failure::Socket(format!("this JS runtime has no event loop to run on: {e}")).throw(env))?;
        Ok(HostLoop {
            api,
            event_loop,
            registry: &self.registry,
            key: self.key,
            now: std::time::Instant::now,
        })
    }

    /// Takes what one of the object's slots holds, to be dropped.
    fn take(&self, slot: Slot) -> Released {
        // Only a re-entrant call fails here, and there is nothing to take then.
        self.registry.take(self.key, slot).unwrap_or_default()
    }

    /// Forgets a closed object; what it ran on the loop stops once dropped,
    /// after the registry let go.
    fn release(&self, env: &Env) -> Result<()> {
        let released = self.registry.remove(self.key).map_err(errors::thrown(env))?;
        drop(released);
        Ok(())
    }
}

/// Whether the host's event loop can watch a socket for us. Bun exports
/// libuv's poll functions as stubs that abort the process, which a symbol
/// lookup cannot tell from the real thing: so the host is asked who it is.
fn host_loop_watches_sockets(env: &Env) -> Result<bool> {
    let process: Object = env.get_global()?.get_named_property("process")?;
    let versions: Object = process.get_named_property("versions")?;
    Ok(!versions.has_named_property("bun")?)
}
