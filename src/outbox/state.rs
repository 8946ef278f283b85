//! What the outbox's files say: [`Outbox::refresh`] re-reads them under the lock, since another
//! handle or process may have pushed, settled or compacted since this one last looked.
//!
//! When only the log grew (another `send`), just the new frames are read. Any other change (a
//! new generation, a mark or dead file that changed) reads everything again, streaming: the log
//! once to check it (`scan::check`, which cuts a torn tail) and once to count, the mark and the
//! dead letters once each. A missing log is created (through `log.new` and a rename, so a log
//! exists complete or not at all) with a fresh random id.

use std::io;

use super::entry::{self, DEAD_MAGIC, LOG_MAGIC, LogHeader, LogItem, MARK_MAGIC, MarkItem};
use super::scan::{self, Frames, Stop};
use super::{DEAD, LOG, LOG_NEW, MARK, MAX_ABOVE, Outbox, State, bad_frame};
use crate::error::Error;
use crate::store::frame::{CRC_LEN, HEADER_LEN};

/// The log header frame's length (its payload: a kind byte and four u64).
const HEADER_FRAME_LEN: u64 = (HEADER_LEN + 33 + CRC_LEN) as u64;

impl Outbox {
    /// Brings `self.st` up to date with the files. Called with the lock held.
    pub(super) fn refresh(&mut self) -> Result<(), Error> {
        if self.st.loaded && self.unchanged_but_appended()? {
            return Ok(());
        }
        self.load()
    }

    fn len(&mut self, name: &str) -> Result<u64, Error> {
        let len = self.disk.len(name);
        len.map(|l| l.unwrap_or(0))
            .map_err(|e| self.io("read", name, e))
    }

    /// True when the files are as this handle left them, except for entries appended to the
    /// log, which it then reads.
    fn unchanged_but_appended(&mut self) -> Result<bool, Error> {
        let (mark, dead, log) = (self.len(MARK)?, self.len(DEAD)?, self.len(LOG)?);
        if mark != self.st.mark_len || dead != self.st.dead_len || log < self.st.log_len {
            return Ok(false);
        }
        if self.read_header()? != Some(self.st.header) {
            return Ok(false);
        }
        if log > self.st.log_len {
            let path = self.path(LOG);
            let from = self.st.log_len;
            let end = scan::check(&mut *self.disk, LOG, &path, LOG_MAGIC, from)?.end;
            self.count_entries(from, end)?;
            self.st.log_len = end;
        }
        Ok(true)
    }

    /// The log's header frame, `None` when the log is missing or does not start with one.
    fn read_header(&mut self) -> Result<Option<LogHeader>, Error> {
        // Only the header's bytes: this runs before every operation.
        let end = self.len(LOG)?.min(HEADER_FRAME_LEN);
        let path = self.path(LOG);
        let mut frames = Frames::new(&mut *self.disk, LOG, LOG_MAGIC, 0, end);
        match frames.next_frame() {
            Ok(Some(f)) => match entry::decode_log(&f.payload) {
                Ok(LogItem::Header(h)) => {
                    self.st.header_len = f.len;
                    Ok(Some(h))
                }
                _ => Err(bad_frame(&path, 0)),
            },
            Ok(None) | Err(Stop::Bad(..)) => Ok(None),
            Err(Stop::Io(e)) => Err(Error::storage(format!("cannot read {path}: {e}"))),
        }
    }

    /// Reads every file again.
    fn load(&mut self) -> Result<(), Error> {
        // A compaction or creation cut short: the log it would have replaced is intact.
        self.disk
            .remove(LOG_NEW)
            .map_err(|e| self.io("remove", LOG_NEW, e))?;
        match self.disk.len(LOG).map_err(|e| self.io("read", LOG, e))? {
            // An empty log holds nothing, not even its header (an older sfpair cut a damaged
            // header to this): a new one takes its place.
            None | Some(0) => self.create()?,
            Some(len) => {
                if self.read_header()?.is_none() {
                    self.damaged_header(len)?;
                    self.create()?;
                }
            }
        }
        let path = self.path(LOG);
        let log_end = scan::check(&mut *self.disk, LOG, &path, LOG_MAGIC, 0)?.end;
        let Some(header) = self.read_header()? else {
            return Err(Error::storage(format!(
                "{path} does not start with an outbox header: it is not an sfpair outbox log. \
                 Move it away (an empty queue is created) or point --outbox elsewhere"
            )));
        };
        self.id = format!("{:016x}", header.id);
        let header_len = self.st.header_len;
        self.st = State {
            loaded: false,
            header,
            header_len,
            log_len: log_end,
            next_seq: header.next_seq,
            ..State::default()
        };
        let mut highest = 0u64;
        self.load_mark(&mut highest)?;
        self.load_dead(&mut highest)?;
        self.st.oldest_off = log_end;
        self.count_entries(header_len, log_end)?;
        // A seq that reached the mark or the dead letters is never handed out again, even when
        // its log entry was lost (read by a deliverer before a power cut took it from the log).
        self.st.next_seq = self.st.next_seq.max(highest.saturating_add(1));
        if self.st.queued == 0 {
            self.st.low = self.st.next_seq;
            self.st.above.clear();
        }
        self.st.loaded = true;
        Ok(())
    }

    /// Adds the entries in `[from, end)` to the counts. With `from` at the first entry, that
    /// is all of them; later, entries just appended (all unsettled).
    fn count_entries(&mut self, from: u64, end: u64) -> Result<(), Error> {
        let mut first: Option<(u64, u64, u64)> = None;
        let (mut n, mut bytes, mut last) = (0u64, 0u64, None);
        let mut at = from;
        self.entries(from, end, |st, e, len| {
            if !st.settled(e.seq) {
                n += 1;
                bytes += len;
                first.get_or_insert((at, e.seq, e.queued_at));
            }
            last = Some(e.seq);
            at += len;
            true
        })?;
        let st = &mut self.st;
        if let Some(last) = last {
            st.next_seq = st.next_seq.max(last + 1);
        }
        if st.queued == 0
            && let Some((off, seq, queued_at)) = first
        {
            st.oldest_off = off;
            st.low = seq;
            st.oldest_queued_at = Some(queued_at);
            let low = st.low;
            st.above.keep_from(low);
        }
        st.queued += n;
        st.queued_bytes += bytes;
        Ok(())
    }

    fn load_mark(&mut self, highest: &mut u64) -> Result<(), Error> {
        let path = self.path(MARK);
        let end = scan::check(&mut *self.disk, MARK, &path, MARK_MAGIC, 0)?.end;
        self.st.mark_len = end;
        let generation = self.st.header.generation;
        let mut frames = Frames::new(&mut *self.disk, MARK, MARK_MAGIC, 0, end);
        let mut current = None;
        let st = &mut self.st;
        loop {
            let f = match frames.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(Stop::Io(e)) => return Err(Error::storage(format!("cannot read {path}: {e}"))),
                Err(Stop::Bad(at, _)) => return Err(bad_frame(&path, at)),
            };
            match (entry::decode_mark(&f.payload), current) {
                (Ok(MarkItem::Header(g)), None) => current = Some(g == generation),
                (Ok(MarkItem::Settled(s)), Some(this)) => {
                    for &(seq, _) in &s.seqs {
                        *highest = (*highest).max(seq);
                    }
                    *highest = (*highest).max(s.low.saturating_sub(1));
                    if !this {
                        continue;
                    }
                    st.low = st.low.max(s.low);
                    for &(seq, dead) in &s.seqs {
                        if !dead {
                            st.marked_delivered += 1;
                        }
                        if seq >= st.low {
                            st.above.insert(seq);
                        }
                    }
                    if st.above.len() > MAX_ABOVE {
                        let low = st.low;
                        st.above.keep_from(low);
                    }
                }
                _ => return Err(bad_frame(&path, f.at)),
            }
        }
        st.mark_current = current == Some(true);
        Ok(())
    }

    fn load_dead(&mut self, highest: &mut u64) -> Result<(), Error> {
        let path = self.path(DEAD);
        let end = scan::check(&mut *self.disk, DEAD, &path, DEAD_MAGIC, 0)?.end;
        self.st.dead_len = end;
        let mut frames = Frames::new(&mut *self.disk, DEAD, DEAD_MAGIC, 0, end);
        loop {
            match frames.next_frame() {
                Ok(Some(f)) => match entry::decode_dead(&f.payload) {
                    Ok(d) => {
                        *highest = (*highest).max(d.entry.seq);
                        self.st.dead += 1;
                    }
                    Err(_) => return Err(bad_frame(&path, f.at)),
                },
                Ok(None) => return Ok(()),
                Err(Stop::Io(e)) => return Err(Error::storage(format!("cannot read {path}: {e}"))),
                Err(Stop::Bad(at, _)) => return Err(bad_frame(&path, at)),
            }
        }
    }

    /// A new, empty log with a fresh id: written as `log.new`, synced, renamed into place.
    fn create(&mut self) -> Result<(), Error> {
        let header = LogHeader {
            id: random_id().map_err(|e| self.io("make an id for", LOG, e))?,
            generation: 1,
            next_seq: 1,
            delivered: 0,
        };
        let mut bytes = Vec::new();
        entry::encode_header(&mut bytes, &header);
        self.disk
            .append(LOG_NEW, &bytes)
            .and_then(|_| self.disk.fsync(LOG_NEW))
            .and_then(|()| self.disk.rename(LOG_NEW, LOG))
            .and_then(|()| self.disk.fsync_dir())
            .map_err(|e| self.io("create", LOG, e))
    }
}

/// 64 random bits from the kernel (ring's getrandom).
fn random_id() -> io::Result<u64> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| io::Error::other("the kernel's random source failed"))?;
    Ok(u64::from_le_bytes(bytes))
}
