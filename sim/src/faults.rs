//! Injected faults: the queue tests fill, which requests may take each fault, and
//! what each one turns into.
//!
//! This file decides *what* goes wrong; `server.rs` carries out the transport-level
//! misbehaviour (closing, resetting, stalling). No fault body contains a real token.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use crate::errors::invalid_session;
use crate::http::{Body, HTML, JSON, Response};
use crate::reply::Reply;

/// One thing to go wrong, for one request. Each is taken by the next request of its
/// kind: REST faults (`InvalidSession`, `RequestLimit`, `RestMaintenance`,
/// `SessionNotValidForRest`, `RestTrickle`, `RestEndless`) by the next request to a versioned
/// REST resource
/// (`/services/data/vNN.N/…`), all others by the next request to `/services/oauth2/*`,
/// `/rfc8628/device` or `/rfc8628/token`.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// 503 with Salesforce's HTML maintenance page.
    Html503,
    /// 200 with an HTML login page, as a captive portal answers.
    CaptivePortal,
    /// 200 `application/json` with a cut-off body: `{"access_tok`.
    MalformedJson,
    /// 200 with a JSON body of exactly this many bytes, generated while streaming.
    HugeJson(usize),
    /// Read the request, then close without answering.
    CloseBeforeReply,
    /// Write half of the response head, then reset the connection (RST).
    ResetMidReply,
    /// Announce a longer body than is sent, then close.
    TruncatedReply,
    /// Read the request, answer nothing for this long, then close.
    Stall(Duration),
    /// Answer normally, this long after the request (a slow server): the answer's effect (a
    /// rotated refresh token, a new code) is in the simulator's state at once.
    Slow(Duration),
    /// REST: answer normally, this long after the request (a slow org): the records a
    /// collections request carries are committed at once.
    RestSlow(Duration),
    /// REST: 401 `INVALID_SESSION_ID`, even with a valid session.
    InvalidSession,
    /// REST: 403 `REQUEST_LIMIT_EXCEEDED` with `Retry-After: 30`.
    RequestLimit,
    /// REST: 503 with the HTML maintenance page and no `Retry-After`.
    RestMaintenance,
    /// REST: 401 `INVALID_SESSION_ID` with the message jsforce will not refresh on, "This
    /// session is not valid for use with the REST API" (docs/protocol.md, "REST errors").
    SessionNotValidForRest,
    /// This status, with the JSON body `{"error":"server_error"}`.
    Status(u16),
    /// 200 with this JSON body verbatim: a hostile server's reply. Its values are
    /// the test's own, never a real token.
    Json(String),
    /// REST: a 200 head announcing a large JSON body, then one byte of it every this long,
    /// never finishing (a hostile server that keeps every per-read timeout happy). The
    /// simulator gives up after [`TRICKLE_FOR`] or when the client goes away.
    RestTrickle(Duration),
    /// REST: 200 with a JSON array of a terabyte, written for as long as the client reads.
    RestEndless,
}

/// How long the simulator trickles one reply at most.
pub const TRICKLE_FOR: Duration = Duration::from_secs(600);

/// Which requests a fault may be applied to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    OAuth,
    Rest,
}

impl Fault {
    fn scope(&self) -> Scope {
        match self {
            Fault::InvalidSession
            | Fault::RestSlow(_)
            | Fault::RequestLimit
            | Fault::RestMaintenance
            | Fault::SessionNotValidForRest
            | Fault::RestTrickle(_)
            | Fault::RestEndless => Scope::Rest,
            _ => Scope::OAuth,
        }
    }

    /// What the server does instead of answering normally (`normal` answers as it would).
    pub fn reply(self, normal: impl FnOnce() -> Reply) -> Reply {
        match self {
            Fault::Slow(delay) | Fault::RestSlow(delay) => match normal() {
                Reply::Send(response) => Reply::Late(delay, response),
                other => other,
            },
            Fault::Html503 => Reply::Send(maintenance_page()),
            Fault::CaptivePortal => Reply::Send(Response::new(
                200,
                HTML,
                "<html><head><title>Sign in to the network</title></head><body>\
                 <form method=\"post\" action=\"/portal/login\"><input name=\"room\"><button>Connect</button></form>\
                 </body></html>",
            )),
            Fault::MalformedJson => Reply::Send(Response::new(200, JSON, r#"{"access_tok"#)),
            Fault::HugeJson(n) => Reply::Send(Response {
                status: 200,
                headers: vec![("Content-Type", JSON.to_string())],
                body: Body::JsonArray(n as u64),
            }),
            Fault::CloseBeforeReply => Reply::Close,
            Fault::ResetMidReply => Reply::Reset(decoy()),
            Fault::TruncatedReply => Reply::Truncate(decoy()),
            Fault::Stall(duration) => Reply::Stall(duration),
            Fault::InvalidSession => Reply::Send(invalid_session()),
            Fault::RequestLimit => Reply::Send(
                Response::json(
                    403,
                    &json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
                )
                .header("Retry-After", "30"),
            ),
            Fault::RestMaintenance => Reply::Send(maintenance_page()),
            Fault::SessionNotValidForRest => Reply::Send(Response::json(
                401,
                &json!([{"message": "This session is not valid for use with the REST API", "errorCode": "INVALID_SESSION_ID"}]),
            )),
            Fault::Status(status) => Reply::Send(Response::json(status, &json!({"error": "server_error"}))),
            Fault::Json(body) => Reply::Send(Response::new(200, JSON, body)),
            Fault::RestTrickle(every) => Reply::Trickle(Response::new(200, JSON, "["), every),
            Fault::RestEndless => Reply::Send(Response {
                status: 200,
                headers: vec![("Content-Type", JSON.to_string())],
                body: Body::JsonArray(1 << 40),
            }),
        }
    }
}

/// The page of the Salesforce CLI's test for HTML answers (docs/protocol.md, "How the
/// Salesforce CLI did it").
pub fn maintenance_page() -> Response {
    Response::new(
        503,
        HTML,
        "<html><body>Server down for maintenance</body></html>",
    )
}

/// A token-shaped body for faults that cut the answer short. Its values are fake.
fn decoy() -> Response {
    Response::json(
        200,
        &json!({
            "access_token": "00DSIM000000001!ARdecoy.never.valid",
            "token_type": "Bearer",
            "issued_at": "0",
        }),
    )
    .header("Cache-Control", "no-store")
}

/// Faults waiting for their request, in the order they were pushed.
#[derive(Default)]
pub struct FaultQueue(Mutex<VecDeque<Fault>>);

impl FaultQueue {
    pub fn push(&self, faults: &[Fault]) {
        crate::lock(&self.0).extend(faults.iter().cloned());
    }

    /// The oldest queued fault for this kind of request, removed from the queue.
    pub fn take(&self, scope: Scope) -> Option<Fault> {
        let mut queue = crate::lock(&self.0);
        let index = queue.iter().position(|f| f.scope() == scope)?;
        queue.remove(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_kind_takes_its_own_faults_in_order() {
        let queue = FaultQueue::default();
        queue.push(&[
            Fault::RequestLimit,
            Fault::Html503,
            Fault::InvalidSession,
            Fault::Status(500),
            Fault::RestMaintenance,
        ]);
        assert_eq!(queue.take(Scope::OAuth), Some(Fault::Html503));
        assert_eq!(queue.take(Scope::Rest), Some(Fault::RequestLimit));
        assert_eq!(queue.take(Scope::OAuth), Some(Fault::Status(500)));
        assert_eq!(queue.take(Scope::OAuth), None);
        assert_eq!(queue.take(Scope::Rest), Some(Fault::InvalidSession));
        assert_eq!(queue.take(Scope::Rest), Some(Fault::RestMaintenance));
        assert_eq!(queue.take(Scope::Rest), None);
    }
}
