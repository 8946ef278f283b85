//! The outbox: a durable queue of records waiting to be delivered to Salesforce.
//!
//! A record accepted by [`Outbox::push`] is on stable storage when `push` returns, and stays in
//! the queue until [`Outbox::settle`] records that it was delivered or moved to the dead letters;
//! never lost, never dropped to make room, across `kill -9` and power cuts. This module is the
//! storage only: delivery (HTTP, batching, result classification) drives it from outside, taking
//! [`Outbox::next_batch`], sending it without holding any lock, then settling the outcomes.
//!
//! On disk (docs/outbox.md, "On disk"), in one directory (0700, files 0600):
//!
//! - `log`: a header frame (outbox id, generation, next seq, delivered count), then one frame
//!   per queued record, append-only, in increasing seq order;
//! - `mark`: what was settled in this generation of the log: a header frame naming the
//!   generation, then per settle a frame with a watermark `low` (every log seq below it is
//!   settled) and the settled seqs. A mark of another generation is stale and ignored;
//! - `dead`: dead letters (the entry, the server's error, when);
//! - `lock`, `deliver.lock`: the locks (`lock.rs`); `log.new`: a compaction in progress.
//!
//! Memory does not grow with the queue: every operation streams the log (`scan.rs`); what is
//! kept is a few counters and the settled seqs above the oldest unsettled one (`above`).
//! Delivery takes the oldest first, so `above` holds only what was settled out of order: the
//! rest of a batch whose first record must be retried, or batches of one sObject delivered past
//! an older record of another. It is bounded by compaction, which empties it: the outbox
//! compacts when `above` passes [`MAX_ABOVE`] seqs, as well as when the settled part of the log
//! is more than half of it and over 64 KiB, and whenever the queue becomes empty.
//!
//! Beside the storage: `input.rs` (what `send` accepts) and `place.rs` (where an outbox lives).
//! Delivery (HTTP, batching, result classification, pacing) is the `delivery` module's; it
//! drives this one from outside.
//!
//! Storage files: `entry.rs` (payload codecs, pure), `scan.rs` (streaming, torn tails), `state.rs`
//! (what the files say), `damaged.rs` (a log without a readable header), `push.rs`
//! (queueing), `settle.rs` (the mark), `compact.rs`, `dead.rs`, `lock.rs`, `disk.rs` (the I/O
//! seam the power-cut model replaces). This file must not log record contents: they
//! are the customer's data.

mod compact;
mod damaged;
mod dead;
pub(crate) mod disk;
mod entry;
pub mod input;
pub(crate) mod lock;
pub mod place;
mod push;
mod scan;
mod seqs;
mod settle;
mod state;

#[cfg(test)]
pub(crate) mod model;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

pub use self::entry::{MAX_RECORD_LIMIT, Target};
pub use self::lock::DeliverLock;
pub use self::push::Records;

use self::disk::{Disk, RealDisk};
use self::entry::{Entry, LOG_MAGIC, LogHeader, LogItem};
use self::scan::{Frames, Stop};
use crate::error::Error;

/// The outbox's size limit when `--outbox-max-bytes` is not given.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// The largest record, in bytes of JSON.
pub const DEFAULT_MAX_RECORD: usize = 128 * 1024;
/// Records per delivery request: what one sObject Collections request takes.
pub const MAX_BATCH: usize = 200;
/// Settled seqs above the oldest unsettled one kept before the outbox compacts.
pub const MAX_ABOVE: usize = 4096;
/// The settled part of the log that makes compaction worth it.
const COMPACT_AT: u64 = 64 * 1024;
/// Frames written per append while copying (compaction, retry_dead).
const CHUNK: usize = 256 * 1024;

const LOG: &str = "log";
const LOG_NEW: &str = "log.new";
const MARK: &str = "mark";
const DEAD: &str = "dead";

/// How much the outbox may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The log's bytes on disk, after compaction of settled entries.
    pub max_bytes: u64,
    /// The JSON text of one record (at most [`MAX_RECORD_LIMIT`]).
    pub max_record: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_record: DEFAULT_MAX_RECORD,
        }
    }
}

/// One record to queue. `json` is a JSON object's text; the caller has already checked that it
/// is an object and that it carries its external-id field as a string (for Upsert), except when
/// `auto_id` is true: then a missing external-id field is filled by `push` with
/// "{outbox id}-{seq}" (unique to this outbox for ever, so a replay upserts the same row).
pub struct NewRecord {
    /// Where it goes.
    pub target: Target,
    /// The record, as one JSON object.
    pub json: String,
    /// Its external id is filled in from the outbox's id and its seq.
    pub auto_id: bool,
}

/// A queued record, as [`Outbox::next_batch`] hands it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its place in the log.
    pub seq: u64,
    /// Where it goes.
    pub target: Target,
    /// The record, as one JSON object.
    pub json: String,
    /// When it was queued (seconds since the epoch).
    pub queued_at: u64,
}

/// What a push queued.
#[derive(Clone, PartialEq, Eq)]
pub struct Pushed {
    /// How many records were queued.
    pub count: usize,
    /// The seq of the first one.
    pub first_seq: u64,
    /// Records now queued (this push's included).
    pub queued: u64,
}

/// The queue's figures, as `outbox status` and `run`'s health show them.
#[derive(Clone, PartialEq, Eq)]
pub struct QueueStatus {
    /// Records waiting.
    pub queued: u64,
    /// The queued records' bytes in the log (frames included).
    pub queued_bytes: u64,
    /// When the oldest waiting record was queued (seconds since the epoch).
    pub oldest_queued_at: Option<u64>,
    /// Delivered since the outbox was created (persisted across compaction).
    pub delivered: u64,
    /// Records in the dead letters.
    pub dead: u64,
    /// The outbox's size limit.
    pub max_bytes: u64,
}

impl QueueStatus {
    /// The figures as JSON (`outbox status --json` adds the directory and the dead letters;
    /// `run`'s health adds whether delivery is paused). `now`: seconds since the epoch.
    pub fn figures(&self, now: u64) -> serde_json::Value {
        serde_json::json!({
            "queued": self.queued,
            "queued_bytes": self.queued_bytes,
            "max_bytes": self.max_bytes,
            "oldest_age_s": self.oldest_queued_at.map(|t| now.saturating_sub(t)),
            "delivered": self.delivered,
            "dead": self.dead,
        })
    }
}

#[derive(Clone, PartialEq, Eq)]
/// A record the org refused for good, kept with why.
pub struct DeadLetter {
    /// The seq it had in the log.
    pub seq: u64,
    /// Where it was going.
    pub target: Target,
    /// The record, as one JSON object.
    pub json: String,
    /// The org's error, sanitized.
    pub error: String,
    /// When it was refused (seconds since the epoch).
    pub at: u64,
}

/// The outcome of one delivered-or-not record.
#[derive(Clone, PartialEq, Eq)]
pub enum Settle {
    /// The record with this seq was delivered.
    Delivered(u64),
    /// A permanent error: moved to the dead letters with the (already sanitized) error text.
    Dead {
        /// The record's seq.
        seq: u64,
        /// The org's error.
        error: String,
    },
}

/// What the files say, as of the last time this handle read them under the lock.
#[derive(Default)]
struct State {
    loaded: bool,
    header: LogHeader,
    header_len: u64,
    log_len: u64,
    mark_len: u64,
    dead_len: u64,
    /// The mark's header names this log generation (else the mark is stale: ignored).
    mark_current: bool,
    next_seq: u64,
    /// Every log seq below it is settled; it is the oldest unsettled seq, or `next_seq`.
    low: u64,
    /// Settled seqs at or above `low`.
    above: seqs::Seqs,
    /// Delivered marks in this generation.
    marked_delivered: u64,
    queued: u64,
    queued_bytes: u64,
    /// The offset of the oldest unsettled entry (`log_len` when none).
    oldest_off: u64,
    oldest_queued_at: Option<u64>,
    dead: u64,
}

impl State {
    fn settled(&self, seq: u64) -> bool {
        seq < self.low || self.above.contains(seq)
    }
}

/// The durable queue in one directory. Each handle re-reads what changed under the lock, so
/// several handles (and processes) may share a directory.
pub struct Outbox {
    dir: PathBuf,
    disk: Box<dyn Disk>,
    limits: Limits,
    id: String,
    st: State,
}

impl Outbox {
    /// Opens the outbox in `dir`, creating it (0700) if missing; cuts a torn tail.
    pub fn open(dir: &Path, limits: Limits) -> Result<Outbox, Error> {
        let disk = RealDisk::open(dir)?;
        Outbox::with_disk(dir, Box::new(disk), limits)
    }

    fn with_disk(dir: &Path, disk: Box<dyn Disk>, limits: Limits) -> Result<Outbox, Error> {
        if limits.max_record > MAX_RECORD_LIMIT || limits.max_record == 0 {
            return Err(Error::config(format!(
                "the outbox's record limit must be between 1 and {MAX_RECORD_LIMIT} bytes, not {}",
                limits.max_record
            )));
        }
        let mut outbox = Outbox {
            dir: dir.to_path_buf(),
            disk,
            limits,
            id: String::new(),
            st: State::default(),
        };
        outbox.locked(|_| Ok(()))?;
        Ok(outbox)
    }

    /// The outbox's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The outbox id (16 hex digits), made once when the outbox was created.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `dir/name`, for messages.
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn io(&self, what: &str, name: &str, e: io::Error) -> Error {
        if let Some(refused) = disk::untrusted_error(&self.dir.join(name), &e) {
            return refused;
        }
        let hint = match e.kind() {
            io::ErrorKind::PermissionDenied => " (run as the user that owns the outbox)",
            io::ErrorKind::ReadOnlyFilesystem => " (the filesystem is read-only)",
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                " (the filesystem is full: free some space)"
            }
            io::ErrorKind::FileTooLarge => {
                " (the process's file size limit is reached, ulimit -f or systemd's LimitFSIZE=: \
                 raise it, or lower --outbox-max-bytes below it)"
            }
            _ => "",
        };
        Error::storage(format!("cannot {what} {}: {e}{hint}", self.path(name)))
    }

    /// Runs `f` under the outbox lock, after re-reading what other handles changed. After a
    /// failure the next operation re-reads everything.
    fn locked<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        self.disk
            .lock()
            .map_err(|e| self.io("lock the outbox in", "lock", e))?;
        let result = self.refresh().and_then(|()| f(self));
        if result.is_err() {
            self.st.loaded = false;
        }
        self.disk.unlock();
        result
    }

    /// Makes sure `size` more bytes fit (compacting if that is what it takes), or refuses them
    /// whole. Dead letters count toward the limit: an org that refuses every record for good
    /// must fill the outbox and make `send` say so, not fill the flash. `releasing` is what
    /// the caller is about to take out of the dead letters (`retry_dead` moves them).
    fn make_room(&mut self, size: u64, count: usize, releasing: u64) -> Result<(), Error> {
        let max = self.limits.max_bytes;
        let dead = self.st.dead_len.saturating_sub(releasing);
        if self.st.log_len + dead + size <= max {
            return Ok(());
        }
        if self.st.header_len + self.st.queued_bytes + dead + size <= max {
            return self.compact_locked();
        }
        Err(Error::storage(format!(
            "the outbox {} is full: it holds {} records in {} bytes and {dead} bytes of dead \
             letters, and {count} more records ({size} bytes) would pass its limit of {max} \
             bytes. Nothing was queued and nothing queued was dropped: deliver what it holds \
             with `sfpair outbox flush`, fix the org and run `sfpair outbox retry-dead` for \
             the dead letters (`sfpair outbox status` lists them), or raise \
             --outbox-max-bytes",
            self.dir.display(),
            self.st.queued,
            self.st.header_len + self.st.queued_bytes,
        )))
    }

    /// The oldest unsettled entry and, after it in log order, up to `max - 1` more unsettled
    /// entries with the same Target (skipping others), streaming the log. `max` is capped at
    /// [`MAX_BATCH`]; empty when nothing is queued.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<Pending>, Error> {
        let max = max.min(MAX_BATCH);
        self.locked(|ob| {
            let mut batch: Vec<Pending> = Vec::new();
            if max == 0 || ob.st.queued == 0 {
                return Ok(batch);
            }
            let (from, end) = (ob.st.oldest_off, ob.st.log_len);
            ob.entries(from, end, |st, e, _| {
                if st.settled(e.seq) || batch.first().is_some_and(|b| b.target != e.target) {
                    return true;
                }
                batch.push(Pending {
                    seq: e.seq,
                    target: e.target,
                    json: e.json,
                    queued_at: e.queued_at,
                });
                batch.len() < max
            })?;
            Ok(batch)
        })
    }

    /// The queue's figures, read under the lock.
    pub fn status(&mut self) -> Result<QueueStatus, Error> {
        self.locked(|ob| {
            let st = &ob.st;
            Ok(QueueStatus {
                queued: st.queued,
                queued_bytes: st.queued_bytes,
                oldest_queued_at: st.oldest_queued_at,
                delivered: st.header.delivered + st.marked_delivered,
                dead: st.dead,
                max_bytes: ob.limits.max_bytes,
            })
        })
    }

    /// Compacts the log now: only the unsettled entries are kept.
    pub fn compact(&mut self) -> Result<(), Error> {
        self.locked(|ob| ob.compact_locked())
    }

    /// The delivery lock (`lock.rs`), `None` when another process delivers now.
    pub fn try_deliver_lock(&self) -> Result<Option<DeliverLock>, Error> {
        self.disk
            .open_lock("deliver.lock")
            .and_then(lock::try_deliver_lock)
            .map_err(|e| self.io("lock", "deliver.lock", e))
    }

    /// Calls `visit(state, entry, frame length)` for each entry of the log in `[from, end)`
    /// until it returns false. The range was checked by `state.rs`.
    fn entries(
        &mut self,
        from: u64,
        end: u64,
        mut visit: impl FnMut(&State, Entry, u64) -> bool,
    ) -> Result<(), Error> {
        let path = self.path(LOG);
        let mut frames = Frames::new(&mut *self.disk, LOG, LOG_MAGIC, from, end);
        loop {
            let f = match frames.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(Stop::Io(e)) => return Err(Error::storage(format!("cannot read {path}: {e}"))),
                Err(Stop::Bad(at, _)) => {
                    return Err(Error::storage(format!(
                        "{path} changed under the lock at byte {at}: another program writes to \
                         it; stop it and try again"
                    )));
                }
            };
            match entry::decode_log(&f.payload) {
                Ok(LogItem::Entry(e)) => {
                    if !visit(&self.st, e, f.len) {
                        return Ok(());
                    }
                }
                Ok(LogItem::Header(_)) | Err(_) => return Err(bad_frame(&path, f.at)),
            }
        }
    }
}

fn bad_frame(path: &str, at: u64) -> Error {
    Error::storage(format!(
        "{path} holds a frame at byte {at} whose checksum matches but whose content is not an \
         outbox record (written by another program or a newer sfpair): upgrade sfpair, or move \
         the outbox directory aside"
    ))
}
