//! One delivery batch as data: the sObject Collections request for up to 200 queued records of
//! one target, and what its reply means for each record.
//!
//! - Upserts: `PATCH /services/data/vNN.N/composite/sobjects/{SObject}/{ExternalIdField}`;
//!   platform events: `POST /services/data/vNN.N/composite/sobjects` (insert). Both with
//!   `allOrNone: false`, so one bad record does not hold back the others, and each record gets
//!   `"attributes": {"type": SObject}` in front of its own fields.
//! - A 2xx reply is an array with one result per record, in request order
//!   (docs/outbox.md, "Delivery"). Success → delivered. A failure whose `statusCode` is
//!   transient (a locked row, a busy server) → retried later, the same record with the same
//!   external id. Any other failure (a field the org lacks, a missing required field, a value
//!   too long, …) → a dead letter with the server's words; retrying cannot fix it.
//! - A whole-request refusal (400) may be about one record the server could not even parse
//!   into the batch: the batch is split in two and each half sent on its own, down to the one
//!   record, which becomes the dead letter. A 404 (the sObject or field does not exist) is
//!   about every record of the batch at once.
//!
//! Pure: no I/O, no clock. `delivery.rs` sends and settles; `pace.rs` decides when.

use serde::Deserialize;

use crate::error::Error;
use crate::outbox::{Pending, Target};
use crate::rest::RestRequest;
use crate::text::server_text;
use crate::wire::Method;

/// Per-record error codes that a later attempt can get past (Salesforce's "retry" cases).
const TRANSIENT: &[&str] = &[
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "REQUEST_RUNNING_TOO_LONG",
    "QUERY_TIMEOUT",
    "REQUEST_LIMIT_EXCEEDED",
];

/// Most bytes of a reply read to decide (200 results are about 20 KB).
pub const MAX_REPLY: usize = 1024 * 1024;

/// The request for `batch` (non-empty, one target) under `api_version` (`62.0`).
pub fn request(batch: &[Pending], api_version: &str) -> Result<RestRequest, Error> {
    let target = &batch[0].target;
    let (method, path, object) = match target {
        Target::Upsert { object, field } => (
            Method::Patch,
            format!("/services/data/v{api_version}/composite/sobjects/{object}/{field}"),
            object,
        ),
        Target::Event { object } => (
            Method::Post,
            format!("/services/data/v{api_version}/composite/sobjects"),
            object,
        ),
    };
    let mut body =
        String::with_capacity(64 + batch.iter().map(|p| p.json.len() + 40).sum::<usize>());
    body.push_str(r#"{"allOrNone":false,"records":["#);
    for (i, pending) in batch.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        // `object` is an API name (input.rs), so it needs no escaping; the record is a JSON
        // object's text, so its fields follow the attributes.
        let fields = pending.json.trim().strip_prefix('{').unwrap_or("}");
        body.push_str(r#"{"attributes":{"type":""#);
        body.push_str(object);
        body.push_str(r#""}"#);
        if !fields.trim_start().starts_with('}') {
            body.push(',');
        }
        body.push_str(fields);
    }
    body.push_str("]}");
    let mut request = RestRequest::new(method, &path)?;
    request.body = Some(body.into_bytes());
    Ok(request)
}

/// What one record's result says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The org stored it.
    Delivered,
    /// Try again later.
    Retry(Refusal),
    /// Never retried: the server's error goes to the dead-letter file.
    Dead(Refusal),
}

/// The server's words about one record, in two forms: the whole of them for the dead-letter
/// file (which holds the record anyway), and only the codes and field names for logs, since a
/// message may quote the record's values ("data value too large: …"), the customer's data,
/// which must not reach the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `CODE: message (fields: A, B)`, each error; sanitized.
    pub text: String,
    /// `CODE (fields: A, B)`, each error; sanitized.
    pub codes: String,
}

/// What a whole reply says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// One verdict per record, in batch order.
    Each(Vec<Verdict>),
    /// Send each half again on its own (a 400 for a batch of more than one record).
    Split,
    /// Every record of the batch is dead, for this reason.
    AllDead(String),
    /// Nothing is known to have landed in a way that can be trusted: send the batch again
    /// later (a 5xx, a reply that cannot be read). Upserts make that safe.
    RetryAll(String),
}

/// One record's result. `success` is required: a 2xx whose body is a list of request errors
/// (`[{"errorCode":"SERVER_UNAVAILABLE",…}]`) is not a list of results, and must not read as
/// records refused without a reason (they were dead-lettered that way).
#[derive(Deserialize)]
struct ItemResult {
    success: bool,
    #[serde(default)]
    errors: Vec<ItemError>,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(rename = "statusCode", default)]
    status_code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    fields: Vec<String>,
}

/// Reads a reply to a batch of `n` records. The caller has handled 401 (refresh), 403
/// `REQUEST_LIMIT_EXCEEDED` (pause) and other 403s (stop); anything else comes here.
pub fn outcome(status: u16, body: &[u8], n: usize) -> Outcome {
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<Vec<ItemResult>>(body) {
            Ok(items) if items.len() == n => Outcome::Each(items.iter().map(verdict).collect()),
            Ok(items) => Outcome::RetryAll(format!(
                "the server answered {} results for {n} records",
                items.len()
            )),
            Err(_) => Outcome::RetryAll(format!(
                "the server's HTTP {status} reply is not a list of record results{}",
                code(body)
            )),
        };
    }
    match status {
        404 => Outcome::AllDead(format!("HTTP {status}{}", summary(body))),
        400 if n > 1 => Outcome::Split,
        400..=499 => Outcome::AllDead(format!("HTTP {status}{}", summary(body))),
        // Only logged, never stored: the code, not a message that may quote a record.
        _ => Outcome::RetryAll(format!("HTTP {status}{}", code(body))),
    }
}

fn verdict(item: &ItemResult) -> Verdict {
    if item.success {
        return Verdict::Delivered;
    }
    let joined = |words: &dyn Fn(&ItemError) -> String| {
        let all = item.errors.iter().map(words).collect::<Vec<_>>().join("; ");
        if all.is_empty() {
            "the server refused the record without saying why".to_string()
        } else {
            all
        }
    };
    let refusal = Refusal {
        text: joined(&|e| describe(e, true)),
        codes: joined(&|e| describe(e, false)),
    };
    let transient = !item.errors.is_empty()
        && item
            .errors
            .iter()
            .all(|e| TRANSIENT.contains(&e.status_code.as_str()));
    if transient {
        Verdict::Retry(refusal)
    } else {
        Verdict::Dead(refusal)
    }
}

/// `CODE: message (fields: …)`, or without the message (`CODE (fields: …)`).
fn describe(e: &ItemError, message: bool) -> String {
    let mut s = server_text(&e.status_code).into_owned();
    if message {
        s.push_str(": ");
        s.push_str(&server_text(&e.message));
    }
    if !e.fields.is_empty() {
        let fields: Vec<_> = e
            .fields
            .iter()
            .map(|f| server_text(f).into_owned())
            .collect();
        s.push_str(&format!(" (fields: {})", fields.join(", ")));
    }
    s
}

/// ` errorCode` of the first REST error in `body` (`[{"errorCode":…}]`), or nothing: for
/// reasons that are logged, where a message could quote a record.
fn code(body: &[u8]) -> String {
    match crate::rest::first_code(&body[..body.len().min(crate::rest::ERROR_PREFIX)]) {
        Some(c) => format!(" {c}"),
        None => String::new(),
    }
}

/// ` errorCode: message` from a REST error body (`[{"errorCode":…,"message":…}]`), or nothing.
fn summary(body: &[u8]) -> String {
    match crate::rest::summary(&body[..body.len().min(crate::rest::ERROR_PREFIX)]) {
        Some(s) => format!(" {s}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(seq: u64, target: &Target, json: &str) -> Pending {
        Pending {
            seq,
            target: target.clone(),
            json: json.into(),
            queued_at: 0,
        }
    }

    fn upsert() -> Target {
        Target::Upsert {
            object: "Device_Reading__c".into(),
            field: "Reading_Key__c".into(),
        }
    }

    #[test]
    fn upserts_patch_the_external_id_path_with_attributes_in_front() {
        let t = upsert();
        let batch = [
            pending(1, &t, r#"{"Reading_Key__c":"a","Value__c":1.5}"#),
            pending(2, &t, "{}"),
        ];
        let r = request(&batch, "62.0").unwrap();
        assert_eq!(r.method, Method::Patch);
        assert_eq!(
            r.path,
            "/services/data/v62.0/composite/sobjects/Device_Reading__c/Reading_Key__c"
        );
        let body: serde_json::Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Device_Reading__c"}, "Reading_Key__c": "a", "Value__c": 1.5},
                {"attributes": {"type": "Device_Reading__c"}},
            ]})
        );
    }

    #[test]
    fn events_post_to_the_collection() {
        let t = Target::Event {
            object: "Device_Alarm__e".into(),
        };
        let r = request(&[pending(1, &t, r#"{"Code__c":"E1"}"#)], "62.0").unwrap();
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.path, "/services/data/v62.0/composite/sobjects");
        let body: serde_json::Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["records"][0]["attributes"]["type"], "Device_Alarm__e");
        assert_eq!(body["records"][0]["Code__c"], "E1");
    }

    #[test]
    fn each_result_decides_its_record() {
        let body = br#"[
            {"id":"a01","success":true,"errors":[],"created":true},
            {"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access to this record","fields":[]}]},
            {"success":false,"errors":[{"statusCode":"INVALID_FIELD","message":"No such column 'Colour__c' on sobject of type Device_Reading__c","fields":["Colour__c"]}]},
            {"success":false,"errors":[]}
        ]"#;
        let Outcome::Each(v) = outcome(200, body, 4) else {
            panic!("not per record")
        };
        assert_eq!(v[0], Verdict::Delivered);
        assert!(matches!(&v[1], Verdict::Retry(w) if w.text.starts_with("UNABLE_TO_LOCK_ROW")));
        assert_eq!(
            v[2],
            Verdict::Dead(Refusal {
                text: "INVALID_FIELD: No such column 'Colour__c' on sobject of type Device_Reading__c (fields: Colour__c)"
                    .into(),
                codes: "INVALID_FIELD (fields: Colour__c)".into(),
            })
        );
        assert!(matches!(&v[3], Verdict::Dead(w) if w.text.contains("without saying why")));
    }

    #[test]
    fn a_transient_code_mixed_with_a_permanent_one_is_permanent() {
        let body = br#"[{"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"x"},{"statusCode":"STRING_TOO_LONG","message":"y"}]}]"#;
        assert!(
            matches!(outcome(200, body, 1), Outcome::Each(v) if matches!(v[0], Verdict::Dead(_)))
        );
    }

    #[test]
    fn whole_reply_failures() {
        let bad =
            br#"[{"message":"No such column 'X__c' on sobject","errorCode":"INVALID_FIELD"}]"#;
        assert_eq!(outcome(400, bad, 2), Outcome::Split);
        assert!(
            matches!(outcome(400, bad, 1), Outcome::AllDead(w) if w == "HTTP 400 INVALID_FIELD: No such column 'X__c' on sobject")
        );
        let missing =
            br#"[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]"#;
        assert!(matches!(outcome(404, missing, 200), Outcome::AllDead(_)));
        assert!(matches!(outcome(500, b"oops", 3), Outcome::RetryAll(w) if w == "HTTP 500"));
        assert!(matches!(outcome(503, b"<html>", 3), Outcome::RetryAll(_)));
        assert!(
            matches!(outcome(200, b"[]", 3), Outcome::RetryAll(w) if w.contains("0 results for 3"))
        );
        assert!(matches!(outcome(200, b"{\"x\":1", 3), Outcome::RetryAll(_)));
    }

    #[test]
    fn server_words_are_made_safe_to_print() {
        let body = b"[{\"success\":false,\"errors\":[{\"statusCode\":\"X\\u001b[31m\",\"message\":\"a\\nb\"}]}]";
        let Outcome::Each(v) = outcome(200, body, 1) else {
            panic!()
        };
        let Verdict::Dead(w) = &v[0] else { panic!() };
        assert!(crate::text::is_clean(&w.text), "{w:?}");
        assert!(crate::text::is_clean(&w.codes), "{w:?}");
    }

    /// A 2xx whose body is a list of request errors, not of results (Salesforce answers so
    /// when it is unavailable), was read as records refused without a reason and
    /// dead-lettered; it is a reply to send the batch again, for every code.
    #[test]
    fn a_2xx_error_list_is_sent_again_never_dead_lettered() {
        for code in TRANSIENT
            .iter()
            .chain(&["INVALID_SESSION_ID", "UNKNOWN_EXCEPTION"])
        {
            let body = format!(r#"[{{"errorCode":"{code}","message":"try later: Value__c=42"}}]"#);
            for n in [1, 3] {
                match outcome(200, body.as_bytes(), n) {
                    Outcome::RetryAll(why) => {
                        assert!(why.contains(code), "{why}");
                        assert!(!why.contains("42"), "no message in the log: {why}");
                    }
                    other => panic!("{code}, {n} records: {other:?}"),
                }
            }
        }
    }

    /// What is logged names the codes and fields; the messages, which quote values, go only to
    /// the dead letter.
    #[test]
    fn logged_reasons_carry_codes_and_fields_never_the_values() {
        let value = "4111-1111-1111-1111";
        let body = format!(
            r#"[{{"success":false,"errors":[{{"statusCode":"STRING_TOO_LONG","message":"Card__c: data value too large: {value} (max length=8)","fields":["Card__c"]}}]}},
                {{"success":false,"errors":[{{"statusCode":"UNABLE_TO_LOCK_ROW","message":"row {value} locked","fields":[]}}]}}]"#
        );
        let Outcome::Each(v) = outcome(200, body.as_bytes(), 2) else {
            panic!()
        };
        let (Verdict::Dead(dead), Verdict::Retry(retry)) = (&v[0], &v[1]) else {
            panic!("{v:?}")
        };
        assert_eq!(dead.codes, "STRING_TOO_LONG (fields: Card__c)");
        assert!(dead.text.contains(value), "the dead letter keeps the words");
        assert_eq!(retry.codes, "UNABLE_TO_LOCK_ROW");
        let server = format!(r#"[{{"errorCode":"UNKNOWN_EXCEPTION","message":"{value}"}}]"#);
        assert!(
            matches!(outcome(500, server.as_bytes(), 2), Outcome::RetryAll(w) if w == "HTTP 500 UNKNOWN_EXCEPTION")
        );
    }
}
