//! The client side of the broker protocol, for firmware written in Rust and for
//! `sfpair call --socket PATH`: ask `sfpair serve` for a session instead of reading the store.
//!
//! [`BrokerCaller`] makes REST calls with sessions from the broker: on a 401
//! `INVALID_SESSION_ID` it tells the broker which session was refused and gets a newer one, so
//! the refresh happens once in the broker however many clients saw the same expiry.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::broker::protocol::{self, Answer, Ask};
#[cfg(feature = "rest")]
use crate::call::Caller;
use crate::error::Error;
#[cfg(feature = "rest")]
use crate::http::{OpenReply, Transport};
use crate::session::Session;
use crate::time::Instant;
#[cfg(feature = "rest")]
use crate::wire::{Request, TransportError};

/// Longest answer read from a broker (a token answer is under 1 KB).
const MAX_ANSWER: u64 = 16 * 1024;

/// A broker at a socket path.
#[derive(Clone, Debug)]
pub struct Broker {
    path: PathBuf,
    /// For connecting, sending and reading the answer, each. A refresh behind the broker can
    /// take a few attempts, so this is longer than the broker's own request timeout.
    pub timeout: Duration,
}

impl Broker {
    /// A client of the broker listening on `path`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Broker {
            path: path.as_ref().to_path_buf(),
            timeout: Duration::from_secs(60),
        }
    }

    /// A session from the broker; `refused` names a session the server refused. The session's
    /// `obtained_at` is zero: only the broker knows its age.
    pub fn access_token(&self, refused: Option<u64>) -> Result<Session, Error> {
        let answer = self.ask(Ask::AccessToken { refused })?;
        match (answer.access_token, answer.instance_url) {
            (Some(access_token), Some(instance_url)) => Ok(Session {
                access_token,
                instance_url,
                obtained_at: Instant::ZERO,
                generation: answer.generation.unwrap_or(0),
            }),
            _ => Err(self.malformed()),
        }
    }

    /// The instance URL (no token).
    pub fn instance_url(&self) -> Result<String, Error> {
        self.ask(Ask::InstanceUrl)?
            .instance_url
            .ok_or_else(|| self.malformed())
    }

    fn malformed(&self) -> Error {
        Error::server(format!(
            "the broker at {} answered something that is not an answer of its protocol",
            self.path.display()
        ))
    }

    /// The long-running agent's health answer (`{"get":"health"}`), as it sent it.
    pub fn health(&self) -> Result<serde_json::Value, Error> {
        self.json_answer(Ask::Health)
    }

    /// `{"do":"send",…}`: records queued by the running agent's outbox; its receipt.
    pub fn send(&self, send: protocol::SendAsk) -> Result<serde_json::Value, Error> {
        self.json_answer(Ask::Send(Box::new(send)))
    }

    /// An answer that is any JSON object (health, a send's receipt), or its error.
    fn json_answer(&self, ask: Ask) -> Result<serde_json::Value, Error> {
        let text = self.exchange(ask)?;
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|_| self.malformed())?;
        if let Some(kind) = value.get("error").and_then(|k| k.as_str()) {
            let message = value["message"].as_str().unwrap_or_default();
            return Err(Error::new(
                protocol::error_kind(kind),
                format!("the token broker says: {message}"),
            ));
        }
        Ok(value)
    }

    fn ask(&self, ask: Ask) -> Result<Answer, Error> {
        let text = self.exchange(ask)?;
        let answer = protocol::parse_answer(&text).ok_or_else(|| self.malformed())?;
        if let Some(kind) = &answer.error {
            let message = answer.message.clone().unwrap_or_default();
            return Err(Error::new(
                protocol::error_kind(kind),
                format!("the token broker says: {message}"),
            ));
        }
        Ok(answer)
    }

    /// One request, and the answer's bytes.
    fn exchange(&self, ask: Ask) -> Result<Zeroizing<Vec<u8>>, Error> {
        let line = protocol::request(ask);
        let unreachable = |e: std::io::Error| {
            Error::network(format!(
                "cannot reach the token broker at {}: {e}. Is `sfpair serve --socket {}` \
                 running, and may this user use it?",
                self.path.display(),
                self.path.display()
            ))
        };
        let mut stream = UnixStream::connect(&self.path).map_err(unreachable)?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(unreachable)?;
        // A refused peer gets its answer without its request being read, and the broker then
        // closes: a failed write is not the end, the answer may be waiting.
        let _ = stream.write_all(line.as_bytes());
        read_answer(&mut stream).map_err(unreachable)
    }
}

/// The answer, at most MAX_ANSWER bytes. A broker that answers without reading our request (a
/// refusal) closes with it unread, which Linux reports as a reset after the answer: keep what
/// arrived.
fn read_answer(stream: &mut UnixStream) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut text = Zeroizing::new(Vec::new());
    let mut buf = [0u8; 1024];
    while (text.len() as u64) < MAX_ANSWER {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !text.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    buf.fill(0);
    Ok(text)
}

/// REST calls with sessions from a broker and a transport of the caller's own.
#[cfg(feature = "rest")]
pub struct BrokerCaller {
    /// The broker sessions come from.
    pub broker: Broker,
    /// Where requests go (the caller's own connection).
    pub transport: Box<dyn Transport>,
}

#[cfg(feature = "rest")]
impl Caller for BrokerCaller {
    fn session(&mut self) -> Result<Session, Error> {
        self.broker.access_token(None)
    }

    fn renew(&mut self, stale: &Session) -> Result<Session, Error> {
        self.broker.access_token(Some(stale.generation))
    }

    fn open(&mut self, request: &Request) -> Result<OpenReply, TransportError> {
        self.transport.open(request)
    }
}
