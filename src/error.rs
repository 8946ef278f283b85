//! The crate-wide error: a kind that decides the exit code, and a message that says what went
//! wrong and what to do about it.
//!
//! Messages are written for the person in front of the device or the admin of the org; they
//! never contain a token, a device code or a secret (callers build them from server `error` and
//! `error_description` fields, host names and file paths only).

use core::fmt;

use alloc::string::String;

/// What kind of failure this is; each kind has its own documented exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad command line, bad configuration, or an org/app setting the admin must change.
    Config,
    /// The person at the approval page denied access.
    Denied,
    /// Nobody approved in time, after the last code.
    Expired,
    /// Nothing valid is stored: run `sfpair pair`.
    NotPaired,
    /// The server rejected the refresh token: pair again.
    RepairNeeded,
    /// The network or TLS failed (after retries where retrying made sense).
    Network,
    /// The token store could not be read or written.
    Storage,
    /// The server answered something this agent does not understand, or a token response
    /// failed its signature check.
    Server,
    /// A REST call answered with an HTTP error status.
    Http,
    /// The command's own output could not be written (standard output closed, full, or a
    /// reader that went away).
    Output,
}

impl ErrorKind {
    /// The process exit code for this kind (documented in the README).
    pub const fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Server => 1,
            ErrorKind::Config => 2,
            ErrorKind::Denied => 3,
            ErrorKind::Expired => 4,
            ErrorKind::NotPaired => 5,
            ErrorKind::RepairNeeded => 6,
            ErrorKind::Network => 7,
            ErrorKind::Storage => 8,
            ErrorKind::Http => 9,
            ErrorKind::Output => 10,
        }
    }

    /// A stable lower-case name, used in JSON events.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Denied => "denied",
            ErrorKind::Expired => "expired",
            ErrorKind::NotPaired => "not_paired",
            ErrorKind::RepairNeeded => "repair_needed",
            ErrorKind::Network => "network",
            ErrorKind::Storage => "storage",
            ErrorKind::Server => "server",
            ErrorKind::Http => "http",
            ErrorKind::Output => "output",
        }
    }
}

/// An error with its kind and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    pub fn network(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Network, message)
    }

    pub fn storage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Storage, message)
    }

    pub fn server(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Server, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_exit_code() {
        let kinds = [
            ErrorKind::Config,
            ErrorKind::Denied,
            ErrorKind::Expired,
            ErrorKind::NotPaired,
            ErrorKind::RepairNeeded,
            ErrorKind::Network,
            ErrorKind::Storage,
            ErrorKind::Server,
            ErrorKind::Http,
            ErrorKind::Output,
        ];
        let mut codes: Vec<u8> = kinds.iter().map(|k| k.exit_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len());
        assert!(!codes.contains(&0));
    }
}
