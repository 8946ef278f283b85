//! REST calls after pairing, as data: which URL a PATH names, whether a 401 means "refresh and
//! retry", and what to tell the person about an error status.
//!
//! Pure: `call.rs` sends and streams. The rules come from docs/protocol.md, "REST errors": a 401
//! `INVALID_SESSION_ID` means the session expired (Salesforce returns no `expires_in`), so the
//! caller refreshes once and retries once; but two 401 bodies that jsforce excludes mean a new
//! session would be refused too, and refreshing on them would loop. A 403
//! `REQUEST_LIMIT_EXCEEDED` or a 5xx never triggers a refresh.
//!
//! PATH rule (`sfpair call` and [`RestRequest`]):
//!
//! 1. PATH is relative to the instance URL. An absolute URL is refused: the access token goes
//!    only to the paired instance. A missing leading `/` is added.
//! 2. With an API version (`62.0`; `v62.0` and `62` are accepted too), every `vXX.X` in PATH is
//!    replaced by `v62.0`, and a PATH that does not start with `/services/` gets
//!    `/services/data/v62.0/` in front: `limits`, `/limits` and `sobjects/Account` become
//!    `/services/data/v62.0/limits` … `/services/data/v62.0/sobjects/Account`.
//! 3. Without one, PATH is used as it is, and a `vXX.X` placeholder in it is an error.
//!    `sfpair call` always has one: `--api-version`, else [`DEFAULT_API_VERSION`], so
//!    `sfpair call GET limits` reaches the data API instead of a 404 at `/limits`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, OAuthFields};
use crate::text::server_text;
use crate::wire::{Body, Method, Request};

/// The API version when `--api-version` is not given, for `sfpair call` and the outbox's
/// requests alike (sObject Collections upsert needs v46.0 or later).
pub const DEFAULT_API_VERSION: &str = "62.0";
/// The placeholder an API version fills in.
pub const VERSION_PLACEHOLDER: &str = "vXX.X";
/// Longest PATH accepted (a SOQL query in the query string can be long, not unbounded).
pub const MAX_PATH: usize = 16 * 1024;
/// Bytes of an error body kept to explain the error (the body itself goes to the caller whole).
pub const ERROR_PREFIX: usize = 4 * 1024;

/// A REST request relative to the paired instance. The body is kept in memory so a retry after
/// a refresh can send it again.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestRequest {
    /// GET, POST, PATCH, PUT or DELETE.
    pub method: Method,
    /// An absolute path on the instance (`/services/data/v62.0/limits`), query included.
    pub path: String,
    /// A JSON (or, with a `Content-Type` header, any) body.
    pub body: Option<Vec<u8>>,
    /// Extra headers; `Authorization` is refused (the agent sets it).
    pub headers: Vec<(String, String)>,
    /// The whole exchange must end within this ([`Request::deadline`]); `None` streams a
    /// reply of any size, bounded only per read (`sfpair call`).
    pub deadline: Option<Duration>,
}

impl RestRequest {
    /// A request for `path`, checked and resolved with the PATH rule (no API version).
    pub fn new(method: Method, path: &str) -> Result<Self, Error> {
        Ok(RestRequest {
            method,
            path: resolve_path(path, None)?,
            body: None,
            headers: Vec::new(),
            deadline: None,
        })
    }

    /// `GET path`.
    pub fn get(path: &str) -> Result<Self, Error> {
        RestRequest::new(Method::Get, path)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(path: &str, json: impl Into<Vec<u8>>) -> Result<Self, Error> {
        let mut r = RestRequest::new(Method::Post, path)?;
        r.body = Some(json.into());
        Ok(r)
    }

    /// Adds a header given as `Name: value` (the `--header` syntax).
    pub fn with_header(mut self, line: &str) -> Result<Self, Error> {
        self.headers.push(header(line)?);
        Ok(self)
    }

    /// The wire request to `instance_url`, without the bearer (set per attempt).
    pub fn to_wire(&self, instance_url: &str) -> Request {
        let mut request = Request::get(url(instance_url, &self.path));
        request.method = self.method;
        if let Some(body) = &self.body {
            request.body = Body::Json(body.clone());
        }
        request.headers = self.headers.clone();
        request.deadline = self.deadline;
        request
    }
}

/// `instance_url` + an absolute `path`, with exactly one slash between them.
pub fn url(instance_url: &str, path: &str) -> String {
    format!("{}{}", instance_url.trim_end_matches('/'), path)
}

/// Normalizes an API version: `62.0`, `v62.0` or `62` → `62.0`.
pub fn api_version(raw: &str) -> Result<String, Error> {
    let bad = || {
        Error::config(format!(
            "--api-version '{raw}' is not an API version: use a number like 62.0 (see \
             /services/data/ for the versions the org serves)"
        ))
    };
    let v = raw.trim().trim_start_matches(['v', 'V']);
    let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(major, 3) || !digits(minor, 1) {
        return Err(bad());
    }
    Ok(format!("{major}.{minor}"))
}

/// Applies the PATH rule (module docs) and checks the characters.
pub fn resolve_path(raw: &str, version: Option<&str>) -> Result<String, Error> {
    let bad = |why: &str| Error::config(format!("PATH '{raw}' {why}"));
    if raw.is_empty() {
        return Err(bad(
            "is empty: give a path such as /services/data/v62.0/limits",
        ));
    }
    if raw.len() > MAX_PATH {
        return Err(Error::config(format!(
            "PATH is longer than {MAX_PATH} bytes"
        )));
    }
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("http:") || lower.starts_with("https:") || raw.starts_with("//") {
        return Err(bad(
            "is an absolute URL: give the path on the paired instance, e.g. /services/data/v62.0/limits",
        ));
    }
    if raw.contains(|c: char| c.is_whitespace() || c.is_control() || c == '#') {
        return Err(bad(
            "contains a space, a control character or '#': percent-encode it (a space is %20)",
        ));
    }
    let mut path = String::with_capacity(raw.len() + 24);
    if !raw.starts_with('/') {
        path.push('/');
    }
    path.push_str(raw);
    match version {
        None if path.contains(VERSION_PLACEHOLDER) => Err(bad(
            "contains vXX.X: give --api-version (e.g. 62.0) to fill it in",
        )),
        None => Ok(path),
        Some(v) => {
            let v = api_version(v)?;
            let path = path.replace(VERSION_PLACEHOLDER, &format!("v{v}"));
            if path.starts_with("/services/") {
                Ok(path)
            } else {
                Ok(format!("/services/data/v{v}{path}"))
            }
        }
    }
}

/// The longest `--header` accepted: servers refuse longer request headers anyway (8 KiB is
/// a common limit for a whole header block), and reporting that locally says what is wrong.
pub const MAX_HEADER: usize = 8 * 1024;

/// Parses `Name: value`. Names are HTTP tokens; `Authorization` and `Host` belong to sfpair,
/// and so do the framing headers `Content-Length` and `Transfer-Encoding` (a wrong one made the
/// request hang until the timeout).
pub fn header(line: &str) -> Result<(String, String), Error> {
    if line.len() > MAX_HEADER {
        return Err(Error::config(format!(
            "--header of {} bytes: at most {MAX_HEADER} bytes are accepted",
            line.len()
        )));
    }
    let Some((name, value)) = line.split_once(':') else {
        return Err(Error::config(format!(
            "--header '{line}' needs the form Name:value"
        )));
    };
    let name = name.trim();
    let is_token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !is_token {
        return Err(Error::config(format!(
            "--header '{line}': '{name}' is not a valid header name"
        )));
    }
    if [
        "authorization",
        "host",
        "content-length",
        "transfer-encoding",
    ]
    .iter()
    .any(|own| name.eq_ignore_ascii_case(own))
    {
        return Err(Error::config(format!(
            "--header {name} is set by sfpair (the paired session) and cannot be given"
        )));
    }
    let value = value.trim();
    if value.contains(|c: char| c.is_control()) {
        return Err(Error::config(format!(
            "--header {name}: the value contains a control character"
        )));
    }
    Ok((name.to_string(), value.to_string()))
}

/// What a 401 body says about the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unauthorized {
    /// `INVALID_SESSION_ID`: the session expired or was revoked; a refresh may fix it.
    SessionExpired,
    /// Any other 401: a new session would be refused too (the reason is for people).
    Refused(String),
}

/// jsforce's `isSessionExpired` exclusions (docs/protocol.md, "REST errors"): refreshing on these
/// loops forever. The second also covers the "…for use with the specified REST API endpoint. One
/// of the following scopes is required" variant, which a refresh cannot fix either.
const NOT_REFRESHABLE: [&str; 2] = [
    "connected app is not attached to agent",
    "this session is not valid for use with the",
];

/// Classifies a 401 body (the start of it is enough).
pub fn unauthorized(body: &[u8]) -> Unauthorized {
    let errors = rest_errors(body);
    let expired = errors
        .iter()
        .any(|e| e.error_code.as_deref() == Some("INVALID_SESSION_ID"));
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    if let Some(phrase) = NOT_REFRESHABLE.iter().find(|p| text.contains(*p)) {
        return Unauthorized::Refused(format!(
            "the server says \"{phrase}…\", which a new session cannot fix"
        ));
    }
    if expired {
        Unauthorized::SessionExpired
    } else {
        Unauthorized::Refused(
            summary(body).unwrap_or_else(|| "HTTP 401 without INVALID_SESSION_ID".to_string()),
        )
    }
}

#[derive(Deserialize)]
struct RestErrorItem {
    #[serde(rename = "errorCode", default)]
    error_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// REST's error envelope, `[{"message": …, "errorCode": …}]`; empty when the body is not one.
fn rest_errors(body: &[u8]) -> Vec<RestErrorItem> {
    serde_json::from_slice::<Vec<RestErrorItem>>(body).unwrap_or_default()
}

/// The `errorCode` of the first REST error, without its message (which may quote what was
/// sent), for logs; sanitized.
pub fn first_code(body: &[u8]) -> Option<String> {
    let code = rest_errors(body).into_iter().next()?.error_code?;
    Some(crate::sanitize::text(&server_text(&code)))
}

/// `errorCode: message` of the first REST error (or `error: description` of an OAuth error),
/// for messages. Server-chosen text, never a token: passed through `sanitize::text`, so no
/// control sequence or forged line reaches a terminal.
pub fn summary(body: &[u8]) -> Option<String> {
    summary_raw(body).map(|s| crate::sanitize::text(&s))
}

fn summary_raw(body: &[u8]) -> Option<String> {
    if let Some(first) = rest_errors(body).into_iter().next() {
        let clean = |t: String| server_text(&t).into_owned();
        return match (first.error_code.map(clean), first.message.map(clean)) {
            (Some(code), Some(message)) => Some(format!("{code}: {message}")),
            (Some(text), None) | (None, Some(text)) => Some(text),
            (None, None) => None,
        };
    }
    let e = crate::flow::reply::oauth_fields(body)?;
    Some(match e.description {
        Some(d) if !d.trim().is_empty() => {
            format!("{}: {}", server_text(&e.error), server_text(&d))
        }
        _ => server_text(&e.error).into_owned(),
    })
}

/// How a REST call turned out; the body itself went to the caller's sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestReply {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header, lower-cased, or empty.
    pub content_type: String,
    /// `Retry-After`, when the server sent one.
    pub retry_after: Option<Duration>,
    /// `Sforce-Limit-Info` (`api-usage=N/M`), when the server sent it.
    pub limit_info: Option<String>,
    /// Body bytes written to the sink.
    pub bytes: u64,
    /// Whether this call refreshed the session after a 401 `INVALID_SESSION_ID`.
    pub refreshed: bool,
    /// For an error status: `errorCode: message` from the body, when it has one.
    pub summary: Option<String>,
    /// For an error status with an OAuth error body (`error`, `error_description`): its fields,
    /// which the [`error`](RestReply::error) carries.
    pub oauth: Option<OAuthFields>,
    /// The body was an HTML page (a maintenance page, a proxy).
    pub html: bool,
}

impl RestReply {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `None` for 2xx; otherwise the error to report, with its exit code: 6 when even a fresh
    /// session got 401, else 9.
    pub fn error(&self) -> Option<Error> {
        if self.is_success() {
            return None;
        }
        let e = failure(self);
        Some(match &self.oauth {
            Some(fields) => e.with_oauth(fields.clone()),
            None => e,
        })
    }
}

fn retry_hint(retry_after: Option<Duration>, otherwise: &str) -> String {
    match retry_after {
        Some(d) => format!("retry after {} s (the server's Retry-After)", d.as_secs()),
        None => otherwise.to_string(),
    }
}

fn failure(reply: &RestReply) -> Error {
    let status = reply.status;
    let what = match (&reply.summary, reply.html) {
        (Some(s), _) => format!("HTTP {status} {s}"),
        (None, true) => format!("HTTP {status} with an HTML page"),
        (None, false) => format!("HTTP {status}"),
    };
    let code = reply.summary.as_deref().unwrap_or("");
    if status == 401 && reply.refreshed {
        return Error::new(
            ErrorKind::RepairNeeded,
            format!(
                "{what}, even with a freshly refreshed session: the pairing no longer gives \
                 access to this API (the user lost API access, or the app's scopes lack `api`). \
                 Ask the admin, then pair again with `sfpair pair --force`"
            ),
        );
    }
    let advice = if code.starts_with("REQUEST_LIMIT_EXCEEDED") {
        format!(
            "the org's API request limit is used up (daily, or too many long requests at once); \
             {}. sfpair did not refresh or retry",
            retry_hint(
                reply.retry_after,
                "retry later: the daily allocation frees up over 24 hours"
            )
        )
    } else if status == 401 {
        "refreshing the session cannot fix this, so sfpair did not".to_string()
    } else if status == 503 || (status >= 500 && reply.html) {
        format!(
            "the org is unavailable (maintenance or overload); {}",
            retry_hint(reply.retry_after, "retry later")
        )
    } else if status >= 500 {
        format!(
            "the server failed; {}",
            retry_hint(reply.retry_after, "retry later")
        )
    } else if reply.summary.is_some() {
        return Error::new(ErrorKind::Http, what);
    } else {
        "the reply body has the details".to_string()
    };
    Error::new(ErrorKind::Http, format!("{what}: {advice}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::CleanErr;

    #[test]
    fn the_path_rule() {
        let r = |p: &str, v: Option<&str>| resolve_path(p, v);
        assert_eq!(
            r("/services/data/v62.0/limits", None).unwrap(),
            "/services/data/v62.0/limits"
        );
        assert_eq!(r("services/data/", None).unwrap(), "/services/data/");
        assert_eq!(
            r("limits", Some("62.0")).unwrap(),
            "/services/data/v62.0/limits"
        );
        assert_eq!(
            r("/limits", Some("v62.0")).unwrap(),
            "/services/data/v62.0/limits"
        );
        assert_eq!(
            r("sobjects/Account/", Some("62")).unwrap(),
            "/services/data/v62.0/sobjects/Account/"
        );
        assert_eq!(
            r("/services/data/vXX.X/limits", Some("66.0")).unwrap(),
            "/services/data/v66.0/limits"
        );
        assert_eq!(
            r("/services/data/v62.0/limits", Some("66.0")).unwrap(),
            "/services/data/v62.0/limits",
            "a full path stays as it is"
        );
        assert_eq!(
            r("query?q=SELECT+Id+FROM+Account", Some("62.0")).unwrap(),
            "/services/data/v62.0/query?q=SELECT+Id+FROM+Account"
        );
        for bad in [
            "",
            "https://evil.example/services/data/",
            "//evil.example/x",
            "/services/data/v62.0/query?q=SELECT Id",
            "/x#frag",
            "/services/data/vXX.X/limits",
        ] {
            let e = r(bad, None).clean_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        for version in ["sixty-two", "62.0.1"] {
            assert_eq!(
                r("limits", Some(version)).clean_err().kind(),
                ErrorKind::Config
            );
        }
    }

    #[test]
    fn urls_join_with_one_slash() {
        assert_eq!(
            url("https://acme.my.salesforce.com/", "/services/data/"),
            "https://acme.my.salesforce.com/services/data/"
        );
    }

    #[test]
    fn headers_are_checked() {
        assert_eq!(
            header("Sforce-Query-Options: batchSize=200").unwrap(),
            ("Sforce-Query-Options".into(), "batchSize=200".into())
        );
        for bad in [
            "NoColon",
            "Bad Name: x",
            "authorization: Bearer x",
            "X-A: a\r\nX-B: b",
        ] {
            assert_eq!(header(bad).clean_err().kind(), ErrorKind::Config, "{bad:?}");
        }
        for own in ["Content-Length: 5", "transfer-encoding: chunked", "HOST: x"] {
            let e = header(own).unwrap_err();
            assert!(e.message().contains("set by sfpair"), "{e}");
        }
        let huge = format!("X-Big: {}", "a".repeat(120 * 1024));
        let e = header(&huge).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Config);
        assert!(e.message().len() < 200, "the value is not echoed");
        assert!(header(&format!("X-Ok: {}", "a".repeat(MAX_HEADER - 8))).is_ok());
    }

    #[test]
    fn which_401s_are_worth_a_refresh() {
        assert_eq!(
            unauthorized(
                br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#
            ),
            Unauthorized::SessionExpired
        );
        for body in [
            &br#"[{"message":"This session is not valid for use with the REST API","errorCode":"INVALID_SESSION_ID"}]"#[..],
            br#"[{"message":"This session is not valid for use with the specified REST API endpoint. One of the following scopes is required: api","errorCode":"INVALID_SESSION_ID"}]"#,
            br#"[{"message":"Connected app is not attached to Agent","errorCode":"INVALID_SESSION_ID"}]"#,
            br#"<html>Unauthorized</html>"#,
            b"",
        ] {
            assert!(
                matches!(unauthorized(body), Unauthorized::Refused(_)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    fn reply(status: u16, body: &[u8]) -> RestReply {
        RestReply {
            status,
            content_type: "application/json".into(),
            retry_after: None,
            limit_info: None,
            bytes: body.len() as u64,
            refreshed: false,
            summary: summary(body),
            oauth: crate::flow::reply::oauth_fields(body),
            html: false,
        }
    }

    #[test]
    fn error_statuses_say_what_to_do() {
        assert!(reply(201, b"{}").error().is_none());
        let mut limit = reply(
            403,
            br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        limit.retry_after = Some(Duration::from_secs(30));
        let e = limit.error().unwrap();
        assert_eq!(e.exit_code(), 9);
        assert!(
            e.message()
                .contains("REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.")
                && e.message().contains("retry after 30 s"),
            "{e}"
        );
        let mut maint = reply(503, b"<html>down</html>");
        maint.html = true;
        let e = maint.error().unwrap();
        assert!(
            e.message().contains("HTML page") && e.message().contains("retry later"),
            "{e}"
        );
        let mut again = reply(
            401,
            br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
        );
        assert_eq!(again.error().unwrap().exit_code(), 9);
        again.refreshed = true;
        assert_eq!(again.error().unwrap().exit_code(), 6);
        assert_eq!(
            summary(br#"[{"errorCode":"X","message":"a\u001b[2J\r\nerror: forged\u009b"}]"#)
                .unwrap(),
            "X: a\u{FFFD}[2J error: forged\u{FFFD}"
        );
        let e = reply(404, br#"[{"errorCode":"NOT_FOUND","message":"nope"}]"#)
            .error()
            .unwrap();
        assert_eq!(e.message(), "HTTP 404 NOT_FOUND: nope");
    }

    #[test]
    fn versions_are_normalized() {
        assert_eq!(api_version("62.0").unwrap(), "62.0");
        assert_eq!(api_version("v66.0").unwrap(), "66.0");
        assert_eq!(api_version("62").unwrap(), "62.0");
        for bad in ["", "v"] {
            assert_eq!(
                api_version(bad).clean_err().kind(),
                ErrorKind::Config,
                "{bad:?}"
            );
        }
    }
}
