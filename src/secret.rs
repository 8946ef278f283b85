//! `Secret`: a token, device code or client secret that must never be printed.
//!
//! Debug prints `Secret(..)`, there is no Display, and the bytes are wiped when the value is
//! dropped. The only way to read the value is [`Secret::expose`], so every place that sends or
//! stores a secret is one `grep expose` away. This file must not gain a Display or Serialize impl.

use core::fmt;

use zeroize::Zeroizing;

/// A string that is redacted in Debug output and zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<alloc::string::String>);

impl Secret {
    /// Wraps a value. The caller's copy, if any, is its own business.
    pub fn new(value: impl Into<alloc::string::String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The plain value, for the one place that sends or stores it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        alloc::string::String::deserialize(d).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("00Dxx!AR.very-secret");
        assert_eq!(format!("{s:?}"), "Secret(..)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(..))");
        assert_eq!(s.expose(), "00Dxx!AR.very-secret");
    }

    /// An empty secret is refused where one is read (an empty client secret file): the check
    /// must tell empty from not.
    #[test]
    fn is_empty_tells_an_empty_secret_from_a_real_one() {
        assert!(Secret::new("").is_empty());
        assert!(!Secret::new("s").is_empty());
    }

    #[test]
    fn deserializes_from_a_json_string() {
        let s: Secret = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(s.expose(), "abc");
    }
}
