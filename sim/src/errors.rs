//! Every error body the simulator sends, in Salesforce's two envelopes: REST's JSON
//! list `[{"message":…,"errorCode":…,"fields":[…]}]` and OAuth's
//! `{"error":…,"error_description":…}`.
//!
//! Builders, and [`RecordError`] (a refusal before its envelope), importing nothing but
//! `http.rs`, so every handler can use them
//! without tying handlers to each other. No builder ever echoes a token or secret.

use serde_json::{Value, json};

use crate::http::Response;

/// REST: 401 as Salesforce answers an expired or unknown session (doc section 6).
pub fn invalid_session() -> Response {
    rest_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
}

/// REST: one error, `[{"message":…,"errorCode":…}]`.
pub fn rest_error(status: u16, code: &str, message: &str) -> Response {
    Response::json(status, &json!([{"message": message, "errorCode": code}]))
}

/// REST: 404 `NOT_FOUND`, Salesforce's answer for an unknown resource, object or id.
pub fn not_found() -> Response {
    rest_error(404, "NOT_FOUND", "The requested resource does not exist")
}

/// REST: 405 for a known resource asked with a method it does not take.
pub fn method_not_allowed(method: &str, allowed: &str) -> Response {
    rest_error(
        405,
        "METHOD_NOT_ALLOWED",
        &format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    )
    .header("Allow", allowed.replace(' ', ""))
}

/// OAuth: an error body, `{"error":…,"error_description":…}`.
pub fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    oauth_json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// OAuth: JSON as the token endpoint sends it, never cached.
pub fn oauth_json(status: u16, body: &Value) -> Response {
    Response::json(status, body).header("Cache-Control", "no-store")
}

/// Why a record body was refused, before the envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl RecordError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> RecordError {
        RecordError {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn on(mut self, field: &str) -> RecordError {
        self.fields.push(field.to_string());
        self
    }
}
