//! Salesforce's OAuth endpoints: `/services/oauth2/token` (device authorization,
//! device polling, refresh) and `/services/oauth2/revoke`, with the exact bodies of
//! docs/protocol.md, from "Device code request" to "Userinfo and identity".
//!
//! Wire format only: the state lives in `device.rs` and `grants.rs`. Every answer
//! carries `Cache-Control: no-store`; no token or secret is ever logged or echoed in
//! an error.

use std::time::Instant;

use ring::hmac;
use serde_json::{Value, json};

use crate::codes;
use crate::config::{AppState, DenyMode};
use crate::device::{Dialect, Poll};
use crate::errors::{oauth_error as error, oauth_json};
use crate::form::Params;
use crate::grants::{Fresh, Minted};
use crate::http::{Request, Response};
use crate::state::Shared;
use crate::store::epoch_millis;

/// Granted when the request names no scope.
const DEFAULT_SCOPE: &str = "api refresh_token";

/// `POST /services/oauth2/token`: dispatches on `response_type` and `grant_type`.
pub fn token(shared: &Shared, request: &Request, params: &Params) -> Response {
    if params.get("response_type") == Some("device_code") {
        return device_authorization(shared, request, params);
    }
    match params.get("grant_type") {
        None => missing("grant_type"),
        Some("device") => poll(shared, params),
        Some("refresh_token") => refresh(shared, request, params),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            crate::jwt_bearer::check(shared, params, |iss| check_client(shared, iss)).map_or_else(
                |refusal| refusal,
                |()| headless_session(shared, Instant::now()),
            )
        }
        Some("client_credentials") => {
            let (id, secret) = client_credentials(request, params);
            let check = |id: Option<&str>| check_client(shared, id);
            crate::client_credentials::check(shared, id.as_deref(), secret.as_deref(), check)
                .map_or_else(
                    |refusal| refusal,
                    |()| headless_session(shared, Instant::now()),
                )
        }
        Some("urn:ietf:params:oauth:grant-type:token-exchange") => {
            crate::token_exchange::exchange(shared, params)
        }
        Some(_) => error(400, "unsupported_grant_type", "grant type not supported"),
    }
}

/// `POST|GET /services/oauth2/revoke`: 200 with an empty body for a live access or
/// refresh token, 400 `invalid_token` otherwise (docs/protocol.md, "Revocation").
pub fn revoke(shared: &Shared, request: &Request) -> Response {
    let params = Params::from_query_and_body(request);
    let revoked = params
        .get("token")
        .is_some_and(|t| shared.world().grants.revoke(t));
    if revoked {
        Response::empty(200).header("Cache-Control", "no-store")
    } else {
        error(400, "invalid_token", "Token was invalid")
    }
}

/// Step 1 (docs/protocol.md, "Device code reply"): exactly four fields, no `expires_in`, no
/// `verification_uri_complete`.
fn device_authorization(shared: &Shared, request: &Request, params: &Params) -> Response {
    if let Err(refusal) = check_client(shared, params.get("client_id")) {
        return refusal;
    }
    match shared.config.app {
        AppState::Ok => {}
        AppState::DeviceFlowDisabled => {
            return error(
                400,
                "invalid_grant",
                "device flow is not enabled for the app",
            );
        }
        AppState::NotInstalled => {
            return error(400, "invalid_client", "app must be installed into org");
        }
    }
    let mut world = shared.world();
    let user_code = loop {
        let candidate = codes::salesforce_user_code();
        if !world.devices.user_code_taken(&candidate) {
            break candidate;
        }
    };
    let device_code =
        codes::salesforce_device_code(&shared.config.client_id, epoch_millis(), &user_code);
    let scope = params.get("scope").map(str::to_string);
    world.devices.issue(
        Dialect::Salesforce,
        device_code.clone(),
        user_code.clone(),
        scope,
        Instant::now(),
        &shared.rules,
    );
    oauth_json(
        200,
        &json!({
            "user_code": user_code,
            "device_code": device_code,
            "interval": shared.config.interval,
            "verification_uri": format!("{}/setup/connect", shared.public_url(request)),
        }),
    )
}

/// Step 2 (docs/protocol.md, "Polling" and "Device flow errors"): `grant_type=device` with the
/// code in `code`.
fn poll(shared: &Shared, params: &Params) -> Response {
    if let Err(refusal) = check_client(shared, params.get("client_id")) {
        return refusal;
    }
    let Some(code) = params.get("code") else {
        return missing("code");
    };
    let now = Instant::now();
    let mut world = shared.world();
    let pending = || error(400, "authorization_pending", "authorization pending");
    match world
        .devices
        .poll(Dialect::Salesforce, code, now, &shared.rules)
    {
        Poll::Pending => pending(),
        Poll::SlowDown { .. } => error(
            400,
            "slow_down",
            "polling too quickly for the token endpoint",
        ),
        Poll::Denied => match shared.config.deny_mode {
            DenyMode::Pending => pending(),
            DenyMode::AccessDenied => error(400, "access_denied", "end-user denied authorization"),
        },
        Poll::Expired => error(400, "invalid_grant", "expired authorization code"),
        Poll::Invalid => error(400, "invalid_grant", "invalid authorization code"),
        Poll::ExchangeFailed => error(400, "invalid_grant", "token exchange failed"),
        Poll::Approved { scope } => {
            let scope = scope.unwrap_or_else(|| DEFAULT_SCOPE.to_string());
            let with_refresh = scope
                .split(' ')
                .any(|s| s == "refresh_token" || s == "offline_access");
            let minted =
                world
                    .grants
                    .create(&scope, with_refresh, fresh(shared), now, &shared.policy);
            token_response(shared, minted)
        }
    }
}

/// The refresh-token flow (docs/protocol.md, "Refresh").
fn refresh(shared: &Shared, request: &Request, params: &Params) -> Response {
    let (client_id, secret) = client_credentials(request, params);
    if let Err(refusal) = check_client(shared, client_id.as_deref()) {
        return refusal;
    }
    let Some(refresh_token) = params.get("refresh_token") else {
        return missing("refresh_token");
    };
    if let Some(refusal) = crate::field::refusal(&shared.config) {
        return refusal;
    }
    let expected_secret = shared.config.consumer_secret.as_deref().unwrap_or("");
    if shared.config.require_secret_for_refresh && secret.as_deref() != Some(expected_secret) {
        return error(400, "invalid_client", "invalid client credentials");
    }
    let minted =
        shared
            .world()
            .grants
            .refresh(refresh_token, fresh(shared), Instant::now(), &shared.policy);
    match minted {
        Some(minted) => token_response(shared, minted),
        None => error(400, "invalid_grant", "expired access/refresh token"),
    }
}

/// The shape of docs/protocol.md, "Token response and signature"; `refresh_token` only
/// when one was minted ("Refresh").
fn token_response(shared: &Shared, minted: Minted) -> Response {
    let id = shared.identity_url();
    let issued_at = epoch_millis().to_string();
    let secret = shared.config.consumer_secret.as_deref().unwrap_or("");
    let mut body = json!({
        "access_token": minted.access_token,
        "signature": signature(secret, &id, &issued_at),
        "scope": minted.scope,
        "instance_url": shared.instance_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
    });
    if let Some(refresh_token) = minted.refresh_token {
        body["refresh_token"] = Value::String(refresh_token);
    }
    oauth_json(200, &body)
}

/// `base64(HMAC-SHA256(key = consumer secret, msg = id + issued_at))` (docs/protocol.md,
/// "Token response and signature").
pub fn signature(secret: &str, id: &str, issued_at: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("{id}{issued_at}").as_bytes());
    codes::base64_encode(tag.as_ref())
}

fn fresh(shared: &Shared) -> Fresh {
    Fresh {
        access: crate::field::access_token(&shared.config, (epoch_millis() / 1000) as u64),
        refresh: codes::salesforce_refresh_token(),
    }
}

/// A session for an approval-free grant (JWT bearer, client credentials): no refresh token.
fn headless_session(shared: &Shared, now: Instant) -> Response {
    let minted = shared
        .world()
        .grants
        .create("api", false, fresh(shared), now, &shared.policy);
    token_response(shared, minted)
}

/// Only the configured consumer key gets past this.
fn check_client(shared: &Shared, client_id: Option<&str>) -> Result<(), Response> {
    match client_id {
        None => Err(missing("client_id")),
        Some(id) if id == shared.config.client_id => Ok(()),
        Some(_) => Err(error(400, "invalid_client_id", "client identifier invalid")),
    }
}

/// `client_id` and `client_secret` from the body, or else from HTTP Basic, which
/// docs/protocol.md, "Refresh" allows instead.
fn client_credentials(request: &Request, params: &Params) -> (Option<String>, Option<String>) {
    let basic = request
        .header("authorization")
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b64| codes::base64_decode(b64.trim()))
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(i, s)| (i.to_string(), s.to_string()))
        });
    let (basic_id, basic_secret) = basic.unzip();
    let id = params.get("client_id").map(str::to_string).or(basic_id);
    let secret = params
        .get("client_secret")
        .map(str::to_string)
        .or(basic_secret);
    (id, secret)
}

fn missing(name: &str) -> Response {
    error(
        400,
        "invalid_request",
        &format!("missing required parameter: {name}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "https://127.0.0.1:8443/id/00DSIM000000001AAA/005SIM000000001AAA";

    /// Expected values computed independently with Python:
    /// `base64.b64encode(hmac.new(KEY, (ID + "1477674717112").encode(), hashlib.sha256).digest())`.
    #[test]
    fn signature_matches_an_independent_hmac() {
        assert_eq!(
            signature("sim-secret", ID, "1477674717112"),
            "UD1NMeZsPfGsOUetORZsPeBEqgR+lQs2vYkDSZbdmUY="
        );
        assert_eq!(
            signature("", ID, "1477674717112"),
            "e004hNbNo1L/G/NEuGRN0bLnC4Do8XHWWNT51AiniJA="
        );
    }

    #[test]
    fn basic_auth_supplies_client_credentials() {
        let request = Request {
            headers: vec![(
                "Authorization".into(),
                format!("Basic {}", codes::base64_encode(b"key:s3cret")),
            )],
            ..Request::default()
        };
        let (id, secret) = client_credentials(&request, &Params::default());
        assert_eq!(
            (id.as_deref(), secret.as_deref()),
            (Some("key"), Some("s3cret"))
        );
    }
}
