//! Compaction: a new log with only the entries still queued, swapped in crash-safely.
//!
//! Steps: (1) write `log.new`: a header with the next generation, the next seq and the
//! delivered count so far, then the queued entries (their frames copied, the `CONTINUED` flag
//! cleared: each is complete on its own now); (2) fsync it; (3) rename it over `log`; (4) fsync
//! the directory; (5) empty `mark` and fsync it. What a crash leaves:
//!
//! - before (3) is durable: the old log and its mark, as before (`log.new` is removed at the
//!   next open);
//! - after (3) is durable, before (5): the new log with a stale mark (it names the old
//!   generation), which is ignored: the new log holds exactly the entries that were queued;
//! - after (5): the same, with an empty mark.
//!
//! Seqs are never reused: the header carries the next seq even when the queue is empty.

use super::entry::{self, LOG_MAGIC, LogHeader};
use super::scan::{Frames, Stop};
use super::{CHUNK, LOG, LOG_NEW, MARK, Outbox};
use crate::error::Error;
use crate::store::frame;

impl Outbox {
    /// Compacts with the lock held and `self.st` fresh.
    pub(super) fn compact_locked(&mut self) -> Result<(), Error> {
        let st = &self.st;
        let header = LogHeader {
            id: st.header.id,
            generation: st.header.generation + 1,
            next_seq: st.next_seq,
            delivered: st.header.delivered + st.marked_delivered,
        };
        self.disk
            .remove(LOG_NEW)
            .map_err(|e| self.io("remove", LOG_NEW, e))?;
        let mut out = Vec::new();
        entry::encode_header(&mut out, &header);
        let (mut pos, end) = (self.st.oldest_off, self.st.log_len);
        loop {
            pos = self.copy_queued(pos, end, &mut out)?;
            if !out.is_empty() {
                self.disk
                    .append(LOG_NEW, &out)
                    .map_err(|e| self.io("write", LOG_NEW, e))?;
                out.clear();
            }
            if pos >= end {
                break;
            }
        }
        let disk = &mut self.disk;
        disk.fsync(LOG_NEW)
            .and_then(|()| disk.rename(LOG_NEW, LOG))
            .and_then(|()| disk.fsync_dir())
            .map_err(|e| self.io("replace", LOG, e))?;
        if self.st.mark_len > 0 {
            self.disk
                .truncate(MARK, 0)
                .and_then(|()| self.disk.fsync(MARK))
                .map_err(|e| self.io("empty", MARK, e))?;
        }
        self.st.loaded = false;
        self.refresh()
    }

    /// Appends to `out` the frames of queued entries from `pos` on, until `out` holds about
    /// [`CHUNK`] bytes or `end` is reached; returns where it stopped.
    fn copy_queued(&mut self, pos: u64, end: u64, out: &mut Vec<u8>) -> Result<u64, Error> {
        let path = self.path(LOG);
        let st = &self.st;
        let mut frames = Frames::new(&mut *self.disk, LOG, LOG_MAGIC, pos, end);
        while out.len() < CHUNK {
            let f = match frames.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(Stop::Io(e)) => return Err(Error::storage(format!("cannot read {path}: {e}"))),
                Err(Stop::Bad(at, _)) => return Err(super::bad_frame(&path, at)),
            };
            let Ok(entry::LogItem::Entry(e)) = entry::decode_log(&f.payload) else {
                return Err(super::bad_frame(&path, f.at));
            };
            if !st.settled(e.seq) {
                frame::encode(out, &LOG_MAGIC, entry::VERSION, 0, f.seq32, &f.payload);
            }
        }
        Ok(frames.pos)
    }
}
