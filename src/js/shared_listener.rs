//! `NativeSharedListener`, the native half of `SharedListener` (index.js):
//! converts, forwards to `channel::shared_listener`, maps errors.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use napi::{Env, Result};
use napi_derive::napi;

use super::errors::{thrown, Failure};
use super::{log_at, logger, LogFunction, Registration};
use crate::channel::lifecycle::{Closable, CloseHandle};
use crate::channel::shared_listener::{SharedListener, Steering};
use crate::io::log::{Level, Logger};

/// What a shared listener's `stats()` gives.
#[napi(object)]
pub struct SharedListenerStats {
    /// `host:port` it listens on.
    pub address: String,
    /// `'hash'` (no program of ours), `'previous'` (new connections go to
    /// the older instance), `'self'` (they come here), `'refused'` (the
    /// kernel refused steering: both instances get new connections), `'off'`
    /// (`steering: false`: likewise).
    pub steering: String,
    /// Why steering was refused.
    pub steering_refused: Option<String>,
    /// Listeners in the port's group when last counted.
    pub group_size: u32,
    /// `net.ipv4.tcp_migrate_req` here; null where the kernel has none.
    pub migrate_requests: Option<bool>,
    pub draining: bool,
    /// How long the drain took, once done.
    pub drain_ms: Option<f64>,
    pub closed: bool,
}

/// The native half of `SharedListener`; use `listenShared` from `index.js`.
#[napi]
pub struct NativeSharedListener {
    inner: Arc<SharedListener>,
    registration: Registration,
    log: Logger,
    fd: i64,
}

/// Opens a shared listener; `null` when the port is taken by a listener
/// that does not share it (the caller retries).
#[napi]
#[allow(clippy::too_many_arguments)] // mirrors the JS call it backs
pub fn open_shared_listener(
    env: Env,
    host: String,
    port: i64,
    backlog: i32,
    service: String,
    steering: bool,
    context_id: String,
    log_level: Option<String>,
    #[napi(ts_arg_type = "((record: LogRecord) => void) | undefined | null")] log_sink: Option<LogFunction>,
) -> Result<Option<NativeSharedListener>> {
    let ip: IpAddr = host
        .parse()
        .map_err(|_| Failure::Value(format!("host must be an IP address; got {host:?}")))
        .map_err(thrown(&env))?;
    // Port 0 would be a port of its own, shared with nobody.
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| Failure::Range(format!("port must be 1 to 65535; got {port}")))
        .map_err(thrown(&env))?;
    let level = log_level.as_deref().and_then(Level::parse).unwrap_or(Level::Info);
    let log = logger(level, &context_id, log_sink);
    let (listener, for_node) =
        match SharedListener::open(SocketAddr::new(ip, port), backlog, &service, steering, log.clone()) {
            Ok(opened) => opened,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Ok(None),
            Err(e) => {
                return Err(Failure::Socket(format!("cannot listen on {host} port {port}: {e}")).throw(&env));
            }
        };
    let inner = Arc::new(listener);
    let registration = Registration::new(&env, CloseHandle::new(&inner))?;
    #[cfg(unix)]
    let fd = {
        use std::os::fd::IntoRawFd;
        for_node.into_raw_fd() as i64
    };
    #[cfg(not(unix))]
    let fd = {
        drop(for_node);
        -1
    };
    Ok(Some(NativeSharedListener {
        inner,
        registration,
        log,
        fd,
    }))
}

#[napi]
impl NativeSharedListener {
    /// The descriptor Node's server is to own (`server.listen({ fd })`).
    #[napi(getter)]
    pub fn fd(&self) -> i64 {
        self.fd
    }

    #[napi(getter)]
    pub fn port(&self) -> u32 {
        self.inner.address().port().into()
    }

    /// Every new connection of the group now comes to this instance.
    #[napi]
    pub fn steer_to_self(&self, env: Env) -> Result<String> {
        let steering = self.inner.steer_to_self().map_err(thrown(&env))?;
        Ok(steering.name().to_string())
    }

    /// One check of the drain (see `channel::shared_listener`).
    #[napi]
    pub fn drain_step(&self, env: Env) -> Result<bool> {
        self.inner.drain_step().map_err(thrown(&env))
    }

    #[napi]
    pub fn stats(&self) -> SharedListenerStats {
        let s = self.inner.stats();
        SharedListenerStats {
            address: s.address.to_string(),
            steering: s.steering.name().to_string(),
            steering_refused: match s.steering {
                Steering::Refused(why) => Some(why),
                _ => None,
            },
            group_size: s.group_size,
            migrate_requests: s.migrate_requests,
            draining: s.draining,
            drain_ms: s.drain_ms,
            closed: s.closed,
        }
    }

    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        self.inner.close();
        self.registration.release(&env)
    }

    #[napi]
    pub fn log(&self, level: String, message: String) {
        log_at(&self.log, &level, &message);
    }
}
