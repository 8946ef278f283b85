//! The A/B slot store: one pairing record kept on raw flash so that a power cut at any byte of a
//! write leaves the old record or the new one, never neither and never a wrong one.
//!
//! Two slots, each its own erase block (the first two good blocks of the medium). Each holds at
//! most one record in the shared codec (`record.rs`: magic, version, sequence number, length,
//! CRC-32). A save erases the slot that is invalid or older, programs the new record there with
//! the next sequence number (NAND: padded to whole pages), reads it back and compares; only then
//! is the save done. The other slot is never touched during a save, so whatever happens to the
//! slot being written, the previous record survives it. A load takes the valid slot with the
//! newest sequence number (wrap-around compare, `record::seq_newer`). A wipe erases both slots,
//! the older first, so a cut in between never brings back an older token.
//!
//! Sealed records (`sealed.rs`) take part like plain ones: their sequence numbers are in the
//! clear, so the newest slot is chosen before anything is opened, and only that one is opened
//! (through the store's [`Envelope`]); a newest slot whose seal cannot be opened is reported as
//! such, never passed over for an older record.
//!
//! Wear: a save of the record already stored (in the same form: plain, or sealed by the same
//! sealer) writes nothing. The store also never erases what it
//! did not write: a partition whose two slots both hold foreign data (the wrong `/dev/mtdN`?) is
//! refused with a clear error. A record from a newer sfpair is reported by `stored_format`, and
//! the rule shared by every backend (`store::Checked`, which `store::open` puts around each)
//! refuses to overwrite it.
//!
//! Pure and `no_std`: the medium is the small [`Flash`] trait; `mtd.rs` (Linux MTD), `image.rs`
//! (a file) and `testing::NorFlash` (in memory, with power cuts) implement it. This file must not
//! log record contents, only offsets, sizes and sequence numbers.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use log::debug;
use zeroize::Zeroizing;

use super::record::{self, CRC_LEN, DecodeError, Decoded, Frame, HEADER_LEN, MAGIC, MAX_PAYLOAD};
use super::sealed::{Envelope, Plain};
use super::{Loaded, Record, SaveCheck, TokenStore};
use crate::error::Error;

/// The smallest slot (erase block) accepted. A Salesforce pairing encodes to about 500-700
/// bytes; 1 KiB leaves room for long My Domain URLs and scopes. Real NOR sectors are 4 KiB and
/// up, NAND blocks 16 KiB and up.
pub const MIN_SLOT: u32 = 1024;

/// Bytes read first from each slot: a whole typical record, so one read usually does.
const FIRST_READ: usize = 1024;

/// The shape of a flash medium, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Total size of the partition or image.
    pub size: u64,
    /// What one erase sets to 0xFF; each slot is one erase block.
    pub erase_size: u32,
    /// The smallest programmable unit: 1 on most NOR, the page (512-4096 bytes) on NAND.
    /// Programs start and end on this boundary.
    pub write_size: u32,
}

impl Geometry {
    /// Whole erase blocks in the medium.
    pub fn blocks(&self) -> u64 {
        self.size / u64::from(self.erase_size.max(1))
    }

    /// Checks that a slot store fits: whole pages per block, whole blocks, two blocks, each big
    /// enough for a record. `what` names the medium in the message. Errors are `Config`: the
    /// spec or the partition is wrong, nothing has been touched.
    pub fn check(&self, what: &str) -> Result<(), Error> {
        let Geometry {
            size,
            erase_size: erase,
            write_size: write,
        } = *self;
        if size == 0 || erase == 0 || write == 0 {
            return Err(Error::config(format!(
                "{what}: size ({size}), erase block ({erase}) and write unit ({write}) must all \
                 be more than 0 bytes"
            )));
        }
        if write > erase || !erase.is_multiple_of(write) {
            return Err(Error::config(format!(
                "{what}: the erase block ({erase} bytes) is not a whole number of write pages \
                 ({write} bytes); check the geometry"
            )));
        }
        if !size.is_multiple_of(u64::from(erase)) {
            return Err(Error::config(format!(
                "{what}: the size ({size} bytes) is not a whole number of erase blocks ({erase} \
                 bytes); the image is truncated or the erase size is wrong"
            )));
        }
        if erase < MIN_SLOT {
            return Err(Error::config(format!(
                "{what}: erase blocks of {erase} bytes are too small; each of the two slots is \
                 one erase block of at least {MIN_SLOT} bytes"
            )));
        }
        if self.blocks() < 2 {
            return Err(Error::config(format!(
                "{what}: {size} bytes is only {} erase block of {erase} bytes; the store needs two \
                 (one per slot): use a partition of at least {} bytes",
                self.blocks(),
                2 * u64::from(erase)
            )));
        }
        Ok(())
    }
}

/// Raw flash as the slot store needs it. Offsets are from the start of the medium.
pub trait Flash {
    /// The medium's sizes: erase block, write unit, capacity.
    fn geometry(&self) -> Geometry;
    /// Reads `buf.len()` bytes at `offset`.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error>;
    /// Sets the erase block that starts at `offset` to 0xFF.
    fn erase(&mut self, offset: u64) -> Result<(), Error>;
    /// Programs `bytes` at `offset`; both are multiples of the write size. Programming can only
    /// clear bits (each stored bit becomes old AND new); NAND pages take one program per erase.
    /// Returns once the bytes are durable.
    fn program(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error>;
    /// Whether the erase block at `offset` is marked bad (NAND). NOR has no bad blocks.
    fn is_bad(&mut self, _offset: u64) -> Result<bool, Error> {
        Ok(false)
    }
    /// Takes exclusive access for a save or wipe (another sfpair process must not interleave).
    fn lock(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// Releases the lock [`Flash::lock`] took (a no-op for media without one).
    fn unlock(&mut self) {}
    /// Fails when a write could not happen now (a read-only partition, image or mount), so a
    /// refresh does not rotate a token the medium cannot keep.
    fn check_writable(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// The store spec, for messages (`mtd:/dev/mtd3`).
    fn describe(&self) -> String;
}

/// A boxed medium is a medium: `store::open` boxes its backends so the slot store is compiled
/// once, not once per backend (about 6 KB on armv7).
impl<F: Flash + ?Sized> Flash for alloc::boxed::Box<F> {
    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        (**self).read(offset, buf)
    }
    fn erase(&mut self, offset: u64) -> Result<(), Error> {
        (**self).erase(offset)
    }
    fn program(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        (**self).program(offset, bytes)
    }
    fn is_bad(&mut self, offset: u64) -> Result<bool, Error> {
        (**self).is_bad(offset)
    }
    fn lock(&mut self) -> Result<(), Error> {
        (**self).lock()
    }
    fn unlock(&mut self) {
        (**self).unlock()
    }
    fn check_writable(&mut self) -> Result<(), Error> {
        (**self).check_writable()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// What one slot holds.
// Two of these live briefly on the stack while a store loads; a ~230-byte Record (8 bytes
// more with the headless grant) is not worth a heap allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Slot {
    /// Every byte read is 0xFF (the record's first chunk: garbage further into the block
    /// does not matter, a save erases the whole block first).
    Blank,
    Valid(Decoded),
    /// A sealed record, not opened (only the newest slot is): its frame.
    Sealed {
        seq: u32,
        sealer: String,
        frame: Zeroizing<Vec<u8>>,
    },
    /// A sealed record whose seal cannot be opened here; `reason` says why.
    Unopened {
        seq: u32,
        sealer: String,
        reason: String,
    },
    /// A checksummed record from a newer sfpair, with its format version.
    Newer(u8),
    /// Neither blank nor a valid record; `ours` when it starts with the sfpair magic or a
    /// partly programmed one (a torn write), rather than with something else (foreign data, or
    /// an interrupted erase).
    Invalid {
        reason: DecodeError,
        ours: bool,
    },
}

impl Slot {
    fn classify(bytes: Zeroizing<Vec<u8>>) -> Slot {
        if bytes.iter().all(|&b| b == 0xFF) {
            return Slot::Blank;
        }
        match record::decode_frame(&bytes) {
            Ok(Frame::Plain(decoded)) => Slot::Valid(decoded),
            Ok(Frame::Sealed { seq, sealer }) => Slot::Sealed {
                seq,
                sealer,
                frame: bytes,
            },
            Err(DecodeError::NewerVersion(v)) => Slot::Newer(v),
            Err(reason) => Slot::Invalid {
                reason,
                // The magic, or part of it: programming it was cut short (bits still set).
                ours: bytes.len() >= MAGIC.len()
                    && bytes.iter().zip(MAGIC).all(|(&b, m)| b & m == m),
            },
        }
    }

    /// The sequence number of a record of this format (opened or not).
    fn seq(&self) -> Option<u32> {
        match self {
            Slot::Valid(d) => Some(d.seq),
            Slot::Sealed { seq, .. } | Slot::Unopened { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// The sealer of a sealed record, opened or not.
    fn sealer(&self) -> Option<&str> {
        match self {
            Slot::Valid(d) => d.sealer.as_deref(),
            Slot::Sealed { sealer, .. } | Slot::Unopened { sealer, .. } => Some(sealer),
            _ => None,
        }
    }

    fn explain(&self) -> String {
        match self {
            Slot::Blank => "erased".into(),
            Slot::Valid(d) => format!("valid, sequence {}", d.seq),
            Slot::Sealed { seq, sealer, .. } => format!("sealed with {sealer}, sequence {seq}"),
            Slot::Unopened { seq, reason, .. } => {
                format!("sealed, sequence {seq}, cannot be opened: {reason}")
            }
            Slot::Newer(v) => format!("a record in format version {v}"),
            // The codec calls an all-0xFF or all-zero header "blank", but the slot is not.
            Slot::Invalid {
                reason: DecodeError::Blank,
                ..
            } => "no record header, yet not erased (an interrupted erase?)".into(),
            Slot::Invalid { reason, .. } => format!("{reason}"),
        }
    }

    fn foreign(&self) -> bool {
        matches!(self, Slot::Invalid { ours: false, .. })
    }
}

const SLOT_NAMES: [&str; 2] = ["A", "B"];

/// Both slots as read.
struct View([Slot; 2]);

impl View {
    /// The slot with the newest record (sealed or not, opened or not).
    fn newest(&self) -> Option<usize> {
        match [self.0[0].seq(), self.0[1].seq()] {
            [Some(a), Some(b)] => Some(if record::seq_newer(b, a) { 1 } else { 0 }),
            [Some(_), None] => Some(0),
            [None, Some(_)] => Some(1),
            [None, None] => None,
        }
    }

    /// The newest slot, opened when it is sealed (a record that opens but does not decode is
    /// invalid, and the other slot is tried).
    fn open_newest(&mut self, envelope: &mut dyn Envelope) -> Option<usize> {
        for _ in 0..2 {
            let newest = self.newest()?;
            let Slot::Sealed { seq, sealer, frame } = &self.0[newest] else {
                return Some(newest);
            };
            self.0[newest] = match envelope.open(frame) {
                Ok(decoded) => Slot::Valid(decoded),
                Err(DecodeError::Unopened(reason)) => Slot::Unopened {
                    seq: *seq,
                    sealer: sealer.clone(),
                    reason,
                },
                Err(reason) => Slot::Invalid { reason, ours: true },
            };
        }
        self.newest()
    }

    fn newer_version(&self) -> Option<u8> {
        self.0.iter().find_map(|s| match s {
            Slot::Newer(v) => Some(*v),
            _ => None,
        })
    }

    /// Both slots hold something sfpair did not write: this is not our partition.
    fn foreign(&self) -> bool {
        self.0.iter().all(Slot::foreign)
    }

    fn explain(&self) -> String {
        format!(
            "slot A: {}; slot B: {}",
            self.0[0].explain(),
            self.0[1].explain()
        )
    }

    /// Refuses a save or wipe over what sfpair must not erase.
    fn refuse_foreign(&self, what: &str) -> Result<(), Error> {
        if self.foreign() {
            return Err(Error::config(format!(
                "{what} holds data that sfpair did not write ({}). sfpair does not erase it: \
                 check that this is the partition meant for sfpair (cat /proc/mtd); if it is, \
                 erase it first (flash_erase /dev/mtdN 0 0, or delete the image file)",
                self.explain()
            )));
        }
        Ok(())
    }
}

/// The A/B slot store over any [`Flash`].
pub struct SlotStore<F> {
    flash: F,
    /// Offsets of slot A and slot B: the first two good erase blocks.
    slots: [u64; 2],
    erase_size: u32,
    write_size: u32,
    /// The most read per slot: the largest record rounded up to a page, or the whole block.
    read_len: usize,
    /// Whether [`TokenStore::lock`] holds the medium's lock.
    held: bool,
    /// How records are sealed and opened (`sealed.rs`); plain unless given.
    envelope: alloc::boxed::Box<dyn Envelope>,
}

/// `n` rounded up to a multiple of `unit`.
fn round_up(n: usize, unit: usize) -> usize {
    n.div_ceil(unit) * unit
}

impl<F: Flash> SlotStore<F> {
    /// Checks the geometry and finds the two slots (skipping bad blocks). Fails with `Config`
    /// when the medium cannot hold two slots, `Storage` when it cannot be read.
    pub fn new(mut flash: F) -> Result<Self, Error> {
        let geometry = flash.geometry();
        let what = flash.describe();
        geometry.check(&what)?;
        let erase = u64::from(geometry.erase_size);
        let mut slots = Vec::with_capacity(2);
        let mut bad = 0u64;
        for block in 0..geometry.blocks() {
            if slots.len() == 2 {
                break;
            }
            if flash.is_bad(block * erase)? {
                debug!("{what}: skipping bad block {block}");
                bad += 1;
            } else {
                slots.push(block * erase);
            }
        }
        if slots.len() < 2 {
            return Err(Error::config(format!(
                "{what}: the store needs two good erase blocks, but {bad} of its {} blocks are \
                 bad; use a larger partition",
                geometry.blocks()
            )));
        }
        let largest = HEADER_LEN + MAX_PAYLOAD + CRC_LEN;
        let read_len =
            round_up(largest, geometry.write_size as usize).min(geometry.erase_size as usize);
        Ok(SlotStore {
            flash,
            slots: [slots[0], slots[1]],
            erase_size: geometry.erase_size,
            write_size: geometry.write_size,
            read_len,
            held: false,
            envelope: alloc::boxed::Box::new(Plain),
        })
    }

    /// Seals and opens records through `envelope`.
    pub fn with_envelope(mut self, envelope: alloc::boxed::Box<dyn Envelope>) -> Self {
        self.envelope = envelope;
        self
    }

    /// Offsets of slot A and slot B on the medium.
    pub fn slot_offsets(&self) -> [u64; 2] {
        self.slots
    }

    /// The medium underneath.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// Gives the medium back.
    pub fn into_flash(self) -> F {
        self.flash
    }

    /// Reads a slot: the first chunk (a typical record, in whole pages), then the rest of the
    /// record when its header says it is longer.
    fn read_slot(&mut self, index: usize) -> Result<Slot, Error> {
        let page = self.write_size as usize;
        let first = round_up(FIRST_READ, page).min(self.read_len);
        let mut bytes = Zeroizing::new(vec![0u8; first]);
        self.flash.read(self.slots[index], &mut bytes)?;
        let claimed = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
        let whole = round_up(HEADER_LEN + claimed.min(MAX_PAYLOAD) + CRC_LEN, page);
        if bytes.starts_with(&MAGIC) && whole > first {
            let end = whole.min(self.read_len);
            bytes.resize(end, 0);
            let offset = self.slots[index] + first as u64;
            self.flash.read(offset, &mut bytes[first..])?;
        }
        Ok(Slot::classify(bytes))
    }

    /// Both slots as read, nothing opened.
    fn frames(&mut self) -> Result<View, Error> {
        Ok(View([self.read_slot(0)?, self.read_slot(1)?]))
    }

    /// Both slots, the newest opened; and which that is.
    fn view(&mut self) -> Result<(View, Option<usize>), Error> {
        let mut view = self.frames()?;
        let newest = view.open_newest(&mut *self.envelope);
        Ok((view, newest))
    }

    /// Runs `f` holding the medium's lock (taken here unless [`TokenStore::lock`] holds it).
    fn locked<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        if self.held {
            return f(self);
        }
        self.flash.lock()?;
        let result = f(self);
        self.flash.unlock();
        result
    }

    fn erase_slot(&mut self, index: usize) -> Result<(), Error> {
        let offset = self.slots[index];
        self.flash.erase(offset)?;
        debug!(
            "{}: erased slot {} (erase block at {offset:#x}, {} bytes)",
            self.flash.describe(),
            SLOT_NAMES[index],
            self.erase_size
        );
        Ok(())
    }

    fn save_locked(&mut self, record: &Record, fresh: bool) -> Result<(), Error> {
        let what = self.flash.describe();
        let (view, newest) = self.view()?;
        view.refuse_foreign(&what)?;
        let stored = newest.and_then(|i| view.0[i].sealer());
        let (target, seq) = match newest.map(|i| (i, &view.0[i])) {
            Some((_, Slot::Valid(d)))
                if d.record == *record && !self.envelope.reforms(fresh, stored) =>
            {
                debug!("{what}: the pairing is unchanged; nothing written");
                return Ok(());
            }
            Some((newest, slot)) => (1 - newest, slot.seq().unwrap_or(0).wrapping_add(1)),
            // Nothing valid: an erased slot first, so the other slot (a torn record, or data
            // of unknown origin) stays as it is for one more save.
            None => (
                view.0
                    .iter()
                    .position(|s| matches!(s, Slot::Blank))
                    .unwrap_or(0),
                1,
            ),
        };
        let encoded = self
            .envelope
            .encode(record, seq, fresh, stored)
            .map_err(|e| Error::storage(format!("{what}: cannot store the pairing: {e}")))?;
        // NAND programs whole pages: pad with 0xFF, which programming leaves as it is.
        let mut image = Zeroizing::new(encoded.to_vec());
        image.resize(round_up(encoded.len(), self.write_size as usize), 0xFF);
        if image.len() > self.erase_size as usize {
            return Err(Error::storage(format!(
                "{what}: the pairing record needs {} bytes but a slot (one erase block) holds {}; \
                 nothing was written. Use a partition with larger erase blocks",
                image.len(),
                self.erase_size
            )));
        }
        let offset = self.slots[target];
        self.erase_slot(target)?;
        if let Err(e) = self.flash.program(offset, &image) {
            // The slot holds part of a record, which fails its checksum; the other slot still
            // holds the previous pairing. Erase the fragment if the medium still answers.
            let _ = self.flash.erase(offset);
            return Err(e);
        }
        debug!(
            "{what}: programmed {} bytes (record sequence {seq}) into slot {} at {offset:#x}",
            image.len(),
            SLOT_NAMES[target]
        );
        let mut back = Zeroizing::new(vec![0u8; image.len()]);
        self.flash.read(offset, &mut back)?;
        if back[..] != image[..] {
            let _ = self.flash.erase(offset);
            return Err(Error::storage(format!(
                "{what}: slot {} did not read back what was written (a failing block?); the \
                 previous pairing, if any, is still in slot {}",
                SLOT_NAMES[target],
                SLOT_NAMES[1 - target]
            )));
        }
        Ok(())
    }

    fn wipe_locked(&mut self) -> Result<(), Error> {
        let view = self.frames()?;
        view.refuse_foreign(&self.flash.describe())?;
        // The older (or invalid) slot first, the newest last: a cut between the two erases
        // leaves the newest record, never an older token that was rotated away.
        let order = match view.newest() {
            Some(newest) => [1 - newest, newest],
            None => [0, 1],
        };
        for index in order {
            self.erase_slot(index)?;
        }
        Ok(())
    }
}

impl<F: Flash + Send> TokenStore for SlotStore<F> {
    fn load(&mut self) -> Result<Loaded, Error> {
        let (view, newest) = self.view()?;
        if let Some(v) = view.newer_version() {
            return Ok(Loaded::Corrupt(format!(
                "it holds a record in format version {v}, written by a newer sfpair (this one \
                 reads {}): upgrade sfpair, or erase it with `sfpair forget`",
                record::VERSION
            )));
        }
        if let Some(Slot::Unopened { reason, .. }) = newest.map(|i| &view.0[i]) {
            return Ok(Loaded::Unopened(reason.clone()));
        }
        if let Some((newest, Slot::Valid(stored))) = newest.map(|i| (i, &view.0[i])) {
            if !matches!(
                view.0[1 - newest],
                Slot::Valid(_) | Slot::Blank | Slot::Sealed { .. }
            ) {
                debug!(
                    "{}: slot {} is not valid ({}); using slot {}",
                    self.flash.describe(),
                    SLOT_NAMES[1 - newest],
                    view.0[1 - newest].explain(),
                    SLOT_NAMES[newest]
                );
            }
            return Ok(Loaded::Paired(stored.record.clone()));
        }
        if matches!(view.0, [Slot::Blank, Slot::Blank]) {
            return Ok(Loaded::Empty);
        }
        if view.foreign() {
            return Ok(Loaded::Corrupt(format!(
                "it holds data that sfpair did not write ({}); is this the right partition?",
                view.explain()
            )));
        }
        Ok(Loaded::Corrupt(format!(
            "neither slot holds a valid record ({})",
            view.explain()
        )))
    }

    fn save(&mut self, record: &Record) -> Result<(), Error> {
        self.locked(|store| store.save_locked(record, true))
    }

    fn save_rotated(&mut self, record: &Record) -> Result<(), Error> {
        self.locked(|store| store.save_locked(record, false))
    }

    fn wipe(&mut self) -> Result<(), Error> {
        self.locked(Self::wipe_locked)
    }

    fn check_writable(&mut self) -> Result<(), Error> {
        let what = self.flash.describe();
        let view = self.frames()?;
        view.refuse_foreign(&what)?;
        let stored = view.newest().and_then(|i| view.0[i].sealer());
        self.envelope.prepare(stored)
    }

    fn stored_format(&mut self) -> Result<Option<u8>, Error> {
        Ok(self.frames()?.newer_version())
    }

    fn prepare_save(&mut self) -> Result<SaveCheck, Error> {
        let what = self.flash.describe();
        self.frames()?.refuse_foreign(&what)?;
        Ok(match self.flash.check_writable() {
            Ok(()) => SaveCheck::Ready,
            Err(e) => SaveCheck::ReadOnly(e.message().into()),
        })
    }

    fn lock(&mut self) -> Result<(), Error> {
        if !self.held {
            self.flash.lock()?;
            self.held = true;
        }
        Ok(())
    }

    fn unlock(&mut self) {
        if self.held {
            self.held = false;
            self.flash.unlock();
        }
    }

    fn describe(&self) -> String {
        self.flash.describe()
    }

    fn sealer(&mut self) -> Result<Option<String>, Error> {
        let view = self.frames()?;
        Ok(view
            .newest()
            .and_then(|i| view.0[i].sealer())
            .map(String::from))
    }
}

#[cfg(all(test, feature = "std"))]
mod tests;
