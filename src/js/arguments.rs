//! Arguments as JS gives them, each checked here with a message of our
//! own, so that no napi conversion message ever reaches a user (or a regex
//! in index.js): the options, field by field; a status channel's service
//! name and addresses.

use napi::bindgen_prelude::{JsObjectValue, Object};
use napi::{JsValue, Result, Unknown, ValueType};

use super::errors::Failure;
use crate::config::Options;

/// `undefined` or `null` is no options; anything but an object is refused.
pub fn options(value: Option<Unknown<'_>>) -> Result<std::result::Result<Options, Failure>> {
    let Some(value) = value else {
        return Ok(Ok(Options::default()));
    };
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null => return Ok(Ok(Options::default())),
        ValueType::Object => {}
        _ => {
            return Ok(Err(Failure::Type(format!(
                "options must be an object; got {}",
                describe(&value)?
            ))))
        }
    }
    // SAFETY: checked to be an object just above.
    let object: Object = unsafe { value.cast()? };
    let mut reader = Reader { object, refused: None };
    let options = Options {
        port: reader.number("port")?,
        address: reader.string("address")?,
        network_mode: reader.string("networkMode")?,
        network_interface: reader.string("networkInterface")?,
        heartbeat_interval_ms: reader.number("heartbeatIntervalMs")?,
        handover_complete_path: reader.string("handoverCompletePath")?,
        callback_timeout_ms: reader.number("callbackTimeoutMs")?,
        service_name: reader.string("serviceName")?,
        secret: reader.string("secret")?,
        log_level: reader.string("logLevel")?,
        router_port: reader.number("routerPort")?,
    };
    Ok(reader.refused.map_or(Ok(options), Err))
}

/// Reads fields; the first of the wrong type is remembered, to be thrown.
struct Reader<'env> {
    object: Object<'env>,
    refused: Option<Failure>,
}

impl Reader<'_> {
    fn number(&mut self, name: &str) -> Result<Option<f64>> {
        self.field(name, ValueType::Number, "a number")
    }

    fn string(&mut self, name: &str) -> Result<Option<String>> {
        self.field(name, ValueType::String, "a string")
    }

    fn field<T: napi::bindgen_prelude::FromNapiValue>(
        &mut self,
        name: &str,
        wanted: ValueType,
        what: &str,
    ) -> Result<Option<T>> {
        let value: Unknown = self.object.get_named_property(name)?;
        let kind = value.get_type()?;
        if kind == ValueType::Undefined {
            return Ok(None);
        }
        if kind != wanted {
            if self.refused.is_none() {
                self.refused = Some(Failure::Type(format!(
                    "options.{name} must be {what}; got {}",
                    describe(&value)?
                )));
            }
            return Ok(None);
        }
        // SAFETY: of the type `T` reads, checked just above.
        Ok(Some(unsafe { value.cast()? }))
    }
}

/// A string, or what to throw: `name must be a string; got …`.
pub fn string(value: Unknown<'_>, name: &str) -> Result<std::result::Result<String, Failure>> {
    if value.get_type()? != ValueType::String {
        return Ok(Err(Failure::Type(format!(
            "{name} must be a string; got {}",
            describe(&value)?
        ))));
    }
    // SAFETY: checked to be a string just above.
    Ok(Ok(unsafe { value.cast()? }))
}

/// An array of strings; a hole or another type is named by its index.
pub fn addresses(value: Unknown<'_>) -> Result<std::result::Result<Vec<String>, Failure>> {
    if !value.is_array()? {
        return Ok(Err(Failure::Type(format!(
            "addresses must be an array of IPv4 address strings; got {}",
            describe(&value)?
        ))));
    }
    // SAFETY: an array is an object.
    let array: Object = unsafe { value.cast()? };
    let mut addresses = Vec::new();
    for index in 0..array.get_array_length()? {
        let element: Unknown = array.get_element(index)?;
        if element.get_type()? == ValueType::String {
            // SAFETY: checked to be a string just above.
            addresses.push(unsafe { element.cast()? });
            continue;
        }
        let got = match array.has_element(index)? {
            true => describe(&element)?,
            false => "an empty slot".into(),
        };
        return Ok(Err(Failure::Type(format!(
            "addresses[{index}] must be an IPv4 address string; got {got}"
        ))));
    }
    Ok(Ok(addresses))
}

/// A value as an error message names it: its type, and a short value.
pub fn describe(value: &Unknown<'_>) -> Result<String> {
    Ok(match value.get_type()? {
        ValueType::Null => "null".into(),
        ValueType::Undefined => "undefined".into(),
        ValueType::String => {
            // SAFETY: a string, as just read.
            let text: String = unsafe { value.cast()? };
            format!("the string {text:?}")
        }
        // SAFETY: a number, as just read.
        ValueType::Number => format!("number {}", unsafe { value.cast::<f64>()? }),
        // SAFETY: a boolean, as just read.
        ValueType::Boolean => format!("boolean {}", unsafe { value.cast::<bool>()? }),
        ValueType::BigInt => "a bigint".into(),
        ValueType::Symbol => "a symbol".into(),
        ValueType::Function => "a function".into(),
        _ => "an object".into(),
    })
}
