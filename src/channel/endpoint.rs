//! One UDP endpoint of a channel: what the handover peer and the status
//! channel share. It chooses the interface (and says when host mode has to
//! fall back), owns the sending socket and the listener task (when the
//! listener runs on the runtime: the status channel's does; the peer's is
//! read on the JS thread, see `uv`), sends and counts, binds the listening
//! socket, logs malformed packets at a bounded rate, and closes: every
//! socket and task of the object goes in one call. The two channels keep only what differs (`S`, their own state,
//! under the same lock).

use std::fmt;
use std::future::Future;
use std::net::{SocketAddrV4, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use crate::channel::stats::Stats;
use crate::channel::ChannelError;
use crate::config::Channel;
use crate::io::log::{Level, Logger, RateLimit};
use crate::io::net::{self, Interface, LazySender, Receiver};

/// How a channel names itself in errors and log lines.
pub struct Role {
    /// The JS class, for "this X is closed".
    pub class: &'static str,
    /// The listening socket's name in log lines (the original's for the peer).
    pub socket: &'static str,
}

/// A channel's own state, closed together with the endpoint.
pub trait ChannelState: Default + Send + 'static {
    /// Stops what the channel runs besides the listener (its tickers).
    fn close(&mut self);
}

/// For an endpoint that runs nothing besides its listener (a router's
/// sockets, a status channel's router port).
#[derive(Default)]
pub struct NoState;

impl ChannelState for NoState {
    fn close(&mut self) {}
}

/// The state behind the endpoint's lock.
pub struct Shared<S> {
    pub closed: bool,
    pub sender: LazySender,
    /// The listening socket was bound (whoever reads it).
    listening: bool,
    /// The task reading it, when that runs on the runtime.
    listener: Option<AbortHandle>,
    pub channel: S,
}

pub struct Endpoint<S> {
    pub role: Role,
    pub channel: Channel,
    pub interface: Interface,
    pub log: Logger,
    pub stats: Stats,
    shared: Mutex<Shared<S>>,
}

impl<S: ChannelState> Endpoint<S> {
    /// Chooses the interface now, so that a host-mode problem is logged at construction.
    pub fn new(role: Role, channel: Channel, log: Logger) -> Self {
        let interface = net::choose_interface(&channel);
        if let Some(reason) = &interface.fallback_reason {
            log.warn(format_args!(
                "host mode: {reason}; falling back to the default interface, so announcements may reach other devices on the LAN"
            ));
        }
        Endpoint {
            role,
            channel,
            interface,
            log,
            stats: Stats::default(),
            shared: Mutex::new(Shared {
                closed: false,
                sender: LazySender::default(),
                listening: false,
                listener: None,
                channel: S::default(),
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Shared<S>> {
        self.shared.lock().expect("endpoint lock")
    }

    /// The lock, unless the object was closed.
    pub fn lock_open(&self) -> Result<MutexGuard<'_, Shared<S>>, ChannelError> {
        let shared = self.lock();
        if shared.closed {
            return Err(ChannelError::Closed(self.role.class));
        }
        Ok(shared)
    }

    /// The sending socket, made on first use.
    pub fn sender(&self, shared: &mut Shared<S>) -> Result<Arc<UdpSocket>, ChannelError> {
        shared.sender.get(&self.interface).map_err(ChannelError::sending_socket)
    }

    /// Sends one packet to the channel's target; counts it and logs what was sent.
    pub fn send(&self, socket: &UdpSocket, packet: &[u8], what: fmt::Arguments<'_>) {
        let target = SocketAddrV4::new(self.channel.target, self.channel.port);
        match socket.send_to(packet, target) {
            Ok(bytes) => {
                self.stats.sent(true);
                self.log
                    .debug(format_args!("{what} sent to {target} ( {bytes} bytes )"));
            }
            Err(e) => {
                self.stats.sent(false);
                self.log
                    .error(format_args!("Error when sending {what} to {target}: {e}"));
            }
        }
    }

    /// One scheduled send, while the object is open and `wanted` holds;
    /// false once not (the schedule then stops). A sending socket that
    /// cannot be made counts as a failed send.
    pub fn send_scheduled(&self, wanted: impl FnOnce(&S) -> bool, send: impl FnOnce(&UdpSocket)) -> bool {
        let mut shared = self.lock();
        if shared.closed || !wanted(&shared.channel) {
            return false;
        }
        match self.sender(&mut shared) {
            Ok(socket) => {
                drop(shared);
                send(&socket);
            }
            Err(_) => self.stats.sent(false),
        }
        true
    }

    /// Binds and joins now, so that a port problem is reported to the
    /// caller. `None` when the endpoint already listens.
    pub fn bind(&self, shared: &mut Shared<S>) -> Result<Option<UdpSocket>, ChannelError> {
        if shared.listening {
            self.log
                .warn(format_args!("startListening was already called; ignoring this call"));
            return Ok(None);
        }
        let (port, socket_name) = (self.channel.port, self.role.socket);
        let listening = net::listening_socket(&self.channel, &self.interface).map_err(|e| {
            let message = if e.kind() == std::io::ErrorKind::AddrInUse {
                format!("port {port} is in use by a socket without SO_REUSEADDR: {e}")
            } else {
                format!("cannot listen on port {port} for {}: {e}", self.channel.target)
            };
            self.log.error(format_args!("{socket_name} error: {message}"));
            ChannelError::Io(message)
        })?;
        if let Some(refusals) = listening.refusals() {
            self.log.info(format_args!("{refusals}"));
        }
        self.stats.refused(listening.refused_set());
        self.log.info(format_args!("{socket_name} listening 0.0.0.0:{port}"));
        shared.listening = true;
        Ok(Some(listening.socket))
    }

    /// Runs `task` on the runtime as the listener, stopped by `close()`.
    pub fn run_listener<F>(&self, shared: &mut Shared<S>, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        shared.listener = Some(crate::io::runtime::spawn(task).abort_handle());
    }

    /// Binds and joins now (see `bind`), then runs `listen` on the runtime
    /// with the socket registered there. `Ok(false)` when the endpoint
    /// already listens.
    pub fn start_listening<F, Fut>(&self, shared: &mut Shared<S>, listen: F) -> Result<bool, ChannelError>
    where
        F: FnOnce(Receiver) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(socket) = self.bind(shared)? else {
            return Ok(false);
        };
        let log = self.log.clone();
        let socket_name = self.role.socket;
        self.run_listener(shared, async move {
            match Receiver::new(socket) {
                Ok(receiver) => listen(receiver).await,
                Err(e) => log.error(format_args!("cannot register {socket_name}: {e}")),
            }
        });
        Ok(true)
    }

    /// Marks the endpoint closed, drops the sending socket (only the
    /// caller's thread and the channel's tasks hold it) and stops every task.
    pub fn close(&self) {
        let mut shared = self.lock();
        shared.closed = true;
        shared.sender.clear();
        if let Some(listener) = shared.listener.take() {
            listener.abort();
        }
        shared.channel.close();
    }

    /// Logs a socket error; the listener reads again after the pause returned.
    pub fn socket_error(&self, e: std::io::Error) -> Duration {
        self.log.error(format_args!("{} error: {e}", self.role.socket));
        net::ERROR_PAUSE
    }

    /// Waits a moment before the listener reads again, after a socket error.
    pub async fn after_socket_error(&self, e: std::io::Error) {
        tokio::time::sleep(self.socket_error(e)).await;
    }
}

/// Debug lines about malformed packets, one a second at most, with a count of
/// the ones held back: a flood costs one line a second, not one a packet.
pub struct MalformedLog(RateLimit);

impl Default for MalformedLog {
    fn default() -> Self {
        MalformedLog(RateLimit::new(Duration::from_secs(1)))
    }
}

impl MalformedLog {
    pub fn dropped(&mut self, log: &Logger, what: &str, from: SocketAddrV4, reason: impl fmt::Display) {
        if !log.enabled(Level::Debug) {
            return;
        }
        if let Some(held_back) = self.0.admit(Instant::now()) {
            log.debug(format_args!(
                "dropped a malformed {what} from {from}: {reason} ({held_back} more dropped since the last report)"
            ));
        }
    }
}
