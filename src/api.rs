//! After pairing: the refresh-token grant, revocation and userinfo, as requests to build and
//! replies to interpret.
//!
//! Pure: `agent.rs` sends. Salesforce returns no `expires_in` and no refresh token on a plain
//! refresh; with rotation on it returns a new refresh token that must be stored before the new
//! access token is used (docs/protocol.md, "Rotation"). A rejected refresh token means "pair
//! again", never "delete what we have": the old record stays until a new pairing succeeds.

use alloc::format;
use alloc::string::{String, ToString};

use crate::error::Error;
use crate::flow::dialect::Dialect;
use crate::flow::reply::{self, Parsed, TokenReply};
use crate::secret::Secret;
use crate::store::Record;
use crate::wire::{Form, Reply, Request};

/// How a reply to a non-pairing request turned out.
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    /// Worth retrying (5xx, HTML maintenance page, garbage, rate limit).
    Retry(String),
    Fail(Error),
}

/// `grant_type=refresh_token` against the stored token endpoint.
pub fn refresh_request(record: &Record, client_secret: Option<&Secret>) -> Request {
    let mut form = Form::new()
        .text("grant_type", "refresh_token")
        .secret("refresh_token", &record.refresh_token)
        .text("client_id", record.client_id.as_str());
    if let Some(secret) = client_secret {
        form = form.secret("client_secret", secret);
    }
    if record.dialect == Dialect::Salesforce {
        form = form.text("format", "json");
    }
    Request::post_form(record.token_url.as_str(), form)
}

/// Interprets a refresh reply.
pub fn refresh_outcome(reply: &Reply) -> Outcome<TokenReply> {
    match reply::token(reply) {
        Parsed::Ok(tokens) => Outcome::Done(tokens),
        Parsed::OAuth(e) if e.is_transient() => Outcome::Retry(e.summary()),
        // Why the pairing died, for the person and the admin: one home, `refusal.rs`.
        Parsed::OAuth(e) => Outcome::Fail(
            crate::refusal::refresh_error(e.status, &e.error, e.description.as_deref())
                .with_oauth(e.fields()),
        ),
        Parsed::Transient(reason) => Outcome::Retry(reason),
        Parsed::Rejected(reason) => Outcome::Fail(Error::server(format!(
            "the token endpoint answered {reason}"
        ))),
    }
}

/// RFC 7009 revocation of the stored refresh token (which also ends its access tokens), when
/// the record knows the endpoint.
pub fn revoke_request(record: &Record) -> Option<Request> {
    revoke_token_request(
        record.revoke_url.as_deref(),
        &record.client_id,
        &record.refresh_token,
    )
}

/// RFC 7009 revocation of any refresh token, when there is an endpoint to send it to.
pub fn revoke_token_request(url: Option<&str>, client_id: &str, token: &Secret) -> Option<Request> {
    let form = Form::new()
        .secret("token", token)
        .text("token_type_hint", "refresh_token")
        .text("client_id", client_id);
    Some(Request::post_form(url?, form))
}

/// 200 is success; Salesforce's 400 `invalid_token` means the token is already dead, which is
/// what we wanted too (RFC 7009 §2.2 answers 200 for that case).
pub fn revoke_outcome(reply: &Reply) -> Outcome<()> {
    if (200..300).contains(&reply.status) {
        return Outcome::Done(());
    }
    match reply::classify::<serde_json::Value>(reply) {
        Parsed::OAuth(e) if e.error == "invalid_token" => Outcome::Done(()),
        Parsed::OAuth(e) if e.is_transient() => Outcome::Retry(e.summary()),
        Parsed::OAuth(e) => Outcome::Fail(
            Error::server(format!("revocation failed: {}", e.summary())).with_oauth(e.fields()),
        ),
        Parsed::Transient(reason) => Outcome::Retry(reason),
        Parsed::Rejected(reason) => {
            Outcome::Fail(Error::server(format!("revocation failed: {reason}")))
        }
        // classify() only parses 2xx bodies, which returned above.
        Parsed::Ok(_) => Outcome::Done(()),
    }
}

/// Salesforce's OpenID Connect userinfo endpoint on the instance (My Domain) host.
pub fn userinfo_request(instance_url: &str, access_token: &Secret) -> Request {
    let base = instance_url.trim_end_matches('/');
    Request::get(format!("{base}/services/oauth2/userinfo")).with_bearer(access_token)
}

/// The org and user ids from an identity URL `.../id/{org}/{user}`.
pub fn org_and_user(identity_url: &str) -> (Option<String>, Option<String>) {
    let mut parts = identity_url.trim_end_matches('/').rsplit('/');
    let user = parts.next().filter(|s| !s.is_empty());
    let org = parts.next().filter(|s| !s.is_empty());
    match parts.next() {
        Some("id") => (org.map(ToString::to_string), user.map(ToString::to_string)),
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn record() -> Record {
        Record {
            refresh_token: Secret::new("RT"),
            client_id: "K".into(),
            dialect: Dialect::Salesforce,
            login_url: "https://login.salesforce.com".into(),
            token_url: "https://login.salesforce.com/services/oauth2/token".into(),
            revoke_url: Some("https://login.salesforce.com/services/oauth2/revoke".into()),
            instance_url: "https://x.my.salesforce.com".into(),
            identity_url: "https://login.salesforce.com/id/00DORG/005USER".into(),
            scope: String::new(),
            issued_at_ms: 0,
            paired_at: 0,
            grant: Default::default(),
        }
    }

    #[test]
    fn refresh_sends_the_secret_only_when_configured() {
        let r = refresh_request(&record(), None);
        assert_eq!(r.form_field("grant_type"), Some("refresh_token"));
        assert_eq!(
            r.form_secret("refresh_token").map(Secret::expose),
            Some("RT")
        );
        assert_eq!(r.form_secret("client_secret").map(Secret::expose), None);
        let r = refresh_request(&record(), Some(&Secret::new("S")));
        assert_eq!(
            r.form_secret("client_secret").map(Secret::expose),
            Some("S")
        );
    }

    #[test]
    fn a_rejected_refresh_token_means_pair_again() {
        let reply = Reply::json(
            400,
            r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
        );
        let Outcome::Fail(e) = refresh_outcome(&reply) else {
            panic!()
        };
        assert_eq!(e.kind(), ErrorKind::RepairNeeded);
        assert_eq!(e.oauth_error(), Some("invalid_grant"));
        assert_eq!(e.oauth_description(), Some("expired access/refresh token"));
        // The message quotes the server so the admin sees its reason.
        assert!(e.message().contains("expired access/refresh token"));
        let reply = Reply::new(503, "text/html", "<html>maintenance</html>");
        assert!(matches!(refresh_outcome(&reply), Outcome::Retry(_)));
    }

    #[test]
    fn revocation_of_a_dead_token_is_success() {
        assert!(matches!(
            revoke_outcome(&Reply::new(200, "", "")),
            Outcome::Done(())
        ));
        let dead = Reply::json(
            400,
            r#"{"error":"invalid_token","error_description":"Token was invalid"}"#,
        );
        assert!(matches!(revoke_outcome(&dead), Outcome::Done(())));
        assert!(matches!(
            revoke_outcome(&Reply::json(503, "{}")),
            Outcome::Retry(_)
        ));
    }

    #[test]
    fn identity_urls_yield_org_and_user() {
        assert_eq!(
            org_and_user("https://login.salesforce.com/id/00DORG/005USER"),
            (Some("00DORG".into()), Some("005USER".into()))
        );
        assert_eq!(org_and_user("https://x/other/a/b"), (None, None));
        assert_eq!(org_and_user(""), (None, None));
    }
}
