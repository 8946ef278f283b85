//! sObject Collections: `POST composite/sobjects` (create), `PATCH composite/sobjects`
//! (update), `DELETE composite/sobjects?ids=…` and `PATCH composite/sobjects/{Object}/{field}`
//! (upsert by external id). Up to 200 records, one result per record in request order,
//! `allOrNone` rolling every record back when one fails.
//!
//! The record rules are `records.rs`'s; this file only loops and shapes results.

use serde_json::{Map, Value, json};

use crate::errors::RecordError;
use crate::errors::rest_error;
use crate::form::Params;
use crate::http::Response;

use super::call::{Call, Ctx, collection_error, json_object};
use super::records::{self, Upserted};

/// Salesforce's cap on one collection request.
const MAX_RECORDS: usize = 200;

/// `POST composite/sobjects`.
pub fn create(ctx: &mut Ctx, call: &Call, _segments: &[&str]) -> Response {
    run_body(ctx, call, |ctx, record| {
        let object = object_of(ctx, record)?;
        if record.keys().any(|k| k.eq_ignore_ascii_case("id")) {
            return Err(RecordError::new(
                400,
                "INVALID_FIELD",
                "cannot specify Id in an insert call",
            ));
        }
        records::create(ctx, &object, record).map(|id| (id, None))
    })
}

/// `PATCH composite/sobjects`.
pub fn update(ctx: &mut Ctx, call: &Call, _segments: &[&str]) -> Response {
    run_body(ctx, call, |ctx, record| {
        let object = object_of(ctx, record)?;
        let id = record
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("id"))
            .and_then(|(_, v)| v.as_str())
            .ok_or_else(|| {
                RecordError::new(
                    400,
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                )
            })?
            .to_string();
        records::update(ctx, &object, &id, record).map(|()| (stored_id(ctx, &id), None))
    })
}

/// `PATCH composite/sobjects/{Object}/{field}`.
pub fn upsert(ctx: &mut Ctx, call: &Call, segments: &[&str]) -> Response {
    let object = match ctx.object(segments[2]) {
        Ok(object) => object,
        Err(refusal) => return refusal,
    };
    let field = segments[3].to_string();
    run_body(ctx, call, move |ctx, record| {
        let value = record
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&field))
            .map(|(_, v)| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .ok_or_else(|| {
                RecordError::new(400, "MISSING_ARGUMENT", format!("{field} not specified"))
            })?;
        match records::upsert(ctx, &object, &field, &value, record, false)? {
            Upserted::Created(id) => Ok((id, Some(true))),
            Upserted::Updated(id) => Ok((id, Some(false))),
            Upserted::Many(_) => Err(RecordError::new(
                300,
                "DUPLICATE_EXTERNAL_ID",
                format!("{field}: more than one record found for external id field"),
            )),
        }
    })
}

/// `DELETE composite/sobjects?ids=a,b[&allOrNone=true]`.
pub fn delete(ctx: &mut Ctx, call: &Call, _segments: &[&str]) -> Response {
    let params = Params::urlencoded(call.query.as_bytes());
    let ids: Vec<String> = params
        .get("ids")
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return rest_error(400, "MISSING_ARGUMENT", "ids not specified");
    }
    let all_or_none = params.get("allOrNone") == Some("true");
    let items: Vec<Map<String, Value>> = ids
        .into_iter()
        .map(|id| {
            let mut m = Map::new();
            m.insert("Id".into(), Value::String(id));
            m
        })
        .collect();
    run(ctx, items, all_or_none, |ctx, item| {
        let id = item["Id"].as_str().unwrap_or("").to_string();
        records::delete(ctx, None, &id).map(|()| (stored_id(ctx, &id), None))
    })
}

fn run_body(
    ctx: &mut Ctx,
    call: &Call,
    save: impl FnMut(&mut Ctx, &Map<String, Value>) -> Result<(String, Option<bool>), RecordError>,
) -> Response {
    let body = match json_object(call.body) {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(list) = body.get("records").and_then(Value::as_array) else {
        return rest_error(
            400,
            "JSON_PARSER_ERROR",
            "records must be a list of sObjects",
        );
    };
    let mut items = Vec::with_capacity(list.len());
    for item in list {
        match item.as_object() {
            Some(map) => items.push(map.clone()),
            None => {
                return rest_error(
                    400,
                    "JSON_PARSER_ERROR",
                    "every record must be a JSON object",
                );
            }
        }
    }
    run(ctx, items, all_or_none, save)
}

/// Applies `save` to each item in order; with `allOrNone`, one failure undoes them all.
fn run(
    ctx: &mut Ctx,
    items: Vec<Map<String, Value>>,
    all_or_none: bool,
    mut save: impl FnMut(&mut Ctx, &Map<String, Value>) -> Result<(String, Option<bool>), RecordError>,
) -> Response {
    if items.len() > MAX_RECORDS {
        return rest_error(
            400,
            "EXCEEDED_ID_LIMIT",
            &format!(
                "record limit reached. cannot submit more than {MAX_RECORDS} records into this call"
            ),
        );
    }
    let snapshot = all_or_none.then(|| ctx.world.records.clone());
    let outcomes: Vec<_> = items.iter().map(|item| save(ctx, item)).collect();
    let failed = outcomes.iter().any(Result::is_err);
    let rolled_back = failed && snapshot.is_some();
    if let (true, Some(snapshot)) = (rolled_back, snapshot) {
        ctx.world.records = snapshot;
    }
    let results: Vec<Value> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(_) if rolled_back => json!({"success": false, "errors": [{
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                "fields": [],
            }]}),
            Ok((id, created)) => {
                let mut result = json!({"id": id, "success": true, "errors": []});
                if let Some(created) = created {
                    result["created"] = Value::Bool(created);
                }
                result
            }
            Err(error) => json!({"success": false, "errors": [collection_error(&error)]}),
        })
        .collect();
    Response::json(200, &Value::Array(results))
}

/// The object named by a record's `attributes.type`.
fn object_of(ctx: &Ctx, record: &Map<String, Value>) -> Result<crate::schema::Object, RecordError> {
    let name = record
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            RecordError::new(
                400,
                "INVALID_TYPE",
                "No type specified in the attributes of the record",
            )
        })?;
    ctx.shared
        .config
        .schema
        .object(name)
        .cloned()
        .ok_or_else(|| {
            RecordError::new(
                400,
                "INVALID_TYPE",
                format!("sObject type '{name}' is not supported."),
            )
        })
}

/// The stored 18-character form of an id a client sent.
fn stored_id(ctx: &Ctx, id: &str) -> String {
    ctx.world
        .records
        .get(id)
        .map_or_else(|| id.to_string(), |r| r.id.clone())
}
