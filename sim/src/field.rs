//! What happens to a pairing in the field: refresh tokens that expire by the app's
//! refresh token policy (idle or absolute lifetime), an admin who revokes a user's grants, the
//! refusals a refresh gets when the org blocks the device's network or starts to require the
//! consumer secret, and access tokens that are JWTs carrying `exp`.
//!
//! The answers are Salesforce's as docs/protocol.md, "When a pairing dies" records them
//! (`invalid_grant` / `expired access/refresh token` for every death the wire cannot tell apart,
//! `invalid_grant` / `ip restricted`, `invalid_client` / `invalid client credentials`). Pure
//! apart from the random token ids: the grant state stays in `grants.rs`, which asks
//! [`expired`]; `oauth.rs` asks [`refusal`] and [`access_token`].

use std::time::{Duration, Instant};

use serde_json::json;

use crate::codes;
use crate::config::{Config, RefreshRefusal};
use crate::http::Response;

/// Whether a refresh token created at `created` and last used (for a refresh) at `last_used`
/// has expired at `now` under the policy: unused for longer than `idle` ("expire refresh token
/// if not used for N"), or older than `lifetime` ("expire refresh token after N").
pub fn expired(
    created: Instant,
    last_used: Instant,
    now: Instant,
    idle: Option<Duration>,
    lifetime: Option<Duration>,
) -> bool {
    let idle_out = idle.is_some_and(|idle| now.saturating_duration_since(last_used) >= idle);
    let too_old = lifetime.is_some_and(|life| now.saturating_duration_since(created) >= life);
    idle_out || too_old
}

/// The refusal a refresh gets under the configured scenario, before the token is looked at.
pub fn refusal(config: &Config) -> Option<Response> {
    match config.refresh_refusal? {
        RefreshRefusal::IpRestricted => Some(crate::errors::oauth_error(
            400,
            "invalid_grant",
            "ip restricted",
        )),
        RefreshRefusal::SecretRequired => Some(crate::errors::oauth_error(
            400,
            "invalid_client",
            "invalid client credentials",
        )),
    }
}

/// A new access token: Salesforce's opaque shape, or with `jwt_access_tokens` a JWT whose
/// payload carries `exp` (now + the session lifetime). The signature part is random bytes: the
/// simulator looks its tokens up, it does not verify them, and the agent does not either.
pub fn access_token(config: &Config, unix_now: u64) -> String {
    if !config.jwt_access_tokens {
        return codes::salesforce_access_token();
    }
    let b64 = |bytes: &[u8]| {
        codes::base64_encode(bytes)
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_")
    };
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "sim"});
    let payload = json!({
        "iss": "https://login.salesforce.com",
        "sub": codes::USER_ID,
        "org": codes::ORG_ID,
        "exp": unix_now + config.session_ttl().as_secs(),
        "jti": b64(&codes::random_bytes(12)),
    });
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes()),
        b64(&codes::random_bytes(32))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_absolute_expiry() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert!(!expired(t0, t0, t0 + s(100), None, None));
        assert!(!expired(t0, t0 + s(50), t0 + s(59), Some(s(10)), None));
        assert!(expired(t0, t0 + s(50), t0 + s(60), Some(s(10)), None));
        assert!(!expired(t0, t0 + s(50), t0 + s(59), None, Some(s(60))));
        assert!(expired(
            t0,
            t0 + s(59),
            t0 + s(60),
            Some(s(10)),
            Some(s(60))
        ));
    }

    #[test]
    fn jwt_access_tokens_carry_exp() {
        let config = Config {
            jwt_access_tokens: true,
            session_ttl: Some(Duration::from_secs(900)),
            ..Config::default()
        };
        let token = access_token(&config, 1_800_000_000);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let std_b64 = parts[1].replace('-', "+").replace('_', "/");
        let padded = format!("{std_b64}{}", "=".repeat((4 - std_b64.len() % 4) % 4));
        let payload: serde_json::Value =
            serde_json::from_slice(&codes::base64_decode(&padded).unwrap()).unwrap();
        assert_eq!(payload["exp"], 1_800_000_900u64);
        assert!(access_token(&Config::default(), 0).starts_with("00D"));
    }
}
