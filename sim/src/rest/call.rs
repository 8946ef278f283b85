//! What every REST handler is given (the org, the version, the request) and the
//! helpers they share: error envelopes, record URLs, JSON bodies.
//!
//! It sits below every handler and imports none of them; `rest.rs` routes to them.

use serde_json::{Map, Value, json};

use crate::errors::RecordError;
use crate::errors::rest_error;
use crate::http::Response;
use crate::schema::Object;
use crate::state::{Shared, World};

/// The newest API version: Summer '26.
pub const LATEST_VERSION: u32 = 67;
/// The oldest version still served (Salesforce retired 21.0 to 30.0 in 2025).
pub const OLDEST_VERSION: u32 = 31;

/// `(version, rest)` from `/services/data/v67.0/rest`, for versions this server serves.
pub fn versioned(path: &str) -> Option<(u32, &str)> {
    let rest = path.strip_prefix("/services/data/v")?;
    let (version, resource) = rest.split_once('/').unwrap_or((rest, ""));
    let major = version.strip_suffix(".0")?.parse().ok()?;
    (OLDEST_VERSION..=LATEST_VERSION)
        .contains(&major)
        .then_some((major, resource))
}

/// The org and the version a request runs against.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub world: &'a mut World,
    pub version: u32,
}

/// One REST request, from a connection or from a `composite` subrequest.
pub struct Call<'a> {
    pub method: &'a str,
    /// The path under `/services/data/vNN.N/`, without the query.
    pub resource: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
}

/// A handler: the route's path segments are passed along.
pub type Handler = fn(&mut Ctx, &Call, &[&str]) -> Response;

impl Ctx<'_> {
    /// The object of that name, or 404 `NOT_FOUND` as Salesforce answers.
    pub fn object(&self, name: &str) -> Result<Object, Response> {
        self.world
            .schema
            .object(name)
            .cloned()
            .ok_or_else(crate::errors::not_found)
    }

    pub fn url(&self, rest: &str) -> String {
        format!("/services/data/v{}.0/{rest}", self.version)
    }

    pub fn record_url(&self, object: &str, id: &str) -> String {
        self.url(&format!("sobjects/{object}/{id}"))
    }

    /// `{"type":…,"url":…}` for a record.
    pub fn attributes(&self, object: &str, id: &str) -> Value {
        json!({"type": object, "url": self.record_url(object, id)})
    }

    /// A stored record's fields as the API shows them: `attributes` first, then the
    /// `fields` asked for, or every field of the object (null when unset).
    pub fn shown(
        &self,
        object: &Object,
        id: &str,
        stored: &Map<String, Value>,
        fields: Option<&[String]>,
    ) -> Value {
        let mut out = Map::new();
        out.insert("attributes".into(), self.attributes(&object.name, id));
        let names: Vec<String> = match fields {
            Some(names) => names.to_vec(),
            None => object.fields.iter().map(|f| f.name.clone()).collect(),
        };
        for name in names {
            let value = stored.get(&name).cloned().unwrap_or(Value::Null);
            out.insert(name, value);
        }
        Value::Object(out)
    }
}

/// REST's envelope for a refused record: `[{"message","errorCode","fields"}]`.
pub fn error_response(error: &RecordError) -> Response {
    Response::json(
        error.status,
        &json!([{"message": error.message, "errorCode": error.code, "fields": error.fields}]),
    )
}

/// sObject Collections' per-record envelope: `{"statusCode","message","fields"}`.
pub fn collection_error(error: &RecordError) -> Value {
    json!({"statusCode": error.code, "message": error.message, "fields": error.fields})
}

/// The request body as JSON, or 400 `JSON_PARSER_ERROR`.
pub fn json_body(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        rest_error(
            400,
            "JSON_PARSER_ERROR",
            &format!("The request body is not valid JSON: {e}"),
        )
    })
}

/// The request body as a JSON object, or 400 `JSON_PARSER_ERROR`.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match json_body(body)? {
        Value::Object(map) => Ok(map),
        _ => Err(rest_error(
            400,
            "JSON_PARSER_ERROR",
            "The request body must be a JSON object.",
        )),
    }
}

/// The body of a response the handlers built, as JSON (null when empty).
pub fn body_json(response: &Response) -> Value {
    match &response.body {
        crate::http::Body::Bytes(bytes) if !bytes.is_empty() => {
            serde_json::from_slice(bytes).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    }
}
