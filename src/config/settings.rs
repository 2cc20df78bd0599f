//! What the CLI and tools show: one channel's settings resolved with where
//! each came from, and the descriptions of every setting. Nothing here
//! resolves on its own: values come from the parent's `Source`, and
//! defaults from its constants, the ones the constructors use, so that
//! what a tool shows cannot drift from what a peer or status object does.

use super::{
    parse_integer, Channel, ConfigError, Environment, NetworkMode, Options, Source, DEFAULT_COMPLETE_PATH,
    DEFAULT_GROUP, DEFAULT_HEARTBEAT, DEFAULT_INTERFACE, DEFAULT_SHUTDOWN_PORT, DEFAULT_STATUS_PORT,
};
use crate::protocol::level::Level;

/// The two channels a service uses: handover announcements and status messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Handover,
    Status,
}

impl ChannelKind {
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Handover => "handover",
            ChannelKind::Status => "status",
        }
    }

    pub fn parse(name: &str) -> Option<ChannelKind> {
        match name {
            "handover" => Some(ChannelKind::Handover),
            "status" => Some(ChannelKind::Status),
            _ => None,
        }
    }

    /// The variables that stand in for this channel's `port` and `address`.
    fn variables(self) -> (&'static str, &'static str) {
        match self {
            ChannelKind::Handover => ("SHUTDOWN_PORT", "SHUTDOWN_BROADCAST_ADDRESS"),
            ChannelKind::Status => ("HANDOVER_STATUS_PORT", "HANDOVER_STATUS_BROADCAST_ADDRESS"),
        }
    }

    fn default_port(self) -> u16 {
        match self {
            ChannelKind::Handover => DEFAULT_SHUTDOWN_PORT,
            ChannelKind::Status => DEFAULT_STATUS_PORT,
        }
    }
}

/// One setting, described for help texts and tools: the option that sets
/// it, the environment variable that stands in for the option, and the
/// default that applies when neither is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingDescription {
    /// Its name among the options, as JS spells it (`networkMode`).
    pub option: &'static str,
    /// The channel it configures; `None` for both. The peer's own settings
    /// (heartbeat, complete file, service, secret) are the handover channel's.
    pub channel: Option<ChannelKind>,
    pub variable: &'static str,
    /// As text; `None` when unset means "none" (no timeout, unscoped, unsigned).
    pub default: Option<String>,
    /// What it is, in one line.
    pub meaning: &'static str,
}

/// Every setting the configuration reads from the environment, one entry per
/// variable of `ENVIRONMENT_VARIABLES`. The defaults are the constants the
/// resolution in `config` uses, so that help texts cannot drift from behaviour.
pub fn setting_descriptions() -> Vec<SettingDescription> {
    use ChannelKind::{Handover, Status};
    let describe = |option, channel, variable, default: Option<String>, meaning| SettingDescription {
        option,
        channel,
        variable,
        default,
        meaning,
    };
    let channel = |kind: ChannelKind| {
        let (port, address) = kind.variables();
        [
            describe(
                "port",
                Some(kind),
                port,
                Some(kind.default_port().to_string()),
                "UDP port of the channel",
            ),
            describe(
                "address",
                Some(kind),
                address,
                Some(DEFAULT_GROUP.to_string()),
                "where messages are sent: a multicast group, or a unicast or broadcast address",
            ),
        ]
    };
    let mut settings: Vec<SettingDescription> = channel(Handover).into_iter().chain(channel(Status)).collect();
    settings.extend([
        describe(
            "networkMode",
            None,
            "HANDOVER_NETWORK_MODE",
            Some(NetworkMode::Bridge.name().to_string()),
            "'bridge': the default interface; 'host': only networkInterface",
        ),
        describe(
            "networkInterface",
            None,
            "NETWORK_INTERFACE",
            Some(DEFAULT_INTERFACE.to_string()),
            "host mode: the interface's name or IPv4 address",
        ),
        describe(
            "heartbeatIntervalMs",
            Some(Handover),
            "HANDOVER_HEARTBEAT_INTERVAL_MS",
            Some(DEFAULT_HEARTBEAT.as_millis().to_string()),
            "ms between announcements after the start-up burst",
        ),
        describe(
            "handoverCompletePath",
            Some(Handover),
            "BALENA_SERVICE_HANDOVER_COMPLETE_PATH",
            Some(DEFAULT_COMPLETE_PATH.to_string()),
            "where the handover-complete file is written",
        ),
        describe(
            "callbackTimeoutMs",
            Some(Handover),
            "HANDOVER_CALLBACK_TIMEOUT_MS",
            None,
            "write the complete file anyway after this many ms of the shutdown callback",
        ),
        describe(
            "serviceName",
            Some(Handover),
            "BALENA_SERVICE_NAME",
            None,
            "service scope: announcements of other services are ignored",
        ),
        describe(
            "secret",
            None,
            "HANDOVER_SECRET",
            None,
            "shared secret: announcements and status messages are signed and checked",
        ),
        describe(
            "routerPort",
            Some(Status),
            "HANDOVER_ROUTER_PORT",
            Some(super::DEFAULT_ROUTER_PORT.to_string()),
            "where routers say HELLO and DRAINED (drain() waits for them)",
        ),
        describe(
            "logLevel",
            None,
            "LOGLEVEL",
            Some(Level::Info.name().to_string()),
            "syslog level name, emerg … debug",
        ),
    ]);
    settings
}

/// Where a resolved value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Option,
    Environment,
    Default,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Option => "option",
            Origin::Environment => "environment",
            Origin::Default => "default",
        }
    }
}

/// A channel's settings as a command line gives them: text, read as the
/// environment's values are (a port in decimal). Each wins over its
/// environment variable; an absent one is not given. The addon takes this
/// very type from JS (`ChannelSettingsText`).
#[cfg_attr(not(test), napi_derive::napi(object, js_name = "ChannelSettingsText"))]
#[derive(Debug, Clone, Default)]
pub struct ChannelText {
    pub port: Option<String>,
    pub address: Option<String>,
    pub network_mode: Option<String>,
    pub network_interface: Option<String>,
    pub log_level: Option<String>,
}

impl ChannelText {
    /// The options these stand for. Errors name the option (`options.port`).
    pub fn to_options(&self) -> Result<Options, ConfigError> {
        let port = match self.port.as_deref() {
            Some(text) => Some(parse_integer(text, 1, 65535, "options.port")? as f64),
            None => None,
        };
        Ok(Options {
            port,
            address: self.address.clone(),
            network_mode: self.network_mode.clone(),
            network_interface: self.network_interface.clone(),
            log_level: self.log_level.clone(),
            ..Options::default()
        })
    }
}

/// What one channel of a peer or status object would use, and where each
/// value came from: the resolution the constructors do, for tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSettings {
    pub kind: ChannelKind,
    pub channel: Channel,
    pub log_level: Level,
    pub from: SettingOrigins,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingOrigins {
    pub port: Origin,
    pub address: Origin,
    pub network_mode: Origin,
    pub network_interface: Origin,
    pub log_level: Origin,
}

impl ChannelSettings {
    /// Resolves as `PeerConfig::resolve` (handover) or `StatusConfig::resolve`
    /// (status) do, reading only the channel's options and the log level.
    pub fn resolve(kind: ChannelKind, options: &Options, env: &Environment) -> Result<Self, ConfigError> {
        options.refuse_nul()?;
        let source = Source { env };
        let (port_key, address_key) = kind.variables();
        let channel = source.channel(options, port_key, address_key, kind.default_port())?;
        let log_level = source.log_level(options.log_level.as_deref())?;
        // The same tests the readers of `Source` apply: an option counts when
        // given (a blank interface name does not), a variable when not blank.
        let from = |given: bool, key: &str| match (given, source.env(key)) {
            (true, _) => Origin::Option,
            (false, Some(_)) => Origin::Environment,
            (false, None) => Origin::Default,
        };
        let from = SettingOrigins {
            port: from(options.port.is_some(), port_key),
            address: from(options.address.is_some(), address_key),
            network_mode: from(options.network_mode.is_some(), "HANDOVER_NETWORK_MODE"),
            network_interface: from(
                options.network_interface.as_deref().is_some_and(|v| !v.is_empty()),
                "NETWORK_INTERFACE",
            ),
            // An unknown LOGLEVEL means the default, so it does not count.
            log_level: match (&options.log_level, source.env("LOGLEVEL").and_then(Level::parse)) {
                (Some(_), _) => Origin::Option,
                (None, Some(_)) => Origin::Environment,
                (None, None) => Origin::Default,
            },
        };
        Ok(ChannelSettings {
            kind,
            channel,
            log_level,
            from,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;
    use crate::config::{PeerConfig, StatusConfig, ENVIRONMENT_VARIABLES};

    #[test]
    fn every_variable_is_described_once_with_the_default_resolution_uses() {
        let settings = setting_descriptions();
        let mut described: Vec<&str> = settings.iter().map(|s| s.variable).collect();
        let mut read = ENVIRONMENT_VARIABLES.to_vec();
        described.sort_unstable();
        read.sort_unstable();
        assert_eq!(described, read);

        let default = |option: &str, kind: ChannelKind| {
            settings
                .iter()
                .find(|s| s.option == option && s.channel.is_none_or(|c| c == kind))
                .unwrap_or_else(|| panic!("{option} is not described"))
                .default
                .clone()
        };
        let text = |v: &dyn ToString| Some(v.to_string());
        let peer = PeerConfig::resolve(&Options::default(), &env(&[])).unwrap();
        let status = StatusConfig::resolve(&Options::default(), &env(&[])).unwrap();
        for (kind, channel) in [
            (ChannelKind::Handover, &peer.channel),
            (ChannelKind::Status, &status.channel),
        ] {
            assert_eq!(default("port", kind), text(&channel.port));
            assert_eq!(default("address", kind), text(&channel.target));
            assert_eq!(default("networkMode", kind).as_deref(), Some(channel.mode.name()));
            assert_eq!(default("networkInterface", kind), text(&channel.interface));
        }
        let handover = ChannelKind::Handover;
        assert_eq!(default("logLevel", handover).as_deref(), Some(peer.log_level.name()));
        assert_eq!(
            default("heartbeatIntervalMs", handover),
            text(&peer.heartbeat.as_millis())
        );
        assert_eq!(
            default("handoverCompletePath", handover),
            text(&peer.complete_path.path.display())
        );
        assert_eq!(default("callbackTimeoutMs", handover), None);
        assert_eq!(default("serviceName", handover), None);
        assert_eq!(default("secret", handover), None);
    }

    #[test]
    fn channel_settings_resolve_as_the_constructors_do() {
        let cases = [
            env(&[]),
            env(&[
                ("SHUTDOWN_PORT", "2000"),
                ("HANDOVER_STATUS_BROADCAST_ADDRESS", "239.1.2.3"),
                ("HANDOVER_NETWORK_MODE", "HOST"),
                ("NETWORK_INTERFACE", "eth9"),
                ("LOGLEVEL", "debug"),
            ]),
        ];
        let options = [
            Options::default(),
            Options {
                port: Some(3000.0),
                address: Some("127.0.0.1".into()),
                network_mode: Some("bridge".into()),
                network_interface: Some("lo".into()),
                log_level: Some("error".into()),
                ..Options::default()
            },
        ];
        for e in &cases {
            for o in &options {
                let peer = PeerConfig::resolve(o, e).unwrap();
                let handover = ChannelSettings::resolve(ChannelKind::Handover, o, e).unwrap();
                assert_eq!((&handover.channel, handover.log_level), (&peer.channel, peer.log_level));
                let status = StatusConfig::resolve(o, e).unwrap();
                let resolved = ChannelSettings::resolve(ChannelKind::Status, o, e).unwrap();
                assert_eq!(
                    (&resolved.channel, resolved.log_level),
                    (&status.channel, status.log_level)
                );
            }
        }
    }

    #[test]
    fn channel_settings_say_where_each_value_came_from() {
        use Origin::*;
        let from = |kind, o: &Options, e: &[(&str, &str)]| ChannelSettings::resolve(kind, o, &env(e)).unwrap().from;
        let all = |origin| SettingOrigins {
            port: origin,
            address: origin,
            network_mode: origin,
            network_interface: origin,
            log_level: origin,
        };
        assert_eq!(from(ChannelKind::Handover, &Options::default(), &[]), all(Default));

        let e = [
            ("HANDOVER_STATUS_PORT", "2001"),
            ("HANDOVER_STATUS_BROADCAST_ADDRESS", "239.1.2.3"),
            ("HANDOVER_NETWORK_MODE", "host"),
            ("NETWORK_INTERFACE", "eth9"),
            ("LOGLEVEL", "debug"),
        ];
        assert_eq!(from(ChannelKind::Status, &Options::default(), &e), all(Environment));
        // The other channel's variables are not this one's.
        let handover = from(ChannelKind::Handover, &Options::default(), &e);
        assert_eq!((handover.port, handover.address), (Default, Default));

        let o = Options {
            port: Some(3000.0),
            address: Some("127.0.0.1".into()),
            network_mode: Some("bridge".into()),
            network_interface: Some("lo".into()),
            log_level: Some("error".into()),
            ..Options::default()
        };
        assert_eq!(from(ChannelKind::Status, &o, &e), all(Option));

        // What the readers ignore is not where a value came from.
        let blank = Options {
            network_interface: Some(String::new()),
            ..Options::default()
        };
        let ignored = from(
            ChannelKind::Handover,
            &blank,
            &[("SHUTDOWN_PORT", "  "), ("LOGLEVEL", "verbose")],
        );
        assert_eq!(ignored, all(Default));
    }

    #[test]
    fn channel_text_is_read_as_the_environment_is_and_errors_name_the_option() {
        let text = |port: &str| ChannelText {
            port: Some(port.into()),
            ..ChannelText::default()
        };
        assert_eq!(text(" 24010 ").to_options().unwrap().port, Some(24010.0));
        for bad in ["abc", "1.5", "", "0", "70000"] {
            let error = text(bad).to_options().unwrap_err();
            assert!(
                matches!(&error, ConfigError::Range(m) if m.starts_with("options.port ")),
                "{bad}: {error}"
            );
        }
        // Errors start with the name of what was wrong, for tools to point at their own flag.
        let resolve = |t: ChannelText, e: &[(&str, &str)]| {
            ChannelSettings::resolve(ChannelKind::Status, &t.to_options().unwrap(), &env(e)).unwrap_err()
        };
        let starts = |error: ConfigError, name: &str| assert!(error.to_string().starts_with(name), "{error}");
        let given = |f: fn(&mut ChannelText)| {
            let mut t = ChannelText::default();
            f(&mut t);
            t
        };
        starts(
            resolve(given(|t| t.address = Some("1.2.3".into())), &[]),
            "options.address ",
        );
        starts(
            resolve(given(|t| t.network_mode = Some("overlay".into())), &[]),
            "options.networkMode ",
        );
        starts(
            resolve(given(|t| t.log_level = Some("loud".into())), &[]),
            "options.logLevel ",
        );
        starts(
            resolve(ChannelText::default(), &[("HANDOVER_STATUS_PORT", "0")]),
            "HANDOVER_STATUS_PORT ",
        );
        starts(
            resolve(ChannelText::default(), &[("HANDOVER_STATUS_BROADCAST_ADDRESS", "x")]),
            "HANDOVER_STATUS_BROADCAST_ADDRESS ",
        );
        starts(
            resolve(ChannelText::default(), &[("HANDOVER_NETWORK_MODE", "overlay")]),
            "HANDOVER_NETWORK_MODE ",
        );
    }
}
