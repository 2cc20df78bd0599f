//! A router's configuration: which service it routes, on which port the
//! instances serve, which subnets it trusts, and the status channel it
//! follows. Options win over environment variables, as elsewhere.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{nul_in, parse_ipv4, Channel, ConfigError, Environment, NetworkMode, Source, DEFAULT_STATUS_PORT};
use crate::protocol::auth::Secret;
use crate::protocol::level::Level;
use crate::protocol::routing::Subnet;
use crate::protocol::wire::{ServiceName, ServiceNameError, SERVICE_NAME_MAX};

/// Options of `HandoverRouter`. Each is optional where it has a default.
#[cfg_attr(not(test), napi_derive::napi(object, js_name = "HandoverRouterOptions"))]
#[derive(Debug, Clone, Default)]
pub struct RouterOptions {
    /// The service routed. Env `BALENA_SERVICE_NAME`; required one way or the other.
    pub service_name: Option<String>,
    /// The port every instance serves on (status messages carry addresses only). Required.
    pub service_port: Option<f64>,
    /// Only addresses inside these IPv4 subnets (`10.0.0.0/24`) are routed.
    /// Default: the subnet of the interface the router listens on.
    pub subnets: Option<Vec<String>>,
    /// The status port. Env `HANDOVER_STATUS_PORT`; default 1537.
    pub network_port: Option<f64>,
    /// The status group. Env `HANDOVER_STATUS_BROADCAST_ADDRESS`; default `239.192.16.16`.
    pub status_broadcast_address: Option<String>,
    /// Where HELLO and DRAINED go. Env `HANDOVER_ROUTER_PORT`; default 1538.
    pub router_port: Option<f64>,
    /// IPv4 address of the interface to listen and send on. Default: the
    /// interface of the route to the group.
    pub interface_address: Option<String>,
    /// This router's name in HELLO, shown in drain reports. Default: the host name.
    pub name: Option<String>,
    /// Instances announce UP this often; one silent for three periods is gone. Default 10000.
    pub up_period_ms: Option<f64>,
    /// The proxy is checked against the table this often. Default 2000.
    pub reconcile_ms: Option<f64>,
    /// Only signed, fresh status messages count. Env `HANDOVER_SECRET`.
    pub secret: Option<String>,
    /// Env `LOGLEVEL`; default `info`.
    pub log_level: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// The status channel followed: its port, group and interface.
    pub status: Channel,
    pub router_port: u16,
    pub service: ServiceName,
    pub service_port: u16,
    /// `None`: the listening interface's subnet, found when it starts.
    pub subnets: Option<Vec<Subnet>>,
    pub name: ServiceName,
    pub up_period: Duration,
    pub reconcile: Duration,
    pub secret: Option<Secret>,
    pub log_level: Level,
}

impl RouterConfig {
    pub fn resolve(options: &RouterOptions, env: &Environment, host_name: &str) -> Result<Self, ConfigError> {
        options.refuse_nul()?;
        let source = Source { env };
        let service = source
            .text(options.service_name.as_deref(), "BALENA_SERVICE_NAME")
            .ok_or_else(|| ConfigError::Type("options.serviceName is required (or set BALENA_SERVICE_NAME)".into()))?;
        let service = ServiceName::new(&service).map_err(|e| name_error("options.serviceName", &service, e))?;
        let service_port = match options.service_port {
            Some(port) => super::integer_in(port, 1, 65535, "options.servicePort")? as u16,
            None => {
                return Err(ConfigError::Type(
                    "options.servicePort is required: the port every instance serves on".into(),
                ))
            }
        };
        let subnets = match &options.subnets {
            None => None,
            Some(list) if list.is_empty() => {
                return Err(ConfigError::Range(
                    "options.subnets must name at least one subnet".into(),
                ))
            }
            Some(list) => Some(
                list.iter()
                    .map(|text| {
                        text.parse::<Subnet>()
                            .map_err(|e| ConfigError::Range(format!("options.subnets: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let (mode, interface) = match options.interface_address.as_deref().filter(|a| !a.is_empty()) {
            Some(text) => (
                NetworkMode::Host,
                parse_ipv4(text, "options.interfaceAddress")?.to_string(),
            ),
            None => (NetworkMode::Bridge, Ipv4Addr::UNSPECIFIED.to_string()),
        };
        let status = Channel {
            port: source.named_port(
                options.network_port,
                "options.networkPort",
                "HANDOVER_STATUS_PORT",
                DEFAULT_STATUS_PORT,
            )?,
            target: source.address_named(
                options.status_broadcast_address.as_deref(),
                "options.statusBroadcastAddress",
                "HANDOVER_STATUS_BROADCAST_ADDRESS",
            )?,
            mode,
            interface,
        };
        let name_text = options
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| host_name.chars().take(SERVICE_NAME_MAX).collect());
        let name = ServiceName::new(&name_text).map_err(|e| name_error("options.name", &name_text, e))?;
        let millis = |value: Option<f64>, what: &str, default: u64, min: i64| -> Result<Duration, ConfigError> {
            Ok(match value {
                Some(v) => Duration::from_millis(super::integer_in(v, min, 3_600_000, what)? as u64),
                None => Duration::from_millis(default),
            })
        };
        Ok(RouterConfig {
            router_port: source.router_port(options.router_port)?,
            status,
            service,
            service_port,
            subnets,
            name,
            up_period: millis(options.up_period_ms, "options.upPeriodMs", 10_000, 10)?,
            reconcile: millis(options.reconcile_ms, "options.reconcileMs", 2_000, 10)?,
            secret: source.secret(options.secret.as_deref()),
            log_level: source.log_level(options.log_level.as_deref())?,
        })
    }
}

fn name_error(what: &str, value: &str, error: ServiceNameError) -> ConfigError {
    match error {
        ServiceNameError::Nul => nul_in(what),
        ServiceNameError::TooLong { len } => ConfigError::Range(format!(
            "{what} '{value}' is {len} bytes of UTF-8; at most {SERVICE_NAME_MAX} are allowed"
        )),
    }
}

impl RouterOptions {
    fn refuse_nul(&self) -> Result<(), ConfigError> {
        let strings = [
            (&self.service_name, "options.serviceName"),
            (&self.status_broadcast_address, "options.statusBroadcastAddress"),
            (&self.interface_address, "options.interfaceAddress"),
            (&self.name, "options.name"),
            (&self.secret, "options.secret"),
            (&self.log_level, "options.logLevel"),
        ];
        if let Some((_, what)) = strings
            .into_iter()
            .find(|(value, _)| value.as_deref().is_some_and(|v| v.contains('\0')))
        {
            return Err(nul_in(what));
        }
        match self.subnets.iter().flatten().any(|s| s.contains('\0')) {
            true => Err(nul_in("options.subnets")),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn options() -> RouterOptions {
        RouterOptions {
            service_name: Some("api".into()),
            service_port: Some(8080.0),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_environment() {
        let c = RouterConfig::resolve(&options(), &env(&[("HANDOVER_ROUTER_PORT", "2538")]), "edge").unwrap();
        assert_eq!(c.status.port, 1537);
        assert_eq!(c.router_port, 2538);
        assert_eq!(c.status.mode, NetworkMode::Bridge);
        assert_eq!(&*c.name, "edge");
        assert_eq!(c.subnets, None);
        assert_eq!(c.up_period, Duration::from_secs(10));
        let from_env = RouterOptions {
            service_name: None,
            ..options()
        };
        let c = RouterConfig::resolve(&from_env, &env(&[("BALENA_SERVICE_NAME", "web")]), "h").unwrap();
        assert_eq!(&*c.service, "web");
    }

    #[test]
    fn clear_errors() {
        let missing = RouterOptions::default();
        assert!(
            matches!(RouterConfig::resolve(&missing, &env(&[]), "h"), Err(ConfigError::Type(m)) if m.contains("serviceName"))
        );
        let no_port = RouterOptions {
            service_port: None,
            ..options()
        };
        assert!(
            matches!(RouterConfig::resolve(&no_port, &env(&[]), "h"), Err(ConfigError::Type(m)) if m.contains("servicePort"))
        );
        let bad_subnet = RouterOptions {
            subnets: Some(vec!["10.0.0.0/40".into()]),
            ..options()
        };
        assert!(
            matches!(RouterConfig::resolve(&bad_subnet, &env(&[]), "h"), Err(ConfigError::Range(m)) if m.contains("subnets"))
        );
        let nul = RouterOptions {
            name: Some("a\0".into()),
            ..options()
        };
        assert!(matches!(
            RouterConfig::resolve(&nul, &env(&[]), "h"),
            Err(ConfigError::Value(_))
        ));
        let address = RouterOptions {
            interface_address: Some("10.77.0.1".into()),
            subnets: Some(vec!["10.77.0.0/24".into()]),
            ..options()
        };
        let c = RouterConfig::resolve(&address, &env(&[]), "h").unwrap();
        assert_eq!(c.status.mode, NetworkMode::Host);
        assert_eq!(c.status.interface, "10.77.0.1");
        assert_eq!(c.subnets.unwrap()[0].to_string(), "10.77.0.0/24");
    }
}
