//! Reading token-endpoint replies: device codes, tokens and OAuth errors, leniently.
//!
//! Real servers bend RFC 8628 (docs/protocol.md, "RFC 8628 and other servers"): `verification_url`
//! for `verification_uri`,
//! `interval` as a string, `authorization_pending` with HTTP 200, no `expires_in` (Salesforce).
//! So replies are classified by the body's `error` member first, whatever the status, and a reply
//! that is not what we expect is either *transient* (HTML maintenance pages, captive portals,
//! 5xx, malformed JSON: try again later) or *rejected* (a 4xx that is not OAuth: a wrong URL).
//! Pure: it never logs a body, because bodies hold tokens.

use alloc::format;
use alloc::string::{String, ToString};
use core::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::OAuthFields;
use crate::secret::Secret;
use crate::text::server_text;
use crate::wire::Reply;

/// An OAuth error reply (`{"error": "...", "error_description": "..."}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    /// The OAuth `error` code (`authorization_pending`, `invalid_grant`, ...).
    pub error: String,
    /// The server's `error_description`, when it gave one.
    pub description: Option<String>,
    /// GitHub's `slow_down` carries the new interval; honour it when present.
    pub interval: Option<Duration>,
    /// The HTTP status it came with.
    pub status: u16,
}

impl OAuthError {
    /// `error: description`, for messages: server-chosen text, never a secret, with control
    /// characters and space runs taken out so it cannot break the message or the terminal.
    pub fn summary(&self) -> String {
        let error = server_text(&self.error);
        match &self.description {
            Some(d) if !d.trim().is_empty() => format!("{error}: {}", server_text(d)),
            _ => error.into_owned(),
        }
    }

    /// The `error` and `error_description` members, for an [`Error`](crate::error::Error).
    pub fn fields(&self) -> OAuthFields {
        OAuthFields {
            error: self.error.clone(),
            description: self.description.clone(),
        }
    }

    /// The one list of OAuth errors that mean "not now" rather than "no": worth retrying with
    /// the same request (RFC 6749 §5.2 `temporarily_unavailable`, `server_error`; Salesforce's
    /// `rate_limit_exceeded`).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.error.as_str(),
            "rate_limit_exceeded" | "temporarily_unavailable" | "server_error"
        )
    }

    /// Whether the description contains `needle` (case-insensitive).
    pub fn description_contains(&self, needle: &str) -> bool {
        self.description
            .as_deref()
            .is_some_and(|d| d.to_ascii_lowercase().contains(needle))
    }
}

/// What a reply means for the caller.
#[derive(Debug)]
pub enum Parsed<T> {
    /// The reply the request asked for.
    Ok(T),
    /// An OAuth error reply.
    OAuth(OAuthError),
    /// Might work later (maintenance page, captive portal, 5xx, garbage); the reason is for people.
    Transient(String),
    /// A definite refusal that is not OAuth (404, 405, a redirect): a configuration problem.
    Rejected(String),
}

/// The longest code lifetime believed: RFC 8628 §3.2's example is 1800 s (Salesforce's codes
/// live 10 minutes), so a larger `expires_in` (observed: 1e12) is capped to this.
pub const MAX_CODE_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The device authorization reply (RFC 8628 §3.2, and Salesforce's shape).
#[derive(Clone, Debug)]
pub struct DeviceCode {
    /// The device code, for the polls (secret).
    pub device_code: Secret,
    /// The code a person enters.
    pub user_code: String,
    /// Where the person goes.
    pub verification_uri: String,
    /// The same URL with the code in it (the QR), when the server gives one.
    pub verification_uri_complete: Option<String>,
    /// How long the codes are valid, when the server says.
    pub expires_in: Option<Duration>,
    /// How often to poll, when the server says.
    pub interval: Option<Duration>,
}

/// A successful token reply (RFC 6749 §5.1 plus Salesforce's fields).
#[derive(Clone, Debug, Deserialize)]
pub struct TokenReply {
    /// The access token (secret).
    pub access_token: Secret,
    #[serde(default)]
    /// The refresh token (secret), when the grant has one.
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    /// Salesforce: the instance the session works with.
    pub instance_url: Option<String>,
    /// Salesforce's identity URL, `.../id/{org}/{user}`.
    #[serde(default)]
    pub id: Option<String>,
    /// Salesforce: epoch milliseconds, as a string.
    #[serde(default, deserialize_with = "number_or_string")]
    pub issued_at: Option<String>,
    #[serde(default)]
    /// Salesforce: the reply's signature (with a consumer secret configured).
    pub signature: Option<String>,
    #[serde(default)]
    /// The scopes granted.
    pub scope: Option<String>,
    #[serde(default)]
    /// `Bearer`.
    pub token_type: Option<String>,
}

#[derive(Deserialize)]
struct RawDeviceCode {
    device_code: Option<Secret>,
    user_code: Option<String>,
    #[serde(alias = "verification_url")]
    verification_uri: Option<String>,
    verification_uri_complete: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    expires_in: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    interval: Option<String>,
}

#[derive(Deserialize)]
struct RawError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    interval: Option<String>,
}

/// The `error` and `error_description` of an OAuth error body, whatever the status; `None` when
/// the body is not one.
pub fn oauth_fields(body: &[u8]) -> Option<OAuthFields> {
    let err = serde_json::from_slice::<RawError>(body).ok()?;
    Some(OAuthFields {
        error: err.error,
        description: err.error_description,
    })
}

/// Accepts `5`, `"5"` or null, keeping the text; MSAL notes that "some IdP returns string".
fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        N(u64),
        F(f64),
        S(String),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::N(n)) => Some(n.to_string()),
        Some(Either::F(f)) if f >= 0.0 && f.is_finite() => Some(format!("{}", f as u64)),
        Some(Either::F(_)) => None,
        Some(Either::S(s)) => Some(s),
    })
}

fn seconds(text: Option<&str>) -> Option<Duration> {
    text?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Classifies a reply and, when it is a success, parses it as `T`.
pub fn classify<T: DeserializeOwned>(reply: &Reply) -> Parsed<T> {
    let status = reply.status;
    let transient_status = status >= 500 || status == 429 || status == 408;
    if reply.is_html() {
        return match status {
            200..=299 => Parsed::Transient(format!(
                "HTTP {status} with an HTML page instead of JSON (a captive portal or a proxy login page?)"
            )),
            _ if transient_status => Parsed::Transient(format!(
                "HTTP {status} with an HTML page (the org may be down for maintenance)"
            )),
            300..=399 => Parsed::Rejected(format!(
                "HTTP {status} redirect: the URL is not the org's OAuth endpoint (use the My Domain URL?)"
            )),
            _ => Parsed::Rejected(format!(
                "HTTP {status} with an HTML page: the URL is not an OAuth endpoint (check the login URL)"
            )),
        };
    }
    if let Ok(err) = serde_json::from_slice::<RawError>(&reply.body) {
        // Server text, shown to people and logged: sanitised here, once for every use.
        return Parsed::OAuth(OAuthError {
            error: crate::sanitize::text(&err.error),
            description: err.error_description.map(|d| crate::sanitize::text(&d)),
            interval: seconds(err.interval.as_deref()),
            status,
        });
    }
    if transient_status {
        return Parsed::Transient(format!("HTTP {status} from the server"));
    }
    match status {
        200..=299 => match serde_json::from_slice::<T>(&reply.body) {
            Ok(v) => Parsed::Ok(v),
            Err(e) if e.is_syntax() || e.is_eof() => {
                Parsed::Transient(format!("HTTP {status} with a malformed JSON body"))
            }
            // A field given twice makes the reply ambiguous: say that, not "lacks".
            Err(e) if e.to_string().starts_with("duplicate field") => Parsed::Transient(format!(
                "HTTP {status} with a JSON body that gives a field twice"
            )),
            Err(_) => Parsed::Transient(format!(
                "HTTP {status} with a JSON body that lacks required fields"
            )),
        },
        _ => Parsed::Rejected(format!("HTTP {status} without an OAuth error")),
    }
}

/// Classifies a device authorization reply and checks its required fields.
pub fn device_code(reply: &Reply) -> Parsed<DeviceCode> {
    let raw = match classify::<RawDeviceCode>(reply) {
        Parsed::Ok(raw) => raw,
        Parsed::OAuth(e) => return Parsed::OAuth(e),
        Parsed::Transient(r) => return Parsed::Transient(r),
        Parsed::Rejected(r) => return Parsed::Rejected(r),
    };
    let (Some(device_code), Some(user_code), Some(verification_uri)) =
        (raw.device_code, raw.user_code, raw.verification_uri)
    else {
        return Parsed::Transient(
            "the device code reply lacks device_code, user_code or verification_uri".to_string(),
        );
    };
    if device_code.is_empty() || user_code.trim().is_empty() || verification_uri.is_empty() {
        return Parsed::Transient("the device code reply has empty fields".to_string());
    }
    // The user code is shown on the terminal and the display as it is: printable ASCII only.
    if user_code.len() > MAX_USER_CODE || !user_code.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        return Parsed::Rejected(
            "a user_code that is not 1 to 64 printable ASCII characters".into(),
        );
    }
    if let Err(e) = check_token(device_code.expose()) {
        return Parsed::Rejected(format!("a device_code that {e}"));
    }
    let expires_in = seconds(raw.expires_in.as_deref()).map(|d| {
        if d > MAX_CODE_LIFETIME {
            log::info!(
                "the server says the code is valid for {} s; using {} s (codes live minutes)",
                d.as_secs(),
                MAX_CODE_LIFETIME.as_secs()
            );
        }
        d.min(MAX_CODE_LIFETIME)
    });
    Parsed::Ok(DeviceCode {
        device_code,
        user_code,
        verification_uri,
        verification_uri_complete: raw.verification_uri_complete.filter(|u| !u.is_empty()),
        expires_in,
        interval: seconds(raw.interval.as_deref()),
    })
}

/// The longest user code accepted (RFC 8628 §6.1 suggests 8 characters).
pub const MAX_USER_CODE: usize = 64;
// The refusal in `device_code` names the number as a literal (one string, no formatting).
const _: () = assert!(MAX_USER_CODE == 64);

/// The longest token accepted: Salesforce's are about 112 bytes, the longest JWT access tokens
/// a few KiB.
pub const MAX_TOKEN: usize = 8 * 1024;

/// Whether a token from the server can be used, stored and printed: printable ASCII without
/// spaces (RFC 6749 Appendix A.12-A.17 allow no more: VSCHAR or NQCHAR), 1 to
/// [`MAX_TOKEN`] bytes. A rotation reply of whitespace, or a token with CR LF in it, must not
/// replace the good stored token or reach a terminal or an HTTP header. `Err` says what is
/// wrong, never what the token holds.
pub fn check_token(token: &str) -> Result<(), &'static str> {
    if token.is_empty() {
        return Err("is empty");
    }
    if token.len() > MAX_TOKEN {
        return Err("is longer than 8 KiB");
    }
    if !token.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        return Err("holds spaces, control characters or non-ASCII bytes");
    }
    Ok(())
}

/// Classifies a token reply; a token that fails [`check_token`] makes the reply `Rejected`
/// (an unexpected server reply: nothing of it is used or stored).
pub fn token(reply: &Reply) -> Parsed<TokenReply> {
    match classify::<TokenReply>(reply) {
        Parsed::Ok(t) if t.access_token.is_empty() => {
            Parsed::Transient("the token reply has an empty access_token".to_string())
        }
        Parsed::Ok(t) => {
            // The tokens, and what is stored and shown later (status): URLs without spaces or
            // controls, a scope of printable ASCII words.
            let rt = t.refresh_token.as_ref().map(Secret::expose);
            for (field, value) in [
                ("access_token", Some(t.access_token.expose())),
                ("refresh_token", rt),
                (
                    "instance_url",
                    t.instance_url.as_deref().filter(|v| !v.is_empty()),
                ),
                ("id", t.id.as_deref().filter(|v| !v.is_empty())),
            ] {
                if let Some(Err(e)) = value.map(check_token) {
                    return Parsed::Rejected(format!("a token reply whose {field} {e}"));
                }
            }
            if let Some(scope) = &t.scope
                && (scope.len() > MAX_TOKEN || !scope.bytes().all(|b| (0x20..=0x7E).contains(&b)))
            {
                return Parsed::Rejected(
                    "a token reply whose scope is not printable ASCII".to_string(),
                );
            }
            Parsed::Ok(t)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_given_twice_is_called_that_not_missing() {
        let reply = Reply::json(
            200,
            r#"{"access_token":"a","access_token":"b","instance_url":"https://x"}"#,
        );
        match token(&reply) {
            Parsed::Transient(why) => assert!(why.contains("gives a field twice"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn salesforce_device_code_sample_parses() {
        // The SalesforcePy fixture quoted in docs/protocol.md, "Device code reply".
        let reply = Reply::json(
            200,
            r#"{"user_code":"X1D9SEET","device_code":"M01WRzlQaFI2","interval":5,
                "verification_uri":"https://login.salesforce.com/setup/connect"}"#,
        );
        let Parsed::Ok(code) = device_code(&reply) else {
            panic!("not parsed")
        };
        assert_eq!(code.user_code, "X1D9SEET");
        assert_eq!(code.device_code.expose(), "M01WRzlQaFI2");
        assert_eq!(code.interval, Some(Duration::from_secs(5)));
        assert_eq!(code.expires_in, None);
        assert_eq!(code.verification_uri_complete, None);
    }

    #[test]
    fn lenient_spellings_are_accepted() {
        let reply = Reply::json(
            200,
            r#"{"user_code":"WDJB-MJHT","device_code":"d","interval":"7","expires_in":1800.0,
                "verification_url":"https://example.com/device"}"#,
        );
        let Parsed::Ok(code) = device_code(&reply) else {
            panic!("not parsed")
        };
        assert_eq!(code.verification_uri, "https://example.com/device");
        assert_eq!(code.interval, Some(Duration::from_secs(7)));
        assert_eq!(code.expires_in, Some(Duration::from_secs(1800)));
    }

    #[test]
    fn errors_are_classified_by_body_whatever_the_status() {
        // GitHub answers authorization_pending with HTTP 200.
        let reply = Reply::json(200, r#"{"error":"authorization_pending"}"#);
        let Parsed::OAuth(e) = token(&reply) else {
            panic!()
        };
        assert_eq!(e.error, "authorization_pending");
        let reply = Reply::json(
            400,
            r#"{"error":"slow_down","error_description":"polling too quickly","interval":10}"#,
        );
        let Parsed::OAuth(e) = token(&reply) else {
            panic!()
        };
        assert_eq!(e.interval, Some(Duration::from_secs(10)));
        assert_eq!(e.summary(), "slow_down: polling too quickly");
        // Server text is sanitised before anyone can print it.
        let reply = Reply::json(
            400,
            r#"{"error":"invalid_grant\u001b]0;x\u0007","error_description":"bad\r\nerror: forged \u009b2J \u202egnp.exe"}"#,
        );
        let Parsed::OAuth(e) = token(&reply) else {
            panic!()
        };
        assert_eq!(
            e.summary(),
            "invalid_grant\u{FFFD}]0;x\u{FFFD}: bad error: forged \u{FFFD}2J \u{FFFD}gnp.exe"
        );
    }

    #[test]
    fn html_and_garbage_are_transient_and_wrong_urls_are_rejected() {
        let maint = Reply::new(
            503,
            "text/html",
            "<html><body>Server down for maintenance</body></html>",
        );
        assert!(matches!(token(&maint), Parsed::Transient(_)));
        let portal = Reply::new(200, "text/html", "<html>Log in to the hotel Wi-Fi</html>");
        assert!(matches!(token(&portal), Parsed::Transient(r) if r.contains("captive")));
        assert!(matches!(
            token(&Reply::json(200, r#"{"access_tok"#)),
            Parsed::Transient(_)
        ));
        assert!(matches!(
            token(&Reply::json(502, "{}")),
            Parsed::Transient(_)
        ));
        assert!(matches!(
            token(&Reply::new(404, "text/html", "<html>")),
            Parsed::Rejected(_)
        ));
        assert!(matches!(
            token(&Reply::json(404, "[]")),
            Parsed::Rejected(_)
        ));
    }

    #[test]
    fn token_reply_keeps_salesforce_fields() {
        let reply = Reply::json(
            200,
            r#"{"access_token":"00D!AR","refresh_token":"5Aep","signature":"s=","scope":"api",
                "instance_url":"https://eu11.salesforce.com",
                "id":"https://login.salesforce.com/id/00D/005","token_type":"Bearer",
                "issued_at":"1477674717112"}"#,
        );
        let Parsed::Ok(t) = token(&reply) else {
            panic!()
        };
        assert_eq!(t.refresh_token.unwrap().expose(), "5Aep");
        assert_eq!(t.issued_at.as_deref(), Some("1477674717112"));
        assert_eq!(
            t.instance_url.as_deref(),
            Some("https://eu11.salesforce.com")
        );
    }

    #[test]
    fn tokens_that_are_not_printable_ascii_are_rejected_not_used() {
        for (body, field) in [
            (
                r#"{"access_token":"00D!AT","refresh_token":"   "}"#,
                "refresh_token",
            ),
            (
                r#"{"access_token":"00D!AT","refresh_token":"RT\u001b[2J"}"#,
                "refresh_token",
            ),
            (
                r#"{"access_token":"00D!AT\r\nerror: forged","refresh_token":"RT"}"#,
                "access_token",
            ),
            (
                r#"{"access_token":"00D!\u00e9","refresh_token":"RT"}"#,
                "access_token",
            ),
        ] {
            let Parsed::Rejected(reason) = token(&Reply::json(200, body)) else {
                panic!("{body} accepted")
            };
            assert!(reason.contains(field), "{reason}");
            assert!(!reason.contains("forged") && !reason.contains('\x1b'));
        }
        for body in [
            r#"{"access_token":"00D!AT","instance_url":"https://x.example/\u001b[2J"}"#,
            r#"{"access_token":"00D!AT","id":"https://x/id/00D/005\r\nerror: forged"}"#,
            r#"{"access_token":"00D!AT","scope":"api \u009b2J"}"#,
        ] {
            assert!(
                matches!(token(&Reply::json(200, body)), Parsed::Rejected(_)),
                "{body}"
            );
        }
        for code in [r#""AB\u001b[2J""#, r#""AB\r\nerror: x""#] {
            let body = format!(
                r#"{{"user_code":{code},"device_code":"d","verification_uri":"https://x/d"}}"#
            );
            assert!(
                matches!(device_code(&Reply::json(200, &body)), Parsed::Rejected(_)),
                "{body}"
            );
        }
        let long = format!(r#"{{"access_token":"{}"}}"#, "a".repeat(MAX_TOKEN + 1));
        assert!(matches!(
            token(&Reply::json(200, &long)),
            Parsed::Rejected(_)
        ));
        assert!(matches!(
            token(&Reply::json(
                200,
                r#"{"access_token":"00D!AT","refresh_token":"5Aep.x_y-z~+/="}"#
            )),
            Parsed::Ok(_)
        ));
    }

    #[test]
    fn an_absurd_code_lifetime_is_capped() {
        let reply = Reply::json(
            200,
            r#"{"user_code":"A","device_code":"d","expires_in":1e12,
                "verification_uri":"https://idp.example/device"}"#,
        );
        let Parsed::Ok(code) = device_code(&reply) else {
            panic!("not parsed")
        };
        assert_eq!(code.expires_in, Some(MAX_CODE_LIFETIME));
    }

    #[test]
    fn missing_fields_are_transient_not_a_crash() {
        assert!(matches!(
            device_code(&Reply::json(200, r#"{"user_code":"A"}"#)),
            Parsed::Transient(_)
        ));
        assert!(matches!(
            token(&Reply::json(200, r#"{"access_token":""}"#)),
            Parsed::Transient(_)
        ));
    }
}
