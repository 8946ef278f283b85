//! A sliver of the Salesforce REST API under `/services/data/`: the version list,
//! `limits`, creating and reading sObject records, and a streamed `sim/bytes`
//! resource for response-size tests (doc section 6).
//!
//! Errors use REST's JSON-array envelope; every versioned answer carries
//! `Sforce-Limit-Info`. Records live in memory only, and no request body is logged.

use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::errors::{invalid_session, not_found, rest_error};
use crate::form::Params;
use crate::http::{Body, JSON, Request, Response};
use crate::state::Shared;
use crate::store::Records;

/// The newest API version: Summer '26.
pub const LATEST_VERSION: u32 = 67;
/// The oldest version still served (Salesforce retired 21.0 to 30.0 in 2025).
const OLDEST_VERSION: u32 = 31;
/// The daily API request allocation reported by `limits` and `Sforce-Limit-Info`.
const DAILY_MAX: u64 = 15000;
/// `sim/bytes` refuses more than this, so a typo cannot stream forever.
const MAX_STREAM: u64 = 1 << 30;

/// Routes one request under `/services/data`.
pub fn handle(shared: &Shared, request: &Request) -> Response {
    let path = request.path.as_str();
    if path == "/services/data" || path == "/services/data/" {
        return match request.method.as_str() {
            "GET" => Response::json(200, &versions()),
            _ => not_found(),
        };
    }
    let Some((version, resource)) = versioned(path) else {
        return not_found();
    };
    let now = Instant::now();
    let mut world = shared.world();
    let authenticated = request
        .bearer()
        .is_some_and(|token| world.grants.authenticate(token, now));
    let response = if authenticated {
        world.api_usage += 1;
        let segments: Vec<&str> = resource.trim_end_matches('/').split('/').collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["limits"]) => limits(world.api_usage),
            ("POST", ["sobjects", name]) => {
                create(&mut world.records, version, name, &request.body)
            }
            ("GET", ["sobjects", name, id]) => read(&world.records, version, name, id),
            ("GET", ["sim", "bytes"]) => bytes(request),
            _ => not_found(),
        }
    } else {
        invalid_session()
    };
    response.header("Sforce-Limit-Info", limit_info(world.api_usage))
}

/// The value of the `Sforce-Limit-Info` header.
pub fn limit_info(api_usage: u64) -> String {
    format!("api-usage={api_usage}/{DAILY_MAX}")
}

/// `(version, rest)` from `/services/data/v67.0/rest`, for versions this server serves.
pub fn versioned(path: &str) -> Option<(u32, &str)> {
    let rest = path.strip_prefix("/services/data/v")?;
    let (version, resource) = rest.split_once('/')?;
    let major = version.strip_suffix(".0")?.parse().ok()?;
    (OLDEST_VERSION..=LATEST_VERSION)
        .contains(&major)
        .then_some((major, resource))
}

/// `[{"version":"31.0","label":"Summer '14","url":"/services/data/v31.0"}, …]`.
fn versions() -> Value {
    let list: Vec<Value> = (OLDEST_VERSION..=LATEST_VERSION)
        .map(|v| json!({"version": format!("{v}.0"), "label": release_label(v), "url": format!("/services/data/v{v}.0")}))
        .collect();
    Value::Array(list)
}

/// Three releases a year since v20.0 = Winter '11: v67.0 is Summer '26.
fn release_label(version: u32) -> String {
    let since = version - 20;
    let season = ["Winter", "Spring", "Summer"][(since % 3) as usize];
    format!("{season} '{:02}", 11 + since / 3)
}

fn limits(api_usage: u64) -> Response {
    let entry = |max: u64, used: u64| json!({"Max": max, "Remaining": max.saturating_sub(used)});
    Response::json(
        200,
        &json!({
            "DailyApiRequests": entry(DAILY_MAX, api_usage),
            "DailyBulkApiRequests": entry(5000, 0),
            "DataStorageMB": entry(5, 0),
            "FileStorageMB": entry(20, 0),
        }),
    )
}

/// `POST sobjects/{Name}/` → 201 `{"id":…,"errors":[],"success":true}`.
fn create(records: &mut Records, version: u32, name: &str, body: &[u8]) -> Response {
    if !valid_name(name) {
        return not_found();
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return rest_error(
            400,
            "JSON_PARSER_ERROR",
            "The request body must be a JSON object.",
        );
    };
    if fields.keys().any(|k| k.eq_ignore_ascii_case("id")) {
        return rest_error(
            400,
            "INVALID_FIELD",
            "The Id field should not be specified in the sobject data.",
        );
    }
    records.created += 1;
    let id = format!("{}SIM{:012}", key_prefix(name), records.created);
    records
        .records
        .insert(id.clone(), (name.to_string(), fields));
    let location = format!("/services/data/v{version}.0/sobjects/{name}/{id}");
    Response::json(201, &json!({"id": id, "errors": [], "success": true}))
        .header("Location", location)
}

/// `GET sobjects/{Name}/{id}` → the stored fields plus `attributes` and `Id`.
fn read(records: &Records, version: u32, name: &str, id: &str) -> Response {
    let Some((_, fields)) = records.records.get(id).filter(|(kind, _)| kind == name) else {
        return not_found();
    };
    let mut record = Map::new();
    record.insert(
        "attributes".into(),
        json!({"type": name, "url": format!("/services/data/v{version}.0/sobjects/{name}/{id}")}),
    );
    record.insert("Id".into(), Value::String(id.to_string()));
    record.extend(fields.clone());
    Response::json(200, &Value::Object(record))
}

/// `GET sim/bytes?n=N` → exactly N bytes of JSON, streamed.
fn bytes(request: &Request) -> Response {
    let n = Params::urlencoded(request.query.as_bytes())
        .get("n")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|&n| n <= MAX_STREAM);
    match n {
        Some(n) => Response {
            status: 200,
            headers: vec![("Content-Type", JSON.to_string())],
            body: Body::JsonArray(n),
        },
        None => rest_error(400, "MALFORMED_QUERY", "n must be a byte count up to 1 GiB"),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The first three characters of an id name its object type.
fn key_prefix(name: &str) -> &'static str {
    match name {
        "Account" => "001",
        "Contact" => "003",
        "Case" => "500",
        _ => "a00",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_labels_follow_the_three_a_year_cadence() {
        assert_eq!(release_label(20), "Winter '11");
        assert_eq!(release_label(65), "Winter '26");
        assert_eq!(release_label(66), "Spring '26");
        assert_eq!(release_label(67), "Summer '26");
    }

    #[test]
    fn versioned_paths() {
        assert_eq!(
            versioned("/services/data/v67.0/limits"),
            Some((67, "limits"))
        );
        assert_eq!(
            versioned("/services/data/v67.0/limits/"),
            Some((67, "limits/"))
        );
        assert_eq!(versioned("/services/data/v68.0/limits"), None);
        assert_eq!(versioned("/services/data/v67.1/limits"), None);
        assert_eq!(versioned("/services/data/latest/limits"), None);
    }

    #[test]
    fn records_round_trip_and_refuse_ids() {
        let mut records = Records::default();
        let created = create(
            &mut records,
            67,
            "Account",
            br#"{"Name":"Express Logistics"}"#,
        );
        assert_eq!(created.status, 201);
        assert_eq!(
            read(&records, 67, "Account", "001SIM000000000001").status,
            200
        );
        assert_eq!(
            read(&records, 67, "Contact", "001SIM000000000001").status,
            404
        );
        assert_eq!(
            create(&mut records, 67, "Account", br#"{"Id":"x"}"#).status,
            400
        );
        assert_eq!(create(&mut records, 67, "Account", b"[1]").status, 400);
    }
}
