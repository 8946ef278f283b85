//! The headless grants' requests and replies: JWT bearer (RFC 7523 §2.1), client credentials
//! (RFC 6749 §4.4) and the asset token exchange (RFC 8693 §2.1), as Salesforce takes them
//! (docs/protocol.md, "Headless grants (JWT bearer, client credentials, asset token)").
//!
//! Pure: the assertion and actor token are built by the caller (`jwt.rs`, signed by
//! `key.rs`); `agent/headless.rs` sends. Assertions, secrets and tokens travel as `Secret`s,
//! so no Debug output or log line shows them.

// Builds without some of the grants (`--no-default-features`) leave parts of this file unused.
#![cfg_attr(
    not(all(
        feature = "jwt-bearer",
        feature = "client-credentials",
        feature = "asset-token"
    )),
    allow(unused_imports, unused_variables, unreachable_code, dead_code)
)]

use alloc::string::String;

use crate::api::Outcome;
use crate::error::Error;
use crate::flow::reply::{self, OAuthError, Parsed, TokenReply};
use crate::secret::Secret;
use crate::wire::{Form, Reply, Request};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`.
#[cfg(feature = "jwt-bearer")]
pub fn jwt_bearer_request(token_url: &str, assertion: &Secret) -> Request {
    let form = Form::new()
        .text("grant_type", JWT_BEARER)
        .secret("assertion", assertion)
        .text("format", "json");
    Request::post_form(token_url, form)
}

/// `grant_type=client_credentials` with the key and secret in the form (Salesforce takes
/// them there or as HTTP Basic).
#[cfg(feature = "client-credentials")]
pub fn client_credentials_request(token_url: &str, client_id: &str, secret: &Secret) -> Request {
    let form = Form::new()
        .text("grant_type", "client_credentials")
        .text("client_id", client_id)
        .secret("client_secret", secret)
        .text("format", "json");
    Request::post_form(token_url, form)
}

/// The asset token exchange: the session as the subject token, the device's actor token.
#[cfg(feature = "asset-token")]
pub fn token_exchange_request(token_url: &str, subject: &Secret, actor: &Secret) -> Request {
    let form = Form::new()
        .text("grant_type", TOKEN_EXCHANGE)
        .text("subject_token_type", ACCESS_TOKEN_TYPE)
        .secret("subject_token", subject)
        .text("actor_token_type", JWT_TOKEN_TYPE)
        .secret("actor_token", actor);
    Request::post_form(token_url, form)
}

/// How a grant reply turned out; `Refused` carries the OAuth error for `refusals`.
pub enum Granted<T> {
    Ok(T),
    Refused(OAuthError),
    Other(Outcome<T>),
}

fn transient(e: &OAuthError) -> bool {
    matches!(
        e.error.as_str(),
        "rate_limit_exceeded" | "temporarily_unavailable" | "server_error"
    )
}

/// Reads a JWT bearer or client credentials reply: a session, never a refresh token.
pub fn session_reply(reply: &Reply) -> Granted<TokenReply> {
    match reply::token(reply) {
        Parsed::Ok(tokens) => Granted::Ok(tokens),
        Parsed::OAuth(e) if transient(&e) => Granted::Other(Outcome::Retry(e.summary())),
        Parsed::OAuth(e) => Granted::Refused(e),
        Parsed::Transient(reason) => Granted::Other(Outcome::Retry(reason)),
        Parsed::Rejected(reason) => Granted::Other(Outcome::Fail(Error::server(alloc::format!(
            "the token endpoint answered {reason}"
        )))),
    }
}

/// Reads a token exchange reply as JSON; it must carry an `access_token` (the asset token).
#[cfg(feature = "asset-token")]
pub fn exchange_reply(reply: &Reply) -> Granted<serde_json::Value> {
    match reply::classify::<serde_json::Value>(reply) {
        Parsed::Ok(v)
            if v.get("access_token")
                .and_then(|t| t.as_str())
                .is_some_and(|t| !t.is_empty()) =>
        {
            Granted::Ok(v)
        }
        Parsed::Ok(_) => Granted::Other(Outcome::Fail(Error::server(
            "the token exchange reply has no access_token (the asset token)",
        ))),
        Parsed::OAuth(e) if transient(&e) => Granted::Other(Outcome::Retry(e.summary())),
        Parsed::OAuth(e) => Granted::Refused(e),
        Parsed::Transient(reason) => Granted::Other(Outcome::Retry(reason)),
        Parsed::Rejected(reason) => Granted::Other(Outcome::Fail(Error::server(alloc::format!(
            "the token endpoint answered {reason}"
        )))),
    }
}

/// The asset token from an exchange reply, as a secret.
#[cfg(feature = "asset-token")]
pub fn asset_token(reply: &serde_json::Value) -> Secret {
    Secret::new(
        reply
            .get("access_token")
            .and_then(|t| t.as_str())
            .map(String::from)
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(
        feature = "jwt-bearer",
        feature = "client-credentials",
        feature = "asset-token"
    ))]
    #[test]
    fn requests_carry_the_documented_fields_and_hide_the_secrets() {
        let r = jwt_bearer_request("https://x/services/oauth2/token", &Secret::new("A.B.C"));
        assert_eq!(r.form_field("grant_type"), Some(JWT_BEARER));
        assert_eq!(
            r.form_secret("assertion").map(Secret::expose),
            Some("A.B.C")
        );
        assert!(!alloc::format!("{r:?}").contains("A.B.C"));
        let r = client_credentials_request("https://x/t", "K", &Secret::new("S3CRET"));
        assert_eq!(r.form_field("grant_type"), Some("client_credentials"));
        assert_eq!(r.form_field("client_id"), Some("K"));
        assert!(!alloc::format!("{r:?}").contains("S3CRET"));
        let r = token_exchange_request("https://x/t", &Secret::new("00D!AT"), &Secret::new("e.a."));
        assert_eq!(r.form_field("subject_token_type"), Some(ACCESS_TOKEN_TYPE));
        assert_eq!(r.form_field("actor_token_type"), Some(JWT_TOKEN_TYPE));
        assert_eq!(
            r.form_secret("subject_token").map(Secret::expose),
            Some("00D!AT")
        );
    }

    #[cfg(feature = "asset-token")]
    #[test]
    fn refusals_and_replies_are_told_apart() {
        let ok = Reply::json(
            200,
            r#"{"access_token":"00D!X","instance_url":"https://a"}"#,
        );
        assert!(matches!(session_reply(&ok), Granted::Ok(_)));
        let refused = Reply::json(
            400,
            r#"{"error":"invalid_grant","error_description":"audience is invalid"}"#,
        );
        assert!(
            matches!(session_reply(&refused), Granted::Refused(e) if e.error == "invalid_grant")
        );
        let busy = Reply::json(503, r#"{"error":"server_error"}"#);
        assert!(matches!(
            session_reply(&busy),
            Granted::Other(Outcome::Retry(_))
        ));
        let asset = Reply::json(
            200,
            r#"{"access_token":"eyJ.x.y","issued_token_type":"urn:ietf:params:oauth:token-type:jwt","expires_in":600}"#,
        );
        let Granted::Ok(v) = exchange_reply(&asset) else {
            panic!()
        };
        assert_eq!(asset_token(&v).expose(), "eyJ.x.y");
        let empty = Reply::json(200, r#"{"token_type":"Bearer"}"#);
        assert!(matches!(
            exchange_reply(&empty),
            Granted::Other(Outcome::Fail(_))
        ));
    }
}
