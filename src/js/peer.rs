//! `NativePeer`, the native half of `HandoverPeer` (index.js): converts,
//! forwards to `channel::peer`, maps errors; and the two ways the shutdown
//! callback is called from native code.

use std::collections::HashMap;
use std::sync::Arc;

use napi::bindgen_prelude::{Function, FunctionRef, Promise};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, JsValue, Result, Status, Unknown};
use napi_derive::napi;

use super::arguments;
use super::errors::{check, started_at, thrown};
use super::{host_loop_watches_sockets, log_at, logger, registry, HandoverStats, LogFunction, Registration};
use crate::channel::lifecycle::Slot;
use crate::channel::peer::{
    CallbackCalled, CallbackFailure, CallbackSettled, Events, HandoverReport, Peer, ShuttingDown,
};
use crate::config::PeerConfig;
use crate::io::log::Logger;

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

impl From<ShuttingDown> for ShuttingDownEvent {
    fn from(heard: ShuttingDown) -> Self {
        ShuttingDownEvent {
            r#type: "shuttingDown",
            heard_started_at: heard.heard_started_at,
            own_started_at: heard.own_started_at,
            from: heard.from.to_string(),
        }
    }
}

/// Passes the report to JS, then stops the peer's listener (on the JS
/// thread, which owns it): from then on, the process may exit.
struct JsReports {
    report: ReportFunction,
    /// Where the listener's watch is, when it runs on the loop.
    key: u64,
}

impl Events for JsReports {
    fn handover(&self, report: HandoverReport) {
        let key = self.key;
        self.report
            .call_with_return_value(report, ThreadsafeFunctionCallMode::NonBlocking, move |_, env| {
                drop(registry(&env)?.take(key, Slot::Listener));
                Ok(())
            });
    }
}

/// Calls the JS half of the shutdown callback, on the JS thread, from the
/// listener's watch: inside a callback scope, so that the promise jobs it
/// starts run when the scope closes, as after any I/O callback of Node's.
struct JsShutdown {
    env: sys::napi_env,
    /// Where the peer's schedule is, to stop it once the callback runs.
    registration: Registration,
    function: FunctionRef<(), Promise<Option<String>>>,
    context: sys::napi_async_context,
}

impl JsShutdown {
    fn new(env: &Env, function: CallbackFunction<'_>, registration: Registration) -> Result<Self> {
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
        // Announcing has stopped (the peer is handing over): let the schedule go now.
        drop(self.registration.take(Slot::Announcements));
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

/// The native half of `HandoverPeer`; use the class exported by `index.js`.
#[napi]
pub struct NativePeer {
    peer: Peer,
    registration: Registration,
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
        #[napi(ts_arg_type = "HandoverOptions | undefined | null")] options: Option<Unknown<'_>>,
        environment: HashMap<String, String>,
        #[napi(ts_arg_type = "((record: LogRecord) => void) | undefined | null")] log_sink: Option<LogFunction>,
    ) -> Result<Self> {
        let started_at_ms = started_at(started_at_ms).map_err(thrown(&node))?;
        let config = PeerConfig::resolve(&arguments::options(options)?.map_err(thrown(&node))?, &environment)
            .map_err(thrown(&node))?;
        let log = logger(config.log_level, &context_id, log_sink);
        let (port, address) = (config.channel.port, config.channel.target.to_string());
        let peer = Peer::new(started_at_ms, config, log.clone());
        let registration = Registration::new(&node, peer.close_handle())?;
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
        self.peer.heard().map(Into::into)
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
    /// from a timer on this thread's loop, until closed or handing over.
    #[napi]
    pub fn start_broadcasting(&self, env: Env) -> Result<()> {
        let host = self.registration.host_loop(&env)?;
        self.peer.broadcast_on(&host).map_err(thrown(&env))
    }

    /// Binds and joins, then reads the socket on this JS thread; where the
    /// host's loop cannot watch a socket (Bun), on the runtime thread,
    /// calling back through a threadsafe function.
    #[napi]
    pub fn start_listening(
        &self,
        #[napi(ts_arg_type = "() => Promise<string | null>")] callback: CallbackFunction<'_>,
        #[napi(ts_arg_type = "(report: HandoverReport) => void")] on_handover: ReportFunction,
        env: Env,
    ) -> Result<()> {
        let events = Arc::new(JsReports {
            report: on_handover,
            key: self.registration.key,
        });
        if !host_loop_watches_sockets(&env)? {
            let remote = remote_shutdown(callback.build_threadsafe_function().build()?);
            return self
                .peer
                .listen_on_runtime(Box::new(remote), events)
                .map_err(thrown(&env));
        }
        let host = self.registration.host_loop(&env)?;
        let shutdown = JsShutdown::new(&env, callback, self.registration.clone())?;
        self.peer
            .listen_on_loop(&host, move |_: ShuttingDown| shutdown.call(), events)
            .map_err(thrown(&env))
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
    pub fn close(&self, env: Env) -> Result<()> {
        self.peer.close();
        self.registration.release(&env)
    }

    /// Writes a log line with this peer's context and level filter.
    #[napi]
    pub fn log(&self, level: String, message: String) {
        log_at(&self.log, &level, &message);
    }
}
