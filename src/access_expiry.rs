//! When an access token says it expires: apps can issue JWT-based access tokens (three
//! base64url parts, a JSON payload with `exp`, RFC 7519 §4.1.4). The agent reads `exp` to
//! refresh shortly before it, instead of waiting for a 401. Opaque tokens (Salesforce's default,
//! `00D…!…`) say nothing and behave as before.
//!
//! **No signature check, on purpose**: the value only schedules a refresh on this device; it
//! grants nothing. A forged or wrong `exp` can at worst make the agent refresh early or wait for
//! the 401 it would have waited for anyway. Pure; the token is read, never logged or kept.

use std::time::Duration;

use base64::Engine as _;

/// `exp` (seconds since the Unix epoch) of a JWT access token; `None` for anything that is not
/// a JWT with a numeric `exp`.
pub fn jwt_expiry(token: &str) -> Option<u64> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    exp.as_u64()
        .or_else(|| exp.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// How long before `exp` to refresh: a minute, or a twentieth of the token's lifetime when that
/// is shorter (a short-lived token is not refreshed the moment it arrives).
pub fn margin(lifetime: Duration) -> Duration {
    Duration::from_secs(60).min(lifetime / 20)
}

/// How long from `now_unix` (the wall clock when the token was obtained) until it should be
/// refreshed: `exp - now - margin`. `None` when the token is opaque, or says it is already
/// expired: then the wall clock is more likely wrong than the token, and the agent falls back to
/// waiting for the server's 401 rather than refreshing at every use.
pub fn refresh_after(token: &str, now_unix: Duration) -> Option<Duration> {
    let exp = Duration::from_secs(jwt_expiry(token)?);
    let lifetime = exp.checked_sub(now_unix).filter(|d| !d.is_zero())?;
    Some(lifetime - margin(lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256","typ":"JWT"}"#),
            b64(payload)
        )
    }

    #[test]
    fn reads_exp_from_a_jwt() {
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":1800007200,"sub":"x"}"#)),
            Some(1_800_007_200)
        );
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":1800007200.5}"#)),
            Some(1_800_007_200)
        );
    }

    #[test]
    fn anything_else_says_nothing() {
        for token in [
            "00D5g000000abcd!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX.LVpxezPwuX5VAI".to_string(),
            jwt(r#"{"sub":"no exp"}"#),
            jwt(r#"{"exp":"soon"}"#),
            jwt(r#"{"exp":-5}"#),
            "a.b".into(),
            "a.b.c.d".into(),
            format!("x.{}.y", b64("not json")),
            String::new(),
        ] {
            assert_eq!(jwt_expiry(&token), None, "{token}");
        }
    }

    #[test]
    fn refreshes_a_minute_early_or_a_twentieth_for_short_tokens() {
        let now = Duration::from_secs(1_800_000_000);
        let two_hours = jwt(r#"{"exp":1800007200}"#);
        assert_eq!(
            refresh_after(&two_hours, now),
            Some(Duration::from_secs(7200 - 60))
        );
        let ten_minutes = jwt(r#"{"exp":1800000600}"#);
        assert_eq!(
            refresh_after(&ten_minutes, now),
            Some(Duration::from_secs(600 - 30))
        );
        assert_eq!(
            refresh_after(&jwt(r#"{"exp":1799999999}"#), now),
            None,
            "already expired"
        );
        assert_eq!(refresh_after("00D!opaque", now), None);
    }
}
