//! sObject Collections: `POST composite/sobjects` (create), `PATCH composite/sobjects`
//! (update), `DELETE composite/sobjects?ids=…` and `PATCH composite/sobjects/{Object}/{field}`
//! (upsert by external id). Up to 200 records, one result per record in request order,
//! `allOrNone` rolling every record back when one fails.
//!
//! With `Config::lock_row_every`, every N-th record (counted across requests) is refused
//! `UNABLE_TO_LOCK_ROW` before it is saved, each distinct record at most once: the same
//! object and external id for upserts, the same id for updates and deletes, the same
//! body for inserts (`delivery.rs` keeps the count).
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
    let lock = |_: &Ctx, record: &Map<String, Value>| Lock {
        key: format!("insert {}", Value::Object(record.clone())),
        id: None,
    };
    run_body(ctx, call, lock, |ctx, record| {
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
    let lock = |ctx: &Ctx, record: &Map<String, Value>| {
        let id = record
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("id"))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("");
        by_id(ctx, id)
    };
    run_body(ctx, call, lock, |ctx, record| {
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
    let (key_object, key_field) = (object.clone(), canonical_field(&object, &field));
    let lock = move |ctx: &Ctx, record: &Map<String, Value>| {
        let value = external_value(record, &key_field);
        let id = value.as_ref().and_then(|value| {
            let key = Value::String(value.clone());
            let matches = ctx.world.records.find(&key_object.name, &key_field, &key);
            matches.first().cloned()
        });
        Lock {
            // External ids compare without regard to case, as `store::same` does.
            key: format!(
                "upsert {} {} {}",
                key_object.name,
                key_field,
                value.unwrap_or_default().to_ascii_lowercase()
            ),
            id,
        }
    };
    run_body(ctx, call, lock, move |ctx, record| {
        let value = external_value(record, &field).ok_or_else(|| {
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
    let lock = |ctx: &Ctx, item: &Map<String, Value>| by_id(ctx, item["Id"].as_str().unwrap_or(""));
    run(ctx, items, all_or_none, lock, |ctx, item| {
        let id = item["Id"].as_str().unwrap_or("").to_string();
        records::delete(ctx, None, &id).map(|()| (stored_id(ctx, &id), None))
    })
}

fn run_body(
    ctx: &mut Ctx,
    call: &Call,
    lock: impl Fn(&Ctx, &Map<String, Value>) -> Lock,
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
    run(ctx, items, all_or_none, lock, save)
}

/// Applies `save` to each item in order; with `allOrNone`, one failure undoes them all.
fn run(
    ctx: &mut Ctx,
    items: Vec<Map<String, Value>>,
    all_or_none: bool,
    lock: impl Fn(&Ctx, &Map<String, Value>) -> Lock,
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
    let outcomes: Vec<_> = items
        .iter()
        .map(|item| {
            let Lock { key, id } = lock(ctx, item);
            match ctx.shared.delivery.lock_row(&key) {
                true => Err(unable_to_lock(id.as_deref())),
                false => save(ctx, item),
            }
        })
        .collect();
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
                let errors = records::save_notes(ctx, &id);
                let mut result = json!({"id": id, "success": true, "errors": errors});
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

/// Which record a lock refusal names: the key that makes it the same record again, and
/// its id when it already exists.
struct Lock {
    key: String,
    id: Option<String>,
}

/// The lock of an update or delete: the record's id (its 15 characters, so both forms
/// are the same record).
fn by_id(ctx: &Ctx, id: &str) -> Lock {
    let stored = ctx.world.records.get(id).map(|r| r.id.clone());
    Lock {
        key: format!("id {}", &id[..id.len().min(15)]),
        id: stored,
    }
}

/// `UNABLE_TO_LOCK_ROW`, worded as Salesforce reports it: `… or 1 records: ID` for an
/// existing record, the shorter form for a new one (as seen on inserts).
fn unable_to_lock(id: Option<&str>) -> RecordError {
    let message = match id {
        Some(id) => {
            format!("unable to obtain exclusive access to this record or 1 records: {id}")
        }
        None => "unable to obtain exclusive access to this record".to_string(),
    };
    RecordError::new(400, "UNABLE_TO_LOCK_ROW", message)
}

/// The external id a record carries in `field` (any case), as text.
fn external_value(record: &Map<String, Value>, field: &str) -> Option<String> {
    record
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(field))
        .map(|(_, v)| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
}

/// A field's declared name, or the name as given when the object has no such field.
fn canonical_field(object: &crate::schema::Object, field: &str) -> String {
    object
        .field(field)
        .map_or_else(|| field.to_string(), |f| f.name.clone())
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
    ctx.world.schema.object(name).cloned().ok_or_else(|| {
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
