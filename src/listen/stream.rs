//! One Streaming API client over HTTP/1.1: the Bayeux requests of `bayeux.rs` sent to
//! `{instance}/cometd/{version}` with the session's access token, the cookies the server set
//! sent back on every request (they pin the client to the server that knows it), on a
//! connection of its own whose read timeout outlasts the server's hold of a `/meta/connect`.
//!
//! It says what happened and decides nothing: `receive.rs` decides what to do next.

use std::io::Read;

use log::debug;

use super::bayeux::{self, Ids, Parsed, Refusal};
use crate::call::Caller;
use crate::error::Error;
use crate::http::Transport;
use crate::session::Session;
use crate::wire::{Body, Method, Request, TransportError};

/// What went wrong with one exchange.
#[derive(Debug)]
pub enum Failure {
    /// The server refused (a meta reply with `successful: false`, or HTTP 401/403).
    Refused(Refusal),
    /// The network, TLS, a 5xx, or a reply that is not Bayeux: try again later.
    Transient(String),
    /// Something that retrying will not fix (the session cannot be had).
    Fatal(Error),
}

impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Failure {
        Failure::Transient(e.detail)
    }
}

/// An error reply is read this far (its Bayeux refusal is a few hundred bytes).
const ERROR_LIMIT: u64 = 64 * 1024;

/// A Streaming API client: its id and cookies once it has shaken hands.
pub struct Stream {
    transport: Box<dyn Transport>,
    api_version: String,
    /// A reply is read this far; a longer one is taken up to its last whole message.
    reply_limit: u64,
    ids: Ids,
    client_id: Option<String>,
    cookies: Vec<(String, String)>,
    session: Option<Session>,
}

impl Stream {
    /// A client over `transport` (whose read timeout must outlast the server's hold, 110 s on
    /// Salesforce), for the Streaming API of `api_version` (`62.0`), reading at most
    /// `reply_limit` bytes of a reply (a longer one is cut at its last whole message, and
    /// [`Parsed::cut`] says so).
    pub fn new(transport: Box<dyn Transport>, api_version: &str, reply_limit: u64) -> Stream {
        Stream {
            transport,
            api_version: api_version.to_string(),
            reply_limit,
            ids: Ids::default(),
            client_id: None,
            cookies: Vec::new(),
            session: None,
        }
    }

    /// Sends from now on over `transport` (the first one was interrupted by a stop, and the
    /// disconnect still has to go out).
    pub fn set_transport(&mut self, transport: Box<dyn Transport>) {
        self.transport = transport;
    }

    /// Whether it has shaken hands (and not been forgotten since).
    pub fn is_connected(&self) -> bool {
        self.client_id.is_some()
    }

    /// Forgets the client id and cookies: the next exchange starts with a handshake.
    pub fn reset(&mut self) {
        self.client_id = None;
        self.cookies.clear();
    }

    /// Renews the session after the server refused it.
    pub fn renew_session(&mut self, sessions: &mut dyn Caller) -> Result<(), Failure> {
        let stale = match self.session.take() {
            Some(s) => s,
            None => sessions.session().map_err(Failure::Fatal)?,
        };
        self.session = Some(sessions.renew(&stale).map_err(Failure::Fatal)?);
        Ok(())
    }

    /// Sends one Bayeux request and reads the reply.
    fn post(&mut self, sessions: &mut dyn Caller, body: String) -> Result<Parsed, Failure> {
        let session = match &self.session {
            Some(s) => s.clone(),
            None => {
                let s = sessions.session().map_err(Failure::Fatal)?;
                self.session = Some(s.clone());
                s
            }
        };
        let mut request = Request {
            method: Method::Post,
            url: format!(
                "{}/cometd/{}",
                session.instance_url.trim_end_matches('/'),
                self.api_version
            ),
            body: Body::Json(body.into_bytes()),
            bearer: Some(session.access_token.clone()),
            headers: Vec::new(),
            // A held connect is bounded by the connection's read timeout, above the hold.
            deadline: None,
        };
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            request.headers.push(("Cookie".into(), jar.join("; ")));
        }
        let mut reply = self.transport.open(&request)?;
        for cookie in &reply.cookies {
            if let Some((name, value)) = cookie.split_once('=') {
                self.cookies.retain(|(n, _)| n != name);
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
        let limit = if reply.status == 200 {
            self.reply_limit
        } else {
            ERROR_LIMIT
        };
        // One byte more than the limit says whether the reply is longer. Room for all of it
        // at once: growing by doubling would hold twice a long reply's size (and an
        // allocation this large is mapped lazily: a short reply touches a page or two).
        let mut body = Vec::with_capacity(limit as usize + 1);
        (&mut reply.body)
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| Failure::Transient(format!("the Streaming API's reply broke off: {e}")))?;
        let longer = body.len() as u64 > limit;
        body.truncate(limit as usize);
        if reply.status == 200 {
            let parsed = if longer {
                debug!("streaming: a reply over {limit} bytes; taking its first whole messages");
                bayeux::parse_beginning(body)
            } else {
                bayeux::parse(&body)
            };
            return parsed.map_err(|e| Failure::Transient(e.message().into()));
        }
        // An error status may still carry a Bayeux refusal that says what to do.
        let refusal = bayeux::parse(&body)
            .ok()
            .and_then(|p| p.meta.into_iter().find_map(|m| m.refusal));
        match (reply.status, refusal) {
            (_, Some(refusal)) => Err(Failure::Refused(refusal)),
            (401 | 403, None) => Err(Failure::Refused(Refusal::Session)),
            (s, None) => Err(Failure::Transient(format!(
                "the Streaming API answered HTTP {s}"
            ))),
        }
    }

    /// A meta reply on `channel` from `parsed`, or its refusal.
    fn expect(parsed: &Parsed, channel: &str) -> Result<(), Failure> {
        match parsed.meta_on(channel) {
            Some(m) if m.successful => Ok(()),
            Some(m) => {
                Err(Failure::Refused(m.refusal.clone().unwrap_or_else(|| {
                    Refusal::Other(format!("{channel} failed"))
                })))
            }
            None => Err(Failure::Transient(format!("no {channel} reply"))),
        }
    }

    /// `/meta/handshake`.
    pub fn handshake(&mut self, sessions: &mut dyn Caller) -> Result<(), Failure> {
        self.reset();
        let body = bayeux::handshake(&mut self.ids);
        let parsed = self.post(sessions, body)?;
        Stream::expect(&parsed, "/meta/handshake")?;
        let id = parsed
            .meta_on("/meta/handshake")
            .and_then(|m| m.client_id.clone())
            .ok_or_else(|| Failure::Transient("the handshake gave no clientId".into()))?;
        debug!("streaming: handshake done");
        self.client_id = Some(id);
        Ok(())
    }

    /// `/meta/subscribe` to `channel` from `position`.
    pub fn subscribe(
        &mut self,
        sessions: &mut dyn Caller,
        channel: &str,
        position: i64,
    ) -> Result<(), Failure> {
        let id = self.client_id.clone().unwrap_or_default();
        let body = bayeux::subscribe(&mut self.ids, &id, channel, position);
        let parsed = self.post(sessions, body)?;
        Stream::expect(&parsed, "/meta/subscribe")
    }

    /// `/meta/connect`: the events that arrived (possibly none), and the server's advice.
    pub fn connect(&mut self, sessions: &mut dyn Caller) -> Result<Parsed, Failure> {
        let id = self.client_id.clone().unwrap_or_default();
        let body = bayeux::connect(&mut self.ids, &id);
        let parsed = self.post(sessions, body)?;
        match parsed.meta_on("/meta/connect") {
            Some(m) if !m.successful => {
                Err(Failure::Refused(m.refusal.clone().unwrap_or_else(|| {
                    Refusal::Other("/meta/connect failed".into())
                })))
            }
            _ => Ok(parsed),
        }
    }

    /// `/meta/disconnect`, best effort: frees the org's streaming slot at once.
    pub fn disconnect(&mut self, sessions: &mut dyn Caller) {
        if let Some(id) = self.client_id.clone() {
            let body = bayeux::disconnect(&mut self.ids, &id);
            let _ = self.post(sessions, body);
        }
        self.reset();
    }
}
