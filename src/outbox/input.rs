//! What `sfpair send` (and the broker's `send`) accepts, checked before anything is written:
//! the sObject and field names, and each record: a JSON object, carrying its external-id field
//! as a non-empty string (unless `--auto-id` may fill it), no `attributes` of its own, and no
//! larger than the record limit.
//!
//! The data is one JSON object, a JSON array of objects, or JSON lines (objects one after
//! another). One bad record refuses them all, naming the record by its position (1-based)
//! and saying why: a partial queue would leave the sender unsure what was taken.
//!
//! Pure: no I/O. The names go into URL paths (`composite/sobjects/{SObject}/{Field}`), so the
//! name rule here is the only thing standing between the input and the path: Salesforce API
//! names are letters, digits and underscores, starting with a letter.

use serde_json::{Map, Value};

use super::{NewRecord, Target};
use crate::error::Error;

/// Salesforce's longest API name (object and field names are at most 40 characters plus a
/// namespace prefix and suffix; 80 leaves room for both).
const MAX_NAME: usize = 80;

/// Checks an sObject or field API name (`Device_Reading__c`, `ns__Key__c`).
pub fn api_name(name: &str, what: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if starts_with_letter
        && name.len() <= MAX_NAME
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Ok(());
    }
    Err(Error::config(format!(
        "{what} {}: not a Salesforce API name (letters, digits and underscores, starting with a \
         letter, at most {MAX_NAME} characters), e.g. Device_Reading__c",
        crate::sanitize::text(name)
    )))
}

/// The target of `send SOBJECT --external-id FIELD`, or of `send --event EVENT__e`.
pub fn target(object: &str, external_id: Option<&str>, event: bool) -> Result<Target, Error> {
    api_name(object, if event { "--event" } else { "SOBJECT" })?;
    if event {
        if !object.to_ascii_lowercase().ends_with("__e") {
            return Err(Error::config(format!(
                "--event {object}: a platform event's API name ends in __e (e.g. Device_Alarm__e)"
            )));
        }
        if external_id.is_some() {
            return Err(Error::config(
                "--event and --external-id do not go together: platform events are inserted, \
                 never upserted",
            ));
        }
        return Ok(Target::Event {
            object: object.into(),
        });
    }
    let Some(field) = external_id else {
        return Err(Error::config(format!(
            "sfpair send {object} needs --external-id FIELD: the external-id field that makes a \
             replay update the same row instead of adding a second one"
        )));
    };
    api_name(field, "--external-id")?;
    Ok(Target::Upsert {
        object: object.into(),
        field: field.into(),
    })
}

/// The target of a send as given: `SOBJECT` with `--external-id`, or `--event`, never both.
pub fn target_of(
    sobject: Option<&str>,
    external_id: Option<&str>,
    event: Option<&str>,
    auto_id: bool,
) -> Result<Target, Error> {
    let target = match (event, sobject) {
        (Some(event), None) => target(event, external_id, true)?,
        (Some(_), Some(object)) => {
            return Err(Error::config(format!(
                "send {object} --event: give an sObject to upsert or --event EVENT__e, not both"
            )));
        }
        (None, Some(object)) => target(object, external_id, false)?,
        (None, None) => {
            return Err(Error::config(
                "send needs SOBJECT --external-id FIELD (an upsert), or --event EVENT__e",
            ));
        }
    };
    if auto_id && matches!(target, Target::Event { .. }) {
        return Err(Error::config(
            "--auto-id is for upserts: a platform event has no external id",
        ));
    }
    Ok(target)
}

/// Splits `data` into checked records for `target`.
pub fn records(
    data: &str,
    target: &Target,
    auto_id: bool,
    max_record: usize,
) -> Result<Vec<NewRecord>, Error> {
    let mut out = Vec::new();
    for (index, value) in values(data)?.into_iter().enumerate() {
        let n = index + 1;
        let Value::Object(map) = value else {
            return Err(refused(
                n,
                &format!("it is {}, not a JSON object", kind(&value)),
            ));
        };
        out.push(record(n, map, target, auto_id, max_record)?);
    }
    if out.is_empty() {
        return Err(Error::config(
            "no records in the data: give a JSON object, an array of objects, or JSON lines",
        ));
    }
    Ok(out)
}

/// The JSON values in `data`: the elements of one top-level array, or each value of a stream
/// (one object, or JSON lines).
fn values(data: &str) -> Result<Vec<Value>, Error> {
    if data.trim_start().starts_with('[') {
        return match serde_json::from_str::<Value>(data) {
            Ok(Value::Array(items)) => Ok(items),
            // A top-level `[` parses as an array or fails.
            Ok(_) => Err(Error::config(
                "the data starts with [ but is not a JSON array",
            )),
            Err(e) => Err(Error::config(format!(
                "the data is not a valid JSON array: {} at line {} column {}",
                category(&e),
                e.line(),
                e.column()
            ))),
        };
    }
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(data).into_iter::<Value>();
    for item in stream.by_ref() {
        match item {
            Ok(v) => out.push(v),
            Err(e) => {
                return Err(refused(
                    out.len() + 1,
                    &format!(
                        "not valid JSON: {} at line {} column {}",
                        category(&e),
                        e.line(),
                        e.column()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

fn record(
    n: usize,
    mut map: Map<String, Value>,
    target: &Target,
    auto_id: bool,
    max_record: usize,
) -> Result<NewRecord, Error> {
    if map.keys().any(|k| k.eq_ignore_ascii_case("attributes")) {
        return Err(refused(
            n,
            "it has its own \"attributes\"; sfpair sets the sObject type itself",
        ));
    }
    let mut missing_id = false;
    if let Target::Upsert { field, .. } = target {
        let key = map.keys().find(|k| k.eq_ignore_ascii_case(field)).cloned();
        match key.as_ref().and_then(|k| map.get(k)) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            None if auto_id => missing_id = true,
            None => {
                return Err(refused(
                    n,
                    &format!(
                        "it has no {field}, its external id (add it, or pass --auto-id to let \
                         sfpair fill in one unique to this device)"
                    ),
                ));
            }
            Some(other) => {
                return Err(refused(
                    n,
                    &format!(
                        "its {field} is {}; an external id must be a non-empty string",
                        kind(other)
                    ),
                ));
            }
        }
        // One spelling on the wire: the field as --external-id names it.
        if let Some(k) = key.filter(|k| k != field)
            && let Some(v) = map.remove(&k)
        {
            map.insert(field.clone(), v);
        }
    }
    let json = Value::Object(map).to_string();
    // Room for the id sfpair may add (`"Field":"<16 hex>-<20 digits>"`).
    let reserve = if missing_id { 48 + MAX_NAME } else { 0 };
    if json.len() + reserve > max_record {
        return Err(refused(
            n,
            &format!(
                "it is {} bytes of JSON; the limit per record is {max_record} bytes",
                json.len() + reserve
            ),
        ));
    }
    Ok(NewRecord {
        target: target.clone(),
        json,
        auto_id: missing_id,
    })
}

fn refused(n: usize, why: &str) -> Error {
    Error::config(format!("record {n} refused: {why}; nothing was queued"))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json's error category in words, without its text (which may quote the input).
fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "it ends too early",
        serde_json::error::Category::Syntax => "a syntax error",
        serde_json::error::Category::Data => "a data error",
        serde_json::error::Category::Io => "a read error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::CleanErr;

    fn upsert() -> Target {
        target("Device_Reading__c", Some("Reading_Key__c"), false).unwrap()
    }

    #[test]
    fn an_object_an_array_and_json_lines_are_all_accepted() {
        let one = records(
            r#"{"Reading_Key__c":"a","Value__c":1}"#,
            &upsert(),
            false,
            1024,
        );
        assert_eq!(one.unwrap().len(), 1);
        let array = records(
            r#"[{"Reading_Key__c":"a"},{"Reading_Key__c":"b"}]"#,
            &upsert(),
            false,
            1024,
        );
        assert_eq!(array.unwrap().len(), 2);
        let lines = "{\"Reading_Key__c\":\"a\"}\n{\"Reading_Key__c\":\"b\"}\n\n{\"Reading_Key__c\":\"c\"}\n";
        let lines = records(lines, &upsert(), false, 1024).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].json, r#"{"Reading_Key__c":"c"}"#);
    }

    #[test]
    fn a_bad_record_is_named_by_position_and_why() {
        let e = records(
            "{\"Reading_Key__c\":\"a\"}\n{\"Value__c\":2}\n",
            &upsert(),
            false,
            1024,
        )
        .map(|_| ())
        .clean_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message()
                .starts_with("record 2 refused: it has no Reading_Key__c"),
            "{}",
            e.message()
        );
        assert!(e.message().contains("--auto-id"));

        let e = records("[1]", &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(
            e.message().contains("record 1 refused: it is a number"),
            "{}",
            e.message()
        );
        let e = records(r#"{"Reading_Key__c":7}"#, &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(
            e.message()
                .contains("is a number; an external id must be a non-empty string")
        );
        let e = records(r#"{"Reading_Key__c":" "}"#, &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("non-empty string"));
        let e = records("{\"Reading_Key__c\":\"a\"}\n{oops", &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(
            e.message().starts_with("record 2 refused: not valid JSON"),
            "{}",
            e.message()
        );
        let e = records(r#"[{"Reading_Key__c":"a"}"#, &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("not a valid JSON array"));
        let e = records("  \n", &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(e.message().starts_with("no records"));
        let e = records(
            r#"{"Reading_Key__c":"a","attributes":{"type":"Account"}}"#,
            &upsert(),
            false,
            1024,
        )
        .map(|_| ())
        .clean_err();
        assert!(e.message().contains("attributes"));
    }

    #[test]
    fn the_record_limit_counts_the_json_and_the_id_to_come() {
        let big = format!(
            r#"{{"Reading_Key__c":"a","Sensor__c":"{}"}}"#,
            "x".repeat(100)
        );
        assert!(records(&big, &upsert(), false, big.len()).is_ok());
        let e = records(&big, &upsert(), false, big.len() - 1)
            .map(|_| ())
            .clean_err();
        assert!(
            e.message().contains(&format!("it is {} bytes", big.len())),
            "{}",
            e.message()
        );
        let e = records(r#"{"Value__c":1}"#, &upsert(), true, 40)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("limit per record is 40 bytes"));
    }

    #[test]
    fn auto_id_marks_only_the_records_that_lack_one() {
        let got = records(
            "{\"Reading_Key__c\":\"a\"}\n{\"Value__c\":2}",
            &upsert(),
            true,
            1024,
        )
        .unwrap();
        assert!(!got[0].auto_id);
        assert!(got[1].auto_id);
    }

    #[test]
    fn the_external_id_is_spelled_as_the_flag_spells_it() {
        let got = records(r#"{"reading_key__C":"a"}"#, &upsert(), false, 1024).unwrap();
        assert_eq!(got[0].json, r#"{"Reading_Key__c":"a"}"#);
    }

    #[test]
    fn names_that_could_bend_the_path_are_refused() {
        for bad in [
            "",
            "Account/../x",
            "Acc ount",
            "1Account",
            "Account?x=1",
            "Ä",
            &"a".repeat(81),
        ] {
            let e = target(bad, Some("Key__c"), false).map(|_| ()).clean_err();
            assert_eq!(e.exit_code(), 2);
            let e = target("Account", Some(bad), false).map(|_| ()).clean_err();
            assert_eq!(e.exit_code(), 2);
        }
        assert!(target("ns__Thing__c", Some("ns__Key__c"), false).is_ok());
        let e = target("Device_Reading__c", None, false)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("needs --external-id"));
        let e = target("Device_Alarm__c", None, true)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("ends in __e"));
        let e = target("Device_Alarm__e", Some("K__c"), true)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("do not go together"));
        assert!(target("Device_Alarm__e", None, true).is_ok());
    }

    #[test]
    fn events_need_no_external_id() {
        let event = target("Device_Alarm__e", None, true).unwrap();
        let got = records(r#"{"Code__c":"E1"}"#, &event, false, 1024).unwrap();
        assert!(!got[0].auto_id);
    }
}
