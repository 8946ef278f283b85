//! Settling: recording durably that records were delivered, or moved to the dead letters.
//!
//! Order, so that a crash at any point loses nothing: the dead letters are appended to `dead`
//! and synced first, then one frame is appended to `mark` and synced. A crash between the two
//! leaves a record both dead and still queued: it is delivered again, fails again, and is dead
//! twice (harmless: `retry-dead` upserts by the same external id). A crash before the mark is
//! synced leaves the records queued: delivered again, by the same external id.
//!
//! The mark frame carries the new watermark (the oldest seq still queued), so reading the mark
//! back needs only the seqs settled above it, not every seq ever settled.
//!
//! On a full disk: [`Outbox::reserve_outcome`] sets the mark's bytes aside before a batch is
//! sent, as the token store does before a refresh, so a reply that came back can always be
//! recorded; without room nothing is sent (a full disk used to send the same batch on every
//! attempt, publishing events again each time). Dead letters are not reserved: one per record
//! of 200 with its record and up to 8 KiB of error could need megabytes, and refusing to deliver
//! for want of them would stop the one thing that frees space. If they cannot be written, the
//! refused records stay queued and are sent again later (refused again: nothing reaches the org
//! twice), the delivered ones are recorded, and settling says so (exit 8). A compaction that
//! fails after the mark is written does not undo the settle: it is logged and tried again
//! later.

use super::entry::{self, Dead, Entry, MAX_ERROR, Settled};
use super::{COMPACT_AT, DEAD, LOG_NEW, MARK, MAX_ABOVE, Outbox, Settle};
use crate::error::Error;

impl Outbox {
    /// Sets aside the room the mark needs to record the outcome of a batch of `count` records,
    /// before it is sent. Without that room: a storage error, and nothing should be sent.
    pub fn reserve_outcome(&mut self, count: usize) -> Result<(), Error> {
        self.locked(|ob| {
            if !ob.st.mark_current && ob.st.mark_len > 0 {
                // A mark of an older generation: nothing in it applies any more, and a
                // reservation behind it would go when the settle empties it.
                ob.disk
                    .truncate(MARK, 0)
                    .and_then(|()| ob.disk.fsync(MARK))
                    .map_err(|e| ob.io("empty", MARK, e))?;
                ob.st.mark_len = 0;
            }
            let header = if ob.st.mark_current {
                0
            } else {
                entry::MARK_HEADER_LEN
            };
            let need = (header + entry::settled_len(count)) as u64;
            let created = ob.disk.reserve(MARK, need).map_err(|e| {
                let e = ob.io("set aside room in", MARK, e);
                Error::storage(format!(
                    "{}. Nothing was sent: without room to record what the org answers, a batch \
                     would be sent again at every attempt",
                    e.message()
                ))
            })?;
            if created {
                ob.disk
                    .fsync_dir()
                    .map_err(|e| ob.io("sync the directory of", MARK, e))?;
            }
            Ok(())
        })
    }

    /// Durably records outcomes (dead ones written to `dead` first, then the mark, fsynced);
    /// may compact. Unknown or already-settled seqs are ignored.
    pub fn settle(&mut self, outcomes: &[Settle], now: u64) -> Result<(), Error> {
        // seq -> the error, for dead ones; later outcomes for the same seq are ignored (the
        // sort is stable and dedup keeps the first). A sorted list, not a BTreeMap: a map of
        // this type is code of its own, 2,176 bytes more on armv7 (BENCHMARKS.md, "Bytes for the
        // third wave").
        let mut wanted: Vec<(u64, Option<&str>)> = outcomes
            .iter()
            .map(|o| match o {
                Settle::Delivered(seq) => (*seq, None),
                Settle::Dead { seq, error } => (*seq, Some(error.as_str())),
            })
            .collect();
        wanted.sort_by_key(|&(seq, _)| seq);
        wanted.dedup_by_key(|&mut (seq, _)| seq);
        self.locked(|ob| ob.settle_locked(&wanted, now))
    }

    fn settle_locked(&mut self, wanted: &[(u64, Option<&str>)], now: u64) -> Result<(), Error> {
        let Some(&(max, _)) = wanted.last() else {
            return Ok(());
        };
        // One pass from the oldest queued entry: which wanted seqs are queued (and their
        // entries, for dead letters), and the oldest entry still queued after this settle.
        let (from, end) = (self.st.oldest_off, self.st.log_len);
        let mut found: Vec<(u64, bool, u64)> = Vec::new(); // seq, dead, frame length
        let mut dead_bytes = Vec::new();
        let mut next_oldest: Option<(u64, u64, u64)> = None; // offset, seq, queued_at
        let mut at = from;
        self.entries(from, end, |st, e: Entry, len| {
            let here = at;
            at += len;
            if st.settled(e.seq) {
                return true;
            }
            let seq = e.seq;
            match wanted
                .binary_search_by_key(&seq, |&(s, _)| s)
                .map(|i| wanted[i].1)
            {
                Ok(error) => {
                    found.push((seq, error.is_some(), len));
                    if let Some(error) = error {
                        let error = clip(error, MAX_ERROR).to_string();
                        entry::encode_dead(
                            &mut dead_bytes,
                            &Dead {
                                entry: e,
                                error,
                                at: now,
                            },
                        );
                    }
                }
                Err(_) => {
                    next_oldest.get_or_insert((here, seq, e.queued_at));
                }
            }
            next_oldest.is_none() || seq < max
        })?;
        if found.is_empty() {
            return Ok(());
        }
        if !dead_bytes.is_empty() {
            let written = self
                .disk
                .append(DEAD, &dead_bytes)
                .and_then(|c| self.disk.fsync(DEAD).map(|()| c))
                .and_then(|created| {
                    if created {
                        self.disk.fsync_dir()
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = written {
                // Take back what part of them reached the file, keep the refused records
                // queued, and record the delivered ones.
                let _ = self.disk.truncate(DEAD, self.st.dead_len);
                let refused = wanted.iter().filter(|(_, e)| e.is_some()).count();
                let e = self.io("write the dead letters to", DEAD, e);
                let delivered: Vec<(u64, Option<&str>)> = wanted
                    .iter()
                    .filter(|(_, error)| error.is_none())
                    .copied()
                    .collect();
                if !delivered.is_empty() {
                    self.settle_locked(&delivered, now)?;
                }
                return Err(Error::storage(format!(
                    "{}. The {refused} refused record(s) stay queued and are sent again later \
                     (refused again: nothing reaches the org twice); the delivered ones are \
                     recorded",
                    e.message()
                )));
            }
            self.st.dead_len += dead_bytes.len() as u64;
        }
        let low = next_oldest.map_or(self.st.next_seq, |(_, seq, _)| seq);
        let mut mark = Vec::new();
        if !self.st.mark_current {
            entry::encode_mark_header(&mut mark, self.st.header.generation);
        }
        let seqs = found.iter().map(|&(s, d, _)| (s, d)).collect();
        entry::encode_settled(&mut mark, &Settled { low, seqs });
        let write = |ob: &mut Outbox| -> std::io::Result<bool> {
            if !ob.st.mark_current && ob.st.mark_len > 0 {
                // A mark of an older generation: nothing in it applies any more.
                ob.disk.truncate(MARK, 0)?;
            }
            let created = ob.disk.append(MARK, &mark)?;
            ob.disk.fsync(MARK)?;
            if created {
                ob.disk.fsync_dir()?;
            }
            Ok(created)
        };
        write(self).map_err(|e| self.io("write to", MARK, e))?;
        let st = &mut self.st;
        if !st.mark_current {
            st.mark_len = 0;
            st.mark_current = true;
        }
        st.mark_len += mark.len() as u64;
        for &(seq, dead, len) in &found {
            st.queued -= 1;
            st.queued_bytes -= len;
            if dead {
                st.dead += 1;
            } else {
                st.marked_delivered += 1;
            }
            st.above.insert(seq);
        }
        st.low = low;
        st.above.keep_from(low);
        match next_oldest {
            Some((off, _, queued_at)) => {
                st.oldest_off = off;
                st.oldest_queued_at = Some(queued_at);
            }
            None => {
                st.oldest_off = st.log_len;
                st.oldest_queued_at = None;
            }
        }
        if self.should_compact()
            && let Err(e) = self.compact_locked()
        {
            // The outcome is on disk already; the log is only longer than it needs to be.
            let _ = self.disk.remove(LOG_NEW);
            self.st.loaded = false;
            log::warn!(
                "outbox: could not compact {} ({}); what was settled is recorded, and \
                 compaction is tried again later",
                self.dir().display(),
                e.message()
            );
        }
        Ok(())
    }

    /// Empty queue with settled entries, a settled part over half the log and 64 KiB, or too
    /// many settled seqs kept in memory.
    fn should_compact(&self) -> bool {
        let st = &self.st;
        let entries = st.log_len - st.header_len;
        let settled = entries - st.queued_bytes;
        (st.queued == 0 && settled > 0)
            || (settled * 2 > entries && settled > COMPACT_AT)
            || st.above.len() > MAX_ABOVE
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
