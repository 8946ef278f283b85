//! A standard RFC 8628 provider on the same server, for the agent's second dialect:
//! `POST /rfc8628/device` and `POST /rfc8628/token` (device code and refresh grants).
//!
//! It follows the RFC where Salesforce does not: `expires_in`,
//! `verification_uri_complete`, `access_denied`, `expired_token`, a `slow_down` body
//! with the new `interval`, and 401 for an unknown client (as oidc-provider answers).
//! It shares the device table and grants with the Salesforce dialect, but each
//! dialect only redeems its own device codes.

use std::time::Instant;

use serde_json::{Value, json};

use crate::codes;
use crate::device::{Dialect, Poll};
use crate::errors::oauth_json;
use crate::form::Params;
use crate::grants::{Fresh, Minted};
use crate::http::{Request, Response};
use crate::state::Shared;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /rfc8628/device` (RFC 8628 section 3.1 and 3.2).
pub fn device_authorization(shared: &Shared, request: &Request, params: &Params) -> Response {
    if let Err(refusal) = check_client(shared, params) {
        return refusal;
    }
    let mut world = shared.world();
    let user_code = loop {
        let candidate = codes::rfc8628_user_code();
        if !world.devices.user_code_taken(&candidate) {
            break candidate;
        }
    };
    let device_code = codes::rfc8628_device_code();
    let scope = params.get("scope").map(str::to_string);
    world.devices.issue(
        Dialect::Rfc8628,
        device_code.clone(),
        user_code.clone(),
        scope,
        Instant::now(),
        &shared.rules,
    );
    let verification_uri = format!("{}/rfc8628/verify", shared.public_url(request));
    standard_json(
        200,
        json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
            "verification_uri": verification_uri,
            "expires_in": shared.config.code_ttl.as_secs(),
            "interval": shared.config.interval,
        }),
    )
}

/// `POST /rfc8628/token`: the device-code grant (RFC 8628 section 3.4 and 3.5) and refresh.
pub fn token(shared: &Shared, params: &Params) -> Response {
    match params.get("grant_type") {
        None => standard_error(400, "invalid_request", "missing grant_type"),
        Some(DEVICE_GRANT) => poll(shared, params),
        Some("refresh_token") => refresh(shared, params),
        Some(_) => standard_error(400, "unsupported_grant_type", "unsupported grant_type"),
    }
}

fn poll(shared: &Shared, params: &Params) -> Response {
    if let Err(refusal) = check_client(shared, params) {
        return refusal;
    }
    let Some(device_code) = params.get("device_code") else {
        return standard_error(400, "invalid_request", "missing device_code");
    };
    let now = Instant::now();
    let mut world = shared.world();
    match world
        .devices
        .poll(Dialect::Rfc8628, device_code, now, &shared.rules)
    {
        Poll::Pending => standard_error(400, "authorization_pending", "authorization pending"),
        Poll::SlowDown { interval } => standard_json(
            400,
            json!({
                "error": "slow_down",
                "error_description": "polling too quickly",
                "interval": interval.as_secs(),
            }),
        ),
        Poll::Denied => standard_error(400, "access_denied", "the user denied the request"),
        Poll::Expired => standard_error(400, "expired_token", "the device code expired"),
        Poll::Invalid | Poll::ExchangeFailed => {
            standard_error(400, "invalid_grant", "grant request is invalid")
        }
        Poll::Approved { scope } => {
            let scope = scope.unwrap_or_default();
            let minted = world
                .grants
                .create(&scope, true, fresh(), now, &shared.policy);
            token_response(shared, minted)
        }
    }
}

fn refresh(shared: &Shared, params: &Params) -> Response {
    if let Err(refusal) = check_client(shared, params) {
        return refusal;
    }
    let Some(refresh_token) = params.get("refresh_token") else {
        return standard_error(400, "invalid_request", "missing refresh_token");
    };
    let minted =
        shared
            .world()
            .grants
            .refresh(refresh_token, fresh(), Instant::now(), &shared.policy);
    match minted {
        Some(minted) => token_response(shared, minted),
        None => standard_error(400, "invalid_grant", "grant request is invalid"),
    }
}

/// RFC 6749 section 5.1.
fn token_response(shared: &Shared, minted: Minted) -> Response {
    let mut body = json!({
        "access_token": minted.access_token,
        "token_type": "Bearer",
        "expires_in": shared.policy.session_ttl.as_secs(),
    });
    if let Some(refresh_token) = minted.refresh_token {
        body["refresh_token"] = Value::String(refresh_token);
    }
    if !minted.scope.is_empty() {
        body["scope"] = Value::String(minted.scope);
    }
    standard_json(200, body)
}

fn fresh() -> Fresh {
    Fresh {
        access: codes::opaque_token(),
        refresh: codes::opaque_token(),
    }
}

/// A public client identifies itself with `client_id`; anything else is 401.
fn check_client(shared: &Shared, params: &Params) -> Result<(), Response> {
    match params.get("client_id") {
        Some(id) if id == shared.config.client_id => Ok(()),
        _ => Err(standard_error(
            401,
            "invalid_client",
            "client authentication failed",
        )),
    }
}

fn standard_error(status: u16, code: &str, description: &str) -> Response {
    standard_json(
        status,
        json!({"error": code, "error_description": description}),
    )
}

/// RFC 6749 section 5.1 asks for `Pragma: no-cache` as well as `Cache-Control: no-store`.
fn standard_json(status: u16, body: Value) -> Response {
    oauth_json(status, &body).header("Pragma", "no-cache")
}
