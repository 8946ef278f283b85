//! `run --desired`: following the device's record. It is read at start, after each
//! (re)subscription of the listener (change events may have been missed meanwhile), on each
//! change event that names the record, and at least every `--desired-every`. A failed read
//! (the network away, the record missing) is tried again sooner: after 30 s, doubling up to
//! `--desired-every`. Reads are one at a time; rings during a read make one more read, not
//! one each. The change event is only a doorbell: the record as read is the truth.
//!
//! Must not log the record's content.

use std::sync::Mutex;
use std::time::Duration;

use log::{info, warn};
use serde_json::{Value, json};

use super::{Applied, Options, apply};
use crate::call::Caller;
use crate::listen::bayeux::Delivered;
use crate::stop::{Bell, Stop};
use crate::time::Clock;

/// The first retry after a failed read; each further one doubles, up to `--desired-every`.
const RETRY: Duration = Duration::from_secs(30);

/// What the follower has done, for health.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// The `LastModifiedDate` of the record as last applied (or found already applied).
    pub last_modified: Option<String>,
    /// When it was last read successfully (seconds since the epoch).
    pub read_at: Option<u64>,
    /// When the file last changed.
    pub changed_at: Option<u64>,
    /// How the program ended the last time it ran (`done`, `failed`, `timed_out`).
    pub program: Option<&'static str>,
    /// Reads since the start, successful or not.
    pub reads: u64,
    /// The last failed read or apply, as said in the log; cleared by a good read.
    pub last_error: Option<String>,
}

/// Follows one record.
pub struct Follower {
    options: Options,
    bell: Bell,
    /// The record's id once read: change events name records by id.
    record_id: Mutex<Option<String>>,
    status: Mutex<Status>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Follower {
    /// A follower that stops with `stop`.
    pub fn new(options: Options, stop: &Stop) -> Follower {
        Follower {
            options,
            bell: Bell::new(stop),
            record_id: Mutex::new(None),
            status: Mutex::new(Status::default()),
        }
    }

    /// What it follows.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Asks for a read now (the listener subscribed again: changes may have been missed).
    pub fn ring(&self) {
        self.bell.ring();
    }

    /// A change event on the record's object: a read when it names the record, when the
    /// record's id is not known yet, or when it says changes were lost (`GAP_…` events, and
    /// overflow events, which name no record).
    pub fn on_change(&self, event: &Delivered) {
        let header = serde_json::from_str::<Value>(&event.payload)
            .ok()
            .and_then(|p| p.get("ChangeEventHeader").cloned())
            .unwrap_or(Value::Null);
        let gap = header["changeType"]
            .as_str()
            .is_some_and(|t| t.starts_with("GAP_"));
        let ids: Vec<&str> = header["recordIds"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let ours = match lock(&self.record_id).as_deref() {
            None => true,
            Some(id) => ids.iter().any(|other| same_record(id, other)),
        };
        if gap || ids.is_empty() || ours {
            self.bell.ring();
        }
    }

    /// Reads and applies until the stop (see the module docs).
    pub fn run(&self, via: &mut dyn Caller, clock: &dyn Clock, stop: &Stop) {
        // A change whose program a crash cut short runs again now, whether or not the org
        // can be reached.
        if let Err(e) = apply::resume(&self.options.file, self.options.exec.as_ref(), stop) {
            warn!("desired state: {e}");
        }
        let mut failures = 0u32;
        while !stop.is_stopped() {
            let wait = match self.read_once(via, clock, stop) {
                true => {
                    failures = 0;
                    self.options.every
                }
                false => {
                    failures += 1;
                    let doubled = RETRY.saturating_mul(1 << (failures - 1).min(16));
                    doubled.min(self.options.every)
                }
            };
            if self.bell.wait_at_most(wait) {
                break;
            }
        }
    }

    /// One read and apply; whether it went well.
    fn read_once(&self, via: &mut dyn Caller, clock: &dyn Clock, stop: &Stop) -> bool {
        lock(&self.status).reads += 1;
        let now = clock.unix_time().as_secs();
        match super::once(via, &self.options, stop) {
            Ok((read, applied)) => {
                if read.id.is_some() {
                    *lock(&self.record_id) = read.id.clone();
                }
                let mut status = lock(&self.status);
                status.read_at = Some(now);
                status.last_modified = read.last_modified;
                status.last_error = None;
                if let Applied::Changed { program } = applied {
                    status.changed_at = Some(now);
                    if let Some(ran) = program {
                        status.program = Some(ran.status.name());
                        if ran.status.name() != "done" {
                            warn!(
                                "desired state: {} {} for the new content (not run again \
                                 until the next change)",
                                self.program_name(),
                                ran.status.name()
                            );
                        }
                    }
                } else {
                    info!(
                        "desired state: {} is up to date",
                        self.options.file.display()
                    );
                }
                true
            }
            Err(e) => {
                warn!("desired state: {e}");
                lock(&self.status).last_error = Some(e.message().to_string());
                false
            }
        }
    }

    fn program_name(&self) -> String {
        self.options
            .exec
            .as_ref()
            .map(|e| e.program.display().to_string())
            .unwrap_or_default()
    }

    /// What it has done so far.
    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    /// The health answer's part for the desired state.
    pub fn health(&self) -> Value {
        let s = self.status();
        json!({
            "record": self.options.target.describe(),
            "file": self.options.file.display().to_string(),
            "last_modified": s.last_modified,
            "read_at": s.read_at,
            "changed_at": s.changed_at,
            "program": s.program,
            "reads": s.reads,
            "last_error": s.last_error,
        })
    }
}

/// Whether two Salesforce ids name the same record: a 15-character id is case-sensitive, an
/// 18-character one adds a checksum of the case; either may come.
fn same_record(a: &str, b: &str) -> bool {
    match (a.len(), b.len()) {
        (18, 18) => a == b,
        (x, y) if x >= 15 && y >= 15 => a[..15] == b[..15],
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Target;

    fn follower(stop: &Stop) -> Follower {
        let options = Options {
            target: Target::parse("Device__c/Device_Id__c/GW-1").unwrap(),
            file: "/nonexistent/desired.json".into(),
            exec: None,
            fields: Vec::new(),
            every: Duration::from_secs(3600),
            api_version: "62.0".into(),
        };
        Follower::new(options, stop)
    }

    fn change(ids: &[&str], kind: &str) -> Delivered {
        Delivered {
            channel: "/data/Device__ChangeEvent".into(),
            replay_id: 1,
            uuid: None,
            payload: json!({"ChangeEventHeader": {"recordIds": ids, "changeType": kind}})
                .to_string(),
        }
    }

    /// Whether the bell was rung (taken, with a wait that ends at once either way).
    fn rung(f: &Follower) -> bool {
        let before = std::time::Instant::now();
        f.bell.wait_at_most(Duration::from_millis(200));
        before.elapsed() < Duration::from_millis(150)
    }

    #[test]
    fn a_change_event_rings_for_the_record_and_not_for_others() {
        let stop = Stop::new();
        let f = follower(&stop);
        f.on_change(&change(&["a01000000000001AAA"], "UPDATE"));
        assert!(rung(&f), "the id is not known yet: any change reads");
        *lock(&f.record_id) = Some("a01000000000001AAA".into());
        f.on_change(&change(&["a01000000000002AAA"], "UPDATE"));
        assert!(!rung(&f), "another device's record");
        f.on_change(&change(
            &["a01000000000002AAA", "a01000000000001"],
            "UPDATE",
        ));
        assert!(rung(&f), "ours among others, as a 15-character id");
        f.on_change(&change(&[], "GAP_OVERFLOW"));
        assert!(rung(&f), "changes were lost");
        f.on_change(&change(&["a01000000000009AAA"], "GAP_UPDATE"));
        assert!(rung(&f), "a gap event");
    }

    #[test]
    fn ids_of_15_and_18_characters_compare() {
        assert!(same_record("a01000000000001AAA", "a01000000000001"));
        assert!(!same_record("a01000000000001AAA", "a01000000000001AAB"));
        assert!(!same_record("a01000000000001", "A01000000000001"));
    }
}
