//! The simulated org's records, in memory: what the REST handlers create, read,
//! change and delete, in creation order (the order of an unordered query).
//!
//! Storage only: no wire format and no validation (that is `schema.rs`). Deleted
//! records stay, marked `IsDeleted`, so `queryAll` can still see them. Cloning the
//! store is how `allOrNone` requests roll back.
//!
//! Every write is also noted in a journal of [`Change`]s that the request taking it
//! turns into platform events and change events once it ends (`events.rs`). The journal
//! lives here, in the store, so that a rollback (restoring a clone) takes back the events
//! of the rolled-back writes too, as a rolled-back transaction publishes nothing.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::ids;

#[derive(Clone, Debug)]
pub struct Record {
    /// The object's canonical name.
    pub object: String,
    pub id: String,
    pub fields: Map<String, Value>,
    pub deleted: bool,
}

/// What a write did to a record, as its change event tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
}

/// One committed write, waiting for the end of its request to be published.
#[derive(Clone, Debug)]
pub struct Change {
    /// The object's canonical name.
    pub object: String,
    pub id: String,
    pub kind: ChangeKind,
    /// A create's stored fields; an update's fields whose value changed (their new
    /// values, `LastModifiedDate` always among them); nothing for a delete.
    pub fields: Map<String, Value>,
}

/// Query results waiting for their next page, by cursor id (`rest/query.rs`).
#[derive(Default)]
pub struct Cursors {
    pub open: HashMap<String, Vec<Value>>,
    /// Cursor ids issued so far.
    pub issued: u64,
}

/// Records by id, and by their string field values (for external ids and unique fields).
#[derive(Clone, Default)]
pub struct Records {
    list: Vec<Record>,
    index: HashMap<String, usize>,
    /// Positions of the records that hold (or once held) a string value, by (object, field,
    /// the value lower-cased). An upsert looks its external id up here instead of scanning
    /// every record, so a batch of 200 into an object of 100,000 rows stays fast. Entries
    /// are only added: `find` checks each against the record's current value.
    by_value: HashMap<(String, String, String), Vec<usize>>,
    /// Ids issued so far, per key prefix.
    counters: HashMap<String, u64>,
    /// Writes not yet published, oldest first.
    journal: Vec<Change>,
    /// The saves (object, id) of the request being served, which the write ledger files once
    /// the reply is decided (`writes.rs`). Kept here so that an `allOrNone` rollback, which
    /// restores a clone of the records, takes back the saves it undid.
    saved: Vec<(String, String)>,
}

impl Records {
    /// Stores a new record and returns its id.
    pub fn insert(&mut self, object: &str, key_prefix: &str, fields: Map<String, Value>) -> String {
        let counter = self.counters.entry(key_prefix.to_string()).or_insert(0);
        *counter += 1;
        let id = ids::record_id(key_prefix, *counter);
        self.insert_with_id(object, &id, fields);
        id
    }

    /// Stores a record under a given id (the seeded user).
    pub fn insert_with_id(&mut self, object: &str, id: &str, mut fields: Map<String, Value>) {
        let now = Value::String(now_datetime());
        fields.insert("Id".into(), Value::String(id.to_string()));
        fields.insert("IsDeleted".into(), Value::Bool(false));
        for stamp in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
            fields.insert(stamp.into(), now.clone());
        }
        self.index
            .insert(id[..15.min(id.len())].to_string(), self.list.len());
        let position = self.list.len();
        for (field, value) in &fields {
            self.index_value(object, field, value, position);
        }
        self.note(Change {
            object: object.to_string(),
            id: id.to_string(),
            kind: ChangeKind::Create,
            fields: fields.clone(),
        });
        self.list.push(Record {
            object: object.to_string(),
            id: id.to_string(),
            fields,
            deleted: false,
        });
    }

    /// The record with that id, deleted or not. Ids are unique in their first 15
    /// characters, so the 15- and 18-character forms (any suffix case) both find it.
    pub fn get(&self, id: &str) -> Option<&Record> {
        self.position(id).map(|i| &self.list[i])
    }

    fn position(&self, id: &str) -> Option<usize> {
        let shaped = matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric());
        shaped.then(|| self.index.get(&id[..15]).copied()).flatten()
    }

    /// Merges `changes` into a live record; false when there is none.
    pub fn update(&mut self, id: &str, changes: Map<String, Value>) -> bool {
        let Some(record) = self.position(id).map(|i| &mut self.list[i]) else {
            return false;
        };
        if record.deleted {
            return false;
        }
        let (object, position) = (record.object.clone(), self.index[&id[..15]]);
        for (field, value) in &changes {
            self.index_value(&object, field, value, position);
        }
        let record = &mut self.list[position];
        let mut changed: Map<String, Value> = changes
            .into_iter()
            .filter(|(field, value)| record.fields.get(field).unwrap_or(&Value::Null) != value)
            .collect();
        record.fields.extend(changed.clone());
        let now = Value::String(now_datetime());
        record.fields.insert("LastModifiedDate".into(), now.clone());
        record.fields.insert("SystemModstamp".into(), now.clone());
        changed.insert("LastModifiedDate".into(), now);
        let (object, id) = (record.object.clone(), record.id.clone());
        self.note(Change {
            object,
            id,
            kind: ChangeKind::Update,
            fields: changed,
        });
        true
    }

    /// Notes a save (a create or an update through REST) for the write ledger.
    pub fn note_save(&mut self, object: &str, id: &str) {
        self.saved.push((object.to_string(), id.to_string()));
    }

    /// The saves noted since the last call.
    pub fn take_saved(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.saved)
    }

    /// Marks a live record deleted; false when there is none.
    pub fn delete(&mut self, id: &str) -> bool {
        let Some(record) = self.position(id).map(|i| &mut self.list[i]) else {
            return false;
        };
        if record.deleted {
            return false;
        }
        record.deleted = true;
        record.fields.insert("IsDeleted".into(), Value::Bool(true));
        let (object, id) = (record.object.clone(), record.id.clone());
        self.note(Change {
            object,
            id,
            kind: ChangeKind::Delete,
            fields: Map::new(),
        });
        true
    }

    /// The writes since the last call, oldest first, leaving the journal empty.
    pub fn take_journal(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.journal)
    }

    /// Journals a write. A write to the record the previous entry is about (an update
    /// that also recomputes `Name`, or a create then an update in one request) joins
    /// that entry: one transaction tells one change per record.
    fn note(&mut self, change: Change) {
        match self.journal.last_mut() {
            Some(last) if last.id == change.id && change.kind == ChangeKind::Update => {
                last.fields.extend(change.fields);
            }
            Some(last) if last.id == change.id && change.kind == ChangeKind::Delete => {
                *last = change;
            }
            _ => self.journal.push(change),
        }
    }

    /// Every record of an object, in creation order.
    pub fn of<'a>(&'a self, object: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        self.list.iter().filter(move |r| r.object == object)
    }

    /// Live records of `object` whose `field` equals `value` (strings ignoring case).
    pub fn find(&self, object: &str, field: &str, value: &Value) -> Vec<String> {
        let matches = |r: &&Record| {
            r.object == object && !r.deleted && r.fields.get(field).is_some_and(|v| same(v, value))
        };
        // A number, or text that may equal a stored number (an external id from a URL):
        // compared by value, so scanned.
        let text = match value {
            Value::String(text) if text.trim().parse::<f64>().is_err() => text,
            _ => {
                return self
                    .list
                    .iter()
                    .filter(matches)
                    .map(|r| r.id.clone())
                    .collect();
            }
        };
        let key = (object.to_string(), field.to_string(), text.to_lowercase());
        let mut positions = self.by_value.get(&key).cloned().unwrap_or_default();
        positions.sort_unstable();
        positions.dedup();
        positions
            .into_iter()
            .map(|i| &self.list[i])
            .filter(matches)
            .map(|r| r.id.clone())
            .collect()
    }

    fn index_value(&mut self, object: &str, field: &str, value: &Value, position: usize) {
        if let Value::String(text) = value {
            self.by_value
                .entry((object.to_string(), field.to_string(), text.to_lowercase()))
                .or_default()
                .push(position);
        }
    }
}

/// Equality as SOQL and external ids compare: strings without regard to case,
/// numbers by value.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::Number(b)) | (Value::Number(b), Value::String(a)) => {
            a.parse::<f64>().ok() == b.as_f64()
        }
        _ => a == b,
    }
}

/// The current time as Salesforce writes datetimes: `2026-12-01T13:31:45.000+0000`.
pub fn now_datetime() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_datetime(since.as_secs(), since.subsec_millis())
}

/// A time in milliseconds since 1970 as event payloads write datetimes (the platform
/// events guide's `2017-04-09T18:31:40.517Z`).
pub fn datetime_z(epoch_millis: u128) -> String {
    let secs = u64::try_from(epoch_millis / 1000).unwrap_or(u64::MAX);
    let text = format_datetime(secs, (epoch_millis % 1000) as u32);
    format!("{}Z", text.trim_end_matches("+0000"))
}

fn format_datetime(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil inverse).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Wall-clock milliseconds, as Salesforce's `issued_at` carries them.
pub fn epoch_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn datetimes_format_like_salesforce() {
        assert_eq!(format_datetime(0, 0), "1970-01-01T00:00:00.000+0000");
        // `date -u -d @1796132705` -> Tue Dec  1 13:45:05 UTC 2026.
        assert_eq!(
            format_datetime(1_796_132_705, 7),
            "2026-12-01T13:45:05.007+0000"
        );
        // 2024-02-29 00:00:00 UTC, a leap day.
        assert_eq!(
            format_datetime(1_709_164_800, 0),
            "2024-02-29T00:00:00.000+0000"
        );
    }

    #[test]
    fn event_datetimes_end_in_z() {
        assert_eq!(datetime_z(1_796_132_705_007), "2026-12-01T13:45:05.007Z");
    }

    #[test]
    fn the_journal_tells_each_write_once_per_record() {
        let mut records = Records::default();
        let fields = json!({"Name": "Acme", "Phone": "1"})
            .as_object()
            .cloned()
            .unwrap();
        let a = records.insert("Account", "001", fields);
        // A create then an update of the same record: one CREATE with the final values.
        let rename = json!({"Name": "Acme 2"}).as_object().cloned().unwrap();
        assert!(records.update(&a, rename));
        let journal = records.take_journal();
        assert_eq!(journal.len(), 1);
        assert_eq!(journal[0].kind, ChangeKind::Create);
        assert_eq!(journal[0].fields["Name"], "Acme 2");
        // An update names only the fields whose value changed, and LastModifiedDate.
        let same_phone = json!({"Phone": "1", "Name": "Acme 3"})
            .as_object()
            .cloned()
            .unwrap();
        assert!(records.update(&a, same_phone));
        let b = records.insert("Account", "001", Map::new());
        assert!(records.delete(&b));
        let journal = records.take_journal();
        assert_eq!(journal.len(), 2);
        assert_eq!(journal[0].kind, ChangeKind::Update);
        let mut changed: Vec<&String> = journal[0].fields.keys().collect();
        changed.sort();
        assert_eq!(changed, ["LastModifiedDate", "Name"]);
        // A create and a delete in one request: the delete is what is told.
        assert_eq!(journal[1].kind, ChangeKind::Delete);
        assert!(records.take_journal().is_empty());
        // A rollback restores a clone: its journal too.
        let snapshot = records.clone();
        records.insert("Account", "001", Map::new());
        records = snapshot;
        assert!(records.take_journal().is_empty());
    }

    #[test]
    fn records_live_and_die() {
        let mut records = Records::default();
        let fields = json!({"Name": "Acme"}).as_object().cloned().unwrap();
        let a = records.insert("Account", "001", fields.clone());
        let b = records.insert("Account", "001", fields);
        assert_ne!(a[..15], b[..15]);
        assert_eq!(records.find("Account", "Name", &json!("ACME")).len(), 2);
        assert!(records.update(&a, Map::new()));
        assert!(records.delete(&a));
        assert!(!records.delete(&a));
        assert!(!records.update(&a, Map::new()));
        assert!(records.get(&a).unwrap().deleted);
        assert_eq!(records.find("Account", "Name", &json!("acme")), vec![b]);
    }
}
