//! Queueing records: [`Outbox::push`] and [`Outbox::push_all`], all or none, durable when they
//! return (docs/outbox.md, "Pushing, and the limits").
//!
//! A push reads its records twice and never holds them all (`send` of 10,000 records
//! grew to 15 MB): the first pass checks every record and sizes its frame, so nothing is
//! written unless all of them are good and fit; the second encodes the frames again and
//! appends them a [`CHUNK`] at a time. Every frame of one push but the last carries
//! `CONTINUED`, so a push cut short by a crash between two appends is cut whole at the next
//! open (`scan.rs`); one that fails while this process runs is truncated away at once. The
//! second pass must produce what the first sized (the same count and bytes), or the push is
//! refused: the data changed between the two readings.
//!
//! Must not: log record contents (the customer's data), or write anything before the first
//! pass has checked every record.

use super::entry::{self, Entry, MAX_NAME};
use super::{CHUNK, LOG, NewRecord, Outbox, Pushed, Target};
use crate::error::Error;

/// Records for a push, visited in order, as many times as the push asks: each visit must hand
/// over the same records. `visit(target, json, auto_id)` takes one record at a time (see
/// [`NewRecord`] for what `json` and `auto_id` must be); its error stops the visit.
pub trait Records {
    /// Calls `visit` with each record in order; its error stops the visit.
    fn each(
        &mut self,
        visit: &mut dyn FnMut(&Target, &str, bool) -> Result<(), Error>,
    ) -> Result<(), Error>;
}

impl Records for Vec<NewRecord> {
    fn each(
        &mut self,
        visit: &mut dyn FnMut(&Target, &str, bool) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.iter()
            .try_for_each(|r| visit(&r.target, &r.json, r.auto_id))
    }
}

impl Outbox {
    /// Queues `records`, all or none, durably when it returns.
    pub fn push(&mut self, mut records: Vec<NewRecord>, now: u64) -> Result<Pushed, Error> {
        self.push_all(&mut records, now)
    }

    /// Queues what `records` hands over, all or none, durably when it returns, holding one
    /// record at a time (and at most `CHUNK` bytes of frames).
    pub fn push_all(&mut self, records: &mut dyn Records, now: u64) -> Result<Pushed, Error> {
        self.locked(|ob| ob.push_locked(records, now))
    }

    fn push_locked(&mut self, records: &mut dyn Records, now: u64) -> Result<Pushed, Error> {
        let first_seq = self.st.next_seq;
        // First pass: every record checked and sized; nothing written.
        let (mut total, mut size) = (0u64, 0u64);
        let shape = Shape {
            id: &self.id,
            first_seq,
            max_record: self.limits.max_record,
            now,
        };
        records.each(&mut |target, json, auto_id| {
            let e = shape.entry(first_seq + total, target, json, auto_id)?;
            size += entry::entry_len(&e) as u64;
            total += 1;
            Ok(())
        })?;
        if total == 0 {
            return Ok(Pushed {
                count: 0,
                first_seq,
                queued: self.st.queued,
            });
        }
        self.make_room(size, total as usize, 0)?;
        let at = self.st.log_len;
        if let Err(e) = self.write_push(records, first_seq, total, size, now) {
            // Nothing of a refused push may stay: cut it now (the next open would cut it too,
            // its last frame being missing, but this process may go on using the outbox).
            if self
                .disk
                .truncate(LOG, at)
                .and_then(|()| self.disk.fsync(LOG))
                .is_err()
            {
                log::warn!(
                    "could not cut a refused push off {}: the next start cuts it",
                    self.path(LOG)
                );
            }
            return Err(e);
        }
        let st = &mut self.st;
        if st.queued == 0 {
            st.oldest_off = at;
            st.oldest_queued_at = Some(now);
            st.low = first_seq;
        }
        st.log_len += size;
        st.next_seq += total;
        st.queued += total;
        st.queued_bytes += size;
        Ok(Pushed {
            count: total as usize,
            first_seq,
            queued: st.queued,
        })
    }

    /// The second pass: the frames again, appended a chunk at a time, then one fsync.
    fn write_push(
        &mut self,
        records: &mut dyn Records,
        first_seq: u64,
        total: u64,
        size: u64,
        now: u64,
    ) -> Result<(), Error> {
        let shape = Shape {
            id: &self.id,
            first_seq,
            max_record: self.limits.max_record,
            now,
        };
        let disk = &mut self.disk;
        let mut chunk = Vec::with_capacity(CHUNK.min(size as usize));
        let (mut i, mut written) = (0u64, 0u64);
        let mut failed_io = None;
        let visited = records.each(&mut |target, json, auto_id| {
            if i == total {
                return Err(changed());
            }
            let e = shape.entry(first_seq + i, target, json, auto_id)?;
            i += 1;
            entry::encode_entry(&mut chunk, &e, i < total);
            if chunk.len() >= CHUNK {
                written += chunk.len() as u64;
                if let Err(e) = disk.append(LOG, &chunk) {
                    failed_io = Some(e);
                    return Err(changed());
                }
                chunk.clear();
            }
            Ok(())
        });
        written += chunk.len() as u64;
        let appended = match (failed_io, visited) {
            (Some(e), _) => Err(e),
            (None, Err(e)) => return Err(e),
            (None, Ok(())) if i != total || written != size => return Err(changed()),
            (None, Ok(())) => disk.append(LOG, &chunk).and_then(|_| disk.fsync(LOG)),
        };
        appended.map_err(|e| self.io("write to", LOG, e))
    }
}

/// What turns a record into its log entry, the same in both passes.
struct Shape<'a> {
    /// The outbox id, which `--auto-id` ids start with.
    id: &'a str,
    first_seq: u64,
    max_record: usize,
    now: u64,
}

impl Shape<'_> {
    /// Record `seq` as it goes into the log: names checked, its id filled in when it is to
    /// have one, within the record limit.
    fn entry(&self, seq: u64, target: &Target, json: &str, auto_id: bool) -> Result<Entry, Error> {
        let n = seq - self.first_seq + 1;
        check_target(target, n)?;
        let json = if auto_id {
            with_auto_id(target, json, &format!("{}-{seq}", self.id), n)?
        } else {
            json.to_string()
        };
        if json.len() > self.max_record {
            return Err(Error::config(format!(
                "record {n} is {} bytes of JSON, more than the outbox's limit of {} bytes: \
                 nothing was queued; split or shorten it",
                json.len(),
                self.max_record
            )));
        }
        Ok(Entry {
            seq,
            queued_at: self.now,
            target: target.clone(),
            json,
        })
    }
}

fn changed() -> Error {
    Error::config(
        "the data changed while sfpair read it (a push reads it twice: to check it, then to \
         write it): nothing was queued; send it again once it stays put",
    )
}

fn check_target(t: &Target, n: u64) -> Result<(), Error> {
    let name_ok = |s: &str| !s.is_empty() && s.len() <= MAX_NAME;
    let ok = match t {
        Target::Upsert { object, field } => name_ok(object) && name_ok(field),
        Target::Event { object } => name_ok(object),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "record {n}: the sObject and external-id field names must be 1 to {MAX_NAME} \
             bytes; nothing was queued"
        )))
    }
}

/// `json` with `field: id` added at the front when the object lacks the field (upserts only).
/// Spliced into the text, so the rest of the record stays exactly as it was given.
fn with_auto_id(target: &Target, json: &str, id: &str, n: u64) -> Result<String, Error> {
    let Target::Upsert { field, .. } = target else {
        return Ok(json.to_string());
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| {
            Error::config(format!(
                "record {n} is not a JSON object ({e}); nothing was queued"
            ))
        })?;
    if object.contains_key(field) {
        return Ok(json.to_string());
    }
    let key = serde_json::Value::String(field.clone()).to_string();
    let value = serde_json::Value::String(id.into()).to_string();
    let body = json.trim()[1..].trim_start();
    Ok(if body.starts_with('}') {
        format!("{{{key}:{value}}}")
    } else {
        format!("{{{key}:{value},{body}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Limits;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir()
            .join("sfpair-push-tests")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        dir
    }

    /// Hands over `first` (count, value size) records on the first visit and `then` on every
    /// later one: data that changes between a push's two readings.
    struct Changing {
        visits: usize,
        first: (usize, usize),
        then: (usize, usize),
    }

    impl Records for Changing {
        fn each(
            &mut self,
            visit: &mut dyn FnMut(&Target, &str, bool) -> Result<(), Error>,
        ) -> Result<(), Error> {
            self.visits += 1;
            let (count, size) = if self.visits == 1 {
                self.first
            } else {
                self.then
            };
            let target = Target::Upsert {
                object: "A__c".into(),
                field: "Key__c".into(),
            };
            for i in 0..count {
                let json = format!(r#"{{"Key__c":"k{i}","V__c":"{}"}}"#, "x".repeat(size));
                visit(&target, &json, false)?;
            }
            Ok(())
        }
    }

    #[test]
    fn data_that_changes_between_the_two_readings_queues_nothing() {
        let dir = temp_dir("changing");
        let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
        let same = (2, 10);
        let mut records = Changing {
            visits: 0,
            first: same,
            then: same,
        };
        ob.push_all(&mut records, 1).unwrap();
        let log = std::fs::metadata(dir.join(LOG)).unwrap().len();
        // As many records but longer, past whole chunks (appended before the difference
        // shows, so they must be cut off again); more; fewer; as many with other bytes.
        for (first, then) in [
            ((4000, 100), (4000, 101)),
            ((3, 100), (4000, 100)),
            ((3, 10), (2, 10)),
            ((2, 10), (2, 11)),
        ] {
            let mut records = Changing {
                visits: 0,
                first,
                then,
            };
            let e = ob.push_all(&mut records, 2).err().expect("refused");
            assert!(
                e.message().starts_with("the data changed"),
                "{}",
                e.message()
            );
            assert_eq!(std::fs::metadata(dir.join(LOG)).unwrap().len(), log);
            assert_eq!(ob.status().unwrap().queued, 2);
        }
        // A new handle reads the same two records: nothing of the refused pushes is left.
        let mut again = Outbox::open(&dir, Limits::default()).unwrap();
        assert_eq!(again.status().unwrap().queued, 2);
        assert_eq!(again.next_batch(10).unwrap().len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
