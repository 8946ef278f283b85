//! The Streaming API endpoint, `POST /cometd/<version>`: Bayeux 1.0 over long polling as
//! Salesforce serves it (a modified CometD 3 server). This file is the HTTP side: the
//! version in the path, the request size cap, the session (`Authorization: Bearer` or
//! `OAuth`), the cookies in and out, and the JSON array of messages; `meta.rs` answers the
//! messages, `clients.rs` keeps the clients.
//!
//! Streaming requests do not count against the daily API allocation, as on Salesforce.
//! The session is looked up, never logged or echoed.

pub(crate) mod clients;
mod meta;

use std::time::Instant;

use serde_json::{Value, json};

use crate::errors::{method_not_allowed, rest_error};
use crate::http::{Body, Request, Response, TEXT};
use crate::reply::Reply;
use crate::state::Shared;

pub use clients::{StreamingClient, StreamingStats};
use meta::{BROWSER_COOKIE, Ctx, STREAM_COOKIE};

/// The oldest `/cometd/NN.0` served (Salesforce's error list: "Only API versions '37.0'
/// and later are supported").
const OLDEST_VERSION: u32 = 37;
/// Salesforce refuses larger request bodies (the Streaming API guide, "How the Client
/// Connects").
const MAX_REQUEST: usize = 32_768;

/// Whether a path is the Streaming API's.
pub fn owns(path: &str) -> bool {
    path == "/cometd" || path.starts_with("/cometd/")
}

pub fn handle(shared: &Shared, request: &Request) -> Reply {
    answer(shared, request).unwrap_or_else(Reply::Send)
}

fn answer(shared: &Shared, request: &Request) -> Result<Reply, Response> {
    if request.method != "POST" {
        return Err(method_not_allowed(&request.method, "POST"));
    }
    let version = version_of(&request.path)?;
    if shared.rest_on_login_host(request) {
        return Err(rest_error(
            404,
            "NOT_FOUND",
            &format!(
                "the Streaming API answers on the instance_url {}, not the login host",
                shared.instance_url
            ),
        ));
    }
    if request.body.len() > MAX_REQUEST {
        return Err(Response::new(413, TEXT, "Maximum Request Size Exceeded"));
    }
    let messages = messages_of(&request.body)?;
    let Some(token) = session(request) else {
        return Err(bayeux_error(401, "401::Request requires authentication"));
    };
    let now = Instant::now();
    let mut world = shared.world();
    let authenticated = world.grants.authenticate(token, now);
    let mut ctx = Ctx {
        authenticated,
        browser: cookie(request, BROWSER_COOKIE),
        stream: cookie(request, STREAM_COOKIE),
        version,
        set_cookies: Vec::new(),
        cut: false,
        offline: false,
    };
    world.bus.expire(now);
    let (world, replies) = meta::exchange(shared, world, &mut ctx, &messages);
    drop(world);
    if ctx.offline {
        return Ok(Reply::Close);
    }
    let mut response = Response::json(200, &Value::Array(replies));
    for cookie in ctx.set_cookies {
        response = response.header("Set-Cookie", cookie);
    }
    Ok(match ctx.cut {
        true => Reply::Truncate(response),
        false => Reply::Send(response),
    })
}

/// `62` from `/cometd/62.0`, or Salesforce's 400 for a missing or unsupported version.
fn version_of(path: &str) -> Result<u32, Response> {
    let latest = crate::rest::LATEST_VERSION;
    let format = format!("URI format: '/cometd/{latest}.0'");
    let rest = path.trim_start_matches("/cometd").trim_start_matches('/');
    if rest.is_empty() {
        let message = format!("400::API version in the URI is mandatory. {format}");
        return Err(bayeux_error(400, &message));
    }
    let major = rest
        .strip_suffix(".0")
        .and_then(|m| m.parse::<u32>().ok())
        .filter(|m| (OLDEST_VERSION..=latest).contains(m));
    major.ok_or_else(|| {
        let message = format!(
            "400::Unsupported API version. Only API versions '{OLDEST_VERSION}.0' and later are supported. {format}"
        );
        bayeux_error(400, &message)
    })
}

/// A refusal before any message is read: one Bayeux error, with this HTTP status.
fn bayeux_error(status: u16, error: &str) -> Response {
    Response::json(status, &json!([{"error": error, "successful": false}]))
}

/// The messages: a JSON array of objects (one object alone is taken as a list of one).
fn messages_of(body: &[u8]) -> Result<Vec<Value>, Response> {
    let parsed: Option<Vec<Value>> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(list)) if list.iter().all(Value::is_object) => Some(list),
        Ok(object @ Value::Object(_)) => Some(vec![object]),
        _ => None,
    };
    parsed.ok_or_else(|| {
        bayeux_error(
            400,
            "400::The request body is not a JSON array of Bayeux messages",
        )
    })
}

/// The session of `Authorization: Bearer …` or `Authorization: OAuth …`.
fn session(request: &Request) -> Option<&str> {
    let (scheme, token) = request.header("authorization")?.split_once(' ')?;
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth");
    let token = token.trim();
    (known && !token.is_empty()).then_some(token)
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

/// The first Bayeux error of an answer, for the request log.
pub fn error_of(response: &Response) -> Option<String> {
    let Body::Bytes(bytes) = &response.body else {
        return None;
    };
    let body: Value = serde_json::from_slice(bytes).ok()?;
    let list = body.as_array()?;
    let error = list.iter().find_map(|m| m.get("error")?.as_str())?;
    Some(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(result: Result<u32, Response>) -> Result<u32, (u16, String)> {
        result.map_err(|r| (r.status, error_of(&r).unwrap_or_default()))
    }

    #[test]
    fn versions_in_the_path() {
        assert_eq!(status(version_of("/cometd/62.0")), Ok(62));
        assert_eq!(status(version_of("/cometd/37.0")), Ok(37));
        let missing = status(version_of("/cometd")).unwrap_err();
        assert_eq!(missing.0, 400);
        assert!(
            missing
                .1
                .starts_with("400::API version in the URI is mandatory")
        );
        for path in ["/cometd/36.0", "/cometd/68.0", "/cometd/62.1", "/cometd/x"] {
            let refused = status(version_of(path)).unwrap_err();
            assert!(refused.1.contains("Unsupported API version"), "{path}");
        }
    }

    #[test]
    fn bodies_are_lists_of_messages() {
        assert_eq!(
            messages_of(br#"[{"channel":"/meta/handshake"}]"#)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            messages_of(br#"{"channel":"/meta/handshake"}"#)
                .unwrap()
                .len(),
            1
        );
        assert!(messages_of(b"[1]").is_err());
        assert!(messages_of(b"not json").is_err());
    }
}
