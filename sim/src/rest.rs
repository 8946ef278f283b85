//! The Salesforce REST API under `/services/data/`: the version list, the resource
//! list, `limits`, SOQL `query`/`queryAll`, records, sObject Collections, `composite`,
//! `describe`, and a streamed `sim/bytes` resource for response-size tests (docs/protocol.md,
//! "REST errors").
//!
//! This file authenticates and routes; each resource's handler lives in its own file
//! under `rest/`. A new resource is a new file plus one line in [`route`]. Errors use
//! REST's JSON-list envelope (404 `NOT_FOUND` for an unknown path, 405
//! `METHOD_NOT_ALLOWED` for a known one asked with the wrong method); every versioned
//! answer carries `Sforce-Limit-Info`. Records live in memory; no request body is logged.

mod call;
mod collections;
mod composite;
mod describe;
mod query;
mod records;

use std::time::Instant;

use serde_json::{Value, json};

use crate::errors::{invalid_session, method_not_allowed, not_found, rest_error};
use crate::form::Params;
use crate::http::{Body, JSON, Request, Response};
use crate::reply::Reply;
use crate::state::Shared;

use call::{Call, Ctx, Handler, OLDEST_VERSION};
pub use call::{LATEST_VERSION, versioned};

/// The daily API request allocation reported by `limits` and `Sforce-Limit-Info` when
/// `Config::api_limit` sets none.
const DAILY_MAX: u64 = 15000;
/// `sim/bytes` refuses more than this, so a typo cannot stream forever.
const MAX_STREAM: u64 = 1 << 30;

/// Whether a path is the REST API's: `/services/data` and everything under it.
pub fn owns(path: &str) -> bool {
    path == "/services/data" || path.starts_with("/services/data/")
}

/// Routes one request under `/services/data`. The answer is a [`Reply`] because an
/// sObject Collections request may commit and then lose its reply
/// (`Config::commit_then_drop_every`).
pub fn handle(shared: &Shared, request: &Request) -> Reply {
    let path = request.path.as_str();
    if path == "/services/data" || path == "/services/data/" {
        return Reply::Send(match request.method.as_str() {
            "GET" => Response::json(200, &versions()),
            method => method_not_allowed(method, "GET"),
        });
    }
    let Some((version, resource)) = versioned(path) else {
        return Reply::Send(not_found());
    };
    if shared.rest_on_login_host(request) {
        return Reply::Send(rest_error(
            404,
            "NOT_FOUND",
            &format!(
                "REST calls go to the instance_url {}, not the login host",
                shared.instance_url
            ),
        ));
    }
    let now = Instant::now();
    let mut world = shared.world();
    let authenticated = request
        .bearer()
        .is_some_and(|token| world.grants.authenticate(token, now));
    let limit = shared.delivery.api_limit();
    let mut lost = false;
    let response = if !authenticated {
        invalid_session()
    } else if limit.is_some_and(|max| world.api_usage >= max) {
        // Refused before anything runs, so nothing commits; a refusal is not a served
        // request, so it does not count either.
        limit_exceeded()
    } else {
        world.api_usage += 1;
        let call = Call {
            method: &request.method,
            resource,
            query: &request.query,
            body: &request.body,
        };
        let mut ctx = Ctx {
            shared,
            world: &mut world,
            version,
        };
        let response = dispatch(&mut ctx, version, &call);
        if is_collections(resource) {
            shared.delivery.keep_body(&request.body);
        }
        // What the request committed is published now; a rolled-back write was taken
        // out of the journal with it.
        let origin = format!("com/salesforce/api/rest/{version}.0");
        shared.commit(&mut world, Some(&origin));
        lost = is_collections(resource) && shared.delivery.collections_request();
        let saved = world.records.take_saved();
        world.writes.record(saved, !lost);
        response
    };
    let usage = world.api_usage;
    drop(world);
    match lost {
        true => Reply::Close,
        false => Reply::Send(response.header("Sforce-Limit-Info", limit_info(shared, usage))),
    }
}

/// 403 `REQUEST_LIMIT_EXCEEDED` as Salesforce answers once the org's daily allocation is
/// used up (the message as Salesforce clients report it: `TotalRequests Limit exceeded.`).
pub fn limit_exceeded() -> Response {
    rest_error(
        403,
        "REQUEST_LIMIT_EXCEEDED",
        "TotalRequests Limit exceeded.",
    )
}

/// Whether a resource is one of sObject Collections' four (`composite/sobjects…`).
fn is_collections(resource: &str) -> bool {
    let trimmed = resource.trim_end_matches('/');
    trimmed == "composite/sobjects" || trimmed.starts_with("composite/sobjects/")
}

/// Runs one authenticated call, from a connection or a `composite` subrequest.
fn dispatch(ctx: &mut Ctx, version: u32, call: &Call) -> Response {
    ctx.version = version;
    let trimmed = call.resource.trim_end_matches('/');
    let segments: Vec<&str> = match trimmed {
        "" => Vec::new(),
        _ => trimmed.split('/').collect(),
    };
    let Some(methods) = route(&segments) else {
        return not_found();
    };
    match methods.iter().find(|(m, _)| *m == call.method) {
        Some((_, handler)) => handler(ctx, call, &segments),
        None => {
            let allowed: Vec<&str> = methods.iter().map(|(m, _)| *m).collect();
            method_not_allowed(call.method, &allowed.join(", "))
        }
    }
}

/// The methods a path takes, and their handlers; `None` for an unknown path.
fn route(segments: &[&str]) -> Option<Vec<(&'static str, Handler)>> {
    Some(match segments {
        [] => vec![("GET", resources as Handler)],
        ["limits"] => vec![("GET", limits as Handler)],
        ["query" | "queryAll"] => vec![("GET", query::first_page as Handler)],
        ["query" | "queryAll", _] => vec![("GET", query::next_page as Handler)],
        ["sobjects"] => vec![("GET", describe::global as Handler)],
        ["sobjects", _] => vec![("GET", describe::basic as Handler), ("POST", records::post)],
        ["sobjects", _, "describe"] => vec![("GET", describe::describe as Handler)],
        ["sobjects", _, _] => vec![
            ("GET", records::get as Handler),
            ("PATCH", records::patch),
            ("DELETE", records::delete_one),
        ],
        ["sobjects", _, _, _] => vec![
            ("GET", records::get_by_external_id as Handler),
            ("PATCH", records::upsert_by_external_id),
        ],
        ["composite"] => vec![("POST", composite as Handler)],
        ["composite", "sobjects"] => vec![
            ("POST", collections::create as Handler),
            ("PATCH", collections::update),
            ("DELETE", collections::delete),
        ],
        ["composite", "sobjects", _, _] => vec![("PATCH", collections::upsert as Handler)],
        ["sim", "bytes"] => vec![("GET", bytes as Handler)],
        _ => return None,
    })
}

fn composite(ctx: &mut Ctx, call: &Call, _segments: &[&str]) -> Response {
    composite::handle(ctx, call, dispatch)
}

/// The daily allocation reported: the enforced one, else Salesforce's default.
fn daily_max(shared: &Shared) -> u64 {
    shared.delivery.api_limit().unwrap_or(DAILY_MAX)
}

/// The value of the `Sforce-Limit-Info` header.
pub fn limit_info(shared: &Shared, api_usage: u64) -> String {
    format!("api-usage={api_usage}/{}", daily_max(shared))
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

/// `GET /services/data/vNN.N/`: the resources this simulator serves.
fn resources(ctx: &mut Ctx, _call: &Call, _segments: &[&str]) -> Response {
    let mut list = serde_json::Map::new();
    for name in ["composite", "limits", "query", "queryAll", "sobjects"] {
        list.insert(
            name.into(),
            Value::String(ctx.url(name).trim_end_matches('/').to_string()),
        );
    }
    Response::json(200, &Value::Object(list))
}

fn limits(ctx: &mut Ctx, _call: &Call, _segments: &[&str]) -> Response {
    let api_usage = ctx.world.api_usage;
    let daily_max = daily_max(ctx.shared);
    let entry = |max: u64, used: u64| json!({"Max": max, "Remaining": max.saturating_sub(used)});
    Response::json(
        200,
        &json!({
            "DailyApiRequests": entry(daily_max, api_usage),
            "DailyBulkApiRequests": entry(5000, 0),
            "DataStorageMB": entry(5, 0),
            "DurableStreamingApiConcurrentClients": entry(
                ctx.world.streaming.knobs.limit as u64,
                ctx.world.streaming.len() as u64
            ),
            "FileStorageMB": entry(20, 0),
        }),
    )
}

/// `GET sim/bytes?n=N` → exactly N bytes of JSON, streamed.
fn bytes(_ctx: &mut Ctx, call: &Call, _segments: &[&str]) -> Response {
    let n = Params::urlencoded(call.query.as_bytes())
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

/// Creates or updates a record by its external id as an admin in Setup would (the test's
/// hand, also while the network is away): the same rules as `PATCH sobjects/X/F/V`, and the
/// change events the write raises. Returns the record's id.
pub fn upsert_by_hand(
    shared: &Shared,
    object: &str,
    field: &str,
    value: &str,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, String> {
    let mut world = shared.world();
    let mut ctx = Ctx {
        shared,
        world: &mut world,
        version: LATEST_VERSION,
    };
    let object = ctx
        .object(object)
        .map_err(|_| format!("{object} is not an object of this org"))?;
    let id = match records::upsert(&mut ctx, &object, field, value, fields, false) {
        Ok(records::Upserted::Created(id) | records::Upserted::Updated(id)) => id,
        Ok(records::Upserted::Many(_)) => return Err(format!("more than one {field} {value}")),
        Err(e) => return Err(format!("{}: {}", e.code, e.message)),
    };
    // An admin's hand is not a request of the device: the write ledger does not file it.
    drop(ctx.world.records.take_saved());
    shared.commit(&mut world, Some("com/salesforce/ui/setup"));
    Ok(id)
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
    fn collections_resources() {
        assert!(is_collections("composite/sobjects"));
        assert!(is_collections("composite/sobjects/"));
        assert!(is_collections("composite/sobjects/Device__c/Serial__c"));
        assert!(!is_collections("composite"));
        assert!(!is_collections("composite/sobjectsX"));
        assert!(!is_collections("sobjects/Account"));
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
        assert_eq!(versioned("/services/data/v67.0"), Some((67, "")));
        assert_eq!(versioned("/services/data/v68.0/limits"), None);
        assert_eq!(versioned("/services/data/v67.1/limits"), None);
        assert_eq!(versioned("/services/data/latest/limits"), None);
    }

    #[test]
    fn routes_know_their_methods() {
        let methods = |path: &[&str]| -> Option<Vec<&str>> {
            route(path).map(|m| m.iter().map(|(name, _)| *name).collect())
        };
        assert_eq!(methods(&["sobjects", "Account"]), Some(vec!["GET", "POST"]));
        assert_eq!(
            methods(&["sobjects", "Account", "describe"]),
            Some(vec!["GET"])
        );
        assert_eq!(
            methods(&["sobjects", "Account", "001SIM000000001YBA"]),
            Some(vec!["GET", "PATCH", "DELETE"])
        );
        assert_eq!(methods(&["nope"]), None);
    }
}
