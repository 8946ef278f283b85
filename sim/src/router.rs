//! Which handler answers a request, which requests take a queued fault or a `flaky`
//! 503, and what the request log records about each answer.
//!
//! Paths match exactly: `//services/oauth2/token` is a 404, so a client that joins
//! URLs with a double slash fails its tests (docs/protocol.md, "Hosts and endpoints"). No socket
//! I/O happens
//! here; `server.rs` carries the [`Reply`] out.

use crate::errors;
use crate::faults::{Scope, maintenance_page};
use crate::form::Params;
use crate::http::{Body, Request, Response};
use crate::reply::Reply;
use crate::state::Shared;
use crate::{discovery, identity, oauth, page, rest, rfc8628, streaming};

const TOKEN_PATH: &str = "/services/oauth2/token";
const RFC_DEVICE_PATH: &str = "/rfc8628/device";
const RFC_TOKEN_PATH: &str = "/rfc8628/token";

/// A reply plus what the log says about it.
pub struct Answer {
    pub reply: Reply,
    pub grant: Option<String>,
    pub error: Option<String>,
}

pub fn route(shared: &Shared, request: &Request) -> Answer {
    let path = request.path.as_str();
    let token_like = matches!(path, TOKEN_PATH | RFC_DEVICE_PATH | RFC_TOKEN_PATH);
    let params = match token_like {
        true => Params::from_body(request),
        false => Params::default(),
    };
    let grant = match token_like {
        true => grant_of(path, &params),
        false => None,
    };
    // Counted before faults, so "every n-th request" means every n-th one sent.
    let flaky = path == TOKEN_PATH && {
        let mut world = shared.world();
        world.token_requests += 1;
        shared.config.flaky > 0
            && world
                .token_requests
                .is_multiple_of(u64::from(shared.config.flaky))
    };
    let scope = fault_scope(path);
    let normal = || {
        if flaky {
            Reply::Send(maintenance_page())
        } else if rest::owns(path) {
            rest::handle(shared, request)
        } else if streaming::owns(path) {
            streaming::handle(shared, request)
        } else {
            Reply::Send(dispatch(shared, request, &params))
        }
    };
    let reply = match scope.and_then(|s| shared.faults.take(s)) {
        Some(fault) => match (fault.reply(normal), scope) {
            (Reply::Send(response), Some(Scope::Rest)) => {
                let usage = shared.world().api_usage;
                Reply::Send(response.header("Sforce-Limit-Info", rest::limit_info(shared, usage)))
            }
            (reply, _) => reply,
        },
        None => normal(),
    };
    let error = match &reply {
        // A Bayeux error rides in a 200: the log shows the first one (`403::Unknown client`).
        Reply::Send(response) if streaming::owns(path) => {
            error_code(response).or_else(|| streaming::error_of(response))
        }
        Reply::Send(response) => error_code(response),
        _ => None,
    };
    Answer {
        reply,
        grant,
        error,
    }
}

fn dispatch(shared: &Shared, request: &Request, params: &Params) -> Response {
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", TOKEN_PATH) => oauth::token(shared, request, params),
        ("POST" | "GET", "/services/oauth2/revoke") => oauth::revoke(shared, request),
        ("GET" | "POST", "/services/oauth2/userinfo") => identity::userinfo(shared, request),
        ("POST", RFC_DEVICE_PATH) => rfc8628::device_authorization(shared, request, params),
        ("POST", RFC_TOKEN_PATH) => rfc8628::token(shared, params),
        ("GET", "/setup/connect" | "/rfc8628/verify") => page::form(shared, request),
        ("POST", "/setup/connect" | "/rfc8628/verify") => page::submit(shared, request),
        ("POST", page::VERIFY_DEVICE) => page::verify_device(shared, request),
        ("GET", path) if path.starts_with("/id/") => identity::identity(shared, request),
        ("GET", discovery::RFC8414_PATH | discovery::OPENID_PATH) => {
            discovery::metadata(shared, request)
        }
        ("POST", "/__mock/revoke_user") => page::revoke_user(shared),
        ("POST", path) if path.starts_with("/__mock/") => {
            page::hook(shared, request, &path["/__mock/".len()..])
        }
        (method, path) => match allowed_methods(path) {
            Some(allowed) => errors::method_not_allowed(method, allowed),
            None => errors::not_found(),
        },
    }
}

/// The methods of the fixed paths above, for a 405 that names them.
fn allowed_methods(path: &str) -> Option<&'static str> {
    Some(match path {
        TOKEN_PATH | RFC_DEVICE_PATH | RFC_TOKEN_PATH | page::VERIFY_DEVICE => "POST",
        "/services/oauth2/revoke" | "/services/oauth2/userinfo" => "GET, POST",
        "/setup/connect" | "/rfc8628/verify" => "GET, POST",
        _ if path.starts_with("/__mock/") => "POST",
        _ if path.starts_with("/id/") => "GET",
        discovery::RFC8414_PATH | discovery::OPENID_PATH => "GET",
        _ => return None,
    })
}

/// `device_code` for a device authorization request, else the `grant_type`.
fn grant_of(path: &str, params: &Params) -> Option<String> {
    if path == RFC_DEVICE_PATH || params.get("response_type") == Some("device_code") {
        return Some("device_code".to_string());
    }
    // The URN grants log by their short name ("jwt-bearer", "token-exchange").
    params.get("grant_type").map(|g| {
        g.trim_start_matches("urn:ietf:params:oauth:grant-type:")
            .to_string()
    })
}

/// Which queued faults a request to `path` may take.
fn fault_scope(path: &str) -> Option<Scope> {
    if path.starts_with("/services/oauth2/") || path == RFC_DEVICE_PATH || path == RFC_TOKEN_PATH {
        Some(Scope::OAuth)
    } else if rest::versioned(path).is_some() {
        Some(Scope::Rest)
    } else {
        None
    }
}

/// The OAuth `error` or the first REST `errorCode` of an error answer, for the log.
fn error_code(response: &Response) -> Option<String> {
    let Body::Bytes(bytes) = &response.body else {
        return None;
    };
    if response.status < 400 {
        return None;
    }
    let body: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let code = body
        .get("error")
        .or_else(|| body.get(0)?.get("errorCode"))?;
    code.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_scopes() {
        assert_eq!(fault_scope("/services/oauth2/token"), Some(Scope::OAuth));
        assert_eq!(fault_scope("/services/oauth2/userinfo"), Some(Scope::OAuth));
        assert_eq!(fault_scope("/rfc8628/token"), Some(Scope::OAuth));
        assert_eq!(
            fault_scope("/services/data/v67.0/limits"),
            Some(Scope::Rest)
        );
        assert_eq!(fault_scope("/services/data/"), None);
        assert_eq!(fault_scope("//services/oauth2/token"), None);
        assert_eq!(fault_scope("/setup/connect"), None);
    }

    #[test]
    fn error_codes_come_from_either_envelope() {
        let oauth = errors::oauth_error(
            400,
            "slow_down",
            "polling too quickly for the token endpoint",
        );
        assert_eq!(error_code(&oauth).as_deref(), Some("slow_down"));
        assert_eq!(
            error_code(&errors::invalid_session()).as_deref(),
            Some("INVALID_SESSION_ID")
        );
        assert_eq!(error_code(&maintenance_page()), None);
    }
}
