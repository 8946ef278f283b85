//! The broker's workers: each takes a complete request line from the queue, parses it, and
//! answers it (an access token, the instance URL, health, a pairing asked for, records for the
//! outbox), one line back, then closes the connection.
//!
//! Refreshes are serialized behind the [`Shared`] mutex and the cached session is reused while
//! it is valid; a failed refresh is answered again for [`FAILURE_HOLD`] without a new attempt.
//! A `send` goes to the outbox without the agent's lock, so it never waits for a refresh.
//!
//! Must not: read from a client (the reader did), or log a token.

use std::io::Write;
use std::net::Shutdown;
use std::sync::Mutex;

use log::{debug, info, warn};
use zeroize::Zeroizing;

use super::peer::Peer;
use super::protocol::{self, Ask};
use super::{FAILURE_HOLD, REQUEST_TIMEOUT, Request, Shared, hooks, lock, signals};
use crate::error::{Error, ErrorKind};
use crate::mailbox::Receiver;

/// A worker: answers queued requests until the queue closes.
pub(super) fn work(
    waiting: &Mutex<Receiver<Request>>,
    shared: &Mutex<Shared>,
    hooks: &dyn hooks::Hooks,
) {
    loop {
        let next = lock(waiting).recv();
        let Ok(request) = next else {
            return;
        };
        if signals::requested() {
            continue; // stopping: drop what is still queued
        }
        serve_one(request, shared, hooks);
    }
}

fn serve_one(request: Request, shared: &Mutex<Shared>, hooks: &dyn hooks::Hooks) {
    let Request {
        mut stream,
        peer,
        line,
    } = request;
    // The answer is small (it fits the socket buffer); the timeout only bounds a client that
    // shrank its buffer and does not read.
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let answer = match protocol::parse(&line) {
        // Records go to the outbox without the agent: a send never waits for a refresh.
        Ok(Ask::Send(send)) => send_answer(&send, &peer, hooks),
        Ok(ask) => answer(ask, &peer, shared, hooks),
        Err(why) => Zeroizing::new(protocol::error_answer("bad_request", None, &why)),
    };
    if let Err(e) = stream.write_all(answer.as_bytes()) {
        debug!("answering pid {} failed: {e}", peer.pid);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn send_answer(
    send: &protocol::SendAsk,
    peer: &Peer,
    hooks: &dyn hooks::Hooks,
) -> Zeroizing<String> {
    match hooks.send(send) {
        Ok(value) => {
            info!(
                "uid {} (pid {}) queued {} record(s)",
                peer.uid,
                peer.pid,
                value["queued"].as_u64().unwrap_or(0)
            );
            Zeroizing::new(format!("{}\n", crate::sanitize::json_line(&value)))
        }
        Err(e) => {
            warn!(
                "a send from uid {} (pid {}) was refused: {e}",
                peer.uid, peer.pid
            );
            Zeroizing::new(protocol::error_answer(
                e.kind().name(),
                Some(e.exit_code()),
                e.message(),
            ))
        }
    }
}

fn answer(
    ask: Ask,
    peer: &Peer,
    shared: &Mutex<Shared>,
    hooks: &dyn hooks::Hooks,
) -> Zeroizing<String> {
    let mut guard = lock(shared);
    let shared = &mut *guard;
    let failed = |e: &Error| {
        Zeroizing::new(protocol::error_answer(
            e.kind().name(),
            Some(e.exit_code()),
            e.message(),
        ))
    };
    match ask {
        Ask::AccessToken { refused } => {
            if let Some(generation) = refused {
                debug!(
                    "uid {} (pid {}) says session {generation} was refused",
                    peer.uid, peer.pid
                );
                shared.agent.session_refused(generation);
            }
            let now = shared.clock.now();
            if let Some((at, e)) = &shared.failure
                && now.saturating_since(*at) < FAILURE_HOLD
            {
                return failed(e);
            }
            match shared.agent.access_token() {
                Ok(session) => {
                    shared.failure = None;
                    debug!(
                        "gave session {} to uid {} (pid {})",
                        session.generation, peer.uid, peer.pid
                    );
                    let expires_in = shared.agent.expires_in(&session);
                    protocol::token_answer(&session, expires_in)
                }
                Err(e) => {
                    warn!(
                        "no access token for uid {} (pid {}): {e}",
                        peer.uid, peer.pid
                    );
                    let answer = failed(&e);
                    if crate::refusal::is_death(&e) {
                        hooks.pairing_died(&e);
                    }
                    // Hold failures that cost a request to the server; a store that is empty
                    // or unreadable is cheap to look at again (a pairing may land any moment).
                    if !matches!(e.kind(), ErrorKind::NotPaired | ErrorKind::Storage) {
                        shared.failure = Some((shared.clock.now(), e));
                    }
                    answer
                }
            }
        }
        Ask::InstanceUrl => match shared.agent.instance_url() {
            Ok(url) => Zeroizing::new(protocol::instance_answer(&url)),
            Err(e) => failed(&e),
        },
        Ask::Health => Zeroizing::new(format!(
            "{}\n",
            crate::sanitize::json_line(&hooks.health(&mut shared.agent))
        )),
        // Answered by `send_answer` before the agent is locked.
        Ask::Send(_) => Zeroizing::new(protocol::error_answer("bad_request", None, "send")),
        Ask::Pair => {
            info!("uid {} (pid {}) asks for a new pairing", peer.uid, peer.pid);
            match hooks.pair_requested() {
                Ok(message) => Zeroizing::new(format!(
                    "{}\n",
                    crate::sanitize::json_line(
                        &serde_json::json!({ "pairing": "started", "message": message })
                    )
                )),
                Err(why) => Zeroizing::new(protocol::error_answer("refused", None, &why)),
            }
        }
    }
}
