//! The asset token flow (Salesforce help "OAuth 2.0 Asset Token Flow for Securing Connected
//! Devices"; RFC 8693 §2.1): a live session as the subject token and an actor token about the
//! device, exchanged for a short-lived asset token.
//!
//! An actor token with `cnf.jwk` must be signed RS256 by that key (verified with ring);
//! without `cnf` an unsigned token (`alg: none`) is taken, which is the simulator's reading
//! (unconfirmed, docs/protocol.md). The asset token is a JWT carrying the device's claims and
//! its `cnf` (so a test can see which key the simulator verified), signed HS256 with a key
//! this process makes once (Salesforce signs RS256 with the org's certificate). Never logged.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ring::hmac;
use serde_json::json;

use crate::codes;
use crate::errors::{oauth_error as error, oauth_json};
use crate::form::Params;
use crate::headless::{self, b64url_encode};
use crate::http::Response;
use crate::state::Shared;

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The asset-token signing key, made once per process.
fn asset_key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| hmac::Key::new(hmac::HMAC_SHA256, &codes::random_bytes(32)))
}

pub fn exchange(shared: &Shared, params: &Params) -> Response {
    if params.get("subject_token_type") != Some(ACCESS_TOKEN_TYPE)
        || params.get("actor_token_type") != Some(JWT_TOKEN_TYPE)
    {
        return error(
            400,
            "invalid_request",
            "subject_token_type must be an access token and actor_token_type a jwt",
        );
    }
    let config = &shared.config.headless;
    if !config.token_exchange {
        return error(
            400,
            "invalid_grant",
            "token exchange is not enabled for this app",
        );
    }
    let (Some(subject), Some(actor)) = (params.get("subject_token"), params.get("actor_token"))
    else {
        return error(
            400,
            "invalid_request",
            "missing subject_token or actor_token",
        );
    };
    if !shared.world().grants.authenticate(subject, Instant::now()) {
        return error(
            400,
            "invalid_grant",
            "the subject token is not a valid session",
        );
    }
    let Some(jwt) = headless::parse(actor) else {
        return error(400, "invalid_request", "the actor token is not a JWT");
    };
    match jwt.claims.get("cnf").and_then(|c| c.get("jwk")) {
        Some(jwk) if jwt.verifies_with_jwk(jwk) => {}
        Some(_) => {
            return error(
                400,
                "invalid_grant",
                "the actor token signature does not match its cnf key",
            );
        }
        None if jwt.alg() == Some("none") && jwt.signature.is_empty() => {}
        None => {
            return error(
                400,
                "invalid_request",
                "an actor token without cnf must be unsigned (alg none)",
            );
        }
    };
    if jwt.claim("did").is_none_or(str::is_empty) {
        return error(400, "invalid_request", "the actor token has no did");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let ttl = config.asset_token_ttl.as_secs();
    let mut claims = json!({
        "iss": shared.base_url,
        "aud": [shared.base_url],
        "nbf": now,
        "exp": now + ttl,
        "did": jwt.claims["did"],
    });
    for name in ["Asset", "cnf"] {
        if let Some(v) = jwt.claims.get(name) {
            claims[name] = v.clone();
        }
    }
    let input = format!(
        "{}.{}",
        b64url_encode(br#"{"alg":"HS256","typ":"JWT","kid":"sim"}"#),
        b64url_encode(claims.to_string().as_bytes())
    );
    let tag = hmac::sign(asset_key(), input.as_bytes());
    let token = format!("{input}.{}", b64url_encode(tag.as_ref()));
    oauth_json(
        200,
        &json!({
            "access_token": token,
            "issued_token_type": JWT_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": ttl,
        }),
    )
}
