//! The request log: one [`LogEntry`] per request, kept for tests and optionally
//! printed to stderr.
//!
//! Entries hold only what is safe to show: the path without its query string (a
//! revoke query may carry a token) and OAuth error codes, never parameters or bodies.

use std::fmt;
use std::sync::Mutex;

/// One request as the simulator saw it. A request whose head cannot be read is
/// answered (400, 413 or 431) and the connection closed, but it is not logged.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// The connection it arrived on (1 for the first connection, and so on).
    pub conn: u64,
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// `grant_type`, or `device_code` for a device authorization request.
    pub grant: Option<String>,
    /// The status sent, or 0 when a fault sent no status line.
    pub status: u16,
    /// The OAuth `error` or REST `errorCode` of the answer.
    pub error: Option<String>,
    /// The host the client called (its `Host` header without the port, at most 255
    /// characters; empty without one): tells login-host requests from instance ones.
    pub host: String,
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn={} {} {}", self.conn, self.method, self.path)?;
        if let Some(grant) = &self.grant {
            write!(f, " grant={grant}")?;
        }
        write!(f, " status={}", self.status)?;
        if let Some(error) = &self.error {
            write!(f, " error={error}")?;
        }
        Ok(())
    }
}

/// Every entry so far, in the order the answers were decided.
pub struct RequestLog {
    entries: Mutex<Vec<LogEntry>>,
    to_stderr: bool,
}

impl RequestLog {
    pub fn new(to_stderr: bool) -> Self {
        RequestLog {
            entries: Mutex::new(Vec::new()),
            to_stderr,
        }
    }

    pub fn push(&self, entry: LogEntry) {
        if self.to_stderr {
            eprintln!("sfpair-sim: {entry}");
        }
        crate::lock(&self.entries).push(entry);
    }

    pub fn entries(&self) -> Vec<LogEntry> {
        crate::lock(&self.entries).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_the_documented_example() {
        let entry = LogEntry {
            conn: 3,
            method: "POST".into(),
            path: "/services/oauth2/token".into(),
            grant: Some("device".into()),
            status: 400,
            error: Some("authorization_pending".into()),
            host: "127.0.0.1".into(),
        };
        assert_eq!(
            entry.to_string(),
            "conn=3 POST /services/oauth2/token grant=device status=400 error=authorization_pending"
        );
    }
}
