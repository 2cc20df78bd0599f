//! Values that fit the fields they are sent in. Each limit of the wire
//! formats is checked here, once, when a value is built; the encoders take
//! these types and cannot fail. Errors say what did not fit, and callers
//! word them for whoever gave the value.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Deref;

use super::{SERVICE_NAME_MAX, STATUS_ADDRESSES_MAX, STATUS_TEXT_MAX};

/// A service name that fits both fields that carry one: the status
/// message's 63 NUL-padded bytes and the announcement's scope field. It may
/// be empty (a status message may name no service; see `ServiceScope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceName(String);

/// Why a text is not a `ServiceName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceNameError {
    /// It contains a NUL character, which would end the name early where
    /// the status message pads with NUL.
    Nul,
    /// Its UTF-8 is `len` bytes, more than `SERVICE_NAME_MAX`.
    TooLong { len: usize },
}

impl ServiceName {
    /// A NUL is looked for first: a name with one is refused whatever its length.
    pub fn new(name: &str) -> Result<Self, ServiceNameError> {
        if name.contains('\0') {
            return Err(ServiceNameError::Nul);
        }
        if name.len() > SERVICE_NAME_MAX {
            return Err(ServiceNameError::TooLong { len: name.len() });
        }
        Ok(ServiceName(name.to_owned()))
    }
}

/// The service an announcement is scoped to: a service name that is not
/// empty, as a scope field of length 0 is malformed. No scope is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceScope(ServiceName);

impl ServiceScope {
    /// `None` for the empty name: it scopes nothing.
    pub fn new(name: ServiceName) -> Option<Self> {
        (!name.is_empty()).then_some(ServiceScope(name))
    }

    /// A scope from a name a test knows to fit.
    #[cfg(test)]
    pub fn fixed(name: &str) -> Self {
        ServiceName::new(name)
            .ok()
            .and_then(ServiceScope::new)
            .expect("a non-empty name of at most 63 bytes without NUL")
    }
}

/// The status text of a status message (`UP`, `DOWN`, …): at most
/// `STATUS_TEXT_MAX` bytes of UTF-8. A NUL inside is sent as given, as
/// the original library does; the receiver's text stops there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLabel(Cow<'static, str>);

/// A status text of `len` bytes of UTF-8, more than `STATUS_TEXT_MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLabelTooLong {
    pub len: usize,
}

impl StatusLabel {
    pub const UP: StatusLabel = StatusLabel::known("UP");
    pub const DOWN: StatusLabel = StatusLabel::known("DOWN");

    pub fn new(label: &str) -> Result<Self, StatusLabelTooLong> {
        if label.len() > STATUS_TEXT_MAX {
            return Err(StatusLabelTooLong { len: label.len() });
        }
        Ok(StatusLabel(Cow::Owned(label.to_owned())))
    }

    /// A label written in this code: one that does not fit fails the build.
    const fn known(label: &'static str) -> Self {
        assert!(label.len() <= STATUS_TEXT_MAX, "a status label is at most 8 bytes");
        StatusLabel(Cow::Borrowed(label))
    }
}

/// The addresses of a status message: at most `STATUS_ADDRESSES_MAX`, none
/// with a first byte of 0 (that marks an empty slot on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusAddresses(Vec<Ipv4Addr>);

/// Why a list of addresses is not `StatusAddresses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusAddressesError {
    /// `count` addresses, more than `STATUS_ADDRESSES_MAX`.
    TooMany { count: usize },
    /// The address at `index` starts with 0 and would read as an empty slot.
    ReadsAsEmpty { index: usize },
}

impl StatusAddresses {
    /// The count is checked before any address.
    pub fn new(addresses: Vec<Ipv4Addr>) -> Result<Self, StatusAddressesError> {
        if addresses.len() > STATUS_ADDRESSES_MAX {
            return Err(StatusAddressesError::TooMany { count: addresses.len() });
        }
        if let Some(index) = addresses.iter().position(|a| a.octets()[0] == 0) {
            return Err(StatusAddressesError::ReadsAsEmpty { index });
        }
        Ok(StatusAddresses(addresses))
    }
}

// Read-only views: a checked value is read like the plain one, never changed.

impl Deref for ServiceName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Deref for ServiceScope {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Deref for StatusLabel {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Deref for StatusAddresses {
    type Target = [Ipv4Addr];
    fn deref(&self) -> &[Ipv4Addr] {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Display for ServiceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Display for StatusLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_name_of_63_bytes_fits_and_64_do_not() {
        assert_eq!(&*ServiceName::new(&"a".repeat(63)).unwrap(), "a".repeat(63));
        assert_eq!(
            ServiceName::new(&"a".repeat(64)),
            Err(ServiceNameError::TooLong { len: 64 })
        );
        assert_eq!(&*ServiceName::new("").unwrap(), "");
    }

    #[test]
    fn a_service_name_is_measured_in_utf8_bytes() {
        // 'é' is two bytes: 31 of them and one more byte is exactly 63.
        let fits = "é".repeat(31) + "x";
        assert_eq!(fits.len(), 63);
        assert_eq!(&*ServiceName::new(&fits).unwrap(), fits);
        assert_eq!(
            ServiceName::new(&"é".repeat(32)),
            Err(ServiceNameError::TooLong { len: 64 })
        );
    }

    #[test]
    fn a_nul_anywhere_in_a_service_name_is_refused_whatever_its_length() {
        assert_eq!(ServiceName::new("ap\0i"), Err(ServiceNameError::Nul));
        assert_eq!(ServiceName::new("\0"), Err(ServiceNameError::Nul));
        assert_eq!(
            ServiceName::new(&format!("{}\0", "a".repeat(62))),
            Err(ServiceNameError::Nul)
        );
        assert_eq!(
            ServiceName::new(&format!("{}\0", "a".repeat(70))),
            Err(ServiceNameError::Nul)
        );
    }

    #[test]
    fn an_empty_name_scopes_nothing() {
        assert_eq!(ServiceScope::new(ServiceName::new("").unwrap()), None);
        let scope = ServiceScope::new(ServiceName::new("api").unwrap()).unwrap();
        assert_eq!((&*scope, scope.to_string()), ("api", "api".to_string()));
        assert_eq!(ServiceScope::fixed(&"a".repeat(63)).len(), 63);
    }

    #[test]
    fn a_status_label_of_8_bytes_fits_and_9_do_not() {
        assert_eq!(&*StatusLabel::new("DRAINING").unwrap(), "DRAINING");
        assert_eq!(StatusLabel::new("DRAININGX"), Err(StatusLabelTooLong { len: 9 }));
        assert_eq!(StatusLabel::new("SHUTTINGDOWN"), Err(StatusLabelTooLong { len: 12 }));
        assert_eq!(&*StatusLabel::new("").unwrap(), "");
        // Multibyte at the boundary: 3 × 'é' + 2 = 8 bytes; 4 × 'é' + 1 = 9.
        assert_eq!(&*StatusLabel::new("éééab").unwrap(), "éééab");
        assert_eq!(StatusLabel::new("éééé1"), Err(StatusLabelTooLong { len: 9 }));
    }

    #[test]
    fn the_labels_this_code_sends_are_the_checked_ones() {
        assert_eq!(StatusLabel::new("UP"), Ok(StatusLabel::UP));
        assert_eq!(StatusLabel::new("DOWN"), Ok(StatusLabel::DOWN));
        assert_eq!(StatusLabel::DOWN.to_string(), "DOWN");
    }

    #[test]
    fn a_nul_in_a_status_label_is_kept_as_the_original_keeps_it() {
        assert_eq!(&*StatusLabel::new("U\0P").unwrap(), "U\0P");
    }

    #[test]
    fn ten_addresses_fit_and_eleven_do_not() {
        let addresses = |n: u8| (1..=n).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect::<Vec<_>>();
        assert_eq!(StatusAddresses::new(addresses(10)).unwrap().len(), 10);
        assert_eq!(
            StatusAddresses::new(addresses(11)),
            Err(StatusAddressesError::TooMany { count: 11 })
        );
        assert!(StatusAddresses::new(Vec::new()).unwrap().is_empty());
    }

    #[test]
    fn an_address_starting_with_0_is_refused_and_named_by_its_index() {
        let list = vec![
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(0, 1, 2, 3),
            Ipv4Addr::new(0, 0, 0, 0),
        ];
        assert_eq!(
            StatusAddresses::new(list),
            Err(StatusAddressesError::ReadsAsEmpty { index: 1 })
        );
        // Only the first byte marks an empty slot.
        assert!(StatusAddresses::new(vec![Ipv4Addr::new(1, 0, 0, 0)]).is_ok());
        // Too many is reported before a bad address.
        assert_eq!(
            StatusAddresses::new(vec![Ipv4Addr::UNSPECIFIED; 11]),
            Err(StatusAddressesError::TooMany { count: 11 })
        );
    }
}
