//! A log that does not start with a readable header: kept whole, and either refused (records
//! follow it) or set aside so that an empty queue can start (nothing readable in it).
//!
//! The header is the log's first frame; compaction and creation write it through `log.new` and
//! a rename, so a torn header needs storage that lost data, or another program. It was once cut
//! like a torn tail, leaving an empty file that no later start would accept: refused for ever
//! with nothing left to inspect. Now:
//!
//! - a good frame after the header's place: records may be there. Nothing is cut and the outbox
//!   refuses to open (exit 8) with the offset and what to do, as for any damage in the middle;
//! - no good frame anywhere: no record can be read from it. It is renamed to `log.damaged.N`
//!   (the first free N up to [`MAX_ASIDE`]), kept byte for byte for inspection, and an empty
//!   log starts with a new id, numbering above every seq the mark and the dead letters name
//!   (`state.rs`), which are kept. Logged as a warning naming both files.
//!
//! Must not: truncate or rewrite the damaged file.

use super::entry::LOG_MAGIC;
use super::{LOG, Outbox, scan};
use crate::error::Error;

/// `log.damaged.1` to `log.damaged.MAX_ASIDE`; past that the outbox is refused until someone
/// looks: damage that keeps coming back is not for a device to paper over.
const MAX_ASIDE: u32 = 16;

impl Outbox {
    /// Deals with a log of `len` bytes whose first frame is not a readable header: refuses, or
    /// sets it aside (then the caller creates a new log).
    pub(super) fn damaged_header(&mut self, len: u64) -> Result<(), Error> {
        let path = self.path(LOG);
        let found = scan::good_frame_after(&mut *self.disk, LOG, LOG_MAGIC, 0, len)
            .map_err(|e| self.io("read", LOG, e))?;
        if let Some(good) = found {
            return Err(Error::storage(format!(
                "{path} does not start with a readable outbox header, but holds a good record \
                 frame at byte {good}: it is not cut, so nothing is lost. Stop sfpair, copy the \
                 outbox directory aside for inspection, then move {path} away to start an empty \
                 queue"
            )));
        }
        let mut aside = None;
        for n in 1..=MAX_ASIDE {
            let name = format!("{LOG}.damaged.{n}");
            let taken = self
                .disk
                .len(&name)
                .map_err(|e| self.io("read", &name, e))?
                .is_some();
            if !taken {
                aside = Some(name);
                break;
            }
        }
        let Some(aside) = aside else {
            return Err(Error::storage(format!(
                "{path} has no readable header, and {MAX_ASIDE} damaged logs are set aside \
                 beside it already: check the storage, then remove the {LOG}.damaged.* files"
            )));
        };
        self.disk
            .rename(LOG, &aside)
            .and_then(|()| self.disk.fsync_dir())
            .map_err(|e| self.io("set aside", LOG, e))?;
        log::warn!(
            "{path} did not start with a readable outbox header and held no readable record \
             ({len} bytes): moved to {} for inspection, and an empty queue starts; the dead \
             letters and the mark are kept",
            self.path(&aside)
        );
        Ok(())
    }
}
