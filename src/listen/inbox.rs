//! The inbox: commands the org sent, on stable storage before they count as received, and what
//! became of each, so that every command runs to completion at most once across `kill -9`,
//! power cuts, reconnects and replays.
//!
//! One append-only log of frames (`store/frame.rs`, magic `SFPI`) in its own directory (0700,
//! files 0600, through the outbox's I/O seam `outbox/disk.rs`, so the power-cut model tests it
//! the same way). Each frame is one [`Entry`]:
//!
//! - `Accept`: an event to act on, with its payload, channel and replay id. Written and fsynced
//!   before the replay id becomes the stored position, so no event is ever skipped by a
//!   restart.
//! - `Position`: the newest replay id of a channel, for events that were not ours (`--match`)
//!   or already known: the position moves, nothing runs.
//! - `Start`: a run of an event begins (fsynced before the program starts). An event with a
//!   `Start` and no `Done` was cut by a crash: it runs again, attempt n + 1.
//! - `Done`: how the run ended (fsynced), with the program's kept output until the result is
//!   queued; from then on the event's id is in the finished set and it never runs again. With
//!   no output (no `--results`, or, after a compaction, a result already queued) there is
//!   nothing to queue: the id is kept 80 hours, then forgotten.
//! - `Sent`: the result was queued in the outbox (a lost `Sent` only queues the result again:
//!   results are upserts by the event's id).
//! - `Tally`: how many runs ended done and how many otherwise among the finished ids that
//!   compactions dropped, so that health's counts stay "since the inbox was made".
//!
//! The log is read once at open (a torn tail is cut, with a warning naming the bytes) and
//! rewritten (written, fsynced, renamed, directory fsynced) when it grows: the positions, the
//! unfinished events, and the finished ids younger than [`KEEP_FINISHED`] (longer than the
//! org keeps events, so no redelivery can find its id gone). A full inbox takes no more events
//! and says so; the org keeps them until there is room.
//!
//! Must not log payloads: they are the org's commands, maybe with customer data.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use log::warn;

use super::bayeux::Delivered;
use crate::error::Error;
use crate::json;
use crate::outbox::disk::{Disk, RealDisk};
use crate::store::frame::{self, FrameError, HEADER_LEN};

/// The inbox log's file name.
const LOG: &str = "log";
/// A compaction in progress.
const LOG_NEW: &str = "log.new";
/// One frame's payload at most (an event's payload, its kept output, the rest): an event is
/// at most 1 MB, and written as a JSON string in the entry it may double (every `\"` of its
/// text becomes `\\\"`), so twice that and room for the rest. Less, and such an event could
/// never be stored: the listener would stop at it for ever.
const MAX_ENTRY: usize = 2 * 1024 * 1024 + 16 * 1024;
/// The log's magic and format version.
const MAGIC: &[u8; 4] = b"SFPI";
const VERSION: u8 = 1;
/// How long a finished event's id is kept: the org keeps events 72 hours; a little more.
pub const KEEP_FINISHED: u64 = 80 * 3600;
/// At most this many finished ids (a flood of commands cannot grow memory for ever); past it
/// the oldest go first, which only matters for an event redelivered after so many others.
pub const MAX_FINISHED: usize = 100_000;
/// The default size limit of the log (`--inbox-max-bytes`).
pub const DEFAULT_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Compact once the log is past this much and more than half of it is history.
const COMPACT_AT: u64 = 64 * 1024;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The program exited 0 (or, without a program, the event was printed).
    Done,
    /// The program exited otherwise, or could not start.
    Failed,
    /// The program ran past `--exec-timeout` and was killed.
    TimedOut,
    /// The event's `--expires-field` was past when it would have run: not run.
    Expired,
}

impl Outcome {
    /// As results and health write it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::Expired => "expired",
        }
    }

    /// The status [`Outcome::name`] gives.
    pub fn from_name(name: &str) -> Option<Outcome> {
        [
            Outcome::Done,
            Outcome::Failed,
            Outcome::TimedOut,
            Outcome::Expired,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// One frame of the log: a JSON object whose `t` names the kind (`accept`, `position`,
/// `start`, `done`, `sent`) and whose other keys are the fields below ([`Entry::encode`],
/// [`Entry::decode`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An event to act on.
    Accept {
        /// Its channel.
        ch: String,
        /// Its replay id.
        id: i64,
        /// Its identity ([`identity`]).
        u: String,
        /// Its payload, as sent.
        p: String,
        /// When it arrived (seconds since the epoch).
        at: u64,
    },
    /// A channel's newest replay id, for events that run nothing.
    Position {
        /// The channel.
        ch: String,
        /// The replay id.
        id: i64,
    },
    /// A run begins.
    Start {
        /// The event's identity.
        u: String,
    },
    /// A run ended.
    Done {
        /// The event's identity.
        u: String,
        /// How.
        s: Outcome,
        /// The program's exit code.
        x: Option<i32>,
        /// The program's kept output, until the result is queued; absent when there is no
        /// result to queue (no `--results`, or queued already).
        o: Option<String>,
        /// When (seconds since the epoch).
        at: u64,
    },
    /// The result is queued in the outbox.
    Sent {
        /// The event's identity.
        u: String,
    },
    /// Runs whose finished ids compactions dropped, counted (written by a compaction).
    Tally {
        /// Ended done.
        d: u64,
        /// Ended otherwise.
        f: u64,
    },
}

impl Entry {
    /// The frame's payload: `{"t":"accept","ch":…,"id":…,"u":…,"p":…,"at":…}` and so on,
    /// fields in the order declared, absent options as `null`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = json::Writer::new();
        match self {
            Entry::Accept { ch, id, u, p, at } => w
                .string("t", "accept")
                .string("ch", ch)
                .number("id", id)
                .string("u", u)
                .string("p", p)
                .number("at", at),
            Entry::Position { ch, id } => {
                w.string("t", "position").string("ch", ch).number("id", id)
            }
            Entry::Start { u } => w.string("t", "start").string("u", u),
            Entry::Done { u, s, x, o, at } => {
                w.string("t", "done").string("u", u).string("s", s.name());
                match x {
                    Some(x) => w.number("x", x),
                    None => w.raw("x", "null"),
                };
                w.opt_string("o", o.as_deref()).number("at", at)
            }
            Entry::Sent { u } => w.string("t", "sent").string("u", u),
            Entry::Tally { d, f } => w.string("t", "tally").number("d", d).number("f", f),
        };
        w.end().into_bytes()
    }

    /// Reads a frame's payload; `None` when it is not an entry this version knows.
    pub fn decode(payload: &[u8]) -> Option<Entry> {
        let o = json::Object::parse(core::str::from_utf8(payload).ok()?).ok()?;
        let s = |k| o.string(k);
        Some(match o.string("t")?.as_str() {
            "accept" => Entry::Accept {
                ch: s("ch")?,
                id: o.int("id")?,
                u: s("u")?,
                p: s("p")?,
                at: o.uint("at")?,
            },
            "position" => Entry::Position {
                ch: s("ch")?,
                id: o.int("id")?,
            },
            "start" => Entry::Start { u: s("u")? },
            "done" => Entry::Done {
                u: s("u")?,
                s: Outcome::from_name(&s("s")?)?,
                x: o.int("x").and_then(|x| i32::try_from(x).ok()),
                o: s("o"),
                at: o.uint("at")?,
            },
            "sent" => Entry::Sent { u: s("u")? },
            "tally" => Entry::Tally {
                d: o.uint("d")?,
                f: o.uint("f")?,
            },
            _ => return None,
        })
    }
}

/// An event to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Its identity ([`identity`]).
    pub uuid: String,
    /// The channel it came on.
    pub channel: String,
    /// Its replay id.
    pub replay_id: i64,
    /// Its payload, as sent.
    pub payload: String,
    /// When it arrived (seconds since the epoch).
    pub received_at: u64,
    /// Runs started before (a crash cut them).
    pub attempts: u32,
}

/// A finished event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// How it ended.
    pub status: Outcome,
    /// The program's exit code.
    pub exit_code: Option<i32>,
    /// The program's kept output, until the result is queued.
    pub output: Option<String>,
    /// When (seconds since the epoch).
    pub at: u64,
    /// Whether the result is queued in the outbox.
    pub sent: bool,
}

/// What [`Inbox::accept`] did with a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// New events to run.
    pub new: usize,
    /// Events already known (redelivered) or not ours.
    pub skipped: usize,
    /// Events at the end of the batch not taken, for want of room: the org sends them again
    /// after the next handshake, from the stored position.
    pub left: usize,
}

/// The figures health shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Events waiting to run.
    pub pending: usize,
    /// Events that ran and succeeded (since the inbox was made).
    pub done: u64,
    /// Events that failed, timed out or expired.
    pub failed: u64,
    /// The log's bytes.
    pub bytes: u64,
    /// The limit (`--inbox-max-bytes`).
    pub max_bytes: u64,
    /// The stored position of each channel.
    pub positions: BTreeMap<String, i64>,
}

/// The inbox in one directory, for one listener at a time.
pub struct Inbox {
    dir: PathBuf,
    disk: Box<dyn Disk>,
    max_bytes: u64,
    log_len: u64,
    positions: BTreeMap<String, i64>,
    pending: Vec<Pending>,
    finished: HashMap<String, Finished>,
    done_count: u64,
    failed_count: u64,
    /// Of those, the runs whose finished ids compactions dropped (done, otherwise).
    tally: (u64, u64),
    /// The listener's lock (`listener.lock`), held for the inbox's life.
    owner: Option<std::fs::File>,
}

/// What a compaction writes for a finished event: how it ended. Its output only while the
/// result waits to be queued: a `Done` with none reads back as sent, so no `Sent` is needed.
fn finished_entry(u: &str, f: &Finished) -> Entry {
    Entry::Done {
        u: u.to_string(),
        s: f.status,
        x: f.exit_code,
        o: if f.sent { None } else { f.output.clone() },
        at: f.at,
    }
}

/// The bytes `entries` take in the log, each in its frame.
fn log_size(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .map(|e| (HEADER_LEN + e.encode().len() + frame::CRC_LEN) as u64)
        .sum()
}

fn storage(dir: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::storage(format!(
        "cannot {what} the inbox in {}: {e} (choose another with --inbox)",
        dir.display()
    ))
}

impl Inbox {
    /// Opens the inbox in `dir`, creating it (0700) if missing; cuts a torn tail. One listener
    /// at a time: a second one is refused while the first runs (exit 2).
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Inbox, Error> {
        let disk = RealDisk::open(dir).map_err(|e| storage(dir, "open", e))?;
        let owner = disk
            .open_lock("listener.lock")
            .map_err(|e| storage(dir, "lock", e))?;
        match owner.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::config(format!(
                    "another sfpair listens with the inbox in {} (a `run --listen` or a                      `listen`); stop it, or give this one its own --inbox",
                    dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(storage(dir, "lock", e)),
        }
        let mut inbox = Inbox::with_disk(dir, Box::new(disk), max_bytes)?;
        inbox.owner = Some(owner);
        Ok(inbox)
    }

    /// The same over any disk (the power-cut model in tests).
    pub(crate) fn with_disk(
        dir: &Path,
        mut disk: Box<dyn Disk>,
        max_bytes: u64,
    ) -> Result<Inbox, Error> {
        // A compaction cut short left log.new beside an intact log: the log is the truth.
        let _ = disk.remove(LOG_NEW);
        let mut inbox = Inbox {
            dir: dir.to_path_buf(),
            disk,
            max_bytes,
            log_len: 0,
            positions: BTreeMap::new(),
            pending: Vec::new(),
            finished: HashMap::new(),
            done_count: 0,
            failed_count: 0,
            tally: (0, 0),
            owner: None,
        };
        inbox.load()?;
        Ok(inbox)
    }

    fn load(&mut self) -> Result<(), Error> {
        let len = self
            .disk
            .len(LOG)
            .map_err(|e| storage(&self.dir, "read", e))?
            .unwrap_or(0);
        let mut bytes = vec![0u8; len as usize];
        if len > 0 {
            let read = self
                .disk
                .read_at(LOG, 0, &mut bytes)
                .map_err(|e| storage(&self.dir, "read", e))?;
            bytes.truncate(read);
        }
        let mut at = 0;
        while at < bytes.len() {
            match frame::decode(&bytes[at..], MAGIC, MAX_ENTRY, VERSION) {
                Ok(h) => {
                    let payload = &bytes[at + HEADER_LEN..at + HEADER_LEN + h.len];
                    let entry = Entry::decode(payload).ok_or_else(|| {
                        Error::storage(format!(
                            "the inbox log in {} has an entry sfpair cannot read at byte {at}; \
                             it is kept as it is: move the directory aside to start a new inbox",
                            self.dir.display()
                        ))
                    })?;
                    self.apply(entry);
                    at += h.frame_len();
                }
                Err(FrameError::Truncated | FrameError::BadChecksum | FrameError::Blank)
                    if self.tail_is_torn(&bytes[at..]) =>
                {
                    warn!(
                        "the inbox log in {} ends in {} bytes of a write cut short (a crash or a \
                         power cut); they are dropped: that event was not yet received, and the \
                         org sends it again",
                        self.dir.display(),
                        bytes.len() - at
                    );
                    self.disk
                        .truncate(LOG, at as u64)
                        .and_then(|()| self.disk.fsync(LOG))
                        .map_err(|e| storage(&self.dir, "repair", e))?;
                    break;
                }
                Err(e) => {
                    return Err(Error::storage(format!(
                        "the inbox log in {} is damaged at byte {at} ({}); it is kept as it \
                         is: move the directory aside to start a new inbox",
                        self.dir.display(),
                        e.describe()
                    )));
                }
            }
        }
        self.log_len = at as u64;
        Ok(())
    }

    /// A damaged last frame is a torn append; damage followed by more frames is not.
    fn tail_is_torn(&self, rest: &[u8]) -> bool {
        !rest
            .windows(MAGIC.len())
            .skip(1)
            .any(|w| w == MAGIC.as_slice())
    }

    fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Accept { ch, id, u, p, at } => {
                self.move_position(&ch, id);
                if !self.knows(&u) {
                    self.pending.push(Pending {
                        uuid: u,
                        channel: ch,
                        replay_id: id,
                        payload: p,
                        received_at: at,
                        attempts: 0,
                    });
                }
            }
            Entry::Position { ch, id } => self.move_position(&ch, id),
            Entry::Start { u } => {
                if let Some(p) = self.pending.iter_mut().find(|p| p.uuid == u) {
                    p.attempts += 1;
                }
            }
            Entry::Done { u, s, x, o, at } => {
                self.pending.retain(|p| p.uuid != u);
                match s {
                    Outcome::Done => self.done_count += 1,
                    _ => self.failed_count += 1,
                }
                // No output kept: no result is to be queued (no `--results`), so there is
                // nothing to wait for. Otherwise its id would be kept for ever, and the ids of
                // a long life of commands would fill the inbox until it took no more.
                let sent = o.is_none();
                self.finished.insert(
                    u,
                    Finished {
                        status: s,
                        exit_code: x,
                        output: o,
                        at,
                        sent,
                    },
                );
            }
            Entry::Sent { u } => {
                if let Some(f) = self.finished.get_mut(&u) {
                    f.sent = true;
                    f.output = None;
                }
            }
            Entry::Tally { d, f } => {
                self.tally = (self.tally.0 + d, self.tally.1 + f);
                self.done_count += d;
                self.failed_count += f;
            }
        }
    }

    fn move_position(&mut self, channel: &str, id: i64) {
        let at = self.positions.entry(channel.to_string()).or_insert(id);
        *at = (*at).max(id);
    }

    fn knows(&self, uuid: &str) -> bool {
        self.finished.contains_key(uuid) || self.pending.iter().any(|p| p.uuid == uuid)
    }

    /// Appends entries in one write and one fsync.
    fn append(&mut self, entries: &[Entry]) -> Result<(), Error> {
        let mut bytes = Vec::new();
        for e in entries {
            let payload = e.encode();
            if payload.len() > MAX_ENTRY {
                return Err(Error::storage(format!(
                    "an inbox entry of {} bytes is over the limit of {MAX_ENTRY}",
                    payload.len()
                )));
            }
            frame::encode(&mut bytes, MAGIC, VERSION, 0, 0, &payload);
        }
        let created = self
            .disk
            .append(LOG, &bytes)
            .map_err(|e| storage(&self.dir, "write", e))?;
        let synced = self.disk.fsync(LOG).and_then(|()| {
            if created {
                self.disk.fsync_dir()
            } else {
                Ok(())
            }
        });
        if let Err(e) = synced {
            // Not durable: take it back, so nothing counts as received that may be lost.
            let _ = self.disk.truncate(LOG, self.log_len);
            return Err(storage(&self.dir, "sync", e));
        }
        self.log_len += bytes.len() as u64;
        for e in entries {
            self.apply(e.clone());
        }
        Ok(())
    }

    /// The stored position of `channel`: where to resume, if anything was received there.
    pub fn position(&self, channel: &str) -> Option<i64> {
        self.positions.get(channel).copied()
    }

    /// Takes a batch of delivered events: the ones `ours` accepts and that are not known yet
    /// become pending; every channel's position moves to its newest event taken. Durable when
    /// it returns. When the whole batch does not fit, the longest beginning of it that fits is
    /// taken and [`Accepted::left`] counts the rest, which the org sends again from the stored
    /// position (a batch bigger than the inbox's room must not stop the device for ever). When
    /// not even the first event fits, nothing moves and `left` is the whole batch
    /// ([`Inbox::full`] says why). An error is a storage failure, and nothing moved either.
    pub fn accept(
        &mut self,
        events: &[Delivered],
        received_at: u64,
        ours: impl Fn(&Delivered) -> bool,
    ) -> Result<Accepted, Error> {
        let (mut entries, mut accepted, size) =
            self.entries_for(events, received_at, &ours, u64::MAX);
        if !entries.is_empty() && self.log_len + size > self.max_bytes {
            // A rewrite wears flash: only when some of the log is history, so that a full
            // inbox offered the same batch again and again does not rewrite it each time.
            if self.live_size(received_at) < self.log_len {
                self.compact(received_at)?;
            }
            if self.log_len + size > self.max_bytes {
                let room = self.max_bytes.saturating_sub(self.log_len);
                (entries, accepted, _) = self.entries_for(events, received_at, &ours, room);
            }
        }
        if !entries.is_empty() {
            self.append(&entries)?;
        }
        Ok(accepted)
    }

    /// The entries that taking `events` writes (new events, then newer positions), what it
    /// makes of them, and the bytes they take in the log: as many events from the first as fit
    /// in `room` bytes, the rest counted in [`Accepted::left`].
    fn entries_for(
        &self,
        events: &[Delivered],
        received_at: u64,
        ours: &impl Fn(&Delivered) -> bool,
        room: u64,
    ) -> (Vec<Entry>, Accepted, u64) {
        let mut entries = Vec::new();
        // The map and set types the inbox and the outbox use anyway: each new key or value
        // type is its own copy of the map's code (BENCHMARKS.md, "Bytes for the third wave").
        let mut newest: BTreeMap<String, i64> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        let mut accepted = Accepted::default();
        // The bytes of the events' entries, and of the positions they move (one per channel).
        let (mut events_size, mut positions_size) = (0, 0);
        let position_size = |ch: &str, id: i64| match self.position(ch) {
            Some(stored) if stored >= id => 0,
            _ => log_size(&[Entry::Position { ch: ch.into(), id }]),
        };
        for (taken, e) in events.iter().enumerate() {
            let before = newest.get(&e.channel).copied();
            let id = before.map_or(e.replay_id, |b| b.max(e.replay_id));
            let positions = positions_size - before.map_or(0, |b| position_size(&e.channel, b))
                + position_size(&e.channel, id);
            let uuid = identity(e);
            let entry = (!self.knows(&uuid) && seen.insert(uuid.clone()) && ours(e)).then(|| {
                Entry::Accept {
                    ch: e.channel.clone(),
                    id: e.replay_id,
                    u: uuid,
                    p: e.payload.clone(),
                    at: received_at,
                }
            });
            let size = entry
                .as_ref()
                .map_or(0, |en| log_size(core::slice::from_ref(en)));
            if events_size + size + positions > room {
                accepted.left = events.len() - taken;
                break;
            }
            newest.insert(e.channel.clone(), id);
            (events_size, positions_size) = (events_size + size, positions);
            match entry {
                Some(entry) => {
                    accepted.new += 1;
                    entries.push(entry);
                }
                None => accepted.skipped += 1,
            }
        }
        for (ch, id) in newest {
            if self.position(&ch).is_none_or(|p| p < id) {
                entries.push(Entry::Position { ch, id });
            }
        }
        (entries, accepted, events_size + positions_size)
    }

    /// Why the inbox took no event: what a full inbox tells the operator (health, the log).
    pub fn full(&self) -> String {
        if self.pending.is_empty() {
            format!(
                "an event is bigger than the inbox in {} can ever hold ({} bytes, \
                 --inbox-max-bytes): raise the limit; the org keeps the event (72 hours)",
                self.dir.display(),
                self.max_bytes
            )
        } else {
            format!(
                "the inbox in {} is full ({} of {} bytes, --inbox-max-bytes): no more commands \
                 are taken until the ones waiting have run; the org keeps them (72 hours)",
                self.dir.display(),
                self.log_len,
                self.max_bytes
            )
        }
    }

    /// The oldest event to run, if any.
    pub fn next(&self) -> Option<&Pending> {
        self.pending.first()
    }

    /// Records that a run of `uuid` starts (durable): a crash from here on runs it again.
    pub fn start(&mut self, uuid: &str) -> Result<(), Error> {
        self.append(&[Entry::Start {
            u: uuid.to_string(),
        }])
    }

    /// Records how the run of `uuid` ended (durable): it never runs again. `output` is what to
    /// keep until the result is queued ([`Inbox::sent`]); `None` when no result is to be
    /// queued (no `--results`): the event then counts as sent at once.
    pub fn finish(
        &mut self,
        uuid: &str,
        status: Outcome,
        exit_code: Option<i32>,
        output: Option<String>,
        at: u64,
    ) -> Result<(), Error> {
        self.append(&[Entry::Done {
            u: uuid.to_string(),
            s: status,
            x: exit_code,
            o: output,
            at,
        }])
    }

    /// Finished events whose result is not yet queued, oldest first.
    pub fn unsent(&self) -> Vec<(String, Finished)> {
        let mut list: Vec<(String, Finished)> = self
            .finished
            .iter()
            .filter(|(_, f)| !f.sent)
            .map(|(u, f)| (u.clone(), f.clone()))
            .collect();
        list.sort_by_key(|(_, f)| f.at);
        list
    }

    /// Records that the result of `uuid` is queued.
    pub fn sent(&mut self, uuid: &str) -> Result<(), Error> {
        self.append(&[Entry::Sent {
            u: uuid.to_string(),
        }])
    }

    /// Whether `uuid` finished (and so never runs again).
    pub fn finished(&self, uuid: &str) -> Option<&Finished> {
        self.finished.get(uuid)
    }

    /// Past 90% of its limit: the receiver takes no more until the worker has made room.
    pub fn nearly_full(&self) -> bool {
        self.log_len * 10 > self.max_bytes * 9
    }

    /// The figures health shows.
    pub fn figures(&self) -> Figures {
        Figures {
            pending: self.pending.len(),
            done: self.done_count,
            failed: self.failed_count,
            bytes: self.log_len,
            max_bytes: self.max_bytes,
            positions: self.positions.clone(),
        }
    }

    /// Compacts when the log is large and mostly history (`now`: seconds since the epoch).
    pub fn maybe_compact(&mut self, now: u64) -> Result<(), Error> {
        let live = self.live_size(now);
        // Past half the limit too: a small inbox (64 KiB) must not stay full of history. And
        // whenever the log is nearly full (the receiver waits for room then) and some of it
        // is history.
        let large = self.log_len > COMPACT_AT.min(self.max_bytes / 2);
        let history = live < self.log_len;
        if large && (live * 2 < self.log_len || (self.nearly_full() && history)) {
            self.compact(now)?;
        }
        Ok(())
    }

    fn kept_finished(&self, now: u64) -> Vec<(String, Finished)> {
        let mut kept: Vec<(String, Finished)> = self
            .finished
            .iter()
            .filter(|(_, f)| !f.sent || now.saturating_sub(f.at) < KEEP_FINISHED)
            .map(|(u, f)| (u.clone(), f.clone()))
            .collect();
        kept.sort_by_key(|(_, f)| f.at);
        let over = kept.len().saturating_sub(MAX_FINISHED);
        kept.drain(..over);
        // At most half the inbox for them, the oldest going first, so that a flood of
        // commands cannot fill it with ids and leave no room for the next ones (an id only
        // matters to an event replayed from before the stored position, `-2`). Results not
        // yet queued stay whatever their size.
        let sizes: Vec<u64> = (kept.iter())
            .map(|(u, f)| log_size(&[finished_entry(u, f)]))
            .collect();
        let mut bytes: u64 = sizes.iter().sum();
        let mut sizes = sizes.into_iter();
        kept.retain(|(_, f)| {
            let size = sizes.next().unwrap_or(0);
            let drop = bytes > self.max_bytes / 2 && f.sent;
            if drop {
                bytes -= size;
            }
            !drop
        });
        kept
    }

    /// The tally a compaction writes when it keeps `kept`: the one it read, and the runs of
    /// the finished ids it drops (counted as all less those kept: no set of ids to build).
    fn tally_after(&self, kept: &[(String, Finished)]) -> (u64, u64) {
        let done = |f: &Finished| f.status == Outcome::Done;
        let all_done = self.finished.values().filter(|f| done(f)).count();
        let kept_done = kept.iter().filter(|(_, f)| done(f)).count();
        let dropped = (self.finished.len() - kept.len()) as u64;
        let dropped_done = (all_done - kept_done) as u64;
        (
            self.tally.0 + dropped_done,
            self.tally.1 + dropped - dropped_done,
        )
    }

    fn live_entries(&self, now: u64) -> Vec<Entry> {
        let kept = self.kept_finished(now);
        let (d, f) = self.tally_after(&kept);
        let tally = (d + f > 0).then_some(Entry::Tally { d, f });
        let mut entries: Vec<Entry> = tally
            .into_iter()
            .chain(self.positions.iter().map(|(ch, id)| Entry::Position {
                ch: ch.clone(),
                id: *id,
            }))
            .collect();
        for p in &self.pending {
            entries.push(Entry::Accept {
                ch: p.channel.clone(),
                id: p.replay_id,
                u: p.uuid.clone(),
                p: p.payload.clone(),
                at: p.received_at,
            });
            for _ in 0..p.attempts {
                entries.push(Entry::Start { u: p.uuid.clone() });
            }
        }
        for (u, f) in &kept {
            entries.push(finished_entry(u, f));
        }
        entries
    }

    fn live_size(&self, now: u64) -> u64 {
        log_size(&self.live_entries(now))
    }

    /// Rewrites the log with what is still live: written, fsynced, renamed, directory fsynced.
    /// A crash at any step leaves the old log or the new one.
    fn compact(&mut self, now: u64) -> Result<(), Error> {
        let entries = self.live_entries(now);
        let mut bytes = Vec::new();
        for e in &entries {
            frame::encode(&mut bytes, MAGIC, VERSION, 0, 0, &e.encode());
        }
        let write = |disk: &mut Box<dyn Disk>| -> io::Result<()> {
            disk.remove(LOG_NEW)?;
            disk.append(LOG_NEW, &bytes)?;
            disk.fsync(LOG_NEW)?;
            disk.rename(LOG_NEW, LOG)?;
            disk.fsync_dir()
        };
        write(&mut self.disk).map_err(|e| storage(&self.dir, "compact", e))?;
        self.log_len = bytes.len() as u64;
        // Replaying the new log gives the same state, without what was dropped.
        let kept = self.kept_finished(now);
        self.tally = self.tally_after(&kept);
        self.finished = kept.into_iter().collect();
        Ok(())
    }
}

/// The identity of an event across redeliveries: its `EventUuid` (or change event key), else
/// its channel and replay id.
pub fn identity(e: &Delivered) -> String {
    match &e.uuid {
        Some(u) => u.clone(),
        None => format!("{}#{}", e.channel, e.replay_id),
    }
}

#[cfg(test)]
mod tests;
