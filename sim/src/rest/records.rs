//! One record at a time: `sobjects/{Object}` (POST create, GET basic info),
//! `sobjects/{Object}/{id}` (GET, PATCH, DELETE) and `sobjects/{Object}/{field}/{value}`
//! (GET and PATCH upsert by external id), with Salesforce's status codes and bodies.
//!
//! The save operations (`create`, `update`, `upsert`, `delete`) are shared with
//! sObject Collections; they validate through the schema and never write a bad record.

use serde_json::{Map, Value, json};

use crate::errors::RecordError;
use crate::errors::not_found;
use crate::form::Params;
use crate::http::Response;
use crate::ids;
use crate::schema::{FieldType, Object, computed_name};
use crate::validate::{Write, check};

use super::call::{Call, Ctx, error_response, json_object};

/// `POST sobjects/{Object}` -> 201 `{"id","success":true,"errors":[]}`.
pub fn post(ctx: &mut Ctx, call: &Call, segments: &[&str]) -> Response {
    let object = match ctx.object(segments[1]) {
        Ok(object) => object,
        Err(refusal) => return refusal,
    };
    let body = match json_object(call.body) {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    match create(ctx, &object, &body) {
        Ok(id) => Response::json(
            201,
            &json!({"id": id, "success": true, "errors": save_notes(ctx, &id)}),
        )
        .header("Location", ctx.record_url(&object.name, &id)),
        Err(error) => error_response(&error),
    }
}

/// `GET sobjects/{Object}/{id}[?fields=a,b]`.
pub fn get(ctx: &mut Ctx, call: &Call, segments: &[&str]) -> Response {
    let object = match ctx.object(segments[1]) {
        Ok(object) => object,
        Err(refusal) => return refusal,
    };
    if let Err(error) = insert_only(&object, "retrieve") {
        return error_response(&error);
    }
    let Some(id) = live_id(ctx, &object, segments[2]) else {
        return not_found();
    };
    show(ctx, &object, &id, call)
}

/// `PATCH sobjects/{Object}/{id}` -> 204.
pub fn patch(ctx: &mut Ctx, call: &Call, segments: &[&str]) -> Response {
    let object = match ctx.object(segments[1]) {
        Ok(object) => object,
        Err(refusal) => return refusal,
    };
    let body = match json_object(call.body) {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    match update(ctx, &object, segments[2], &body) {
        Ok(()) => Response::empty(204),
        Err(error) if error.status == 404 => not_found(),
        Err(error) => error_response(&error),
    }
}

/// `DELETE sobjects/{Object}/{id}` -> 204.
pub fn delete_one(ctx: &mut Ctx, _call: &Call, segments: &[&str]) -> Response {
    let object = match ctx.object(segments[1]) {
        Ok(object) => object,
        Err(refusal) => return refusal,
    };
    match delete(ctx, Some(&object), segments[2]) {
        Ok(()) => Response::empty(204),
        Err(error) if matches!(error.code, "ENTITY_IS_DELETED" | EVENT_REFUSAL) => {
            error_response(&error)
        }
        Err(_) => not_found(),
    }
}

/// `GET sobjects/{Object}/{field}/{value}`: the one live record with that external id.
pub fn get_by_external_id(ctx: &mut Ctx, call: &Call, segments: &[&str]) -> Response {
    let object = match ctx.object(segments[1]) {
        Ok(object) => object,
        Err(refusal) => return refusal,
    };
    let field = match insert_only(&object, "retrieve")
        .and_then(|()| external_field(&object, segments[2]))
    {
        Ok(field) => field,
        Err(error) => return error_response(&error),
    };
    let matches = ctx.world.records.find(
        &object.name,
        &field,
        &Value::String(segments[3].to_string()),
    );
    match matches.as_slice() {
        [] => not_found(),
        [id] => show(ctx, &object, &id.clone(), call),
        many => multiple_choices(ctx, &object, many),
    }
}

/// `PATCH sobjects/{Object}/{field}/{value}`: 201 `{…,"created":true}` for a new record;
/// an update answers 200 `{…,"created":false}` from v46.0 on, 204 before.
pub fn upsert_by_external_id(ctx: &mut Ctx, call: &Call, segments: &[&str]) -> Response {
    let object = match ctx.object(segments[1]) {
        Ok(object) => object,
        Err(refusal) => return refusal,
    };
    let body = match json_object(call.body) {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let only_update = Params::urlencoded(call.query.as_bytes()).get("updateOnly") == Some("true");
    match upsert(ctx, &object, segments[2], segments[3], &body, only_update) {
        Ok(Upserted::Created(id)) => Response::json(
            201,
            &json!({"id": id, "success": true, "errors": [], "created": true}),
        )
        .header("Location", ctx.record_url(&object.name, &id)),
        Ok(Upserted::Updated(_)) if ctx.version < 46 => Response::empty(204),
        Ok(Upserted::Updated(id)) => Response::json(
            200,
            &json!({"id": id, "success": true, "errors": [], "created": false}),
        ),
        Ok(Upserted::Many(ids)) => multiple_choices(ctx, &object, &ids),
        Err(error) if error.status == 404 => not_found(),
        Err(error) => error_response(&error),
    }
}

/// The `errors` of a successful save: none, but a published platform event's
/// `OPERATION_ENQUEUED` whose message is its `EventUuid`, as the platform events guide
/// shows (publishing is asynchronous: "enqueued" is not yet "delivered").
pub fn save_notes(ctx: &Ctx, id: &str) -> Value {
    let uuid = ctx
        .world
        .records
        .get(id)
        .and_then(|record| record.fields.get("EventUuid"))
        .and_then(Value::as_str);
    match uuid {
        Some(uuid) => {
            json!([{"statusCode": "OPERATION_ENQUEUED", "message": uuid, "fields": []}])
        }
        None => json!([]),
    }
}

/// What an upsert did.
pub enum Upserted {
    Created(String),
    Updated(String),
    /// More than one record has that external id: nothing was written.
    Many(Vec<String>),
}

/// Validates and stores a new record.
pub fn create(
    ctx: &mut Ctx,
    object: &Object,
    body: &Map<String, Value>,
) -> Result<String, RecordError> {
    let mut fields = check(&ctx.world.schema, object, body, Write::Create)?;
    unique(ctx, object, &fields, None)?;
    if let Some(name) = computed_name(object, &fields) {
        fields.insert("Name".into(), Value::String(name));
    }
    if object.platform_event {
        // The system's own field, which a publisher cannot set (`check` refuses it).
        fields.insert("EventUuid".into(), Value::String(crate::codes::uuid_v4()));
    }
    let records = &mut ctx.world.records;
    let id = records.insert(&object.name, &object.key_prefix, fields);
    records.note_save(&object.name, &id);
    Ok(id)
}

/// Validates and applies changes to a live record of `object`.
pub fn update(
    ctx: &mut Ctx,
    object: &Object,
    id: &str,
    body: &Map<String, Value>,
) -> Result<(), RecordError> {
    insert_only(object, "update")?;
    let Some(id) = live_id(ctx, object, id) else {
        return Err(missing_record(ctx, id));
    };
    let mut body = body.clone();
    // The id may be repeated in the body, as collections require.
    body.retain(|k, _| !k.eq_ignore_ascii_case("id"));
    let changes = check(&ctx.world.schema, object, &body, Write::Update)?;
    unique(ctx, object, &changes, Some(&id))?;
    ctx.world.records.update(&id, changes);
    let name = ctx
        .world
        .records
        .get(&id)
        .and_then(|record| computed_name(object, &record.fields));
    if let Some(name) = name {
        let mut fields = Map::new();
        fields.insert("Name".into(), Value::String(name));
        ctx.world.records.update(&id, fields);
    }
    ctx.world.records.note_save(&object.name, &id);
    Ok(())
}

/// Deletes a live record (of `object`, when given).
pub fn delete(ctx: &mut Ctx, object: Option<&Object>, id: &str) -> Result<(), RecordError> {
    let stored = ctx.world.records.get(id).map(|r| r.object.clone());
    if let Some(event) = stored
        .and_then(|name| ctx.world.schema.object(&name))
        .filter(|o| o.platform_event)
    {
        insert_only(event, "delete")?;
    }
    if let Some(object) = object {
        insert_only(object, "delete")?;
    }
    let found = ctx
        .world
        .records
        .get(id)
        .filter(|r| object.is_none_or(|o| o.name == r.object))
        .map(|r| r.id.clone());
    match found {
        Some(id) if ctx.world.records.delete(&id) => Ok(()),
        _ => Err(missing_record(ctx, id)),
    }
}

/// Creates or updates the record whose external id `field` is `value`.
pub fn upsert(
    ctx: &mut Ctx,
    object: &Object,
    field: &str,
    value: &str,
    body: &Map<String, Value>,
    only_update: bool,
) -> Result<Upserted, RecordError> {
    insert_only(object, "upsert")?;
    let field = external_field(object, field)?;
    let key = Value::String(value.to_string());
    let matches = ctx.world.records.find(&object.name, &field, &key);
    let mut body = body.clone();
    body.retain(|k, _| !k.eq_ignore_ascii_case(&field));
    match matches.as_slice() {
        [] if only_update => Err(RecordError::new(
            404,
            "NOT_FOUND",
            "The requested resource does not exist",
        )),
        [] => {
            // The key arrives as URL text; a numeric external id stores it as a number.
            let key = match object.field(&field).map(|f| f.kind) {
                Some(FieldType::Int | FieldType::Double) => value
                    .parse::<serde_json::Number>()
                    .map(Value::Number)
                    .unwrap_or(key),
                _ => key,
            };
            let mut given = Map::new();
            given.insert(field.clone(), key);
            let typed = check(&ctx.world.schema, object, &given, Write::Update)?;
            body.extend(typed);
            create(ctx, object, &body).map(Upserted::Created)
        }
        [id] => {
            let id = id.clone();
            update(ctx, object, &id, &body).map(|()| Upserted::Updated(id))
        }
        many => Ok(Upserted::Many(many.to_vec())),
    }
}

/// The code of [`insert_only`]'s refusal. Unconfirmed against a real org: Salesforce
/// documents that events are insert-only and cannot be queried, not the wording of the
/// refusal (docs/simulator.md, "What it does not do").
pub const EVENT_REFUSAL: &str = "INVALID_TYPE_FOR_OPERATION";

/// Platform events are published (inserted) and nothing else: any other operation on
/// one is refused.
pub fn insert_only(object: &Object, operation: &str) -> Result<(), RecordError> {
    match object.platform_event {
        true => Err(RecordError::new(
            400,
            EVENT_REFUSAL,
            format!("entity type {} does not support {operation}", object.name),
        )),
        false => Ok(()),
    }
}

/// `DUPLICATE_VALUE` when a unique field's new value is another live record's.
fn unique(
    ctx: &Ctx,
    object: &Object,
    fields: &Map<String, Value>,
    own_id: Option<&str>,
) -> Result<(), RecordError> {
    for field in object.fields.iter().filter(|f| f.unique) {
        let Some(value) = fields.get(&field.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let found = ctx.world.records.find(&object.name, &field.name, value);
        if let Some(other) = found.iter().find(|id| Some(id.as_str()) != own_id) {
            return Err(RecordError::new(
                400,
                "DUPLICATE_VALUE",
                format!(
                    "duplicate value found: {} duplicates value on record with id: {other}",
                    field.name
                ),
            ));
        }
    }
    Ok(())
}

/// The canonical name of an external-id field, or Salesforce's 404 for any other.
fn external_field(object: &Object, name: &str) -> Result<String, RecordError> {
    object
        .field(name)
        .filter(|f| f.external_id)
        .map(|f| f.name.clone())
        .ok_or_else(|| {
            RecordError::new(
                404,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {name}"),
            )
        })
}

/// The 18-character id of a live record of `object`.
fn live_id(ctx: &Ctx, object: &Object, id: &str) -> Option<String> {
    ctx.world
        .records
        .get(id)
        .filter(|r| !r.deleted && r.object == object.name)
        .map(|r| r.id.clone())
}

/// `ENTITY_IS_DELETED` for a deleted record, else a 404 for an id that names none.
fn missing_record(ctx: &Ctx, id: &str) -> RecordError {
    let deleted = ctx.world.records.get(id).is_some_and(|r| r.deleted);
    if deleted {
        RecordError::new(404, "ENTITY_IS_DELETED", "entity is deleted")
    } else if ids::canonical(id).is_none() {
        RecordError::new(404, "MALFORMED_ID", format!("malformed id {id}"))
    } else {
        RecordError::new(
            404,
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
        )
    }
}

fn show(ctx: &Ctx, object: &Object, id: &str, call: &Call) -> Response {
    let params = Params::urlencoded(call.query.as_bytes());
    let fields = match params.get("fields") {
        None => None,
        Some(list) => {
            let mut names = Vec::new();
            for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match object.field(raw) {
                    Some(field) => names.push(field.name.clone()),
                    None => {
                        return error_response(&RecordError::new(
                            400,
                            "INVALID_FIELD",
                            format!("No such column '{raw}' on entity '{}'.", object.name),
                        ));
                    }
                }
            }
            Some(names)
        }
    };
    let Some(record) = ctx.world.records.get(id) else {
        return not_found();
    };
    Response::json(
        200,
        &ctx.shown(object, id, &record.fields, fields.as_deref()),
    )
}

/// 300 with the matching records' URLs.
fn multiple_choices(ctx: &Ctx, object: &Object, ids: &[String]) -> Response {
    let urls: Vec<String> = ids
        .iter()
        .map(|id| ctx.record_url(&object.name, id))
        .collect();
    Response::json(300, &json!(urls))
}
