//! What a committed request publishes: each insert of a platform event (`X__e`) becomes an
//! event on `/event/X__e`, and each create, update or delete of any other record becomes
//! a Change Data Capture event on `/data/XChangeEvent` (`Device__c` →
//! `/data/Device__ChangeEvent`), in the shape the Streaming API delivers them.
//!
//! The payloads follow Salesforce's guides: a platform event carries its fields (null when
//! unset), `CreatedDate` and `CreatedById`; a change event carries `ChangeEventHeader`
//! (`entityName`, `recordIds`, `changeType`, `changeOrigin`, `transactionKey`,
//! `sequenceNumber`, `commitTimestamp`, `commitNumber`, `commitUser`, `changedFields`,
//! `diffFields`, `nulledFields`) and, for a create, the record's fields; for an update,
//! only the fields that changed. Every object is selected for Change Data Capture.
//!
//! It reads the journal (`store.rs`) and writes the bus (`bus.rs`); it neither stores
//! records nor speaks Bayeux. The caller wakes the held `/meta/connect` requests.

use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::bus::Bus;
use crate::codes::{USER_ID, base64url, uuid_v4};
use crate::schema::{Object, Schema};
use crate::store::{Change, ChangeKind, datetime_z, epoch_millis};

/// Fields every record has that a change event never carries: the id is in `recordIds`.
const NOT_IN_CHANGE_EVENTS: [&str; 3] = ["Id", "IsDeleted", "SystemModstamp"];
/// Fields of every platform event object that are not its payload's own.
const NOT_IN_PLATFORM_EVENTS: [&str; 5] = [
    "Id",
    "IsDeleted",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
];

/// One event published: its replay id and, for a platform event, its `EventUuid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub replay_id: i64,
    pub uuid: Option<String>,
}

/// Publishes the writes of one committed request, in order. `origin` is the request's
/// API and version (`com/salesforce/api/rest/67.0`), as `changeOrigin` names it; `None`
/// for a change made inside the org (a test's [`crate::Sim::publish_event`]).
pub fn publish(
    schema: &Schema,
    bus: &mut Bus,
    changes: Vec<Change>,
    origin: Option<&str>,
    now: Instant,
) -> Vec<Published> {
    let millis = epoch_millis();
    let mut transaction: Option<(String, u64)> = None;
    let mut sequence = 0;
    let mut published = Vec::new();
    for change in changes {
        let Some(object) = schema.object(&change.object) else {
            continue;
        };
        if object.platform_event {
            if change.kind != ChangeKind::Create {
                continue;
            }
            let uuid = change
                .fields
                .get("EventUuid")
                .and_then(Value::as_str)
                .map(str::to_string);
            let payload = platform_event(object, &change.fields, millis);
            let channel = format!("/event/{}", object.name);
            let replay_id = bus.publish(channel, schema_id(object), payload, uuid.clone(), now);
            published.push(Published { replay_id, uuid });
            continue;
        }
        let (key, commit) = transaction
            .get_or_insert_with(|| (uuid_v4(), bus.next_commit()))
            .clone();
        sequence += 1;
        let header = Header {
            origin,
            transaction_key: &key,
            sequence,
            commit_number: commit,
            millis,
        };
        let payload = change_event(object, &change, &header);
        let channel = change_channel(&object.name);
        let replay_id = bus.publish(channel, schema_id(object), payload, None, now);
        published.push(Published {
            replay_id,
            uuid: None,
        });
    }
    published
}

/// `/data/AccountChangeEvent`; a custom object's `__c` becomes `__ChangeEvent`.
pub fn change_channel(object: &str) -> String {
    match object.strip_suffix("__c") {
        Some(base) => format!("/data/{base}__ChangeEvent"),
        None => format!("/data/{object}ChangeEvent"),
    }
}

/// An id for the event's schema: the same while the object's fields stay the same,
/// another once an admin adds one (`Sim::add_field`), as Salesforce versions schemas.
fn schema_id(object: &Object) -> String {
    let mut text = object.name.clone();
    for field in &object.fields {
        text.push(',');
        text.push_str(&field.name);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    base64url(digest.as_ref())[..22].to_string()
}

fn platform_event(object: &Object, fields: &Map<String, Value>, millis: u128) -> Value {
    let mut payload = Map::new();
    for field in &object.fields {
        if NOT_IN_PLATFORM_EVENTS.contains(&field.name.as_str()) {
            continue;
        }
        let value = fields.get(&field.name).cloned().unwrap_or(Value::Null);
        payload.insert(field.name.clone(), value);
    }
    payload.insert("CreatedDate".into(), Value::String(datetime_z(millis)));
    payload.insert("CreatedById".into(), Value::String(USER_ID.into()));
    Value::Object(payload)
}

/// What one transaction's change events share, and this one's place in it.
struct Header<'a> {
    origin: Option<&'a str>,
    transaction_key: &'a str,
    sequence: u64,
    commit_number: u64,
    millis: u128,
}

fn change_event(object: &Object, change: &Change, header: &Header) -> Value {
    let kind = match change.kind {
        ChangeKind::Create => "CREATE",
        ChangeKind::Update => "UPDATE",
        ChangeKind::Delete => "DELETE",
    };
    let stamp = Value::String(datetime_z(header.millis));
    let mut fields = Map::new();
    for (name, value) in &change.fields {
        if NOT_IN_CHANGE_EVENTS.contains(&name.as_str()) {
            continue;
        }
        let keep = change.kind == ChangeKind::Update || !value.is_null();
        if keep {
            fields.insert(name.clone(), value.clone());
        }
    }
    let mut changed_fields = Vec::new();
    let mut nulled_fields = Vec::new();
    match change.kind {
        ChangeKind::Create => {
            fields.insert("CreatedDate".into(), stamp.clone());
            fields.insert("CreatedById".into(), Value::String(USER_ID.into()));
            fields.insert("LastModifiedDate".into(), stamp);
            fields.insert("LastModifiedById".into(), Value::String(USER_ID.into()));
        }
        ChangeKind::Update => {
            fields.insert("LastModifiedDate".into(), stamp);
            fields.insert("LastModifiedById".into(), Value::String(USER_ID.into()));
            for (name, value) in &fields {
                if name == "LastModifiedById" {
                    continue;
                }
                changed_fields.push(Value::String(name.clone()));
                if value.is_null() {
                    nulled_fields.push(Value::String(name.clone()));
                }
            }
        }
        ChangeKind::Delete => {}
    }
    let mut payload = Map::new();
    payload.insert(
        "ChangeEventHeader".into(),
        json!({
            "entityName": object.name,
            "recordIds": [change.id],
            "changeType": kind,
            "changeOrigin": header.origin.unwrap_or(""),
            "transactionKey": header.transaction_key,
            "sequenceNumber": header.sequence,
            "commitTimestamp": header.millis as u64,
            "commitNumber": header.commit_number,
            "commitUser": USER_ID,
            "changedFields": changed_fields,
            "diffFields": [],
            "nulledFields": nulled_fields,
        }),
    );
    payload.extend(fields);
    Value::Object(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::from_json(
            r#"{"objects": [
                {"name": "Device__c", "fields": [{"name": "Level__c", "type": "int"}, {"name": "Mode__c"}]},
                {"name": "Command__e", "fields": [{"name": "Verb__c"}, {"name": "Arg__c"}]}
            ]}"#,
        )
        .unwrap()
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn channels_of_change_events() {
        assert_eq!(change_channel("Account"), "/data/AccountChangeEvent");
        assert_eq!(change_channel("Device__c"), "/data/Device__ChangeEvent");
    }

    #[test]
    fn one_transaction_shares_its_key_and_counts_its_changes() {
        let schema = schema();
        let mut bus = Bus::default();
        let changes = vec![
            Change {
                object: "Device__c".into(),
                id: "a00SIM000000001YBA".into(),
                kind: ChangeKind::Create,
                fields: map(
                    json!({"Id": "a00SIM000000001YBA", "Name": "GW-1", "Level__c": 3,
                    "Mode__c": null, "IsDeleted": false, "SystemModstamp": "x"}),
                ),
            },
            Change {
                object: "Command__e".into(),
                id: "e00SIM000000001YBA".into(),
                kind: ChangeKind::Create,
                fields: map(json!({"Verb__c": "reboot", "EventUuid": "u-1"})),
            },
            Change {
                object: "Device__c".into(),
                id: "a00SIM000000002YBA".into(),
                kind: ChangeKind::Update,
                fields: map(json!({"Mode__c": null, "Level__c": 4, "LastModifiedDate": "x"})),
            },
        ];
        let published = publish(
            &schema,
            &mut bus,
            changes,
            Some("com/salesforce/api/rest/67.0"),
            Instant::now(),
        );
        assert_eq!(published.len(), 3);
        assert_eq!(published[1].uuid.as_deref(), Some("u-1"));
        let events: Vec<_> = bus.retained_events().cloned().collect();
        let create = &events[0].payload;
        let header = &create["ChangeEventHeader"];
        assert_eq!(events[0].channel, "/data/Device__ChangeEvent");
        assert_eq!(header["changeType"], "CREATE");
        assert_eq!(header["recordIds"], json!(["a00SIM000000001YBA"]));
        assert_eq!(header["changedFields"], json!([]));
        assert_eq!(header["sequenceNumber"], 1);
        assert_eq!(create["Name"], "GW-1");
        assert!(create.get("Id").is_none() && create.get("Mode__c").is_none());
        assert!(create["CreatedDate"].as_str().unwrap().ends_with('Z'));

        let command = &events[1].payload;
        assert_eq!(events[1].channel, "/event/Command__e");
        assert_eq!(command["Verb__c"], "reboot");
        assert_eq!(command["Arg__c"], Value::Null);
        assert_eq!(command["CreatedById"], USER_ID);
        assert!(command.get("EventUuid").is_none());

        let update = &events[2].payload;
        let second = &update["ChangeEventHeader"];
        assert_eq!(second["changeType"], "UPDATE");
        assert_eq!(second["sequenceNumber"], 2);
        assert_eq!(second["transactionKey"], header["transactionKey"]);
        assert_eq!(second["commitNumber"], header["commitNumber"]);
        assert_eq!(
            second["changedFields"],
            json!(["LastModifiedDate", "Level__c", "Mode__c"])
        );
        assert_eq!(second["nulledFields"], json!(["Mode__c"]));
        assert_eq!(update["Level__c"], 4);
        assert!(update.get("Name").is_none(), "only changed fields");
        assert_eq!(events[0].schema, events[2].schema);
        assert_ne!(events[0].schema, events[1].schema);
    }
}
