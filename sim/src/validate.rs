//! Whether a record body fits the schema, with Salesforce's error codes
//! (`INVALID_FIELD`, `INVALID_FIELD_FOR_INSERT_UPDATE`, `REQUIRED_FIELD_MISSING`,
//! `STRING_TOO_LONG`, `JSON_PARSER_ERROR`, `INVALID_TYPE_ON_FIELD_IN_RECORD`,
//! `MALFORMED_ID`), as a [`RecordError`] the caller wraps in REST's or sObject
//! Collections' envelope. Checks only: no storage, no HTTP.

use serde_json::{Map, Value};

use crate::errors::RecordError;
use crate::ids;
use crate::schema::{Field, FieldType, Object, Schema};

/// Whether a body creates a record or changes one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Create,
    Update,
}

/// Checks a body against the object, and returns its fields under their canonical
/// names with their values normalised (numbers as numbers, ids in 18 characters).
pub fn check(
    schema: &Schema,
    object: &Object,
    body: &Map<String, Value>,
    write: Write,
) -> Result<Map<String, Value>, RecordError> {
    let mut out = Map::new();
    for (key, value) in body {
        if key == "attributes" {
            continue;
        }
        let Some(field) = object.field(key) else {
            return Err(RecordError::new(
                400,
                "INVALID_FIELD",
                format!("No such column '{key}' on sobject of type {}", object.name),
            ));
        };
        if field.kind == FieldType::Id && write == Write::Create {
            return Err(RecordError::new(
                400,
                "INVALID_FIELD",
                "The Id field should not be specified in the sobject data.",
            )
            .on("Id"));
        }
        if !field.writable {
            return Err(RecordError::new(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    field.name
                ),
            )
            .on(&field.name));
        }
        let value = coerce(schema, field, value)?;
        if value.is_null() && field.required {
            return Err(missing(std::slice::from_ref(&field.name)));
        }
        out.insert(field.name.clone(), value);
    }
    if write == Write::Create {
        let absent: Vec<String> = object
            .fields
            .iter()
            .filter(|f| f.required && f.writable && !out.contains_key(&f.name))
            .map(|f| f.name.clone())
            .collect();
        if !absent.is_empty() {
            return Err(missing(&absent));
        }
    }
    Ok(out)
}

/// The value a field stores, or the error Salesforce gives for it.
fn coerce(schema: &Schema, field: &Field, value: &Value) -> Result<Value, RecordError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let wrong = || {
        let token = match value {
            Value::String(_) => "VALUE_STRING",
            Value::Bool(true) => "VALUE_TRUE",
            Value::Bool(false) => "VALUE_FALSE",
            Value::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
            Value::Number(_) => "VALUE_NUMBER_INT",
            Value::Array(_) => "START_ARRAY",
            _ => "START_OBJECT",
        };
        RecordError::new(
            400,
            "JSON_PARSER_ERROR",
            format!(
                "Cannot deserialize instance of {} from {token} value {value} or request may be missing a required field",
                field.kind.describe_name()
            ),
        )
    };
    match field.kind {
        FieldType::String => {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => return Err(wrong()),
            };
            if text.chars().count() > field.length {
                return Err(RecordError::new(
                    400,
                    "STRING_TOO_LONG",
                    format!(
                        "{}: data value too large: {text} (max length={})",
                        field.label, field.length
                    ),
                )
                .on(&field.name));
            }
            Ok(Value::String(text))
        }
        FieldType::Boolean => value.as_bool().map(Value::Bool).ok_or_else(wrong),
        FieldType::Int => value
            .as_i64()
            .filter(|n| i32::try_from(*n).is_ok())
            .map(Value::from)
            .ok_or_else(wrong),
        FieldType::Double => value.as_f64().map(Value::from).ok_or_else(wrong),
        FieldType::DateTime => match value.as_str() {
            Some(s) if looks_like_datetime(s) => Ok(value.clone()),
            Some(s) => Err(RecordError::new(
                400,
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                format!("{}: value not of required type: {s}", field.label),
            )
            .on(&field.name)),
            None => Err(wrong()),
        },
        FieldType::Id | FieldType::Reference => {
            let Some(text) = value.as_str() else {
                return Err(wrong());
            };
            let fits = ids::canonical(text).filter(|id| {
                field.kind == FieldType::Id
                    || schema
                        .object_of_id(id)
                        .is_some_and(|o| field.reference_to.contains(&o.name))
            });
            fits.map(Value::String).ok_or_else(|| {
                RecordError::new(
                    400,
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {text}", field.label),
                )
                .on(&field.name)
            })
        }
    }
}

fn missing(fields: &[String]) -> RecordError {
    RecordError {
        status: 400,
        code: "REQUIRED_FIELD_MISSING",
        message: format!("Required fields are missing: [{}]", fields.join(", ")),
        fields: fields.to_vec(),
    }
}

/// `2026-12-01T13:31:45.000+0000` or `…Z`: the date and time parts, loosely.
fn looks_like_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn schema() -> Schema {
        Schema::from_json(
            r#"{"objects":[
                {"name":"Device__c","fields":[
                    {"name":"Serial__c","type":"string","length":8,"required":true,"externalId":true},
                    {"name":"Online__c","type":"boolean"},
                    {"name":"Account__c","type":"reference","referenceTo":"Account"}]}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn bodies_are_checked_as_salesforce_does() {
        let schema = schema();
        let device = schema.object("Device__c").unwrap();
        let code = |v: Value, w| check(&schema, device, &body(v), w).map_err(|e| e.code);
        assert!(
            code(
                json!({"Name": "d1", "Serial__c": "S1", "online__c": true}),
                Write::Create
            )
            .is_ok()
        );
        assert_eq!(
            code(json!({"Name": "d1"}), Write::Create),
            Err("REQUIRED_FIELD_MISSING")
        );
        assert_eq!(
            code(json!({"Name": "d1"}), Write::Update).map(|m| m.len()),
            Ok(1)
        );
        assert_eq!(
            code(json!({"Nope__c": 1}), Write::Update),
            Err("INVALID_FIELD")
        );
        assert_eq!(
            code(json!({"Serial__c": "123456789"}), Write::Update),
            Err("STRING_TOO_LONG")
        );
        assert_eq!(
            code(json!({"Online__c": "yes"}), Write::Update),
            Err("JSON_PARSER_ERROR")
        );
        assert_eq!(
            code(json!({"Account__c": "003SIM000000001YBA"}), Write::Update),
            Err("MALFORMED_ID")
        );
        assert_eq!(
            code(json!({"Id": "a00SIM000000001YBA"}), Write::Create),
            Err("INVALID_FIELD")
        );
        assert_eq!(
            code(
                json!({"CreatedDate": "2026-01-01T00:00:00Z"}),
                Write::Update
            ),
            Err("INVALID_FIELD_FOR_INSERT_UPDATE")
        );
        assert_eq!(
            code(json!({"Serial__c": null}), Write::Update),
            Err("REQUIRED_FIELD_MISSING")
        );
        let stored = check(
            &schema,
            device,
            &body(json!({"Account__c": "001SIM000000001"})),
            Write::Update,
        )
        .unwrap();
        assert_eq!(stored["Account__c"], "001SIM000000001YBA");
    }
}
