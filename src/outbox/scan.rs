//! Reading the outbox's framed files in bounded memory, and what to do with a bad frame.
//!
//! [`Frames`] streams the frames of a byte range through one buffer (64 KiB, or one frame when
//! a frame is larger), so opening a log of 100,000 records holds one frame at a time, never the
//! file. [`check`] walks a file's frames from an offset before anything is believed:
//!
//! - a frame that does not decode (short, bad checksum, blank) with no good frame after it is a
//!   write cut short by a power cut or a `kill -9`: it is cut off (truncate, fsync) with a
//!   warning naming the bytes and the file. Nothing before it is touched.
//! - a push's frames carry `CONTINUED` but the last: a push whose last frame is missing is cut
//!   whole, back to its first frame, so a push is in the queue completely or not at all. The
//!   warning says what the cut means for that file, honestly: a push is acknowledged only once
//!   it is on disk, so a cut one was acknowledged only if the storage lost a write it had
//!   confirmed; cut outcomes in `mark` mean records are sent again.
//! - a bad frame followed by a good one is damage in the middle, not a torn tail: refused with
//!   the offset (Storage), never "repaired" by truncating good records.
//! - a frame of a newer format version (its checksum matches) is refused: upgrade sfpair.

use std::io;

use super::disk::Disk;
use super::entry::{CONTINUED, MAX_PAYLOAD, VERSION};
use super::{DEAD, LOG, MARK};
use crate::error::Error;
use crate::store::frame::{self, FrameError, HEADER_LEN};

const CHUNK: usize = 64 * 1024;

/// One frame read back.
pub struct Frame {
    /// Its offset in the file.
    pub at: u64,
    pub flags: u8,
    pub seq32: u32,
    /// The whole frame's length.
    pub len: u64,
    pub payload: Vec<u8>,
}

/// Why scanning stopped early.
pub enum Stop {
    Io(io::Error),
    Bad(u64, FrameError),
}

/// The frames of `name` in `[pos, end)`.
pub struct Frames<'a> {
    disk: &'a mut dyn Disk,
    name: &'a str,
    magic: [u8; 4],
    pub pos: u64,
    end: u64,
    buf: Vec<u8>,
    buf_at: u64,
}

impl<'a> Frames<'a> {
    pub fn new(disk: &'a mut dyn Disk, name: &'a str, magic: [u8; 4], pos: u64, end: u64) -> Self {
        Frames {
            disk,
            name,
            magic,
            pos,
            end,
            buf: Vec::new(),
            buf_at: 0,
        }
    }

    /// Up to `n` bytes at `at` (fewer at `end`).
    fn bytes(&mut self, at: u64, n: usize) -> io::Result<&[u8]> {
        let have = at >= self.buf_at && at + n as u64 <= self.buf_at + self.buf.len() as u64;
        if !have {
            let want = n.max(CHUNK).min(self.end.saturating_sub(at) as usize);
            self.buf.resize(want, 0);
            let got = self.disk.read_at(self.name, at, &mut self.buf)?;
            self.buf.truncate(got);
            self.buf_at = at;
            if self.buf.capacity() > 2 * CHUNK && want <= CHUNK {
                self.buf.shrink_to(CHUNK);
            }
        }
        let from = (at - self.buf_at) as usize;
        let to = (from + n).min(self.buf.len());
        Ok(&self.buf[from.min(to)..to])
    }

    /// The frame at `at`, without moving on.
    fn frame_at(&mut self, at: u64) -> Result<Frame, Stop> {
        let magic = self.magic;
        let head = self.bytes(at, HEADER_LEN).map_err(Stop::Io)?;
        let Ok(head) = <&[u8; HEADER_LEN]>::try_from(head) else {
            let blank = !head.is_empty() && head.iter().all(|&b| b == 0 || b == 0xFF);
            let why = if blank {
                FrameError::Blank
            } else {
                FrameError::Truncated
            };
            return Err(Stop::Bad(at, why));
        };
        let h = frame::check_header(head, &magic, MAX_PAYLOAD).map_err(|e| Stop::Bad(at, e))?;
        let len = h.frame_len();
        let bytes = self.bytes(at, len).map_err(Stop::Io)?;
        let h = frame::decode(bytes, &magic, MAX_PAYLOAD, VERSION).map_err(|e| Stop::Bad(at, e))?;
        Ok(Frame {
            at,
            flags: h.flags,
            seq32: h.seq,
            len: len as u64,
            payload: bytes[HEADER_LEN..HEADER_LEN + h.len].to_vec(),
        })
    }

    /// The next frame, `Ok(None)` at the end of the range.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, Stop> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let f = self.frame_at(self.pos)?;
        self.pos += f.len;
        Ok(Some(f))
    }

    /// The offset of a good frame after `at`, if any (damage in the middle, not a torn tail).
    fn good_frame_after(&mut self, at: u64) -> io::Result<Option<u64>> {
        let mut p = at + 1;
        while p + HEADER_LEN as u64 <= self.end {
            let window = self.bytes(p, CHUNK)?.to_vec();
            let Some(i) = window.windows(4).position(|w| w == self.magic) else {
                p += window.len().saturating_sub(3).max(1) as u64;
                continue;
            };
            let cand = p + i as u64;
            match self.frame_at(cand) {
                Ok(_) => return Ok(Some(cand)),
                Err(Stop::Io(e)) => return Err(e),
                Err(Stop::Bad(..)) => p = cand + 1,
            }
        }
        Ok(None)
    }
}

/// What [`check`] found: the end of the good frames (the file's new length).
pub struct Checked {
    pub end: u64,
}

/// Checks the frames of `name` from `from` (a frame boundary) to its end, cutting a torn tail
/// as described above. `path` names the file in messages. A missing file checks as empty.
pub fn check(
    disk: &mut dyn Disk,
    name: &str,
    path: &str,
    magic: [u8; 4],
    from: u64,
) -> Result<Checked, Error> {
    let io = |e: io::Error| Error::storage(format!("cannot read {path}: {e}"));
    let Some(len) = disk.len(name).map_err(io)? else {
        return Ok(Checked { end: 0 });
    };
    if len < from {
        return Err(Error::storage(format!(
            "{path} became shorter ({len} bytes) than the {from} bytes already read: another \
             program changed it; stop it and try again"
        )));
    }
    let mut frames = Frames::new(disk, name, magic, from, len);
    // Where the push being read began: a push cut short is cut from there.
    let mut push_start = from;
    // Whole frames read since `push_start`: what a cut takes with it.
    let mut whole = 0usize;
    let bad = loop {
        match frames.next_frame() {
            Ok(Some(f)) => {
                whole += 1;
                if f.flags & CONTINUED == 0 {
                    push_start = frames.pos;
                    whole = 0;
                }
            }
            Ok(None) => break None,
            Err(Stop::Io(e)) => return Err(io(e)),
            Err(Stop::Bad(at, FrameError::NewerVersion(v))) => {
                return Err(Error::storage(format!(
                    "{path} holds a frame of format version {v} at byte {at}, newer than this \
                     sfpair ({VERSION}): upgrade sfpair to read this outbox"
                )));
            }
            Err(Stop::Bad(at, why)) => break Some((at, why)),
        }
    };
    if let Some((at, why)) = bad
        && let Some(good) = frames.good_frame_after(at).map_err(io)?
    {
        return Err(Error::storage(format!(
            "{path} is damaged at byte {at} ({}) but holds good records after it (byte \
                 {good}): it is not cut, so nothing is lost. Stop sfpair, copy the outbox \
                 directory aside for inspection, then move {path} away to start an empty queue",
            describe(why)
        )));
    }
    if push_start < len {
        let cut = len - push_start;
        disk.truncate(name, push_start)
            .and_then(|()| disk.fsync(name))
            .map_err(|e| Error::storage(format!("cannot cut the torn end of {path}: {e}")))?;
        log::warn!(
            "cut {cut} bytes from the end of {path}, where a write did not complete (a power cut \
             or a kill while writing, or storage that lost data), {whole} whole frame(s) among \
             them; everything before it is kept. {}",
            cut_means(name)
        );
    }
    Ok(Checked { end: push_start })
}

/// What cutting the end of `name` means for the records, in words that claim no more than is
/// known: a push is acknowledged after its fsync, so a cut one was acknowledged only if the
/// storage lost a write it had confirmed.
fn cut_means(name: &str) -> &'static str {
    match name {
        LOG => {
            "The records in it are not queued. Their sender was told the push failed, unless \
             the storage lost a write it had confirmed: then they had been acknowledged, and \
             are lost here; the sender's own log can tell"
        }
        MARK => {
            "The delivery outcomes in it are forgotten: those records are sent again (an \
             upsert lands once by its external id; a platform event may arrive twice)"
        }
        DEAD => {
            "The dead letters in it are forgotten: their records are still queued and sent \
             again, unless the storage lost a write it had confirmed: then they are lost"
        }
        _ => "",
    }
}

/// The offset of the first good frame of `name` after byte `at` and before `end`, if any.
pub fn good_frame_after(
    disk: &mut dyn Disk,
    name: &str,
    magic: [u8; 4],
    at: u64,
    end: u64,
) -> io::Result<Option<u64>> {
    Frames::new(disk, name, magic, at, end).good_frame_after(at)
}

fn describe(why: FrameError) -> &'static str {
    match why {
        FrameError::Blank => "blank bytes",
        FrameError::BadMagic => "not an outbox frame",
        FrameError::BadVersion => "bad version byte",
        FrameError::NewerVersion(_) => "newer format",
        FrameError::Truncated => "a frame cut short",
        FrameError::TooLong(_) => "an impossible length",
        FrameError::BadChecksum => "checksum mismatch",
    }
}
