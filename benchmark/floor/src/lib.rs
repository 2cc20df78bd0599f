//! The floor of the latency benchmark: the least a napi-rs + tokio addon has
//! to do between a young peer's `startBroadcasting()` and the old peer's
//! callback. SPEC §7 sets handover-native's target as a ratio against this
//! addon, measured in the same run, because absolute times move from machine
//! to machine.
//!
//! What is here is what no implementation of this design can skip:
//! - sending: one `sendto` of the 9-byte version-1 announcement, on a socket
//!   made beforehand;
//! - receiving: one UDP socket (SO_REUSEADDR, joined to the group on one
//!   interface) read by one task on a one-worker tokio runtime, one `recv`
//!   per packet; decode, compare with our own `startedAt`, and on the first
//!   younger announcement queue the JS callback through a threadsafe
//!   function, once.
//!
//! What is not here, on purpose: configuration, logging, events, a heartbeat,
//! a callback deadline, the complete file, statistics, error classes. Every
//! one of those is work the real addon must keep off the handover path.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::OnceLock;

use napi::bindgen_prelude::Unknown;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Error, Result, Status};
use napi_derive::napi;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

/// Version 1 of the handover message: this byte, then `startedAt` in ms as an
/// i64 big-endian (SPEC §3). Bytes after the ninth are ignored.
const VERSION: u8 = 0x01;
const MESSAGE_LEN: usize = 9;

/// The JS callback, called with no value; strong, so that a listening floor
/// peer keeps Node alive as a real one does.
type Callback = ThreadsafeFunction<(), Unknown<'static>, (), Status, false>;

/// One worker thread, started on first use: the same shape as the real addon
/// (a runtime thread beside the JS thread, so two cross-thread wake-ups per
/// handover). The timer driver is on, as any peer with a heartbeat needs it.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("floor")
            .enable_all()
            .build()
            .expect("cannot start the floor runtime")
    })
}

fn io_error(e: std::io::Error) -> Error {
    Error::from_reason(e.to_string())
}

fn ipv4(text: &str, what: &str) -> Result<Ipv4Addr> {
    text.parse()
        .map_err(|_| Error::from_reason(format!("{what} is not an IPv4 address: {text}")))
}

/// A handover peer cut down to its floor.
#[napi]
pub struct FloorPeer {
    started_at: i64,
    group: SocketAddrV4,
    interface: Ipv4Addr,
    /// Made by the constructor, so `startBroadcasting()` is one `sendto`.
    sender: UdpSocket,
    listener: Option<JoinHandle<()>>,
}

#[napi]
impl FloorPeer {
    /// `startedAt` in ms since the epoch; the group and the interface address
    /// (127.0.0.1 in the benchmark) as dotted IPv4 text.
    #[napi(constructor)]
    pub fn new(started_at: f64, port: u32, group: String, interface: String) -> Result<Self> {
        let port = u16::try_from(port).map_err(|_| Error::from_reason("port out of range"))?;
        let interface = ipv4(&interface, "interface")?;
        let sender = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(io_error)?;
        sender.set_multicast_if_v4(&interface).map_err(io_error)?;
        sender.set_multicast_ttl_v4(1).map_err(io_error)?; // never past the first router
        Ok(FloorPeer {
            started_at: started_at as i64,
            group: SocketAddrV4::new(ipv4(&group, "group")?, port),
            interface,
            sender: sender.into(),
            listener: None,
        })
    }

    /// Binds, joins the group and starts the receive task.
    #[napi(ts_args_type = "callback: () => unknown")]
    pub fn start_listening(&mut self, callback: Callback) -> Result<()> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(io_error)?;
        socket.set_reuse_address(true).map_err(io_error)?; // old and new instance share the port
        let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, self.group.port()));
        socket.bind(&any.into()).map_err(io_error)?;
        socket
            .join_multicast_v4(self.group.ip(), &self.interface)
            .map_err(io_error)?;
        socket.set_nonblocking(true).map_err(io_error)?;
        // Registering with the runtime's reactor needs its context, not its thread.
        let _context = runtime().enter();
        let socket = tokio::net::UdpSocket::from_std(socket.into()).map_err(io_error)?;
        let started_at = self.started_at;
        self.listener = Some(runtime().spawn(async move {
            // Room for the message; a longer datagram is cut to this, which
            // keeps the nine bytes that count.
            let mut packet = [0u8; 16];
            while let Ok(len) = socket.recv(&mut packet).await {
                if len < MESSAGE_LEN || packet[0] != VERSION {
                    continue; // not a version-1 announcement
                }
                let mut stamp = [0u8; 8];
                stamp.copy_from_slice(&packet[1..MESSAGE_LEN]);
                if i64::from_be_bytes(stamp) > started_at {
                    // Queue the callback on the JS thread and stop: once. The
                    // socket and the threadsafe function go with this task.
                    callback.call((), ThreadsafeFunctionCallMode::NonBlocking);
                    return;
                }
            }
        }));
        Ok(())
    }

    /// One `sendto` of our announcement. No heartbeat follows.
    #[napi]
    pub fn start_broadcasting(&self) -> Result<()> {
        let mut message = [0u8; MESSAGE_LEN];
        message[0] = VERSION;
        message[1..].copy_from_slice(&self.started_at.to_be_bytes());
        self.sender.send_to(&message, self.group).map_err(io_error)?;
        Ok(())
    }

    /// Stops a receive task that has not handed over yet.
    #[napi]
    pub fn close(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
    }
}
