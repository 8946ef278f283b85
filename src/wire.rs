//! HTTP messages as plain data: the request the flow wants sent and the reply it gets back.
//!
//! Pure: no sockets, no clock. The flow and the API layer build [`Request`]s and read
//! [`Reply`]s; `http.rs` is the only place that turns them into bytes on a wire. Form values that
//! are secrets stay [`Secret`]s until the moment they are encoded, and Debug never shows them.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use zeroize::Zeroizing;

use crate::error::Error;
use crate::secret::Secret;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// The HTTP methods sfpair sends.
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// As on the request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One `application/x-www-form-urlencoded` field value.
#[derive(Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    Secret(Secret),
}

/// An ordered form body whose secret fields are redacted in Debug.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Form(Vec<(&'static str, Value)>);

impl Form {
    /// An empty form.
    pub fn new() -> Self {
        Form(Vec::new())
    }

    /// Adds a field.
    pub fn text(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.0.push((name, Value::Text(value.into())));
        self
    }

    /// Adds a secret field: it is never shown by `Debug`.
    pub fn secret(mut self, name: &'static str, value: &Secret) -> Self {
        self.0.push((name, Value::Secret(value.clone())));
        self
    }

    /// The value of a plain (non-secret) field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| match v {
                Value::Text(t) => Some(t.as_str()),
                Value::Secret(_) => None,
            })
    }

    /// A secret field, still wrapped: reading it takes an explicit `expose()`.
    pub fn get_secret(&self, name: &str) -> Option<&Secret> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| match v {
                Value::Secret(s) => Some(s),
                Value::Text(_) => None,
            })
    }

    /// The URL-encoded body. Wiped on drop, since it may hold a secret.
    pub fn encode(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            percent_encode(name, &mut out);
            out.push('=');
            match value {
                Value::Text(t) => percent_encode(t, &mut out),
                Value::Secret(s) => percent_encode(s.expose(), &mut out),
            }
        }
        out
    }
}

impl fmt::Debug for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.0 {
            match value {
                Value::Text(t) => map.entry(name, t),
                Value::Secret(s) => map.entry(name, s),
            };
        }
        map.finish()
    }
}

/// `application/x-www-form-urlencoded` encoding (WHATWG URL spec): unreserved bytes as they
/// are, space as `+`, everything else as `%XX`.
pub fn percent_encode(input: &str, out: &mut String) {
    encode(input, out, true);
}

/// One path segment (an external id in `/sobjects/X/Field/VALUE`): unreserved bytes as they
/// are, everything else, `/` and space included, as `%XX` (RFC 3986).
pub fn percent_encode_segment(input: &str, out: &mut String) {
    encode(input, out, false);
}

fn encode(input: &str, out: &mut String, form: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in input.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => out.push(b as char),
            b'*' if form => out.push('*'),
            b' ' if form => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
}

/// What goes in the request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// No body.
    Empty,
    /// `application/x-www-form-urlencoded`.
    Form(Form),
    /// A JSON document (REST calls). Not a secret by itself, so not wiped.
    Json(Vec<u8>),
}

/// A request the agent wants sent. Never carries a secret in the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The whole URL (https, or http to loopback only).
    pub url: String,
    /// The body.
    pub body: Body,
    /// `Authorization: Bearer …` for REST and userinfo calls.
    pub bearer: Option<Secret>,
    /// Extra headers, e.g. from `sfpair call --header`.
    pub headers: Vec<(String, String)>,
    /// The whole exchange (connecting, sending, the reply to its last byte) must end within
    /// this, however the server paces its bytes. `None`: the transport's own bound, which for
    /// a reply it reads whole is its `connect_timeout + read_timeout` (`http.rs`).
    pub deadline: Option<Duration>,
}

impl Request {
    /// A form `POST` (the OAuth requests).
    pub fn post_form(url: impl Into<String>, form: Form) -> Self {
        Request {
            method: Method::Post,
            url: url.into(),
            body: Body::Form(form),
            bearer: None,
            headers: Vec::new(),
            deadline: None,
        }
    }

    /// A `GET`.
    pub fn get(url: impl Into<String>) -> Self {
        Request {
            method: Method::Get,
            url: url.into(),
            body: Body::Empty,
            bearer: None,
            headers: Vec::new(),
            deadline: None,
        }
    }

    /// Sends `Authorization: Bearer TOKEN`.
    pub fn with_bearer(mut self, token: &Secret) -> Self {
        self.bearer = Some(token.clone());
        self
    }

    /// A plain form field, if this is a form request (tests use it to check what was sent).
    pub fn form_field(&self, name: &str) -> Option<&str> {
        match &self.body {
            Body::Form(f) => f.get(name),
            _ => None,
        }
    }

    /// A secret form field, still wrapped.
    pub fn form_secret(&self, name: &str) -> Option<&Secret> {
        match &self.body {
            Body::Form(f) => f.get_secret(name),
            _ => None,
        }
    }
}

/// A complete HTTP reply whose body was read within the transport's size limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header, lower-cased, or empty.
    pub content_type: String,
    /// `Retry-After` in seconds, when the server gave one.
    pub retry_after: Option<Duration>,
    /// The body; wiped on drop because token replies carry secrets.
    pub body: Zeroizing<Vec<u8>>,
    /// The `name=value` part of each `Set-Cookie` header, for the Streaming API's client,
    /// which must send them back (the cookies pin it to the server that knows it).
    pub cookies: Vec<String>,
}

impl Reply {
    /// A reply, for tests and test doubles.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            content_type: content_type.to_ascii_lowercase(),
            retry_after: None,
            body: Zeroizing::new(body.into()),
            cookies: Vec::new(),
        }
    }

    /// A JSON reply, the usual case in tests.
    pub fn json(status: u16, body: &str) -> Self {
        Reply::new(status, "application/json;charset=UTF-8", body.as_bytes())
    }

    /// Whether the body is an HTML page (a proxy's or a maintenance page, not an API answer).
    pub fn is_html(&self) -> bool {
        looks_like_html(&self.content_type, &self.body)
    }
}

/// The one HTML test for replies: an HTML content type (lower-cased), or a body whose first
/// non-blank byte is `<` (maintenance pages and proxies that send HTML as JSON). `body_start`
/// may be just the first bytes of the body.
pub fn looks_like_html(content_type: &str, body_start: &[u8]) -> bool {
    content_type.starts_with("text/html")
        || body_start.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// Why a request got no reply, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// The host name did not resolve.
    Dns,
    /// Connection refused or no route.
    Refused,
    /// Connect or read timed out.
    Timeout,
    /// The connection was reset or closed before a complete reply.
    Reset,
    /// The reply was not valid HTTP.
    Protocol,
    /// The reply (headers or body) was larger than the limit.
    TooLarge,
    /// A proxy refused or failed the CONNECT.
    Proxy,
    /// TLS failed for a reason that may pass (an alert, a handshake cut short).
    Tls,
    /// The server's certificate did not verify: retrying will not help.
    Certificate,
    /// The request itself is wrong (bad URL, plain http to a non-loopback host).
    Invalid,
}

impl TransportErrorKind {
    /// Worth trying again later with the same request.
    pub fn is_transient(self) -> bool {
        !matches!(
            self,
            TransportErrorKind::Certificate | TransportErrorKind::Invalid
        )
    }
}

/// A request that got no usable reply. `detail` names the host and the reason, never a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    /// What kind of failure, for the retry rules and the exit code.
    pub kind: TransportErrorKind,
    /// What happened, for a person (never a secret).
    pub detail: String,
}

impl TransportError {
    /// An error of `kind`, saying `detail`.
    pub fn new(kind: TransportErrorKind, detail: impl Into<String>) -> Self {
        TransportError {
            kind,
            detail: detail.into(),
        }
    }
}

impl TransportError {
    /// The one mapping of a request that got no reply to the crate's error: a configuration
    /// error for a request that cannot be sent, else a network error. The detail already holds
    /// any advice (`http.rs` adds the `--ca-file` hint where it applies); nothing is appended
    /// here, so no hint is printed twice.
    pub fn into_error(self) -> Error {
        match self.kind {
            TransportErrorKind::Invalid => Error::config(self.detail),
            _ => Error::network(self.detail),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_follows_the_urlencoded_rules() {
        let form = Form::new()
            .text("scope", "api refresh_token")
            .text("weird", "a&b=c/é")
            .secret("code", &Secret::new("x+y"));
        assert_eq!(
            form.encode().as_str(),
            "scope=api+refresh_token&weird=a%26b%3Dc%2F%C3%A9&code=x%2By"
        );
    }

    #[test]
    fn form_debug_hides_secret_fields() {
        let form = Form::new()
            .text("grant_type", "device")
            .secret("code", &Secret::new("DEVICE-CODE-XYZ"));
        let shown = format!("{form:?}");
        assert!(shown.contains("device"));
        assert!(!shown.contains("DEVICE-CODE-XYZ"), "{shown}");
        let req = Request::post_form("https://h/t", form).with_bearer(&Secret::new("BEARER-1"));
        assert!(!format!("{req:?}").contains("BEARER-1"));
    }

    #[test]
    fn html_is_recognised_by_type_or_by_its_first_byte() {
        assert!(Reply::new(503, "text/html; charset=utf-8", "x").is_html());
        assert!(Reply::new(200, "application/json", "  <html>").is_html());
        assert!(!Reply::json(200, "{}").is_html());
    }

    #[test]
    fn a_transport_error_maps_to_one_error_without_added_text() {
        let detail = "TLS verification of h failed. If the server uses a private CA, pass its \
                      certificate with --ca-file";
        let e = TransportError::new(TransportErrorKind::Certificate, detail).into_error();
        assert_eq!(e.kind(), crate::error::ErrorKind::Network);
        assert_eq!(e.message(), detail);
        assert_eq!(e.message().matches("--ca-file").count(), 1);
        let e = TransportError::new(TransportErrorKind::Invalid, "bad URL").into_error();
        assert_eq!(e.kind(), crate::error::ErrorKind::Config);
        let e = TransportError::new(TransportErrorKind::Timeout, "h: timed out").into_error();
        assert_eq!(e.kind(), crate::error::ErrorKind::Network);
    }
}
