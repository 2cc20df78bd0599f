//! The shared listener of a host-network service: both instances listen on
//! one TCP port (`SO_REUSEPORT`) during the handover. The younger one joins
//! the group steering new connections to the previous newest socket, steers
//! them to itself when it is ready (`steer_to_self`, at `startBroadcasting`),
//! and the older one drains what is queued on its own listener before it is
//! closed (`drain_step`), so that no connection is reset.
//!
//! Steering is one cBPF program per group returning an index: the group's
//! order is the order its sockets started listening, and a socket leaving
//! is replaced by the last one, so with the usual two instances the older
//! is 0 and the younger 1. The group's size is counted in `/proc/net/tcp`
//! (listeners on the same address, port and user). Where the kernel refuses
//! the program, the group falls back to the kernel's hash (both instances
//! get new connections until the older closes) and `steering` says why.
//!
//! The program outlives the instance that attached it: once the older one
//! left, the younger is index 0 and `ret #1` points past the end, which the
//! kernel treats as "no choice" (its hash, over one socket). The next
//! instance to join re-steers to the previous newest before it serves. With
//! more than two instances at once (one still draining when a third
//! starts), the count still gives the newest its index, as long as no
//! instance leaves between a join and its steering.
//!
//! The drain cannot tell the half-open connections of our listener from
//! those of the younger one (`/proc/net/tcp` shows a request socket's port,
//! not its listener), so it waits for all that existed when it began: at
//! most a handshake's round trip, or the SYN-ACK retransmissions of a lost
//! one (bounded by the caller's `drainTimeoutMs`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use socket2::Socket;

use crate::channel::lifecycle::Closable;
use crate::channel::ChannelError;
use crate::io::log::Logger;
use crate::io::net::tcp;

/// Where new connections of the group go, as far as this instance set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steering {
    /// No program attached by us (alone in the group, or not asked yet).
    Hash,
    /// To the socket that was newest when we joined (the older instance).
    Previous,
    /// To this instance's socket.
    ToSelf,
    /// The kernel refused the program: the group uses its hash.
    Refused(String),
    /// Turned off by the caller (`steering: false`): the group uses its hash.
    Off,
}

impl Steering {
    pub fn name(&self) -> &'static str {
        match self {
            Steering::Hash => "hash",
            Steering::Previous => "previous",
            Steering::ToSelf => "self",
            Steering::Refused(_) => "refused",
            Steering::Off => "off",
        }
    }
}

/// What `stats()` shows.
#[derive(Debug, Clone)]
pub struct SharedStats {
    pub address: SocketAddr,
    pub steering: Steering,
    /// Listeners in the group when this instance last counted.
    pub group_size: u32,
    /// `net.ipv4.tcp_migrate_req` of this network namespace (None: no such sysctl).
    pub migrate_requests: Option<bool>,
    pub draining: bool,
    pub drain_ms: Option<f64>,
    pub closed: bool,
}

struct Drain {
    started: Instant,
    /// Half-open connections to the port when the drain began: some may
    /// complete on our listener.
    half_open: HashSet<String>,
    /// Consecutive checks that found nothing left.
    quiet: u32,
    finished: Option<f64>,
}

struct State {
    socket: Option<Socket>,
    /// This instance's claim naming its service; released with the socket.
    claim: Option<tcp::Claim>,
    steering: Steering,
    group_size: u32,
    drain: Option<Drain>,
}

pub struct SharedListener {
    address: SocketAddr,
    log: Logger,
    state: Mutex<State>,
}

/// Checks in a row that must find the listener empty: the kernel moves a
/// completed connection from the half-open table to the accept queue in
/// two steps, which one read of each could straddle.
const QUIET_CHECKS: u32 = 2;

impl SharedListener {
    /// Binds and listens (joining the port's group), then steers the group
    /// to the previous newest socket so that this instance gets nothing
    /// before it is ready. Also gives a duplicate of the descriptor, for
    /// Node's server to own.
    ///
    /// Refused (`PermissionDenied`) when an instance of another service
    /// claimed the port: the kernel only keeps other users out.
    pub fn open(
        address: SocketAddr,
        backlog: i32,
        service: &str,
        steer: bool,
        log: Logger,
    ) -> Result<(Self, Socket), std::io::Error> {
        let (claim, claimed_by) = tcp::claim(address, service)?;
        if let Some(other) = claimed_by.iter().find(|other| other.as_str() != service) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{address} is shared by an instance of service {other:?}, and this is service {service:?} \
                     (BALENA_SERVICE_NAME): only instances of one service share a port"
                ),
            ));
        }
        let socket = tcp::shared_listener(address, backlog)?;
        let for_node = socket.try_clone()?;
        let listener = SharedListener {
            address: socket.local_addr()?.as_socket().unwrap_or(address),
            log,
            state: Mutex::new(State {
                socket: Some(socket),
                claim: Some(claim),
                steering: if steer { Steering::Hash } else { Steering::Off },
                group_size: 1,
                drain: None,
            }),
        };
        let size = listener.count();
        let mut state = listener.lock();
        state.group_size = size;
        if size >= 2 && steer {
            let socket = state.socket.as_ref().expect("just opened");
            state.steering = match tcp::steer_to(socket, size - 2) {
                Ok(()) => Steering::Previous,
                Err(e) => Steering::Refused(e.to_string()),
            };
        }
        let steering = state.steering.clone();
        drop(state);
        listener.report_join(size, &steering);
        let claimed = claimed_by.len() as u32 + 1;
        if size > claimed {
            listener.log.warn(format_args!(
                "{} listener(s) on {} but {claimed} shared listener(s): a process of this user shares the port \
                 without listenShared (Node's reusePort?); it gets connections too",
                size, listener.address
            ));
        }
        Ok((listener, for_node))
    }

    fn report_join(&self, size: u32, steering: &Steering) {
        let migrate = match tcp::migrate_requests() {
            Some(true) => "on",
            Some(false) => "off",
            None => "not available",
        };
        self.log.info(format_args!(
            "shared listener on {}: {size} listener(s) in the group, steering {}, tcp_migrate_req {migrate}",
            self.address,
            steering.name()
        ));
        if let Steering::Refused(why) = steering {
            self.warn_refused(why);
        }
    }

    fn warn_refused(&self, why: &str) {
        self.log.warn(format_args!(
            "cannot steer connections (SO_ATTACH_REUSEPORT_CBPF: {why}): both instances get new connections \
             until the older one closes its listener"
        ));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count(&self) -> u32 {
        tcp::port_sockets(self.address)
            .map(|found| found.listeners)
            .unwrap_or(1)
            .max(1)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// This instance is ready: every new connection of the group comes here.
    pub fn steer_to_self(&self) -> Result<Steering, ChannelError> {
        let size = self.count();
        let mut state = self.lock();
        let socket = state.socket.as_ref().ok_or(ChannelError::Closed("SharedListener"))?;
        if state.steering == Steering::Off {
            return Ok(Steering::Off);
        }
        let steering = match tcp::steer_to(socket, size - 1) {
            Ok(()) => Steering::ToSelf,
            Err(e) => Steering::Refused(e.to_string()),
        };
        state.group_size = size;
        state.steering = steering.clone();
        drop(state);
        match &steering {
            Steering::Refused(why) => self.warn_refused(why),
            _ => self.log.info(format_args!(
                "shared listener on {}: new connections now come to this instance ({size} in the group)",
                self.address
            )),
        }
        Ok(steering)
    }

    /// One check of the drain: true once nothing is left that could still
    /// arrive on this listener (its accept queue is empty, and the
    /// connections that were half-open when the drain began are gone).
    /// The caller's server keeps accepting between checks.
    pub fn drain_step(&self) -> Result<bool, ChannelError> {
        let mut state = self.lock();
        let State { socket, drain, .. } = &mut *state;
        let socket = socket.as_ref().ok_or(ChannelError::Closed("SharedListener"))?;
        let drain = drain.get_or_insert_with(|| Drain {
            started: Instant::now(),
            half_open: tcp::port_sockets(self.address).map(|f| f.half_open).unwrap_or_default(),
            quiet: 0,
            finished: None,
        });
        if drain.finished.is_some() {
            return Ok(true);
        }
        if tcp::migrate_requests() == Some(true) {
            // The kernel moves what is queued or half-open on our listener,
            // when it closes, to another of the group: nothing to wait for.
            drain.finished = Some(0.0);
            self.log.info(format_args!(
                "shared listener on {}: tcp_migrate_req is on, the kernel moves what is queued here to the younger \
                 instance",
                self.address
            ));
            return Ok(true);
        }
        let queued =
            tcp::accept_queue(socket).map_err(|e| ChannelError::Io(format!("cannot read the accept queue: {e}")))?;
        if !drain.half_open.is_empty() {
            let now = tcp::port_sockets(self.address).map(|f| f.half_open).unwrap_or_default();
            drain.half_open.retain(|remote| now.contains(remote));
        }
        if queued == 0 && drain.half_open.is_empty() {
            drain.quiet += 1;
        } else {
            drain.quiet = 0;
        }
        self.log.debug(format_args!(
            "drain: {queued} queued, {} half-open left",
            drain.half_open.len()
        ));
        if drain.quiet >= QUIET_CHECKS {
            let ms = drain.started.elapsed().as_secs_f64() * 1000.0;
            drain.finished = Some(ms);
            self.log.info(format_args!(
                "shared listener on {}: drained in {ms:.1} ms",
                self.address
            ));
            return Ok(true);
        }
        Ok(false)
    }

    pub fn stats(&self) -> SharedStats {
        let state = self.lock();
        SharedStats {
            address: self.address,
            steering: state.steering.clone(),
            group_size: state.group_size,
            migrate_requests: tcp::migrate_requests(),
            draining: state.drain.is_some(),
            drain_ms: state.drain.as_ref().and_then(|d| d.finished),
            closed: state.socket.is_none(),
        }
    }
}

impl Closable for SharedListener {
    /// Lets go of our descriptor; the socket closes when Node's server
    /// closes its own.
    fn close(&self) {
        let mut state = self.lock();
        let released = (state.socket.take(), state.claim.take());
        drop(state);
        drop(released);
    }
}

/// Real sockets on 127.0.0.1 (ports 47530–47539), Linux only.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::TcpStream;
    use std::sync::Arc;

    use super::*;
    use crate::io::log::Level;

    fn quiet() -> Logger {
        let sink: crate::io::log::Sink = Arc::new(|_, _| {});
        Logger::new(Level::Error, "shared-listener-test", Some(sink))
    }

    /// Connects `n` times; how many each listener accepted.
    fn connect_and_count(port: u16, listeners: &[&Socket], n: usize) -> Vec<usize> {
        let mut kept = Vec::new();
        for _ in 0..n {
            kept.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
        }
        listeners
            .iter()
            .map(|l| std::iter::from_fn(|| l.accept().ok()).count())
            .collect()
    }

    #[test]
    fn the_joiner_gets_nothing_until_it_steers_to_itself_then_everything() {
        let address: SocketAddr = "127.0.0.1:47530".parse().unwrap();
        let (old, old_socket) = SharedListener::open(address, 64, "svc", true, quiet()).unwrap();
        let (new, new_socket) = SharedListener::open(address, 64, "svc", true, quiet()).unwrap();
        assert_eq!(new.stats().steering, Steering::Previous);
        assert_eq!(new.stats().group_size, 2);
        assert_eq!(connect_and_count(47530, &[&old_socket, &new_socket], 20), vec![20, 0]);
        assert_eq!(new.steer_to_self().unwrap(), Steering::ToSelf);
        assert_eq!(connect_and_count(47530, &[&old_socket, &new_socket], 20), vec![0, 20]);
        // The old one has nothing queued: its drain ends after its quiet checks.
        let mut steps = 0;
        while !old.drain_step().unwrap() {
            steps += 1;
            assert!(steps < 1000);
        }
        old.close();
        drop(old_socket);
        assert_eq!(connect_and_count(47530, &[&new_socket], 5), vec![5]);
    }

    #[test]
    fn ipv6_steers_the_same() {
        let address: SocketAddr = "[::1]:47534".parse().unwrap();
        let (_old, old_socket) = match SharedListener::open(address, 64, "svc", true, quiet()) {
            Ok(opened) => opened,
            // No IPv6 (loopback) on this machine.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL) | Some(libc::EAFNOSUPPORT)) => return,
            Err(e) => panic!("{e}"),
        };
        let (new, new_socket) = SharedListener::open(address, 64, "svc", true, quiet()).unwrap();
        assert_eq!(new.stats().group_size, 2);
        let count = |n| {
            let kept: Vec<_> = (0..n).map(|_| TcpStream::connect(address).unwrap()).collect();
            let counts: Vec<usize> = [&old_socket, &new_socket]
                .iter()
                .map(|l| std::iter::from_fn(|| l.accept().ok()).count())
                .collect();
            drop(kept);
            counts
        };
        assert_eq!(count(20), vec![20, 0]);
        new.steer_to_self().unwrap();
        assert_eq!(count(20), vec![0, 20]);
    }

    #[test]
    fn the_drain_waits_for_what_is_queued() {
        if tcp::migrate_requests() == Some(true) {
            // The drain ends at once there, by design.
            return;
        }
        let address: SocketAddr = "127.0.0.1:47531".parse().unwrap();
        let (old, old_socket) = SharedListener::open(address, 64, "svc", true, quiet()).unwrap();
        let _kept: Vec<_> = (0..3)
            .map(|_| TcpStream::connect(("127.0.0.1", 47531)).unwrap())
            .collect();
        for _ in 0..5 {
            assert!(!old.drain_step().unwrap(), "three connections are queued");
        }
        assert_eq!(std::iter::from_fn(|| old_socket.accept().ok()).count(), 3);
        assert!(!old.drain_step().unwrap());
        assert!(old.drain_step().unwrap());
        assert!(old.stats().drain_ms.is_some());
    }

    #[test]
    fn another_service_is_refused_the_port() {
        let address: SocketAddr = "127.0.0.1:47532".parse().unwrap();
        let _first = SharedListener::open(address, 64, "api", true, quiet()).unwrap();
        let refused = SharedListener::open(address, 64, "worker", true, quiet())
            .err()
            .unwrap();
        assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(refused.to_string().contains("\"api\""));
        assert!(SharedListener::open(address, 64, "api", true, quiet()).is_ok());
    }

    #[test]
    fn a_listener_that_does_not_share_the_port_is_address_in_use() {
        let plain = std::net::TcpListener::bind("127.0.0.1:47533").unwrap();
        let refused = SharedListener::open("127.0.0.1:47533".parse().unwrap(), 64, "svc", true, quiet())
            .err()
            .unwrap();
        assert_eq!(refused.kind(), std::io::ErrorKind::AddrInUse);
        drop(plain);
    }
}
