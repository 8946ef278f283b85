//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523 §2.1; Salesforce help
//! "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration"): a signed assertion for a
//! pre-approved user, answered with a session and never a refresh token.
//!
//! Checks in the order a client can act on: the consumer key (`iss`), a certificate to trust,
//! the RS256 signature (ring), `aud`, `exp` (seconds, not past, at most `max_exp_ahead`
//! ahead), and the user's pre-approval. The refusal wordings for a missing certificate, a bad
//! signature and `exp` are the simulator's (marked unconfirmed in docs/protocol.md).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::errors::oauth_error as error;
use crate::form::Params;
use crate::headless;
use crate::http::Response;
use crate::state::Shared;

/// `Ok` when the assertion earns a session (`oauth.rs` mints it); `check_client` is the token
/// endpoint's consumer-key rule, applied to `iss`.
pub fn check(
    shared: &Shared,
    params: &Params,
    check_client: impl Fn(Option<&str>) -> Result<(), Response>,
) -> Result<(), Response> {
    let Some(assertion) = params.get("assertion") else {
        return Err(error(
            400,
            "invalid_request",
            "missing required parameter: assertion",
        ));
    };
    let Some(jwt) = headless::parse(assertion) else {
        return Err(error(400, "invalid_grant", "invalid assertion"));
    };
    check_client(jwt.claim("iss"))?;
    let config = &shared.config.headless;
    let Some(key) = &config.jwt_public_key else {
        return Err(error(
            400,
            "invalid_client",
            "the app has no certificate: the JWT bearer flow is not enabled",
        ));
    };
    if !jwt.verifies_with_der(key) {
        return Err(error(400, "invalid_grant", "invalid assertion"));
    }
    if jwt.claim("aud") != Some(shared.base_url.as_str()) {
        return Err(error(400, "invalid_grant", "audience is invalid"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let exp = jwt.claims.get("exp").and_then(serde_json::Value::as_u64);
    // Milliseconds (13 digits) are far ahead and refused here, as the documented rule says.
    if !exp.is_some_and(|exp| exp > now && exp <= now + config.max_exp_ahead.as_secs()) {
        return Err(error(
            400,
            "invalid_grant",
            "assertion expired or its exp is more than 3 minutes ahead",
        ));
    }
    if jwt.claim("sub").is_none_or(str::is_empty) {
        return Err(error(400, "invalid_grant", "invalid assertion: no sub"));
    }
    if !config.pre_approved {
        return Err(error(
            400,
            "invalid_grant",
            "user hasn't approved this consumer",
        ));
    }
    Ok(())
}
