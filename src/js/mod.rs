//! The N-API glue: classes that convert JS values, forward to `peer` and
//! `status`, and map errors. No behaviour lives here.
//!
//! Errors are thrown in one place (`Failure`), with the JS class and a
//! stable `code` that `index.js` and users can branch on.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use napi::bindgen_prelude::JsObjectValue;
use napi::bindgen_prelude::{BigInt, Buffer, Function, FunctionRef, Promise, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, Error, JsValue, Result, Status};
use napi_derive::napi;

use crate::channel::lifecycle::CloseHandle;
use crate::channel::peer::{CallbackCalled, CallbackFailure, CallbackSettled, Events, Peer, ShuttingDown};
use crate::channel::stats::Snapshot;
use crate::channel::status::{KeepAlive, StatusChannel, StatusSink};
use crate::channel::ChannelError;
use crate::config::{self, ConfigError, Options, PeerConfig, StatusConfig};
use crate::io::log::{Level, Logger};
use crate::io::net::NextRead;
use crate::io::uv::{self, Readiness, Then, Ticker, Watch};
use crate::protocol::time_value::{time_value, InvalidTime};
use crate::protocol::wire::{self, StatusMessage};

mod packet_description;

/// Options for `HandoverPeer` and `HandoverStatus`. Each option wins over
/// its environment variable, which wins over the default. Invalid values
/// throw a `TypeError` or `RangeError` from the constructor.
#[napi(object)]
#[derive(Default)]
pub struct HandoverOptions {
    /// UDP port. Env `SHUTDOWN_PORT` (peer, default 1536) / `HANDOVER_STATUS_PORT` (status, default 1537).
    pub port: Option<f64>,
    /// Where announcements are sent: a multicast group (joined by the
    /// listener), or a unicast or broadcast address. Env
    /// `SHUTDOWN_BROADCAST_ADDRESS` / `HANDOVER_STATUS_BROADCAST_ADDRESS`;
    /// default `239.192.16.16`.
    pub address: Option<String>,
    /// `'bridge'` (default): join on the default interface; each container
    /// has its own network namespace. `'host'`: join and send only on
    /// `networkInterface`, so that a fleet on one LAN does not hear each
    /// other. Env `HANDOVER_NETWORK_MODE`.
    #[napi(ts_type = "'bridge' | 'host'")]
    pub network_mode: Option<String>,
    /// Host mode: the interface's name or IPv4 address. Env `NETWORK_INTERFACE`; default `supervisor0`.
    pub network_interface: Option<String>,
    /// Regular interval between announcements in ms (after the start-up
    /// burst). Env `HANDOVER_HEARTBEAT_INTERVAL_MS`; default 10000.
    pub heartbeat_interval_ms: Option<f64>,
    /// Where the handover-complete file is written. Env
    /// `BALENA_SERVICE_HANDOVER_COMPLETE_PATH`; default
    /// `/tmp/balena/handover-complete`, or `/tmp/resin/resin-kill-me` when
    /// only `/tmp/resin` exists. A relative path is relative to the working
    /// directory; a symbolic link is written through (the link stays).
    pub handover_complete_path: Option<String>,
    /// Write the complete file anyway when the shutdown callback has not
    /// settled after this many ms. Env `HANDOVER_CALLBACK_TIMEOUT_MS`;
    /// default: wait forever.
    pub callback_timeout_ms: Option<f64>,
    /// Service scope: announcements of other services are ignored. Env
    /// `BALENA_SERVICE_NAME`. At most 63 bytes of UTF-8 (a `RangeError`
    /// here); a longer `BALENA_SERVICE_NAME` is shortened, with a warning.
    pub service_name: Option<String>,
    /// Shared secret: announcements are signed (HMAC-SHA256) and unsigned,
    /// forged or replayed ones ignored. Env `HANDOVER_SECRET`.
    pub secret: Option<String>,
    /// Syslog level name: `emerg alert crit error warning notice info debug`
    /// (`warn`, `err`, `critical`, `fatal` accepted too). Env `LOGLEVEL`; default `info`.
    pub log_level: Option<String>,
}

impl From<HandoverOptions> for Options {
    fn from(o: HandoverOptions) -> Self {
        Options {
            port: o.port,
            address: o.address,
            network_mode: o.network_mode,
            network_interface: o.network_interface,
            heartbeat_interval_ms: o.heartbeat_interval_ms,
            handover_complete_path: o.handover_complete_path,
            callback_timeout_ms: o.callback_timeout_ms,
            service_name: o.service_name,
            secret: o.secret,
            log_level: o.log_level,
        }
    }
}

/// Packet counters of a peer or a status channel.
#[napi(object)]
pub struct HandoverStats {
    /// Packets received on the listening socket.
    pub received: i64,
    /// Announcements from a younger instance (status: messages delivered).
    pub accepted: i64,
    /// Packets that were not a valid message.
    pub malformed: i64,
    /// Announcements from an older or same-age instance.
    pub older: i64,
    /// Announcements scoped to another service.
    pub other_service: i64,
    /// Unsigned or forged announcements while a secret is set.
    pub unauthenticated: i64,
    /// Signed announcements that were stale or already seen.
    pub replayed: i64,
    /// Our own announcements, looped back.
    pub own: i64,
    /// Status messages dropped because JS did not keep up (the queue to it was full).
    pub undelivered: i64,
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
            sent: n(s.sent),
            send_errors: n(s.send_errors),
            refused_socket_options: s.refused_options.options().map(|o| o.name().to_string()).collect(),
        }
    }
}

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

/// One log line for a custom logger.
#[napi(object)]
pub struct LogRecord {
    /// Syslog level name.
    pub level: String,
    pub message: String,
}

/// The argument of `'shuttingDown'` listeners: a younger instance was heard.
#[napi(object, object_from_js = false)]
pub struct ShuttingDownEvent {
    #[napi(ts_type = "'shuttingDown'")]
    pub r#type: &'static str,
    /// The younger instance's `startedAt`, ms since the epoch.
    pub heard_started_at: i64,
    /// This instance's `startedAt`, ms since the epoch.
    pub own_started_at: i64,
    /// `address:port` the announcement came from.
    pub from: String,
}

/// Emitted as `'handover'`, and the value of `peer.handover`, once this instance has handed over.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct HandoverReport {
    #[napi(ts_type = "'handover'")]
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

/// Receives the handover report. Referenced: whoever holds it (the listener
/// while it listens, the handover task until the report is out) keeps the
/// process alive, whatever `close()` does meanwhile.
type ReportFunction = ThreadsafeFunction<HandoverReport, Unknown<'static>, HandoverReport, Status, false>;
/// The wrapped shutdown callback, called from the runtime thread (hosts
/// whose loop cannot watch a socket for us). Referenced, as a listening
/// socket would be.
type RemoteCallbackFunction = ThreadsafeFunction<(), Promise<Option<String>>, (), Status, false>;
/// The wrapped shutdown callback, resolving to `null` or to the error's text.
/// Called with no argument: building the event costs the handover path
/// several microseconds, so JS asks for it (`shuttingDownEvent`) only when
/// someone listens.
type CallbackFunction<'env> = Function<'env, (), Promise<Option<String>>>;
/// Strong: a running status ticker keeps the process alive, as a JS interval would.
type KeepAliveFunction = ThreadsafeFunction<(), Unknown<'static>, (), Status, false>;
/// Weak: a custom logger must not keep the process alive. Bounded: a JS
/// thread that cannot keep up loses lines (counted) rather than memory.
type LogFunction = ThreadsafeFunction<LogRecord, Unknown<'static>, LogRecord, Status, false, true, 1024>;
/// Bounded: a flood of valid status packets is dropped here rather than
/// queued without limit for a JS thread that cannot keep up.
type StatusFunction =
    ThreadsafeFunction<HandoverStatusMessage, Unknown<'static>, HandoverStatusMessage, Status, false, false, 4096>;

/// Passes the report to JS, then stops the peer's listener (on the JS
/// thread, which owns it): from then on, the process may exit.
struct JsReports {
    report: ReportFunction,
    /// The peer's key in `OpenObjects`, where its watch is.
    registration: u64,
}

impl Events for JsReports {
    fn handover(&self, report: crate::channel::peer::HandoverReport) {
        let report = HandoverReport {
            r#type: "handover",
            heard_started_at: report.heard_started_at,
            from: report.from.to_string(),
            callback_error: report.callback_error,
            callback_timed_out: report.callback_timed_out,
            complete_file: report.complete_file,
            complete_file_error: report.complete_file_error,
        };
        let registration = self.registration;
        self.report
            .call_with_return_value(report, ThreadsafeFunctionCallMode::NonBlocking, move |_, env| {
                let watch = OpenObjects::with(&env, registration, |open| open.watch.take())?;
                drop(watch);
                Ok(())
            });
    }
}

struct JsKeepAlive(#[allow(dead_code)] KeepAliveFunction);

impl KeepAlive for JsKeepAlive {}

struct JsStatusSink(StatusFunction);

impl StatusSink for JsStatusSink {
    fn deliver(&self, message: StatusMessage, _from: SocketAddrV4) -> bool {
        let message = HandoverStatusMessage {
            timestamp: BigInt::from(message.timestamp_ms),
            service_name: message.service_name,
            addresses: message.addresses.iter().map(ToString::to_string).collect(),
            status: message.status,
        };
        self.0.call(message, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
    }
}

/// Calls the JS half of the shutdown callback, on the JS thread, from the
/// listener's watch: inside a callback scope, so that the promise jobs it
/// starts run when the scope closes, as after any I/O callback of Node's.
struct JsShutdown {
    env: sys::napi_env,
    /// The peer's key in `OpenObjects`, where its ticker is.
    registration: u64,
    function: FunctionRef<(), Promise<Option<String>>>,
    context: sys::napi_async_context,
}

impl JsShutdown {
    fn new(env: &Env, function: CallbackFunction<'_>, registration: u64) -> Result<Self> {
        let name = env.create_string("HandoverPeer")?;
        let mut context = std::ptr::null_mut();
        // SAFETY: called on the JS thread during a napi call, with live values.
        check(unsafe { sys::napi_async_init(env.raw(), std::ptr::null_mut(), name.raw(), &mut context) })?;
        Ok(JsShutdown {
            env: env.raw(),
            registration,
            function: function.create_ref()?,
            context,
        })
    }

    fn call(self) -> CallbackCalled {
        let returned = self.call_in_scope();
        // Announcing has stopped (the peer is handing over): let the ticker go now.
        if let Ok(ticker) = OpenObjects::with(&Env::from_raw(self.env), self.registration, |open| open.ticker.take()) {
            drop(ticker);
        }
        CallbackCalled {
            // The wrapper (index.js) never throws: a call that fails is JS
            // that cannot run any more, an environment that is ending.
            settled: returned.map_or_else(|_| ended(), settled),
        }
    }

    fn call_in_scope(&self) -> Result<Promise<Option<String>>> {
        let env = Env::from_raw(self.env);
        let raw = self.env;
        let (mut handles, mut resource, mut scope) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: on the JS thread (the watch's callback), outside any other
        // scope; every scope opened here is closed here, in reverse order.
        unsafe {
            check(sys::napi_open_handle_scope(raw, &mut handles))?;
            let opened = check(sys::napi_create_object(raw, &mut resource))
                .and_then(|()| check(sys::napi_open_callback_scope(raw, resource, self.context, &mut scope)));
            let result = opened.and_then(|()| self.function.borrow_back(&env)?.call(()));
            if !scope.is_null() {
                sys::napi_close_callback_scope(raw, scope);
            }
            sys::napi_close_handle_scope(raw, handles);
            result
        }
    }
}

/// What the wrapped callback's Promise settles to, for the handover task.
fn settled(promise: Promise<Option<String>>) -> CallbackSettled {
    Box::pin(async move {
        match promise.await {
            Ok(None) => Ok(()),
            Ok(Some(error)) => Err(CallbackFailure::Failed(error)),
            // The wrapper (index.js) never rejects: a promise that fails to
            // settle was dropped with its environment.
            Err(_) => Err(CallbackFailure::EnvironmentEnded),
        }
    })
}

/// The callback could not run: its environment is ending.
fn ended() -> CallbackSettled {
    Box::pin(std::future::ready(Err(CallbackFailure::EnvironmentEnded)))
}

/// Calls the wrapped shutdown callback from the runtime thread, through a
/// threadsafe function: for hosts whose loop cannot watch a socket for us.
fn remote_shutdown(function: RemoteCallbackFunction) -> impl FnOnce(ShuttingDown) -> CallbackCalled + Send {
    move |_| {
        let (returned, promise) = tokio::sync::oneshot::channel();
        let queued = function.call_with_return_value((), ThreadsafeFunctionCallMode::NonBlocking, move |result, _| {
            let _ = returned.send(result.ok());
            Ok(())
        });
        if queued != Status::Ok {
            return CallbackCalled { settled: ended() };
        }
        CallbackCalled {
            settled: Box::pin(async move {
                match promise.await {
                    Ok(Some(promise)) => settled(promise).await,
                    // Not called (the environment is ending), or JS could not run it.
                    _ => Err(CallbackFailure::EnvironmentEnded),
                }
            }),
        }
    }
}

impl Drop for JsShutdown {
    fn drop(&mut self) {
        // SAFETY: dropped on the JS thread (by the watch or after the call).
        unsafe { sys::napi_async_destroy(self.env, self.context) };
    }
}

/// Whether the host's event loop can watch a socket for us. Bun exports
/// libuv's poll functions as stubs that abort the process, which a symbol
/// lookup cannot tell from the real thing: so the host is asked who it is.
fn host_loop_watches_sockets(env: &Env) -> Result<bool> {
    let process: napi::bindgen_prelude::Object = env.get_global()?.get_named_property("process")?;
    let versions: napi::bindgen_prelude::Object = process.get_named_property("versions")?;
    Ok(!versions.has_named_property("bun")?)
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), "napi call failed".to_string()))
    }
}

/// Every error this addon throws: its JS class and a stable `code`, in
/// Node's style. The one place where Rust errors become JS errors.
enum Failure {
    /// A value of the wrong type or shape: `TypeError`, `ERR_INVALID_ARG_TYPE`.
    Type(String),
    /// A value outside its limits: `RangeError`, `ERR_OUT_OF_RANGE`.
    Range(String),
    /// A value that can never be valid (a NUL in a string): `TypeError`, `ERR_INVALID_ARG_VALUE`.
    Value(String),
    /// The object was closed: `Error`, `ERR_HANDOVER_CLOSED`.
    Closed(String),
    /// The OS refused a socket: `Error`, `ERR_HANDOVER_SOCKET`.
    Socket(String),
}

impl Failure {
    fn code(&self) -> &'static str {
        match self {
            Failure::Type(_) => "ERR_INVALID_ARG_TYPE",
            Failure::Range(_) => "ERR_OUT_OF_RANGE",
            Failure::Value(_) => "ERR_INVALID_ARG_VALUE",
            Failure::Closed(_) => "ERR_HANDOVER_CLOSED",
            Failure::Socket(_) => "ERR_HANDOVER_SOCKET",
        }
    }

    /// Throws the JS error; the returned error only tells napi it is pending.
    fn throw(self, env: &Env) -> Error {
        let code = self.code();
        let thrown = match &self {
            Failure::Type(message) | Failure::Value(message) => env.throw_type_error(&printable(message), Some(code)),
            Failure::Range(message) => env.throw_range_error(&printable(message), Some(code)),
            Failure::Closed(message) | Failure::Socket(message) => env.throw_error(&printable(message), Some(code)),
        };
        match thrown {
            Ok(()) => Error::new(Status::PendingException, code.to_string()),
            Err(e) => e,
        }
    }
}

/// napi makes a C string of a message: a NUL the message quotes from a
/// value would make the throw itself fail (a `GenericFailure` instead).
fn printable(message: &str) -> std::borrow::Cow<'_, str> {
    match message.contains('\0') {
        true => message.replace('\0', "\\0").into(),
        false => message.into(),
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Type(message) => Failure::Type(message),
            ConfigError::Range(message) => Failure::Range(message),
            ConfigError::Value(message) => Failure::Value(message),
        }
    }
}

impl From<ChannelError> for Failure {
    fn from(e: ChannelError) -> Self {
        let message = e.to_string();
        match e {
            ChannelError::Closed(_) => Failure::Closed(message),
            ChannelError::Io(_) => Failure::Socket(message),
        }
    }
}

/// `.map_err(thrown(&env))`: converts and throws.
fn thrown<E: Into<Failure>>(env: &Env) -> impl FnOnce(E) -> Error + '_ {
    move |e| e.into().throw(env)
}

/// The time value of `startedAt`, which index.js checked to be a Date:
/// whether that Date is valid is checked here only (see `time_value`).
fn started_at(ms: f64) -> std::result::Result<i64, Failure> {
    time_value(ms).map_err(|invalid| {
        Failure::Type(match invalid {
            InvalidTime::NotANumber => "startedAt must be a valid Date; got an Invalid Date".into(),
            InvalidTime::OutOfRange => "startedAt must be a valid Date".into(),
        })
    })
}

/// The `timestamp` argument of `encodeStatusMessage`, a number of ms.
fn timestamp(ms: f64) -> std::result::Result<i64, Failure> {
    time_value(ms).map_err(|_| Failure::Type("timestamp must be a valid Date".into()))
}

fn logger(level: Level, context_id: &str, sink: Option<LogFunction>) -> Logger {
    let sink = sink.map(|function| -> crate::io::log::Sink {
        let dropped = AtomicU64::new(0);
        Arc::new(move |level: Level, message: &str| {
            let send = |level: Level, message: String| {
                let record = LogRecord {
                    level: level.name().to_string(),
                    message,
                };
                function.call(record, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
            };
            // Once the queue has room again, say how many lines it lost.
            let lost = dropped.swap(0, Ordering::Relaxed);
            if lost > 0
                && !send(
                    Level::Warning,
                    format!("{lost} log line(s) dropped: the logger did not keep up"),
                )
            {
                dropped.fetch_add(lost, Ordering::Relaxed);
            }
            if !send(level, message.to_string()) {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    Logger::new(level, context_id, sink)
}

fn log_at(log: &Logger, level: &str, message: &str) {
    log.log(Level::parse(level).unwrap_or(Level::Info), format_args!("{message}"));
}

/// The objects of one JS environment that are not closed yet, closed when
/// the environment is torn down (a worker thread ending), so that no socket
/// outlives it. One registration per environment: a cleanup hook per object
/// would leak the hook's memory, which napi cannot free once removed.
/// It also holds what a peer runs on this thread's loop (`uv`), which only
/// this thread may touch: its listener's watch and its announcement ticker.
///
/// Reached through a `RefCell` behind an `Rc` that is cloned out of napi's
/// instance data at once: no `&mut` to it outlives a call, and a borrow that
/// overlaps another (a bug) fails loudly as a JS error instead of aliasing.
/// Watches and tickers are taken out before they are dropped, so dropping
/// one never runs inside a borrow.
#[derive(Default)]
struct OpenObjects {
    next_key: u64,
    objects: HashMap<u64, Open>,
}

struct Open {
    handle: CloseHandle,
    watch: Option<Watch>,
    ticker: Option<Ticker>,
}

type Registry = Rc<RefCell<OpenObjects>>;

impl OpenObjects {
    /// This environment's registry, made on first use. JS thread only.
    fn of(env: &Env) -> Result<Registry> {
        if let Some(registry) = env.get_instance_data::<Registry>()? {
            return Ok(registry.clone());
        }
        let registry = Registry::default();
        env.set_instance_data(registry.clone(), (), |teardown| {
            // Taken out first: closing and dropping run outside the borrow.
            let objects = match teardown.value.try_borrow_mut() {
                Ok(mut open) => std::mem::take(&mut open.objects),
                Err(_) => unreachable!("the registry is borrowed while its environment is torn down"),
            };
            for (_, open) in objects {
                open.handle.environment_ended();
            }
        })?;
        Ok(registry)
    }

    /// Runs `f` on the registry, failing loudly if it is already in use.
    fn borrow<R>(env: &Env, f: impl FnOnce(&mut OpenObjects) -> R) -> Result<R> {
        let registry = Self::of(env)?;
        let mut open = registry
            .try_borrow_mut()
            .map_err(|_| Error::from_reason("handover: the object registry is already in use (a re-entrant call)"))?;
        Ok(f(&mut open))
    }

    fn add(env: &Env, handle: CloseHandle) -> Result<u64> {
        Self::borrow(env, |open| {
            // Objects that were collected without close() are gone: forget them.
            open.objects.retain(|_, open| open.handle.alive());
            open.next_key += 1;
            let object = Open {
                handle,
                watch: None,
                ticker: None,
            };
            open.objects.insert(open.next_key, object);
            open.next_key
        })
    }

    /// Runs `f` on the object's entry while it is open; what `f` takes out
    /// (a watch, a ticker) is dropped by the caller, after the borrow.
    fn with<R>(env: &Env, key: u64, f: impl FnOnce(&mut Open) -> Option<R>) -> Result<Option<R>> {
        Self::borrow(env, |open| open.objects.get_mut(&key).and_then(f))
    }

    /// Forgets a closed object; its watch and ticker stop once dropped,
    /// after the borrow.
    fn remove(env: &Env, key: u64) -> Result<()> {
        let removed = Self::borrow(env, |open| open.objects.remove(&key))?;
        drop(removed);
        Ok(())
    }
}

/// The native half of `HandoverPeer`; use the class exported by `index.js`.
#[napi]
pub struct NativePeer {
    peer: Peer,
    /// Its key in `OpenObjects` until closed.
    registration: u64,
    log: Logger,
    port: u16,
    address: String,
}

#[napi]
impl NativePeer {
    #[napi(constructor)]
    pub fn new(
        node: Env,
        started_at_ms: f64,
        context_id: String,
        options: Option<HandoverOptions>,
        environment: HashMap<String, String>,
        #[napi(ts_arg_type = "((record: LogRecord) => void) | undefined | null")] log_sink: Option<LogFunction>,
    ) -> Result<Self> {
        let started_at_ms = started_at(started_at_ms).map_err(thrown(&node))?;
        let config = PeerConfig::resolve(&options.unwrap_or_default().into(), &environment).map_err(thrown(&node))?;
        let log = logger(config.log_level, &context_id, log_sink);
        let (port, address) = (config.channel.port, config.channel.target.to_string());
        let peer = Peer::new(started_at_ms, config, log.clone());
        let registration = OpenObjects::add(&node, peer.close_handle())?;
        Ok(NativePeer {
            peer,
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

    #[napi(getter)]
    pub fn shutting_down(&self) -> bool {
        self.peer.shutting_down()
    }

    /// What `'shuttingDown'` listeners get, once a younger instance was heard.
    #[napi(getter)]
    pub fn shutting_down_event(&self) -> Option<ShuttingDownEvent> {
        self.peer.heard().map(|heard| ShuttingDownEvent {
            r#type: "shuttingDown",
            heard_started_at: heard.heard_started_at,
            own_started_at: heard.own_started_at,
            from: heard.from.to_string(),
        })
    }

    /// Hex of the random id that breaks ties and marks our own packets.
    #[napi(getter)]
    pub fn instance_id(&self) -> String {
        self.peer.instance_id().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The IPv4 address multicast is joined and sent on; `null` for the default interface.
    #[napi(getter)]
    pub fn interface_address(&self) -> Option<String> {
        self.peer.interface().address.map(|a| a.to_string())
    }

    /// Sends the first announcement now, then the others on the schedule,
    /// from a timer on this thread's loop (see `uv`), until closed or
    /// handing over. Like the original's interval, it keeps the process alive.
    #[napi]
    pub fn start_broadcasting(&self, env: Env) -> Result<()> {
        if !self.peer.start_broadcasting().map_err(thrown(&env))? {
            return Ok(());
        }
        let peer = self.peer.clone();
        let start = Instant::now();
        let mut due = self.peer.announcement_offsets();
        let first = due.next().unwrap_or_default();
        let api = uv::node_api().map_err(|e| thrown(&env)(ChannelError::Io(e.to_string())))?;
        let ticker = Ticker::start(api, env.get_uv_event_loop()?, first, move || {
            if !peer.announce() {
                return None;
            }
            // From the first announcement, so that a late tick does not shift the rest.
            Some((start + due.next()?).saturating_duration_since(Instant::now()))
        })
        .map_err(|e| thrown(&env)(ChannelError::Io(e.to_string())))?;
        let stale = OpenObjects::with(&env, self.registration, |open| open.ticker.replace(ticker))?;
        drop(stale);
        Ok(())
    }

    /// Binds and joins, then reads the socket on this JS thread (see
    /// `uv`); where the host's loop cannot watch a socket (Bun), on the
    /// runtime thread, calling back through a threadsafe function.
    #[napi]
    pub fn start_listening(
        &self,
        #[napi(ts_arg_type = "() => Promise<string | null>")] callback: CallbackFunction<'_>,
        #[napi(ts_arg_type = "(report: HandoverReport) => void")] on_handover: ReportFunction,
        env: Env,
    ) -> Result<()> {
        let events = Arc::new(JsReports {
            report: on_handover,
            registration: self.registration,
        });
        if !host_loop_watches_sockets(&env)? {
            let remote = remote_shutdown(callback.build_threadsafe_function().build()?);
            return self
                .peer
                .listen_on_runtime(Box::new(remote), events)
                .map_err(thrown(&env));
        }
        let api = uv::node_api().map_err(|e| thrown(&env)(ChannelError::Io(e.to_string())))?;
        let shutdown = JsShutdown::new(&env, callback, self.registration)?;
        let listener = self
            .peer
            .listen(move |_: ShuttingDown| shutdown.call(), events)
            .map_err(thrown(&env))?;
        let Some(mut listener) = listener else {
            return Ok(());
        };
        let socket = Watch::socket_of(listener.socket());
        let watch = Watch::start(api, env.get_uv_event_loop()?, socket, move |readiness| {
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
        .map_err(|e| thrown(&env)(ChannelError::Io(e.to_string())))?;
        let stale = OpenObjects::with(&env, self.registration, |open| open.watch.replace(watch))?;
        drop(stale);
        Ok(())
    }

    /// The original's writable `shuttingDown` field: `true` holds the peer
    /// (younger instances are ignored, broadcasting does not start).
    #[napi]
    pub fn hold(&self, held: bool) {
        self.peer.hold(held);
    }

    #[napi]
    pub fn stats(&self) -> HandoverStats {
        self.peer.stats().into()
    }

    #[napi]
    pub fn close(&self, node: Env) -> Result<()> {
        self.peer.close();
        OpenObjects::remove(&node, self.registration)
    }

    /// Writes a log line with this peer's context and level filter.
    #[napi]
    pub fn log(&self, level: String, message: String) {
        log_at(&self.log, &level, &message);
    }
}

/// The native half of `HandoverStatus`; use the class exported by `index.js`.
#[napi]
pub struct NativeStatus {
    channel: StatusChannel,
    /// Its key in `OpenObjects` until closed.
    registration: u64,
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
        service_name: String,
        addresses: Vec<String>,
        context_id: String,
        options: Option<HandoverOptions>,
        environment: HashMap<String, String>,
        #[napi(ts_arg_type = "((record: LogRecord) => void) | undefined | null")] log_sink: Option<LogFunction>,
    ) -> Result<Self> {
        let started_at_ms = started_at(started_at_ms).map_err(thrown(&node))?;
        let identity = config::status_identity(started_at_ms, &service_name, &addresses).map_err(thrown(&node))?;
        let config = StatusConfig::resolve(&options.unwrap_or_default().into(), &environment).map_err(thrown(&node))?;
        let log = logger(config.log_level, &context_id, log_sink);
        let (port, address) = (config.channel.port, config.channel.target.to_string());
        let channel = StatusChannel::new(identity, config, log.clone());
        let registration = OpenObjects::add(&node, channel.close_handle())?;
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

    #[napi]
    pub fn start_up(&self, #[napi(ts_arg_type = "() => void")] keep_alive: KeepAliveFunction, env: Env) -> Result<()> {
        self.channel
            .start_up(Arc::new(JsKeepAlive(keep_alive)))
            .map_err(thrown(&env))
    }

    #[napi]
    pub fn start_down(
        &self,
        #[napi(ts_arg_type = "() => void")] keep_alive: KeepAliveFunction,
        env: Env,
    ) -> Result<()> {
        self.channel
            .start_down(Arc::new(JsKeepAlive(keep_alive)))
            .map_err(thrown(&env))
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

    #[napi]
    pub fn stats(&self) -> HandoverStats {
        self.channel.stats().into()
    }

    #[napi]
    pub fn close(&self, node: Env) -> Result<()> {
        self.channel.close();
        OpenObjects::remove(&node, self.registration)
    }

    #[napi]
    pub fn log(&self, level: String, message: String) {
        log_at(&self.log, &level, &message);
    }
}

/// The environment variables the configuration reads.
#[napi]
pub fn environment_variables() -> Vec<&'static str> {
    config::ENVIRONMENT_VARIABLES.to_vec()
}

/// A channel's settings as a command line gives them: text, read as the
/// environment's values are (a port in decimal). Each wins over its
/// environment variable; an absent one is not given.
#[napi(object)]
pub struct ChannelSettingsText {
    pub port: Option<String>,
    pub address: Option<String>,
    pub network_mode: Option<String>,
    pub network_interface: Option<String>,
    pub log_level: Option<String>,
}

/// Where each resolved value came from.
#[napi(object, object_from_js = false)]
pub struct ChannelSettingOrigins {
    #[napi(ts_type = "'option' | 'environment' | 'default'")]
    pub port: &'static str,
    #[napi(ts_type = "'option' | 'environment' | 'default'")]
    pub address: &'static str,
    #[napi(ts_type = "'option' | 'environment' | 'default'")]
    pub network_mode: &'static str,
    #[napi(ts_type = "'option' | 'environment' | 'default'")]
    pub network_interface: &'static str,
    #[napi(ts_type = "'option' | 'environment' | 'default'")]
    pub log_level: &'static str,
}

/// What one channel of a `HandoverPeer` (handover) or `HandoverStatus`
/// (status) would use with the same settings and environment.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct ChannelSettings {
    #[napi(ts_type = "'handover' | 'status'")]
    pub channel: &'static str,
    pub port: u32,
    /// Where messages are sent, as an IPv4 address.
    pub address: String,
    /// Whether `address` is a multicast group, which the listener joins.
    pub is_multicast: bool,
    #[napi(ts_type = "'bridge' | 'host'")]
    pub network_mode: &'static str,
    /// The configured interface, a name or an IPv4 address; used in host mode only.
    pub network_interface: String,
    /// Host mode: the IPv4 address multicast would be joined and sent on;
    /// `null` in bridge mode (the default interface), or when host mode
    /// falls back to it.
    pub interface_address: Option<String>,
    /// Host mode: why the configured interface cannot be used, so that the
    /// default interface would be used instead (the library logs a warning).
    pub interface_fallback: Option<String>,
    #[napi(ts_type = "'emerg' | 'alert' | 'crit' | 'error' | 'warning' | 'notice' | 'info' | 'debug'")]
    pub log_level: &'static str,
    pub from: ChannelSettingOrigins,
}

/// Resolves one channel's settings as the constructors do (option >
/// environment > default), for tools that show or reuse them. In host mode
/// it looks up the interface, as a constructor would. Invalid values throw
/// the constructors' `TypeError` / `RangeError` (`ERR_INVALID_ARG_TYPE` /
/// `ERR_OUT_OF_RANGE`), whose message starts with the option's name
/// (`options.port …`) or the environment variable's.
#[napi]
pub fn resolve_channel_settings(
    env: Env,
    #[napi(ts_arg_type = "'handover' | 'status'")] channel: String,
    given: Option<ChannelSettingsText>,
    environment: HashMap<String, String>,
) -> Result<ChannelSettings> {
    let kind = config::ChannelKind::parse(&channel).ok_or_else(|| {
        Failure::Range(format!("channel must be 'handover' or 'status'; got '{channel}'")).throw(&env)
    })?;
    let given = given.map_or_else(config::ChannelText::default, |g| config::ChannelText {
        port: g.port,
        address: g.address,
        network_mode: g.network_mode,
        network_interface: g.network_interface,
        log_level: g.log_level,
    });
    let options = given.to_options().map_err(thrown(&env))?;
    let settings = config::ChannelSettings::resolve(kind, &options, &environment).map_err(thrown(&env))?;
    let interface = crate::io::net::choose_interface(&settings.channel);
    let (resolved, from) = (&settings.channel, &settings.from);
    Ok(ChannelSettings {
        channel: kind.name(),
        port: resolved.port.into(),
        address: resolved.target.to_string(),
        is_multicast: resolved.target.is_multicast(),
        network_mode: resolved.mode.name(),
        network_interface: resolved.interface.clone(),
        interface_address: interface.address.map(|a| a.to_string()),
        interface_fallback: interface.fallback_reason,
        log_level: settings.log_level.name(),
        from: ChannelSettingOrigins {
            port: from.port.name(),
            address: from.address.name(),
            network_mode: from.network_mode.name(),
            network_interface: from.network_interface.name(),
            log_level: from.log_level.name(),
        },
    })
}

/// One setting the configuration reads: for help texts.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct HandoverSetting {
    /// Its name among `HandoverOptions`.
    #[napi(ts_type = "keyof HandoverOptions")]
    pub option: &'static str,
    /// The channel it configures; `null` for both.
    #[napi(ts_type = "'handover' | 'status'")]
    pub channel: Option<&'static str>,
    /// The environment variable that stands in for the option.
    pub variable: &'static str,
    /// The default, as text; `null` when there is none (no timeout, unscoped, unsigned).
    pub default: Option<String>,
    /// What it is, in one line.
    pub meaning: &'static str,
}

/// Every setting the configuration reads, with its environment variable
/// and default: the one source of the defaults that help texts show.
#[napi]
pub fn setting_descriptions() -> Vec<HandoverSetting> {
    config::setting_descriptions()
        .into_iter()
        .map(|s| HandoverSetting {
            option: s.option,
            channel: s.channel.map(config::ChannelKind::name),
            variable: s.variable,
            default: s.default,
            meaning: s.meaning,
        })
        .collect()
}

/// Encodes a status message (for tools and tests).
#[napi]
pub fn encode_status_message(
    env: Env,
    timestamp_ms: f64,
    service_name: String,
    addresses: Vec<String>,
    status: String,
) -> Result<Buffer> {
    let timestamp_ms = timestamp(timestamp_ms).map_err(thrown(&env))?;
    let identity = config::status_identity(timestamp_ms, &service_name, &addresses).map_err(thrown(&env))?;
    let status = config::status_label(&status).map_err(thrown(&env))?;
    Ok(wire::encode_status(&identity, &status).to_vec().into())
}
