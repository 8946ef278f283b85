//! What the org says about its objects: the global `GET sobjects`, an object's basic
//! information `GET sobjects/{Object}` and `GET sobjects/{Object}/describe`, with the
//! keys jsforce and the Salesforce CLI read.
//!
//! Read-only views of `schema.rs`; a real describe has many more keys, left out here.

use serde_json::{Value, json};

use crate::http::Response;
use crate::schema::{Field, FieldType, Object};

use super::call::{Call, Ctx};

/// `GET sobjects`.
pub fn global(ctx: &mut Ctx, _call: &Call, _segments: &[&str]) -> Response {
    let objects: Vec<Value> = ctx
        .world
        .schema
        .objects
        .iter()
        .map(|o| summary(ctx, o))
        .collect();
    Response::json(
        200,
        &json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects}),
    )
}

/// `GET sobjects/{Object}`.
pub fn basic(ctx: &mut Ctx, _call: &Call, segments: &[&str]) -> Response {
    match ctx.object(segments[1]) {
        Ok(object) => Response::json(
            200,
            &json!({"objectDescribe": summary(ctx, &object), "recentItems": []}),
        ),
        Err(refusal) => refusal,
    }
}

/// `GET sobjects/{Object}/describe`.
pub fn describe(ctx: &mut Ctx, _call: &Call, segments: &[&str]) -> Response {
    let object = match ctx.object(segments[1]) {
        Ok(object) => object,
        Err(refusal) => return refusal,
    };
    let mut body = summary(ctx, &object);
    body["fields"] = Value::Array(object.fields.iter().map(field).collect());
    body["childRelationships"] = json!([]);
    body["recordTypeInfos"] = json!([]);
    Response::json(200, &body)
}

fn summary(ctx: &Ctx, object: &Object) -> Value {
    let base = ctx.url(&format!("sobjects/{}", object.name));
    json!({
        "name": object.name,
        "label": object.label,
        "labelPlural": object.label_plural,
        "keyPrefix": object.key_prefix,
        "custom": object.custom,
        "createable": true,
        "updateable": true,
        "deletable": true,
        "queryable": true,
        "retrieveable": true,
        "searchable": false,
        "layoutable": false,
        "urls": {
            "sobject": base,
            "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}"),
        },
    })
}

fn field(field: &Field) -> Value {
    let id = field.kind == FieldType::Id;
    json!({
        "name": field.name,
        "label": field.label,
        "type": field.kind.describe_name(),
        "soapType": soap_type(field.kind),
        "length": field.length,
        "byteLength": field.length * 3,
        "precision": if field.kind == FieldType::Double { 18 } else { 0 },
        "scale": 0,
        "digits": if field.kind == FieldType::Int { 9 } else { 0 },
        "nillable": !field.required && !id && field.kind != FieldType::Boolean,
        "createable": field.writable,
        "updateable": field.writable,
        "defaultedOnCreate": !field.writable || field.kind == FieldType::Boolean,
        "externalId": field.external_id,
        "idLookup": id || field.external_id,
        "unique": false,
        "custom": field.custom(),
        "calculated": false,
        "filterable": true,
        "sortable": true,
        "groupable": field.kind != FieldType::Double,
        "referenceTo": field.reference_to,
        "relationshipName": relationship_name(field),
        "picklistValues": [],
    })
}

fn soap_type(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Id | FieldType::Reference => "tns:ID",
        FieldType::String => "xsd:string",
        FieldType::Boolean => "xsd:boolean",
        FieldType::Int => "xsd:int",
        FieldType::Double => "xsd:double",
        FieldType::DateTime => "xsd:dateTime",
    }
}

/// `AccountId` -> `Account`, `Site__c` -> `Site__r`.
fn relationship_name(field: &Field) -> Value {
    if field.kind != FieldType::Reference {
        return Value::Null;
    }
    let name = match field.name.strip_suffix("__c") {
        Some(stem) => format!("{stem}__r"),
        None => field.name.trim_end_matches("Id").to_string(),
    };
    Value::String(name)
}
