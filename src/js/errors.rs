//! The one place where errors become JS errors: each with its class and a
//! stable `code`, in Node's style, that `index.js` and users branch on.

use napi::{sys, Env, Error, Result, Status};

use crate::channel::ChannelError;
use crate::config::ConfigError;
use crate::protocol::time_value::{time_value, InvalidTime};

/// Every error this addon throws: its JS class and a stable `code`, in
/// Node's style. The one place where Rust errors become JS errors.
pub enum Failure {
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
    /// A bug of ours, said loudly: `Error`, `ERR_HANDOVER_INTERNAL`.
    Internal(String),
}

impl Failure {
    fn code(&self) -> &'static str {
        match self {
            Failure::Type(_) => "ERR_INVALID_ARG_TYPE",
            Failure::Range(_) => "ERR_OUT_OF_RANGE",
            Failure::Value(_) => "ERR_INVALID_ARG_VALUE",
            Failure::Closed(_) => "ERR_HANDOVER_CLOSED",
            Failure::Socket(_) => "ERR_HANDOVER_SOCKET",
            Failure::Internal(_) => "ERR_HANDOVER_INTERNAL",
        }
    }

    /// Throws the JS error; the returned error only tells napi it is pending.
    pub fn throw(self, env: &Env) -> Error {
        let code = self.code();
        let thrown = match &self {
            Failure::Type(message) | Failure::Value(message) => env.throw_type_error(&printable(message), Some(code)),
            Failure::Range(message) => env.throw_range_error(&printable(message), Some(code)),
            Failure::Closed(message) | Failure::Socket(message) | Failure::Internal(message) => {
                env.throw_error(&printable(message), Some(code))
            }
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
            ChannelError::Reentrant => Failure::Internal(message),
        }
    }
}

/// `.map_err(thrown(&env))`: converts and throws.
pub fn thrown<E: Into<Failure>>(env: &Env) -> impl FnOnce(E) -> Error + '_ {
    move |e| e.into().throw(env)
}

/// The time value of `startedAt`, which index.js checked to be a Date:
/// whether that Date is valid is checked here only (see `time_value`).
pub fn started_at(ms: f64) -> std::result::Result<i64, Failure> {
    time_value(ms).map_err(|invalid| {
        Failure::Type(match invalid {
            InvalidTime::NotANumber => "startedAt must be a valid Date; got an Invalid Date".into(),
            InvalidTime::OutOfRange => "startedAt must be a valid Date".into(),
        })
    })
}

/// The `timestamp` argument of `encodeStatusMessage`, a number of ms.
pub fn timestamp(ms: f64) -> std::result::Result<i64, Failure> {
    time_value(ms).map_err(|_| Failure::Type("timestamp must be a valid Date".into()))
}

pub fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), "napi call failed".to_string()))
    }
}
