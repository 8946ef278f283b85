//! The crate-wide error: a kind that decides the exit code, and a message that says what went
//! wrong and what to do about it.
//!
//! Messages are written for the person in front of the device or the admin of the org; they
//! never contain a token, a device code or a secret (callers build them from server `error` and
//! `error_description` fields, host names and file paths only).
//!
//! When the failure is an OAuth refusal, the server's `error` code and `error_description` also
//! travel as fields ([`Error::oauth_error`], [`Error::oauth_description`]), so callers decide on
//! the server's code rather than on the wording of the message.

use core::fmt;

use alloc::boxed::Box;
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
    /// Stopped on request before it finished (a [`Stop`](crate::stop::Stop) was set: SIGTERM
    /// to `sfpair run`, or an embedder cancelling a pairing). Not a failure: exit code 0.
    Stopped,
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
            ErrorKind::Stopped => 0,
        }
    }

    /// A few words on what the exit code means, for `--help` and the man page.
    pub const fn short(self) -> &'static str {
        match self {
            ErrorKind::Server => "unexpected server reply",
            ErrorKind::Config => "usage or configuration error",
            ErrorKind::Denied => "denied",
            ErrorKind::Expired => "expired after the last code",
            ErrorKind::NotPaired => "not paired",
            ErrorKind::RepairNeeded => "re-pair needed",
            ErrorKind::Network => "network or TLS failure",
            ErrorKind::Storage => "storage failure",
            ErrorKind::Http => "HTTP error status from a REST call",
            ErrorKind::Output => "output could not be written",
            ErrorKind::Stopped => "stopped on request",
        }
    }

    /// Every kind, for tests and for mapping names back.
    pub const ALL: [ErrorKind; 11] = [
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
        ErrorKind::Stopped,
    ];

    /// A stable lower-case name, used in JSON events and broker answers.
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
            ErrorKind::Stopped => "stopped",
        }
    }

    /// The kind with this [`name`](ErrorKind::name), if any.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The fields of an OAuth error reply (RFC 6749 §5.2): server-chosen codes and text, never a
/// token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthFields {
    /// The `error` member, e.g. `invalid_grant`.
    pub error: String,
    /// The `error_description` member, when the server sent one.
    pub description: Option<String>,
}

/// An error with its kind and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// Boxed: most errors are not OAuth refusals, and `Result<_, Error>` stays small.
    oauth: Option<Box<OAuthFields>>,
}

impl Error {
    /// An error of `kind` saying `message` (fit for a person: what went wrong and what to do).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            oauth: None,
        }
    }

    /// An error made from an OAuth error reply, keeping the server's fields.
    pub fn oauth(kind: ErrorKind, message: impl Into<String>, fields: OAuthFields) -> Self {
        Error::new(kind, message).with_oauth(fields)
    }

    /// The same error, carrying the server's OAuth fields.
    pub fn with_oauth(mut self, fields: OAuthFields) -> Self {
        self.oauth = Some(Box::new(fields));
        self
    }

    /// A configuration or usage error (exit 2).
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    /// A network or TLS failure (exit 7).
    pub fn network(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Network, message)
    }

    /// A store that could not be read or written (exit 8).
    pub fn storage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Storage, message)
    }

    /// A server reply this agent does not understand (exit 1).
    pub fn server(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Server, message)
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What went wrong and what to do, for a person.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The process exit code ([`ErrorKind::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// The server's OAuth `error` code, when this error came from an OAuth error reply.
    pub fn oauth_error(&self) -> Option<&str> {
        self.oauth.as_deref().map(|o| o.error.as_str())
    }

    /// The server's `error_description`, when this error came from an OAuth error reply that
    /// had one.
    pub fn oauth_description(&self) -> Option<&str> {
        self.oauth.as_deref().and_then(|o| o.description.as_deref())
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
        let kinds = ErrorKind::ALL;
        let mut codes: Vec<u8> = kinds.iter().map(|k| k.exit_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len());
        // Every failure is non-zero; only a stop someone asked for is 0.
        for kind in kinds {
            assert_eq!(
                kind.exit_code() == 0,
                kind == ErrorKind::Stopped,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn every_kind_name_maps_back_to_its_kind() {
        // No wildcard: a new kind fails to compile here until it has a place in ALL.
        let place = |k: ErrorKind| match k {
            ErrorKind::Config => 0,
            ErrorKind::Denied => 1,
            ErrorKind::Expired => 2,
            ErrorKind::NotPaired => 3,
            ErrorKind::RepairNeeded => 4,
            ErrorKind::Network => 5,
            ErrorKind::Storage => 6,
            ErrorKind::Server => 7,
            ErrorKind::Http => 8,
            ErrorKind::Output => 9,
            ErrorKind::Stopped => 10,
        };
        for (i, kind) in ErrorKind::ALL.into_iter().enumerate() {
            assert_eq!(place(kind), i);
        }
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.name()), Some(kind), "{kind:?}");
        }
        let mut names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::from_name("Config"), None);
        assert_eq!(ErrorKind::from_name("bad_request"), None);
    }

    /// Errors from the pure rules, one per path, including hostile server text: each message
    /// must be fit for people.
    #[test]
    fn constructed_errors_have_clean_messages() {
        use crate::api::{Outcome, refresh_outcome, revoke_outcome};
        use crate::flow::dialect::Dialect;
        use crate::flow::reply::OAuthError;
        use crate::wire::Reply;

        let mut errors = vec![
            Error::config("check --client-id"),
            crate::wire::TransportError::new(crate::wire::TransportErrorKind::Invalid, "bad URL")
                .into_error(),
        ];
        for body in [
            r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
            r#"{"error":"invalid_client","error_description":"bad  client[2J"}"#,
            r#"{"error":"inactive_org"}"#,
            r#"{"error":"something_new","error_description":"tab	here"}"#,
        ] {
            if let Outcome::Fail(e) = refresh_outcome(&Reply::json(400, body)) {
                errors.push(e);
            }
            if let Outcome::Fail(e) = revoke_outcome(&Reply::json(400, body)) {
                errors.push(e);
            }
        }
        if let Outcome::Fail(e) = refresh_outcome(&Reply::new(404, "text/html", "<html>")) {
            errors.push(e);
        }
        for (code, description) in [
            ("invalid_client_id", "client identifier invalid"),
            ("invalid_grant", "device flow is not  enabled"),
            ("invalid_client", "app must be installed into org"),
            ("unauthorized_client", ""),
            ("invalid_scope", "\n"),
            ("other", "x"),
        ] {
            let err = OAuthError {
                error: code.into(),
                description: Some(description.into()),
                interval: None,
                status: 400,
            };
            for dialect in [Dialect::Salesforce, Dialect::Rfc8628] {
                errors.push(dialect.config_error(&err, "KEY"));
            }
        }
        assert!(errors.len() > 20, "{}", errors.len());
        for e in &errors {
            assert!(crate::text::is_clean(e.message()), "{:?}", e.message());
        }
    }

    #[test]
    fn oauth_fields_travel_with_the_error() {
        let plain = Error::config("check --client-id");
        assert_eq!(
            (plain.oauth_error(), plain.oauth_description()),
            (None, None)
        );
        let e = Error::oauth(
            ErrorKind::RepairNeeded,
            "the server rejected the stored refresh token",
            OAuthFields {
                error: "invalid_grant".into(),
                description: Some("expired access/refresh token".into()),
            },
        );
        assert_eq!(e.oauth_error(), Some("invalid_grant"));
        assert_eq!(e.oauth_description(), Some("expired access/refresh token"));
        assert_eq!(e.exit_code(), 6);
    }
}
