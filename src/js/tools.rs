//! Functions for the CLI and tools: the settings a channel would use, the
//! descriptions of every setting, and the status message codec.

use napi::bindgen_prelude::Buffer;
use napi::{Env, Result};
use napi_derive::napi;
use std::collections::HashMap;

use super::errors::{thrown, timestamp, Failure};

use crate::config;
use crate::protocol::wire;

/// The environment variables the configuration reads.
#[napi]
pub fn environment_variables() -> Vec<&'static str> {
    config::ENVIRONMENT_VARIABLES.to_vec()
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
    given: Option<config::ChannelText>,
    environment: HashMap<String, String>,
) -> Result<ChannelSettings> {
    let kind = config::ChannelKind::parse(&channel).ok_or_else(|| {
        Failure::Range(format!("channel must be 'handover' or 'status'; got '{channel}'")).throw(&env)
    })?;
    let given = given.unwrap_or_default();
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
