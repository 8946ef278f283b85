//! REST calls that survive an expired session: send with the current session, and on a 401
//! `INVALID_SESSION_ID` renew the session once and send once more. The reply body is copied to
//! the caller's sink a buffer at a time, so bodies of any size pass through in bounded memory.
//!
//! The loop is the same whoever holds the refresh token: the [`Agent`](crate::agent::Agent)
//! (it refreshes itself) or a client of the token broker (`sfpair serve`), which asks the broker
//! for a newer session. Both implement [`Caller`]. This file decides when to renew and what to
//! report; `rest.rs` holds the rules as pure functions. No request is retried for any other
//! reason: a POST that may have reached the server is not sent twice on a 5xx or a reset.

use std::io::{Read, Write};

use log::{debug, info};

use crate::error::{Error, ErrorKind};
use crate::http::OpenReply;
use crate::rest::{self, RestReply, RestRequest, Unauthorized};
use crate::session::Session;
use crate::wire::{Request, TransportError, looks_like_html};

/// Bytes read per step when copying a body.
const CHUNK: usize = 16 * 1024;
/// A 401 body is read into memory to decide whether to renew; Salesforce's are under 200 bytes.
const UNAUTHORIZED_LIMIT: usize = 16 * 1024;

/// Who provides sessions and sends: the agent, or a broker client with its own transport.
pub trait Caller {
    /// A session to use: the cached one while it is usable, else a fresh one.
    fn session(&mut self) -> Result<Session, Error>;
    /// `stale` was refused with 401 `INVALID_SESSION_ID`: a newer session (a refresh, unless
    /// someone already replaced `stale`).
    fn renew(&mut self, stale: &Session) -> Result<Session, Error>;
    /// Sends a request and returns the reply with its body unread.
    fn open(&mut self, request: &Request) -> Result<OpenReply, TransportError>;
}

/// What one attempt came to.
enum Attempt {
    Done(RestReply),
    /// 401 `INVALID_SESSION_ID` and a retry is allowed: nothing was written to the sink.
    Expired,
}

/// Sends `request` to the session's instance, streaming the reply body into `sink` whatever
/// the status (the status is in the returned [`RestReply`]; [`RestReply::error`] turns it into
/// the error to report). At most one renewal and two requests.
pub fn call(
    via: &mut dyn Caller,
    request: &RestRequest,
    sink: &mut dyn Write,
) -> Result<RestReply, Error> {
    let session = via.session()?;
    match attempt(via, request, &session, sink, true)? {
        Attempt::Done(reply) => Ok(reply),
        Attempt::Expired => {
            info!(
                "the session expired (401 INVALID_SESSION_ID): renewing it once and retrying once"
            );
            let fresh = via.renew(&session)?;
            match attempt(via, request, &fresh, sink, false)? {
                Attempt::Done(mut reply) => {
                    reply.refreshed = true;
                    Ok(reply)
                }
                // `attempt` with may_renew = false never answers Expired.
                Attempt::Expired => Err(Error::server("the session was refused twice")),
            }
        }
    }
}

fn attempt(
    via: &mut dyn Caller,
    request: &RestRequest,
    session: &Session,
    sink: &mut dyn Write,
    may_renew: bool,
) -> Result<Attempt, Error> {
    let mut wire = request.to_wire(&session.instance_url);
    wire.bearer = Some(session.access_token.clone());
    let mut open = via.open(&wire).map_err(TransportError::into_error)?;
    if let Some(info) = &open.limit_info {
        debug!("Sforce-Limit-Info: {info}");
    }
    let mut head = Vec::new();
    if open.status == 401 {
        head = read_bounded(&mut open.body, UNAUTHORIZED_LIMIT)?;
        match rest::unauthorized(&head) {
            Unauthorized::SessionExpired if may_renew => return Ok(Attempt::Expired),
            Unauthorized::SessionExpired => {}
            Unauthorized::Refused(reason) => debug!("401 without a refresh: {reason}"),
        }
        sink.write_all(&head).map_err(|e| output_failure(&e, 0))?;
    }
    let keep = if (200..300).contains(&open.status) {
        0
    } else {
        rest::ERROR_PREFIX
    };
    let mut prefix = head.clone();
    prefix.truncate(keep);
    let streamed = pump(&mut open.body, sink, keep, &mut prefix, head.len() as u64)?;
    let html = looks_like_html(&open.content_type, &prefix);
    let (summary, oauth) = if keep > 0 {
        (
            rest::summary(&prefix),
            crate::flow::reply::oauth_fields(&prefix),
        )
    } else {
        (None, None)
    };
    Ok(Attempt::Done(RestReply {
        status: open.status,
        content_type: open.content_type,
        retry_after: open.retry_after,
        limit_info: open.limit_info,
        bytes: head.len() as u64 + streamed,
        refreshed: false,
        summary,
        oauth,
        html,
    }))
}

/// Reads at most `limit` bytes of `body` into memory.
fn read_bounded(body: &mut dyn Read, limit: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    body.take(limit as u64)
        .read_to_end(&mut out)
        .map_err(|e| Error::network(format!("the reply broke off: {e}")))?;
    Ok(out)
}

/// Copies `body` into `sink` a chunk at a time, keeping its first `keep` bytes in `prefix`.
/// `already` counts bytes written before, for messages.
fn pump(
    body: &mut dyn Read,
    sink: &mut dyn Write,
    keep: usize,
    prefix: &mut Vec<u8>,
    already: u64,
) -> Result<u64, Error> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::network(format!(
                    "the reply broke off after {} bytes of its body: {e}",
                    already + total
                )));
            }
        };
        if prefix.len() < keep {
            let take = (keep - prefix.len()).min(n);
            prefix.extend_from_slice(&buf[..take]);
        }
        sink.write_all(&buf[..n])
            .map_err(|e| output_failure(&e, already + total))?;
        total += n as u64;
    }
    sink.flush()
        .map_err(|e| output_failure(&e, already + total))?;
    Ok(total)
}

fn output_failure(e: &std::io::Error, written: u64) -> Error {
    Error::new(
        ErrorKind::Server,
        format!("cannot write the reply body (after {written} bytes): {e}"),
    )
}
