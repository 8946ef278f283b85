//! Dead letters: records the server refused for good (a field the org lacks, a bad value),
//! kept with its error in `dead` until someone fixes the org and runs `retry-dead`.
//!
//! `retry_dead` moves them back into the log with new seqs and the same JSON (so the same
//! external id): (1) append them to the log as one push and fsync it, (2) empty `dead` and
//! fsync it. A crash after (1) and before (2) leaves the letters both queued and dead; the
//! next `retry-dead` queues them once more, and upserting the same external id twice writes
//! the same row. It never loses one: `dead` is only emptied once the log holds its letters.

use super::entry::{self, DEAD_MAGIC, Entry};
use super::scan::{Frames, Stop};
use super::{CHUNK, DEAD, DeadLetter, LOG, Outbox};
use crate::error::Error;

impl Outbox {
    /// The dead letters, oldest first, at most `limit`.
    pub fn dead_letters(&mut self, limit: usize) -> Result<Vec<DeadLetter>, Error> {
        self.locked(|ob| {
            let mut out = Vec::new();
            ob.dead_from(0, |d, _| {
                out.push(DeadLetter {
                    seq: d.entry.seq,
                    target: d.entry.target,
                    json: d.entry.json,
                    error: d.error,
                    at: d.at,
                });
                out.len() < limit
            })?;
            Ok(out)
        })
    }

    /// Puts every dead letter back in the queue (new seqs, same JSON); returns how many.
    pub fn retry_dead(&mut self, now: u64) -> Result<usize, Error> {
        self.locked(|ob| ob.retry_dead_locked(now))
    }

    fn retry_dead_locked(&mut self, now: u64) -> Result<usize, Error> {
        // First pass: how many, how many bytes, so that a full outbox refuses before writing.
        let (mut count, mut size) = (0usize, 0u64);
        let mut seq = self.st.next_seq;
        self.dead_from(0, |d, _| {
            let e = Entry { seq, ..d.entry };
            seq += 1;
            count += 1;
            size += entry::entry_len(&e) as u64;
            true
        })?;
        if count == 0 {
            return Ok(0);
        }
        self.make_room(size, count, self.st.dead_len)?;
        let first = self.st.next_seq;
        let (mut pos, mut written) = (0u64, 0usize);
        while written < count {
            let mut out = Vec::new();
            pos = self.dead_from(pos, |d, _| {
                let e = Entry {
                    seq: first + written as u64,
                    queued_at: now,
                    ..d.entry
                };
                written += 1;
                entry::encode_entry(&mut out, &e, written < count);
                out.len() < CHUNK && written < count
            })?;
            self.disk
                .append(LOG, &out)
                .map_err(|e| self.io("write to", LOG, e))?;
        }
        self.disk
            .fsync(LOG)
            .map_err(|e| self.io("write to", LOG, e))?;
        self.disk
            .truncate(DEAD, 0)
            .and_then(|()| self.disk.fsync(DEAD))
            .map_err(|e| self.io("empty", DEAD, e))?;
        self.st.loaded = false;
        self.refresh()?;
        Ok(count)
    }

    /// Calls `visit` for each dead letter from byte `pos` until it returns false; returns the
    /// offset after the last one visited.
    fn dead_from(
        &mut self,
        pos: u64,
        mut visit: impl FnMut(entry::Dead, u64) -> bool,
    ) -> Result<u64, Error> {
        let path = self.path(DEAD);
        let end = self.st.dead_len;
        let mut frames = Frames::new(&mut *self.disk, DEAD, DEAD_MAGIC, pos, end);
        loop {
            let f = match frames.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(frames.pos),
                Err(Stop::Io(e)) => return Err(Error::storage(format!("cannot read {path}: {e}"))),
                Err(Stop::Bad(at, _)) => return Err(super::bad_frame(&path, at)),
            };
            let Ok(d) = entry::decode_dead(&f.payload) else {
                return Err(super::bad_frame(&path, f.at));
            };
            if !visit(d, f.at) {
                return Ok(frames.pos);
            }
        }
    }
}
