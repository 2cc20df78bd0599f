//! Configuration: options > environment > defaults, validated once at
//! construction so that a bad value fails at the call that received it.
//! Pure: the environment is passed in as a map.
//!
//! `settings` holds what the CLI and tools show (one channel's settings
//! with where each came from; every setting's description), resolved
//! through the same `Source` as the constructors here.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::protocol::auth::Secret;
use crate::protocol::level::Level;
use crate::protocol::wire::{
    ServiceName, ServiceNameError, ServiceScope, StatusAddresses, StatusAddressesError, StatusIdentity, StatusLabel,
    SERVICE_NAME_MAX, STATUS_ADDRESSES_MAX, STATUS_TEXT_MAX,
};

mod router;
mod settings;

pub use router::{RouterConfig, RouterOptions};
pub use settings::{setting_descriptions, ChannelKind, ChannelSettings, ChannelText};

pub const DEFAULT_SHUTDOWN_PORT: u16 = 1536;
pub const DEFAULT_STATUS_PORT: u16 = 1537;
/// Routers' HELLO and DRAINED travel here, beside the status port.
pub const DEFAULT_ROUTER_PORT: u16 = 1538;
/// RFC 2365 organization-local scope, as the original uses.
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 192, 16, 16);
pub const DEFAULT_INTERFACE: &str = "supervisor0";
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
pub const DEFAULT_COMPLETE_PATH: &str = "/tmp/balena/handover-complete";
/// The supervisor mounts the same folder at both names.
pub const LEGACY_COMPLETE_PATH: &str = "/tmp/resin/resin-kill-me";

/// Options for `HandoverPeer` and `HandoverStatus`. Each option wins over
/// its environment variable, which wins over the default. Invalid values
/// throw a `TypeError` or `RangeError` from the constructor.
/// Each is optional; numbers arrive as JS numbers.
#[cfg_attr(not(test), napi_derive::napi(object, js_name = "HandoverOptions"))]
#[derive(Debug, Clone, Default)]
pub struct Options {
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
    #[cfg_attr(not(test), napi(ts_type = "'bridge' | 'host'"))]
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
    /// `HandoverStatus`: the port routers say HELLO and DRAINED on (see
    /// `drain()`). Env `HANDOVER_ROUTER_PORT`; default 1538.
    pub router_port: Option<f64>,
}

pub type Environment = HashMap<String, String>;

/// Every environment variable the configuration reads; the JS layer passes
/// only these, not the whole of `process.env`.
pub const ENVIRONMENT_VARIABLES: [&str; 13] = [
    "SHUTDOWN_PORT",
    "SHUTDOWN_BROADCAST_ADDRESS",
    "HANDOVER_STATUS_PORT",
    "HANDOVER_STATUS_BROADCAST_ADDRESS",
    "HANDOVER_NETWORK_MODE",
    "NETWORK_INTERFACE",
    "HANDOVER_HEARTBEAT_INTERVAL_MS",
    "HANDOVER_CALLBACK_TIMEOUT_MS",
    "BALENA_SERVICE_HANDOVER_COMPLETE_PATH",
    "BALENA_SERVICE_NAME",
    "HANDOVER_SECRET",
    "LOGLEVEL",
    "HANDOVER_ROUTER_PORT",
];

/// A bad input, mapped to a JS `TypeError` or `RangeError` at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Type(String),
    Range(String),
    /// A value of the right type that can never be valid (a NUL inside a string).
    Value(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Type(m) | ConfigError::Range(m) | ConfigError::Value(m) => f.write_str(m),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// Join on the default interface: each container has its own namespace.
    Bridge,
    /// Join and send only on the device-local bridge (`NETWORK_INTERFACE`).
    Host,
}

/// Where announcements go and how the sockets are set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub port: u16,
    pub target: Ipv4Addr,
    pub mode: NetworkMode,
    /// An interface name, or an IPv4 address literal.
    pub interface: String,
}

#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub channel: Channel,
    pub heartbeat: Duration,
    pub complete_path: CompletePath,
    pub callback_timeout: Option<Duration>,
    pub service: Option<ServiceScope>,
    /// Set when `BALENA_SERVICE_NAME` was too long for the scope field and
    /// `service` holds its shortened form; see `service_warning`.
    pub service_shortened_from: Option<String>,
    pub secret: Option<Secret>,
    pub log_level: Level,
}

#[derive(Debug, Clone)]
pub struct StatusConfig {
    pub channel: Channel,
    /// Where routers say HELLO and DRAINED: the status group, on this port.
    pub router_port: u16,
    /// Status messages are signed with it; routers' messages must be.
    pub secret: Option<Secret>,
    pub log_level: Level,
}

/// The handover-complete file: where to write it and whether the legacy
/// name may stand in when its folder is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletePath {
    pub path: PathBuf,
    pub legacy_fallback: bool,
}

/// The folder a file path is in. A bare name (`done`) is in the current
/// working directory, as `./done` is; `None` for a root or an empty path.
pub fn folder_of(path: &Path) -> Option<&Path> {
    match path.parent()? {
        parent if parent.as_os_str().is_empty() => path.file_name().map(|_| Path::new(".")),
        parent => Some(parent),
    }
}

impl CompletePath {
    /// The path to write, given which folders exist; `None` when none does.
    /// A relative path is relative to the working directory at the time of writing.
    pub fn choose(&self, folder_exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
        let usable = |p: &Path| folder_of(p).is_some_and(&folder_exists);
        if usable(&self.path) {
            return Some(self.path.clone());
        }
        let legacy = Path::new(LEGACY_COMPLETE_PATH);
        (self.legacy_fallback && usable(legacy)).then(|| legacy.to_path_buf())
    }
}

/// Reads one setting: the option if given, else the environment variable.
/// `settings` resolves through it too, so tools see what the constructors use.
struct Source<'a> {
    env: &'a Environment,
}

impl Source<'_> {
    fn env(&self, key: &str) -> Option<&str> {
        debug_assert!(
            ENVIRONMENT_VARIABLES.contains(&key),
            "{key} is missing from ENVIRONMENT_VARIABLES"
        );
        self.env.get(key).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    fn port(&self, option: Option<f64>, key: &str, default: u16) -> Result<u16, ConfigError> {
        self.named_port(option, "options.port", key, default)
    }

    fn named_port(&self, option: Option<f64>, name: &str, key: &str, default: u16) -> Result<u16, ConfigError> {
        if let Some(value) = option {
            return integer_in(value, 1, 65535, name).map(|v| v as u16);
        }
        match self.env(key) {
            Some(text) => parse_integer(text, 1, 65535, key).map(|v| v as u16),
            None => Ok(default),
        }
    }

    fn address(&self, option: Option<&str>, key: &str) -> Result<Ipv4Addr, ConfigError> {
        self.address_named(option, "options.address", key)
    }

    fn address_named(&self, option: Option<&str>, name: &str, key: &str) -> Result<Ipv4Addr, ConfigError> {
        if let Some(text) = option {
            return parse_ipv4(text, name);
        }
        match self.env(key) {
            Some(text) => parse_ipv4(text, key),
            None => Ok(DEFAULT_GROUP),
        }
    }

    fn millis(
        &self,
        option: Option<f64>,
        name: &str,
        key: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<Duration>, ConfigError> {
        let ms = match (option, self.env(key)) {
            (Some(value), _) => integer_in(value, min, max, name)?,
            (None, Some(text)) => parse_integer(text, min, max, key)?,
            (None, None) => return Ok(None),
        };
        Ok(Some(Duration::from_millis(ms as u64)))
    }

    fn text(&self, option: Option<&str>, key: &str) -> Option<String> {
        option
            .filter(|v| !v.is_empty())
            .or_else(|| self.env(key))
            .map(String::from)
    }

    fn router_port(&self, option: Option<f64>) -> Result<u16, ConfigError> {
        self.named_port(
            option,
            "options.routerPort",
            "HANDOVER_ROUTER_PORT",
            DEFAULT_ROUTER_PORT,
        )
    }

    fn secret(&self, option: Option<&str>) -> Option<Secret> {
        self.text(option, "HANDOVER_SECRET").map(Secret::new)
    }

    fn log_level(&self, option: Option<&str>) -> Result<Level, ConfigError> {
        match option {
            Some(name) => Level::parse(name).ok_or_else(|| {
                ConfigError::Range(format!(
                    "options.logLevel must be one of {}; got '{name}'",
                    Level::NAMES.join(", ")
                ))
            }),
            // LOGLEVEL is shared with other libraries: an unknown value must not
            // break the service, so it means the default.
            None => Ok(self.env("LOGLEVEL").and_then(Level::parse).unwrap_or(Level::Info)),
        }
    }

    fn channel(
        &self,
        options: &Options,
        port_key: &str,
        address_key: &str,
        default_port: u16,
    ) -> Result<Channel, ConfigError> {
        let mode = match options
            .network_mode
            .as_deref()
            .map(|m| ("options.networkMode", m))
            .or_else(|| self.env("HANDOVER_NETWORK_MODE").map(|m| ("HANDOVER_NETWORK_MODE", m)))
        {
            None => NetworkMode::Bridge,
            Some((name, value)) => match value.trim().to_ascii_lowercase().as_str() {
                "bridge" => NetworkMode::Bridge,
                "host" => NetworkMode::Host,
                _ => {
                    return Err(ConfigError::Range(format!(
                        "{name} must be 'bridge' or 'host'; got '{value}'"
                    )))
                }
            },
        };
        let interface = self
            .text(options.network_interface.as_deref(), "NETWORK_INTERFACE")
            .unwrap_or_else(|| DEFAULT_INTERFACE.to_string());
        Ok(Channel {
            port: self.port(options.port, port_key, default_port)?,
            target: self.address(options.address.as_deref(), address_key)?,
            mode,
            interface,
        })
    }
}

impl Options {
    /// Refuses a NUL in any string option, naming the option: no address,
    /// name, path or level can hold one, and the OS calls that take them
    /// would cut it short or fail later.
    pub fn refuse_nul(&self) -> Result<(), ConfigError> {
        let strings = [
            (&self.address, "options.address"),
            (&self.network_mode, "options.networkMode"),
            (&self.network_interface, "options.networkInterface"),
            (&self.handover_complete_path, "options.handoverCompletePath"),
            (&self.service_name, "options.serviceName"),
            (&self.secret, "options.secret"),
            (&self.log_level, "options.logLevel"),
        ];
        match strings
            .into_iter()
            .find(|(value, _)| value.as_deref().is_some_and(|v| v.contains('\0')))
        {
            Some((_, name)) => Err(nul_in(name)),
            None => Ok(()),
        }
    }
}

impl PeerConfig {
    pub fn resolve(options: &Options, env: &Environment) -> Result<Self, ConfigError> {
        options.refuse_nul()?;
        let source = Source { env };
        let channel = source.channel(
            options,
            "SHUTDOWN_PORT",
            "SHUTDOWN_BROADCAST_ADDRESS",
            DEFAULT_SHUTDOWN_PORT,
        )?;
        let heartbeat = source
            .millis(
                options.heartbeat_interval_ms,
                "options.heartbeatIntervalMs",
                "HANDOVER_HEARTBEAT_INTERVAL_MS",
                10,
                3_600_000,
            )?
            .unwrap_or(DEFAULT_HEARTBEAT);
        let callback_timeout = source.millis(
            options.callback_timeout_ms,
            "options.callbackTimeoutMs",
            "HANDOVER_CALLBACK_TIMEOUT_MS",
            1,
            i32::MAX as i64,
        )?;
        let complete_path = match options.handover_complete_path.as_deref().filter(|p| !p.is_empty()) {
            Some(path) => CompletePath {
                path: path.into(),
                legacy_fallback: false,
            },
            None => CompletePath {
                path: source
                    .env("BALENA_SERVICE_HANDOVER_COMPLETE_PATH")
                    .unwrap_or(DEFAULT_COMPLETE_PATH)
                    .into(),
                legacy_fallback: true,
            },
        };
        // The caller's own option must fit; the environment's value must not
        // stop a drop-in from starting (the original never reads it).
        let (service, service_shortened_from) = match options.service_name.as_deref().filter(|v| !v.is_empty()) {
            Some(name) => match service_scope(name) {
                Ok(scope) => (scope, None),
                Err(ServiceNameError::Nul) => return Err(nul_in("options.serviceName")),
                Err(ServiceNameError::TooLong { len }) => {
                    return Err(ConfigError::Range(format!(
                        "service name '{name}' is {len} bytes of UTF-8; at most {SERVICE_NAME_MAX} are allowed"
                    )))
                }
            },
            None => match source.env("BALENA_SERVICE_NAME") {
                None => (None, None),
                Some(name) => match service_scope(name) {
                    Ok(scope) => (scope, None),
                    Err(ServiceNameError::TooLong { .. }) => (Some(shorten_service_name(name)), Some(name.to_string())),
                    // Unreachable from Node, whose environment cannot hold a NUL.
                    Err(ServiceNameError::Nul) => return Err(nul_in("BALENA_SERVICE_NAME")),
                },
            },
        };
        Ok(PeerConfig {
            channel,
            heartbeat,
            complete_path,
            callback_timeout,
            service,
            service_shortened_from,
            secret: source.secret(options.secret.as_deref()),
            log_level: source.log_level(options.log_level.as_deref())?,
        })
    }
}

/// A non-empty name as a scope; `Ok(None)` only for the empty name.
fn service_scope(name: &str) -> Result<Option<ServiceScope>, ServiceNameError> {
    ServiceName::new(name).map(ServiceScope::new)
}

/// Bytes of a long name kept in front of its hash.
const SHORTENED_PREFIX_MAX: usize = SERVICE_NAME_MAX - 1 - 16;

/// A service name that does not fit the 63-byte scope field, made to fit:
/// as much of its start as fits on a UTF-8 boundary, `~`, then 16 hex digits
/// of its SHA-256. Every instance of the service derives the same scope, and
/// two long names that share their first 46 bytes still differ. `name` has
/// no NUL (`ServiceName::new` refused it for its length).
fn shorten_service_name(name: &str) -> ServiceScope {
    use sha2::{Digest, Sha256};
    let mut end = SHORTENED_PREFIX_MAX.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let shortened = format!("{}~{hash}", &name[..end]);
    service_scope(&shortened)
        .ok()
        .flatten()
        .expect("46 bytes of a name without NUL, '~' and 16 hex digits fit")
}

/// Whether the warning about a shortened `BALENA_SERVICE_NAME` was given:
/// once per process, however many peers are made.
static SERVICE_WARNING_GIVEN: AtomicBool = AtomicBool::new(false);

impl PeerConfig {
    /// The warning to log when `BALENA_SERVICE_NAME` had to be shortened:
    /// `Some` for the first such peer of the process only.
    pub fn service_warning(&self) -> Option<String> {
        let (original, scope) = (self.service_shortened_from.as_ref()?, self.service.as_ref()?);
        if SERVICE_WARNING_GIVEN.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(format!(
            "BALENA_SERVICE_NAME is {} bytes of UTF-8, more than the {SERVICE_NAME_MAX} an announcement carries: \
             scoping announcements to '{scope}' instead (peers of this service derive the same)",
            original.len()
        ))
    }
}

impl StatusConfig {
    pub fn resolve(options: &Options, env: &Environment) -> Result<Self, ConfigError> {
        options.refuse_nul()?;
        let source = Source { env };
        Ok(StatusConfig {
            channel: source.channel(
                options,
                "HANDOVER_STATUS_PORT",
                "HANDOVER_STATUS_BROADCAST_ADDRESS",
                DEFAULT_STATUS_PORT,
            )?,
            router_port: source.router_port(options.router_port)?,
            secret: source.secret(options.secret.as_deref()),
            log_level: source.log_level(options.log_level.as_deref())?,
        })
    }
}

/// No option or name may hold a NUL: the wire format pads names with it,
/// and the OS takes addresses, names and paths as C strings.
fn nul_in(what: &str) -> ConfigError {
    ConfigError::Value(format!("{what} must not contain a NUL character"))
}

/// What a status message will carry, checked once, at construction: the
/// wire types do the checking, and the errors are worded here.
pub fn status_identity(
    timestamp_ms: i64,
    service_name: &str,
    addresses: &[String],
) -> Result<StatusIdentity, ConfigError> {
    let service_name = ServiceName::new(service_name).map_err(|e| match e {
        ServiceNameError::Nul => nul_in("serviceName"),
        ServiceNameError::TooLong { len } => ConfigError::Range(format!(
            "serviceName is {len} bytes of UTF-8; at most {SERVICE_NAME_MAX} fit in a status message"
        )),
    })?;
    let parsed = addresses
        .iter()
        .enumerate()
        .map(|(i, text)| match text.contains('\0') {
            true => Err(nul_in(&format!("addresses[{i}]"))),
            false => parse_ipv4(text, &format!("addresses[{i}]")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let addresses = StatusAddresses::new(parsed).map_err(|e| match e {
        StatusAddressesError::TooMany { count } => ConfigError::Range(format!(
            "addresses has {count} entries; at most {STATUS_ADDRESSES_MAX} fit in a status message"
        )),
        StatusAddressesError::ReadsAsEmpty { index } => ConfigError::Range(format!(
            "addresses[{index}] cannot start with 0 (it would read as empty); got '{}'",
            addresses[index]
        )),
    })?;
    Ok(StatusIdentity {
        timestamp_ms,
        service_name,
        addresses,
    })
}

/// The status text of a message a caller encodes.
pub fn status_label(status: &str) -> Result<StatusLabel, ConfigError> {
    StatusLabel::new(status).map_err(|e| {
        ConfigError::Range(format!(
            "status is {} bytes of UTF-8; at most {STATUS_TEXT_MAX} fit in a status message",
            e.len
        ))
    })
}

fn integer_in(value: f64, min: i64, max: i64, name: &str) -> Result<i64, ConfigError> {
    if !value.is_finite() || value.fract() != 0.0 {
        return Err(ConfigError::Range(format!(
            "{name} must be an integer from {min} to {max}; got {value}"
        )));
    }
    if value < min as f64 || value > max as f64 {
        return Err(ConfigError::Range(format!(
            "{name} must be from {min} to {max}; got {value}"
        )));
    }
    Ok(value as i64)
}

fn parse_integer(text: &str, min: i64, max: i64, key: &str) -> Result<i64, ConfigError> {
    let value: i64 = text
        .trim()
        .parse()
        .map_err(|_| ConfigError::Range(format!("{key} must be an integer from {min} to {max}; got '{text}'")))?;
    integer_in(value as f64, min, max, key)
}

pub fn parse_ipv4(text: &str, name: &str) -> Result<Ipv4Addr, ConfigError> {
    text.trim().parse().map_err(|_| {
        ConfigError::Type(format!(
            "{name} must be an IPv4 address like 239.192.16.16; got '{text}'"
        ))
    })
}

impl NetworkMode {
    pub fn name(self) -> &'static str {
        match self {
            NetworkMode::Bridge => "bridge",
            NetworkMode::Host => "host",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn env(pairs: &[(&str, &str)]) -> Environment {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_match_the_original() {
        let c = PeerConfig::resolve(&Options::default(), &env(&[])).unwrap();
        assert_eq!(c.channel.port, 1536);
        assert_eq!(c.channel.target, Ipv4Addr::new(239, 192, 16, 16));
        assert_eq!(c.channel.mode, NetworkMode::Bridge);
        assert_eq!(c.channel.interface, "supervisor0");
        assert_eq!(c.heartbeat, Duration::from_secs(10));
        assert_eq!(c.complete_path.path, PathBuf::from("/tmp/balena/handover-complete"));
        assert_eq!(c.callback_timeout, None);
        assert!(c.secret.is_none());
        assert_eq!(c.log_level, Level::Info);
        let s = StatusConfig::resolve(&Options::default(), &env(&[])).unwrap();
        assert_eq!(s.channel.port, 1537);
    }

    #[test]
    fn environment_overrides_defaults_and_options_override_environment() {
        let e = env(&[
            ("SHUTDOWN_PORT", "2000"),
            ("SHUTDOWN_BROADCAST_ADDRESS", "239.1.2.3"),
            ("HANDOVER_NETWORK_MODE", "host"),
            ("NETWORK_INTERFACE", "eth9"),
            ("BALENA_SERVICE_NAME", "api"),
            ("BALENA_SERVICE_HANDOVER_COMPLETE_PATH", "/x/done"),
            ("HANDOVER_CALLBACK_TIMEOUT_MS", "5000"),
            ("HANDOVER_SECRET", "s"),
            ("LOGLEVEL", "debug"),
            ("HANDOVER_STATUS_PORT", "2001"),
        ]);
        let c = PeerConfig::resolve(&Options::default(), &e).unwrap();
        assert_eq!((c.channel.port, c.channel.target), (2000, Ipv4Addr::new(239, 1, 2, 3)));
        assert_eq!(
            (c.channel.mode, c.channel.interface.as_str()),
            (NetworkMode::Host, "eth9")
        );
        assert_eq!(c.service.as_deref(), Some("api"));
        assert_eq!(
            c.complete_path,
            CompletePath {
                path: "/x/done".into(),
                legacy_fallback: true
            }
        );
        assert_eq!(c.callback_timeout, Some(Duration::from_secs(5)));
        assert!(c.secret.is_some());
        assert_eq!(c.log_level, Level::Debug);
        assert_eq!(
            StatusConfig::resolve(&Options::default(), &e).unwrap().channel.port,
            2001
        );

        let o = Options {
            port: Some(3000.0),
            address: Some("127.0.0.1".into()),
            network_mode: Some("bridge".into()),
            network_interface: Some("lo".into()),
            service_name: Some("worker".into()),
            handover_complete_path: Some("/y/done".into()),
            callback_timeout_ms: Some(10.0),
            log_level: Some("error".into()),
            ..Default::default()
        };
        let c = PeerConfig::resolve(&o, &e).unwrap();
        assert_eq!((c.channel.port, c.channel.target), (3000, Ipv4Addr::LOCALHOST));
        assert_eq!(
            (c.channel.mode, c.channel.interface.as_str()),
            (NetworkMode::Bridge, "lo")
        );
        assert_eq!(c.service.as_deref(), Some("worker"));
        assert_eq!(
            c.complete_path,
            CompletePath {
                path: "/y/done".into(),
                legacy_fallback: false
            }
        );
        assert_eq!(c.callback_timeout, Some(Duration::from_millis(10)));
        assert_eq!(c.log_level, Level::Error);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let resolve = |o: Options, e: &[(&str, &str)]| PeerConfig::resolve(&o, &env(e)).unwrap_err();
        let port = |p: f64| Options {
            port: Some(p),
            ..Default::default()
        };
        assert!(matches!(resolve(port(0.0), &[]), ConfigError::Range(m) if m.contains("options.port")));
        assert!(matches!(resolve(port(65536.0), &[]), ConfigError::Range(_)));
        assert!(matches!(resolve(port(1.5), &[]), ConfigError::Range(_)));
        assert!(matches!(resolve(port(f64::NAN), &[]), ConfigError::Range(_)));
        assert!(
            matches!(resolve(Options::default(), &[("SHUTDOWN_PORT", "12ab")]), ConfigError::Range(m) if m.contains("SHUTDOWN_PORT"))
        );
        assert!(matches!(
            resolve(Options { address: Some("::1".into()), ..Default::default() }, &[]),
            ConfigError::Type(m) if m.contains("options.address")
        ));
        assert!(matches!(
            resolve(Options::default(), &[("HANDOVER_NETWORK_MODE", "overlay")]),
            ConfigError::Range(m) if m.contains("HANDOVER_NETWORK_MODE")
        ));
        assert!(matches!(
            resolve(Options { service_name: Some("s".repeat(64)), ..Default::default() }, &[]),
            ConfigError::Range(m) if m.contains("63")
        ));
        assert!(matches!(
            resolve(
                Options {
                    log_level: Some("loud".into()),
                    ..Default::default()
                },
                &[]
            ),
            ConfigError::Range(_)
        ));
    }

    #[test]
    fn an_unknown_loglevel_in_the_environment_means_info() {
        let c = PeerConfig::resolve(&Options::default(), &env(&[("LOGLEVEL", "verbose")])).unwrap();
        assert_eq!(c.log_level, Level::Info);
        let c = PeerConfig::resolve(&Options::default(), &env(&[("LOGLEVEL", "warn")])).unwrap();
        assert_eq!(c.log_level, Level::Warning);
    }

    #[test]
    fn status_identity_is_checked() {
        let addresses = |n: usize| (0..n).map(|i| format!("10.0.0.{}", i + 1)).collect::<Vec<_>>();
        assert_eq!(status_identity(0, "api", &addresses(10)).unwrap().addresses.len(), 10);
        assert!(
            matches!(status_identity(0, "api", &addresses(11)), Err(ConfigError::Range(m)) if m.contains("at most 10"))
        );
        assert!(matches!(status_identity(0, &"a".repeat(64), &[]), Err(ConfigError::Range(m)) if m.contains("63")));
        assert!(matches!(
            status_identity(0, "api", &["10.0.0.1".into(), "fe80::1".into()]),
            Err(ConfigError::Type(m)) if m.contains("addresses[1]")
        ));
        assert!(matches!(
            status_identity(0, "api", &["0.1.2.3".into()]),
            Err(ConfigError::Range(_))
        ));
    }

    #[test]
    fn status_errors_keep_their_wording() {
        let error = |r: Result<StatusIdentity, ConfigError>| r.unwrap_err().to_string();
        assert_eq!(
            error(status_identity(0, &"é".repeat(32), &[])),
            "serviceName is 64 bytes of UTF-8; at most 63 fit in a status message"
        );
        let eleven: Vec<String> = (1..=11).map(|i| format!("10.0.0.{i}")).collect();
        assert_eq!(
            error(status_identity(0, "api", &eleven)),
            "addresses has 11 entries; at most 10 fit in a status message"
        );
        assert_eq!(
            error(status_identity(0, "api", &["10.0.0.1".into(), " 0.1.2.3".into()])),
            "addresses[1] cannot start with 0 (it would read as empty); got ' 0.1.2.3'"
        );
        assert_eq!(
            status_label("SHUTTINGDOWN").unwrap_err(),
            ConfigError::Range("status is 12 bytes of UTF-8; at most 8 fit in a status message".into())
        );
        assert_eq!(&*status_label("DRAINING").unwrap(), "DRAINING");
        let identity = status_identity(-5, "api", &["10.0.0.1".into()]).unwrap();
        assert_eq!(
            (identity.timestamp_ms, &*identity.service_name, &identity.addresses[..]),
            (-5, "api", &[Ipv4Addr::new(10, 0, 0, 1)][..])
        );
    }

    #[test]
    fn a_nul_in_a_service_name_is_refused_rather_than_cut_short_on_the_wire() {
        assert!(matches!(status_identity(0, "ap\0i", &[]), Err(ConfigError::Value(m)) if m.contains("NUL")));
        let options = Options {
            service_name: Some("ap\0i".into()),
            ..Options::default()
        };
        assert!(
            matches!(PeerConfig::resolve(&options, &env(&[])), Err(ConfigError::Value(m)) if m.contains("options.serviceName"))
        );
        // Node's environment cannot hold a NUL; a map that does is refused, not shortened.
        assert!(matches!(
            PeerConfig::resolve(&Options::default(), &env(&[("BALENA_SERVICE_NAME", &format!("{}\0", "a".repeat(70)))])),
            Err(ConfigError::Value(m)) if m.contains("BALENA_SERVICE_NAME")
        ));
    }

    #[test]
    fn every_string_option_refuses_a_nul_by_name() {
        type SetOption = fn(&mut Options);
        let cases: [(&str, SetOption); 7] = [
            ("options.address", |o| o.address = Some("127.0.0.1\0".into())),
            ("options.networkMode", |o| o.network_mode = Some("host\0".into())),
            ("options.networkInterface", |o| {
                o.network_interface = Some("l\0o".into())
            }),
            ("options.handoverCompletePath", |o| {
                o.handover_complete_path = Some("/tmp/x\0".into())
            }),
            ("options.serviceName", |o| o.service_name = Some("a\0".into())),
            ("options.secret", |o| o.secret = Some("s\0".into())),
            ("options.logLevel", |o| o.log_level = Some("info\0".into())),
        ];
        for (name, set) in cases {
            let mut options = Options::default();
            set(&mut options);
            let expected = format!("{name} must not contain a NUL character");
            assert_eq!(
                PeerConfig::resolve(&options, &env(&[])).err(),
                Some(ConfigError::Value(expected.clone()))
            );
            assert_eq!(
                StatusConfig::resolve(&options, &env(&[])).err(),
                Some(ConfigError::Value(expected))
            );
        }
        assert!(
            matches!(status_identity(0, "api", &["10.0.0.1\0".into()]), Err(ConfigError::Value(m)) if m.starts_with("addresses[0]"))
        );
    }

    #[test]
    fn a_long_service_name_from_the_environment_is_shortened_but_an_option_throws() {
        let long = "billing-reconciliation-worker-for-the-eu-west-region-with-retries"; // 65 bytes
        assert!(long.len() > SERVICE_NAME_MAX);
        let c = PeerConfig::resolve(&Options::default(), &env(&[("BALENA_SERVICE_NAME", long)])).unwrap();
        let scope = c.service.clone().unwrap();
        assert!(scope.len() <= SERVICE_NAME_MAX, "{scope}");
        assert!(
            scope.starts_with(&long[..SHORTENED_PREFIX_MAX]) && scope.contains('~'),
            "{scope}"
        );
        assert_eq!(c.service_shortened_from.as_deref(), Some(long));
        // Deterministic, so the old and the new instance share the scope...
        assert_eq!(shorten_service_name(long), scope);
        // ...and names that differ only past the kept prefix still differ.
        assert_ne!(shorten_service_name(&format!("{long}-2")), scope);

        // The caller's own option is the caller's to fix.
        let option = Options {
            service_name: Some(long.into()),
            ..Default::default()
        };
        assert!(matches!(PeerConfig::resolve(&option, &env(&[])), Err(ConfigError::Range(m)) if m.contains("63")));

        // Names that fit are kept as they are, and need no warning.
        let c = PeerConfig::resolve(&Options::default(), &env(&[("BALENA_SERVICE_NAME", &long[..63])])).unwrap();
        assert_eq!(c.service.as_deref(), Some(&long[..63]));
        assert_eq!(c.service_warning(), None);
    }

    #[test]
    fn shortening_cuts_on_a_utf8_boundary_and_the_warning_is_given_once() {
        // 'é' is two bytes: a cut at byte 46 would split one.
        let name = format!("a{}", "é".repeat(40));
        let scope = shorten_service_name(&name);
        assert!(scope.len() <= SERVICE_NAME_MAX);
        assert_eq!(scope.split('~').next().unwrap(), format!("a{}", "é".repeat(22)));

        let c = PeerConfig::resolve(&Options::default(), &env(&[("BALENA_SERVICE_NAME", &name)])).unwrap();
        let warning = c.service_warning().unwrap();
        assert!(warning.contains("81 bytes") && warning.contains(&*scope), "{warning}");
        assert_eq!(c.service_warning(), None, "once per process");
    }

    #[test]
    fn a_bare_relative_complete_path_is_in_the_working_directory() {
        assert_eq!(folder_of(Path::new("done")), Some(Path::new(".")));
        assert_eq!(folder_of(Path::new("./done")), Some(Path::new(".")));
        assert_eq!(folder_of(Path::new("run/done")), Some(Path::new("run")));
        assert_eq!(folder_of(Path::new("/done")), Some(Path::new("/")));
        assert_eq!(folder_of(Path::new("/")), None);
        let bare = CompletePath {
            path: "done".into(),
            legacy_fallback: false,
        };
        assert_eq!(bare.choose(|p| p == Path::new(".")), Some(PathBuf::from("done")));
        // Likewise from the environment.
        let c = PeerConfig::resolve(
            &Options::default(),
            &env(&[("BALENA_SERVICE_HANDOVER_COMPLETE_PATH", "done")]),
        )
        .unwrap();
        assert_eq!(
            c.complete_path.choose(|p| p == Path::new(".")),
            Some(PathBuf::from("done"))
        );
    }

    #[test]
    fn complete_path_falls_back_to_the_legacy_name() {
        let default = CompletePath {
            path: DEFAULT_COMPLETE_PATH.into(),
            legacy_fallback: true,
        };
        let only = |dir: &'static str| move |p: &Path| p == Path::new(dir);
        assert_eq!(
            default.choose(only("/tmp/balena")),
            Some(PathBuf::from(DEFAULT_COMPLETE_PATH))
        );
        assert_eq!(
            default.choose(only("/tmp/resin")),
            Some(PathBuf::from(LEGACY_COMPLETE_PATH))
        );
        assert_eq!(default.choose(only("/elsewhere")), None);
        let explicit = CompletePath {
            path: "/data/done".into(),
            legacy_fallback: false,
        };
        assert_eq!(explicit.choose(only("/tmp/resin")), None);
        assert_eq!(explicit.choose(only("/data")), Some(PathBuf::from("/data/done")));
    }
}
