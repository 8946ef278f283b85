//! The broker's wire protocol: one JSON request line in, one JSON answer line out, then the
//! connection closes.
//!
//! ```text
//! → {"get":"access_token"}
//! ← {"access_token":"00D…","instance_url":"https://acme.my.salesforce.com","generation":3,"expires_in":null}
//! → {"get":"access_token","refused":3}     the server answered 401 INVALID_SESSION_ID to session 3
//! ← {"access_token":"00D…","instance_url":"…","generation":4,"expires_in":null}
//! → {"get":"instance_url"}
//! ← {"instance_url":"https://acme.my.salesforce.com"}
//! → {"get":"health"}
//! ← {"state":"paired","flow":"device","org_id":"00D…","last_refresh":{…},…}   never a token
//! → {"do":"pair"}                          start a new pairing now (`sfpair run`)
//! ← {"pairing":"started"}
//! ← {"error":"repair_needed","exit_code":6,"message":"the server rejected the stored refresh token …"}
//! → {"do":"send","sobject":"Device_Reading__c","external_id":"Reading_Key__c","records":[{…},…]}
//! → {"do":"send","event":"Device_Alarm__e","records":[{…}]}     (`"auto_id":true` as `--auto-id`)
//! ← {"queued":2,"first_seq":41,"outbox_queued":7}              durable when answered (`sfpair run`)
//! ```
//!
//! A `send` line may be up to [`MAX_SEND_LINE`] bytes (it carries the records); every other
//! line [`MAX_LINE`]. The broker tells them apart while the line is still arriving, by its
//! first token: a line whose object opens with `"do"` then `"send"`, JSON whitespace allowed
//! anywhere between (`{"do":"send",…}` as sfpair writes it, `{"do": "send", …}` as Python's
//! `json.dumps` does), is a send line ([`is_send`]). A send line must name `"do"` first; the
//! whole line is then parsed as any other ([`parse`]).
//!
//! `expires_in` is seconds left under `--session-lifetime`, or null when none is configured
//! (Salesforce does not say). `refused` makes the broker drop session N if it is still the
//! current one, so fifty clients that all saw N refused cause one refresh, not fifty. Error
//! names are the exit-code kinds (`not_paired`, `repair_needed`, `network`, …) plus
//! `bad_request`, `forbidden` and `busy`.
//!
//! Both directions live here: the broker parses requests and writes answers, the client
//! (`broker/client.rs`) writes requests and parses answers, with the same names.
//!
//! Pure: bytes in, text out. Answers that carry a token are wiped when dropped.

use alloc::format;
use alloc::string::{String, ToString};
use core::time::Duration;

use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::error::ErrorKind;
use crate::secret::Secret;
use crate::session::Session;

/// Longest request line accepted, newline included. Real requests are under 60 bytes.
pub const MAX_LINE: usize = 512;
/// Longest `send` request line, newline included: a few records of the largest size, or many
/// small ones.
pub const MAX_SEND_LINE: usize = 512 * 1024;
/// How sfpair's own client starts every `send` line.
pub const SEND_PREFIX: &[u8] = br#"{"do":"send","#;

/// Whether `line` (as much of it as has arrived) opens a `send` request: `{`, `"do"`, `:`,
/// `"send"`, then `,` or `}`, with JSON whitespace between the tokens. `false` while too little
/// has arrived to say: such a line is held to [`MAX_LINE`] until it says more.
pub fn is_send(line: &[u8]) -> bool {
    let mut rest = line;
    for token in [&b"{"[..], b"\"do\"", b":", b"\"send\""] {
        rest = rest.trim_ascii_start();
        match rest.strip_prefix(token) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    matches!(rest.trim_ascii_start().first(), Some(b',' | b'}'))
}

/// The longest line allowed for one that starts with `line`.
pub fn line_limit(line: &[u8]) -> usize {
    if is_send(line) {
        MAX_SEND_LINE
    } else {
        MAX_LINE
    }
}

/// `{"do":"send",…}`: records for the outbox, as `sfpair send` takes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendAsk {
    /// Upsert into this sObject (with `external_id`).
    pub sobject: Option<String>,
    /// The external id field the records upsert by.
    pub external_id: Option<String>,
    /// A platform event to publish the records as (instead of `sobject`).
    pub event: Option<String>,
    /// Fill the external id of each record from the outbox's id and the record's seq.
    pub auto_id: bool,
    /// The records as JSON text: an object or an array of objects.
    pub records: String,
}

/// What a client asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    /// An access token.
    AccessToken {
        /// The generation of a session the server refused: a fresh one is wanted.
        refused: Option<u64>,
    },
    /// The instance URL only (no token, no request to the server).
    InstanceUrl,
    /// How the long-running agent is (no token, no request to the server).
    Health,
    /// Start a new pairing now (the person asked for it).
    Pair,
    /// Queue records in the outbox (`sfpair run`).
    Send(Box<SendAsk>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    get: Option<String>,
    #[serde(default, rename = "do")]
    action: Option<String>,
    #[serde(default)]
    refused: Option<u64>,
    #[serde(default)]
    sobject: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    auto_id: bool,
    /// The records' text as sent: never rebuilt, so their values stay exact.
    #[serde(default)]
    records: Option<alloc::boxed::Box<serde_json::value::RawValue>>,
}

/// Parses one request line (without or with its newline).
pub fn parse(line: &[u8]) -> Result<Ask, String> {
    let raw: Raw = serde_json::from_slice(line).map_err(|e| {
        format!(
            "the request is not {{\"get\":\"access_token\"}}, {{\"get\":\"instance_url\"}}, \
             {{\"get\":\"health\"}}, {{\"do\":\"pair\"}} or {{\"do\":\"send\",…}}: {e}"
        )
    })?;
    let send_fields = raw.sobject.is_some()
        || raw.external_id.is_some()
        || raw.event.is_some()
        || raw.auto_id
        || raw.records.is_some();
    if raw.action.as_deref() == Some("send") {
        if raw.get.is_some() || raw.refused.is_some() {
            return Err("a send request has no \"get\" and no \"refused\"".to_string());
        }
        let records = raw
            .records
            .ok_or_else(|| "a send request needs \"records\": an object or an array".to_string())?;
        return Ok(Ask::Send(alloc::boxed::Box::new(SendAsk {
            sobject: raw.sobject,
            external_id: raw.external_id,
            event: raw.event,
            auto_id: raw.auto_id,
            records: records.get().into(),
        })));
    }
    if send_fields {
        return Err(
            "sobject, external_id, event, auto_id and records go with \"do\":\"send\"".to_string(),
        );
    }
    match (raw.get.as_deref(), raw.action.as_deref(), raw.refused) {
        (Some("access_token"), None, refused) => Ok(Ask::AccessToken { refused }),
        (Some("instance_url"), None, None) => Ok(Ask::InstanceUrl),
        (Some("health"), None, None) => Ok(Ask::Health),
        (None, Some("pair"), None) => Ok(Ask::Pair),
        (Some(_), None, Some(_)) => Err("\"refused\" goes with access_token only".to_string()),
        (Some(other), None, None) => Err(format!(
            "unknown \"get\":\"{other}\": use access_token, instance_url or health"
        )),
        (None, Some(other), _) => Err(format!("unknown \"do\":\"{other}\": use pair or send")),
        _ => Err("a request has one \"get\" or one \"do\"".to_string()),
    }
}

/// The request line for `ask`, newline-terminated (the client side of [`parse`]).
pub fn request(ask: Ask) -> String {
    let value = match ask {
        Ask::AccessToken { refused: None } => json!({ "get": "access_token" }),
        Ask::AccessToken {
            refused: Some(generation),
        } => json!({ "get": "access_token", "refused": generation }),
        Ask::InstanceUrl => json!({ "get": "instance_url" }),
        Ask::Health => json!({ "get": "health" }),
        Ask::Pair => json!({ "do": "pair" }),
        Ask::Send(send) => return send_request(&send),
    };
    format!("{}\n", crate::sanitize::json_line(&value))
}

/// `{"do":"send",…}` with "do" first, as [`SEND_PREFIX`] says, and the records spliced in as
/// their text (never rebuilt through `serde_json::Value`, which would round numbers).
fn send_request(send: &SendAsk) -> String {
    let mut rest = json!({});
    for (key, value) in [
        ("sobject", &send.sobject),
        ("external_id", &send.external_id),
        ("event", &send.event),
    ] {
        if let Some(v) = value {
            rest[key] = json!(v);
        }
    }
    if send.auto_id {
        rest["auto_id"] = json!(true);
    }
    let rest = crate::sanitize::json_line(&rest);
    let prefix = core::str::from_utf8(SEND_PREFIX).unwrap_or_default();
    // `rest` is `{…}`: its fields go after the prefix, then the records.
    let fields = rest[1..rest.len() - 1].trim();
    let comma = if fields.is_empty() { "" } else { "," };
    format!(
        "{prefix}{fields}{comma}\"records\":{}}}\n",
        send.records.trim()
    )
}

/// Any answer, as the client reads it: a token answer, an instance answer or an error answer.
#[derive(Debug, Deserialize)]
pub struct Answer {
    #[serde(default)]
    /// The access token (`get access_token`).
    pub access_token: Option<Secret>,
    #[serde(default)]
    /// The org's instance URL (`get access_token`, `get instance_url`).
    pub instance_url: Option<String>,
    #[serde(default)]
    /// Which session the token belongs to, to name in `refused` when the server refuses it.
    pub generation: Option<u64>,
    /// Seconds left under `--session-lifetime`, when one is configured.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// An error answer's name: an [`ErrorKind`] name or `bad_request`, `forbidden`, `busy`.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    /// The exit code a command would end with for this error.
    pub exit_code: Option<u8>,
    #[serde(default)]
    /// What went wrong, for a person.
    pub message: Option<String>,
}

/// Parses one answer (the client side of [`token_answer`], [`instance_answer`] and
/// [`error_answer`]); `None` when it is not JSON of that shape.
pub fn parse_answer(text: &[u8]) -> Option<Answer> {
    serde_json::from_slice(text).ok()
}

/// The kind behind an error answer's name: the exit-code kinds travel as their names; a
/// refused user is a configuration matter; a busy broker is worth retrying, like the network;
/// anything else (`bad_request`, a name from a newer broker) is an unexpected reply.
pub fn error_kind(name: &str) -> ErrorKind {
    match (ErrorKind::from_name(name), name) {
        (Some(kind), _) => kind,
        (None, "forbidden") => ErrorKind::Config,
        (None, "busy") => ErrorKind::Network,
        (None, _) => ErrorKind::Server,
    }
}

/// The answer with a token, newline-terminated.
pub fn token_answer(session: &Session, expires_in: Option<Duration>) -> Zeroizing<String> {
    let value = json!({
        "access_token": session.access_token.expose(),
        "instance_url": session.instance_url,
        "generation": session.generation,
        "expires_in": expires_in.map(|d| d.as_secs()),
    });
    let mut line = Zeroizing::new(crate::sanitize::json_line(&value));
    line.push('\n');
    line
}

/// The answer line to `{"get":"instance_url"}`.
pub fn instance_answer(instance_url: &str) -> String {
    format!(
        "{}\n",
        crate::sanitize::json_line(&json!({ "instance_url": instance_url }))
    )
}

/// An error answer; `kind` is an [`ErrorKind`] name or a protocol
/// error (`bad_request`, `forbidden`, `busy`).
pub fn error_answer(kind: &str, exit_code: Option<u8>, message: &str) -> String {
    let mut value = json!({ "error": kind, "message": message });
    if let Some(code) = exit_code {
        value["exit_code"] = json!(code);
    }
    format!("{}\n", crate::sanitize::json_line(&value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Instant;

    #[test]
    fn every_request_the_client_writes_parses_back() {
        for ask in [
            Ask::AccessToken { refused: None },
            Ask::AccessToken { refused: Some(7) },
            Ask::InstanceUrl,
            Ask::Health,
            Ask::Pair,
            Ask::Send(alloc::boxed::Box::new(SendAsk {
                sobject: Some("Device_Reading__c".into()),
                external_id: Some("Reading_Key__c".into()),
                event: None,
                auto_id: true,
                records: r#"[{"Reading_Key__c":"a","Value__c":123456789.123456789,"N__c":123456789012345678901234567890}]"#.into(),
            })),
        ] {
            let line = request(ask.clone());
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            assert!(line.len() < line_limit(line.as_bytes()));
            assert_eq!(parse(line.as_bytes()), Ok(ask), "{line}");
        }
        let send = request(Ask::Send(alloc::boxed::Box::new(SendAsk {
            sobject: None,
            external_id: None,
            event: Some("Device_Alarm__e".into()),
            auto_id: false,
            records: "{}".into(),
        })));
        assert!(send.as_bytes().starts_with(SEND_PREFIX), "{send}");
        assert_eq!(line_limit(send.as_bytes()), MAX_SEND_LINE);
        assert_eq!(line_limit(br#"{"get":"health"}"#), MAX_LINE);
    }

    #[test]
    fn a_send_line_is_told_by_its_first_token_whatever_the_whitespace() {
        for send in [
            &br#"{"do":"send","sobject":"A"}"#[..],
            br#"{"do": "send", "sobject": "A"}"#,
            b"{\n  \"do\" :\t\"send\"\r\n, \"records\": []}",
            br#"{"do":"send"}"#,
        ] {
            assert!(is_send(send), "{}", String::from_utf8_lossy(send));
            assert_eq!(line_limit(send), MAX_SEND_LINE);
        }
        for other in [
            &br#"{"get":"health"}"#[..],
            br#"{"do":"pair"}"#,
            br#"{"do":"sender","x":1}"#,
            br#"{"sobject":"A","do":"send"}"#,
            br#"{"do":"sen"#,
            br#"["do","send"]"#,
            b"",
        ] {
            assert!(!is_send(other), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn every_answer_the_broker_writes_parses_back() {
        let session = Session {
            access_token: Secret::new("00D!AT"),
            instance_url: "https://acme.my.salesforce.com".into(),
            obtained_at: Instant::ZERO,
            generation: 4,
        };
        let a =
            parse_answer(token_answer(&session, Some(Duration::from_secs(9))).as_bytes()).unwrap();
        assert_eq!(a.access_token.as_ref().map(Secret::expose), Some("00D!AT"));
        assert_eq!(
            a.instance_url.as_deref(),
            Some("https://acme.my.salesforce.com")
        );
        assert_eq!(
            (a.generation, a.expires_in, a.error),
            (Some(4), Some(9), None)
        );
        let a = parse_answer(instance_answer("https://i").as_bytes()).unwrap();
        assert_eq!(a.instance_url.as_deref(), Some("https://i"));
        assert!(a.access_token.is_none());
        let a =
            parse_answer(error_answer("repair_needed", Some(6), "pair again").as_bytes()).unwrap();
        assert_eq!(a.error.as_deref(), Some("repair_needed"));
        assert_eq!(
            (a.exit_code, a.message.as_deref()),
            (Some(6), Some("pair again"))
        );
        assert!(parse_answer(b"not json").is_none());
    }

    #[test]
    fn error_names_map_back_to_their_kinds() {
        for kind in ErrorKind::ALL {
            assert_eq!(error_kind(kind.name()), kind);
        }
        assert_eq!(error_kind("forbidden"), ErrorKind::Config);
        assert_eq!(error_kind("busy"), ErrorKind::Network);
        assert_eq!(error_kind("bad_request"), ErrorKind::Server);
        assert_eq!(error_kind("something new"), ErrorKind::Server);
    }

    #[test]
    fn requests_parse_strictly() {
        assert_eq!(
            parse(b"{\"get\":\"access_token\"}\n"),
            Ok(Ask::AccessToken { refused: None })
        );
        assert_eq!(
            parse(br#"{"get":"access_token","refused":7}"#),
            Ok(Ask::AccessToken { refused: Some(7) })
        );
        assert_eq!(parse(br#"{"get":"instance_url"}"#), Ok(Ask::InstanceUrl));
        assert_eq!(parse(br#"{"get":"health"}"#), Ok(Ask::Health));
        assert_eq!(parse(br#"{"do":"pair"}"#), Ok(Ask::Pair));
        for bad in [
            &b""[..],
            b"GET / HTTP/1.1",
            br#"{"get":"refresh_token"}"#,
            br#"{"get":"access_token","extra":1}"#,
            br#"{"get":"instance_url","refused":1}"#,
            br#"{"get":"access_token","refused":-1}"#,
            br#"{"get":"health","do":"pair"}"#,
            br#"{"do":"forget"}"#,
            br#"{}"#,
            br#"{"do":"send"}"#,
            br#"{"get":"health","records":[]}"#,
            br#"{"do":"send","get":"health","records":[]}"#,
            br#"{"do":"pair","sobject":"Account"}"#,
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn answers_are_one_json_line() {
        let session = Session {
            access_token: Secret::new("00D!AT"),
            instance_url: "https://acme.my.salesforce.com".into(),
            obtained_at: Instant::ZERO,
            generation: 3,
        };
        let line = token_answer(&session, Some(Duration::from_secs(90)));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["access_token"], "00D!AT");
        assert_eq!(v["generation"], 3);
        assert_eq!(v["expires_in"], 90);
        let v: serde_json::Value = serde_json::from_str(&token_answer(&session, None)).unwrap();
        assert!(v["expires_in"].is_null());
        let v: serde_json::Value =
            serde_json::from_str(&error_answer("repair_needed", Some(6), "pair \"again\""))
                .unwrap();
        assert_eq!(v["exit_code"], 6);
        assert_eq!(v["message"], "pair \"again\"");
    }
}
