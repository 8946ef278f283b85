//! An in-memory flash chip that can lose power after any programmed byte or erased block, and a
//! sweep that cuts the power at every point of every write and checks what a reboot reads.
//!
//! The model follows NOR semantics (docs/embedded.md, "Raw flash (MTD)"): erase sets a block to 0xFF,
//! programming ANDs bits; with a write size above 1 it also enforces NAND's one program per page
//! per erase, and blocks can be marked bad. A power cut leaves the interrupted unit undefined,
//! in one of three deterministic ways ([`Torn`]). Only for tests: it keeps the bytes in the clear.

use std::sync::{Arc, Mutex};

use super::lock;
use crate::error::Error;
use crate::store::flash::{Flash, Geometry, SlotStore};
use crate::store::{Loaded, Record, TokenStore};

/// What an interrupted operation leaves in the unit it was working on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Torn {
    /// Nothing happened to it: the byte keeps its old value, the block its old contents.
    Old,
    /// It completed (the power went right after): the byte is old AND new, the block erased.
    New,
    /// Half done: some of the byte's bits are cleared; the block is a third erased, a third
    /// zeros (NOR pre-programs before erasing), a third garbage.
    Mix,
}

impl Torn {
    /// Every way a cut program can leave the bytes.
    pub const ALL: [Torn; 3] = [Torn::Old, Torn::New, Torn::Mix];

    fn program(self, old: u8, new: u8) -> u8 {
        match self {
            Torn::Old => old,
            Torn::New => old & new,
            // Between old and old&new, bit by bit: only bits that programming clears can clear.
            Torn::Mix => old & (new | 0xA5),
        }
    }

    fn erase(self, block: &mut [u8]) {
        match self {
            Torn::Old => {}
            Torn::New => block.fill(0xFF),
            Torn::Mix => {
                let third = block.len() / 3;
                block[..third].fill(0xFF);
                block[third..2 * third].fill(0);
                let mut x: u32 = 0x2545_F491;
                for b in &mut block[2 * third..] {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    *b = x as u8;
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Chip {
    bytes: Vec<u8>,
    geometry: Geometry,
    bad: Vec<u64>,
    /// Units (erased blocks + programmed bytes) left before the power goes.
    budget: Option<u64>,
    torn: Torn,
    powered: bool,
    erases: u64,
    programmed: u64,
}

/// A flash chip in memory. Clones share the chip, so a test keeps one handle while a store owns
/// another, and "reboots" by building a new store over the same chip.
#[derive(Clone, Debug)]
pub struct NorFlash(Arc<Mutex<Chip>>);

impl NorFlash {
    /// An erased chip of this geometry.
    pub fn new(geometry: Geometry) -> NorFlash {
        assert!(
            geometry.erase_size > 0 && geometry.size.is_multiple_of(u64::from(geometry.erase_size)),
            "the model needs whole erase blocks"
        );
        NorFlash(Arc::new(Mutex::new(Chip {
            bytes: vec![0xFF; geometry.size as usize],
            geometry,
            bad: Vec::new(),
            budget: None,
            torn: Torn::Old,
            powered: true,
            erases: 0,
            programmed: 0,
        })))
    }

    /// NOR: `blocks` erase blocks of `erase_size`, byte-programmable.
    pub fn nor(erase_size: u32, blocks: u32) -> NorFlash {
        NorFlash::new(Geometry {
            size: u64::from(erase_size) * u64::from(blocks),
            erase_size,
            write_size: 1,
        })
    }

    /// NAND-like: whole `page` programs, once per erase.
    pub fn nand(erase_size: u32, page: u32, blocks: u32) -> NorFlash {
        NorFlash::new(Geometry {
            size: u64::from(erase_size) * u64::from(blocks),
            erase_size,
            write_size: page,
        })
    }

    /// An independent chip with the same contents and bad blocks, powered, counters at zero.
    pub fn snapshot(&self) -> NorFlash {
        let mut chip = lock(&self.0).clone();
        chip.budget = None;
        chip.powered = true;
        chip.erases = 0;
        chip.programmed = 0;
        NorFlash(Arc::new(Mutex::new(chip)))
    }

    /// Marks erase block `block` bad (NAND).
    pub fn mark_bad(&self, block: u64) {
        lock(&self.0).bad.push(block);
    }

    /// The power goes after `units` more units of work (an erased block or a programmed byte
    /// each); the next unit is left `torn`, and every later operation fails until
    /// [`NorFlash::power_on`].
    pub fn cut_power_after(&self, units: u64, torn: Torn) {
        let mut chip = lock(&self.0);
        chip.budget = Some(units);
        chip.torn = torn;
    }

    /// Power back (a reboot): operations work again and no cut is pending.
    pub fn power_on(&self) {
        let mut chip = lock(&self.0);
        chip.powered = true;
        chip.budget = None;
    }

    /// Whether the power is on (a cut turns it off until [`NorFlash::power_on`]).
    pub fn powered(&self) -> bool {
        lock(&self.0).powered
    }

    /// The chip's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        lock(&self.0).bytes.clone()
    }

    /// Replaces the contents (to plant corruption or records); the length must not change.
    pub fn set_bytes(&self, bytes: &[u8]) {
        let mut chip = lock(&self.0);
        assert_eq!(bytes.len(), chip.bytes.len(), "same size");
        chip.bytes.copy_from_slice(bytes);
    }

    /// Erase operations completed since creation or the last snapshot.
    pub fn erases(&self) -> u64 {
        lock(&self.0).erases
    }

    /// Bytes programmed since creation or the last snapshot (NAND padding included).
    pub fn programmed_bytes(&self) -> u64 {
        lock(&self.0).programmed
    }
}

fn power_cut() -> Error {
    Error::storage("flash model: the power is off")
}

fn bad_access(what: &str, offset: u64, len: usize) -> Error {
    Error::storage(format!(
        "flash model: {what} of {len} bytes at {offset:#x} is misaligned or out of range"
    ))
}

impl Chip {
    /// Spends one unit of power; false when the power goes before this unit completes.
    fn spend(&mut self) -> bool {
        match &mut self.budget {
            Some(0) => {
                self.powered = false;
                self.budget = None;
                false
            }
            Some(n) => {
                *n -= 1;
                true
            }
            None => true,
        }
    }
}

impl Flash for NorFlash {
    fn geometry(&self) -> Geometry {
        lock(&self.0).geometry
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let chip = lock(&self.0);
        if !chip.powered {
            return Err(power_cut());
        }
        let start = offset as usize;
        let src = chip
            .bytes
            .get(start..start + buf.len())
            .ok_or_else(|| bad_access("read", offset, buf.len()))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn erase(&mut self, offset: u64) -> Result<(), Error> {
        let mut chip = lock(&self.0);
        if !chip.powered {
            return Err(power_cut());
        }
        let erase = chip.geometry.erase_size as usize;
        let start = offset as usize;
        if !start.is_multiple_of(erase) || start + erase > chip.bytes.len() {
            return Err(bad_access("erase", offset, erase));
        }
        if chip.bad.contains(&(offset / erase as u64)) {
            return Err(Error::storage(format!(
                "flash model: erase of bad block at {offset:#x}"
            )));
        }
        if !chip.spend() {
            let torn = chip.torn;
            torn.erase(&mut chip.bytes[start..start + erase]);
            return Err(power_cut());
        }
        chip.bytes[start..start + erase].fill(0xFF);
        chip.erases += 1;
        Ok(())
    }

    fn program(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        let mut chip = lock(&self.0);
        if !chip.powered {
            return Err(power_cut());
        }
        let write = chip.geometry.write_size as usize;
        let start = offset as usize;
        if !start.is_multiple_of(write)
            || !bytes.len().is_multiple_of(write)
            || start + bytes.len() > chip.bytes.len()
        {
            return Err(bad_access("program", offset, bytes.len()));
        }
        if write > 1
            && chip.bytes[start..start + bytes.len()]
                .chunks(write)
                .any(|page| page.iter().any(|&b| b != 0xFF))
        {
            return Err(Error::storage(format!(
                "flash model: a page at {offset:#x} programmed twice without an erase"
            )));
        }
        // The bytes the power lasts for are programmed; the next one is torn.
        let done = match chip.budget {
            Some(left) => bytes.len().min(left as usize),
            None => bytes.len(),
        };
        for (cell, &new) in chip.bytes[start..start + done].iter_mut().zip(bytes) {
            *cell &= new;
        }
        chip.programmed += done as u64;
        if let Some(left) = &mut chip.budget {
            *left -= done as u64;
        }
        if done < bytes.len() {
            let spent = chip.spend();
            debug_assert!(!spent, "the budget ran out at this byte");
            let (old, new) = (chip.bytes[start + done], bytes[done]);
            chip.bytes[start + done] = chip.torn.program(old, new);
            return Err(power_cut());
        }
        Ok(())
    }

    fn is_bad(&mut self, offset: u64) -> Result<bool, Error> {
        let chip = lock(&self.0);
        Ok(chip
            .bad
            .contains(&(offset / u64::from(chip.geometry.erase_size))))
    }

    fn describe(&self) -> String {
        "flash model".into()
    }
}

/// One operation of a sweep.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // a handful per sweep; boxing would only clutter the API
pub enum Step {
    /// `TokenStore::save` of this record (pairing, or a refresh that may rotate the token).
    Save(Record),
    /// `TokenStore::wipe` (`sfpair forget`).
    Wipe,
}

/// What one step cost and how it stood the power cuts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepFigures {
    /// What the step did.
    pub label: String,
    /// Erase operations of the step, uninterrupted.
    pub erases: u64,
    /// Bytes programmed by the step, uninterrupted (NAND page padding included).
    pub bytes: u64,
    /// Power cuts tried: every unit of the step in each [`Torn`] way, plus one after its end.
    pub cut_points: u64,
    /// Cuts after which the reboot read an allowed state and the step then succeeded.
    pub survived: u64,
}

/// The result of [`sweep_power_cuts`].
#[derive(Clone, Debug, Default)]
pub struct Sweep {
    /// Each step's figures.
    pub steps: Vec<StepFigures>,
    /// What went wrong, for the first few failures.
    pub failures: Vec<String>,
}

impl Sweep {
    /// Cut points tried in all.
    pub fn cut_points(&self) -> u64 {
        self.steps.iter().map(|s| s.cut_points).sum()
    }

    /// Cut points after which the store opened to a valid record.
    pub fn survived(&self) -> u64 {
        self.steps.iter().map(|s| s.survived).sum()
    }
}

/// Opens a store over a chip, as a reboot does: the plain slot store, or another (a sealing
/// one) for [`sweep_power_cuts_with`].
pub type Open<'a> = &'a dyn Fn(NorFlash) -> Result<Box<dyn TokenStore>, Error>;

fn plain(flash: NorFlash) -> Result<Box<dyn TokenStore>, Error> {
    Ok(Box::new(SlotStore::new(flash)?))
}

fn run(open: Open, flash: &NorFlash, step: &Step) -> Result<(), Error> {
    let mut store = open(flash.clone())?;
    match step {
        Step::Save(record) => store.save(record),
        Step::Wipe => store.wipe(),
    }
}

fn load(open: Open, flash: &NorFlash) -> Result<Loaded, Error> {
    open(flash.clone())?.load()
}

/// The invariant: after a cut during `step`, a reboot reads the state before it or after it,
/// never another record, and never nothing when a record was there.
fn allowed(before: &Loaded, step: &Step, after_cut: &Loaded) -> bool {
    match (step, after_cut) {
        (Step::Save(new), Loaded::Paired(r)) => r == new || *before == Loaded::Paired(r.clone()),
        // Nothing readable is only acceptable when nothing readable was there before.
        (Step::Save(_), Loaded::Empty | Loaded::Corrupt(_) | Loaded::Unopened(_)) => {
            !matches!(before, Loaded::Paired(_))
        }
        (Step::Wipe, Loaded::Paired(r)) => *before == Loaded::Paired(r.clone()),
        (Step::Wipe, Loaded::Empty | Loaded::Corrupt(_)) => true,
        // A wipe never makes an opened record unopenable.
        (Step::Wipe, Loaded::Unopened(_)) => matches!(before, Loaded::Unopened(_)),
    }
}

/// Runs `steps` in order on `flash`. For each step, from the state the previous steps left:
/// cuts the power after 0, 1, … units of the step, in each [`Torn`] way, reboots (a new store
/// over the same chip) and checks the invariant, then runs the step again uninterrupted and
/// checks it reaches the same state as a step that was never cut. `flash` ends in the state
/// after the last step. Bounded: a few thousand runs per step.
pub fn sweep_power_cuts(flash: &NorFlash, steps: &[(&str, Step)]) -> Sweep {
    sweep_power_cuts_with(flash, steps, &plain)
}

/// [`sweep_power_cuts`] with stores opened by `open` at every reboot (each one new, as after a
/// real power cut: nothing carried over in memory).
pub fn sweep_power_cuts_with(flash: &NorFlash, steps: &[(&str, Step)], open: Open) -> Sweep {
    let mut sweep = Sweep::default();
    let fail = |sweep: &mut Sweep, what: String| {
        if sweep.failures.len() < 20 {
            sweep.failures.push(what);
        }
    };
    for (label, step) in steps {
        let before_bytes = flash.bytes();
        let before = load(open, flash).unwrap_or_else(|e| Loaded::Corrupt(e.to_string()));
        // The uninterrupted step: its cost, and the state every recovery must reach.
        let clean = flash.snapshot();
        let clean_result = run(open, &clean, step);
        let units = clean.erases() + clean.programmed_bytes();
        let after = load(open, &clean).unwrap_or_else(|e| Loaded::Corrupt(e.to_string()));
        let mut figures = StepFigures {
            label: label.to_string(),
            erases: clean.erases(),
            bytes: clean.programmed_bytes(),
            cut_points: 0,
            survived: 0,
        };
        if let Err(e) = clean_result {
            fail(
                &mut sweep,
                format!("{label}: fails without any power cut: {e}"),
            );
        }
        for torn in Torn::ALL {
            for cut in 0..units {
                figures.cut_points += 1;
                let chip = clean.snapshot();
                chip.set_bytes(&before_bytes);
                chip.cut_power_after(cut, torn);
                if run(open, &chip, step).is_ok() {
                    fail(
                        &mut sweep,
                        format!("{label}: reported success though the power went at unit {cut}"),
                    );
                    continue;
                }
                chip.power_on();
                let read = load(open, &chip).unwrap_or_else(|e| Loaded::Corrupt(e.to_string()));
                if !allowed(&before, step, &read) {
                    fail(
                        &mut sweep,
                        format!(
                            "{label}: cut at unit {cut} of {units} ({torn:?}): read {read:?}, \
                             before {before:?}"
                        ),
                    );
                    continue;
                }
                let again = run(open, &chip, step);
                let now = load(open, &chip).unwrap_or_else(|e| Loaded::Corrupt(e.to_string()));
                if again.is_err() || now != after {
                    fail(
                        &mut sweep,
                        format!(
                            "{label}: after a cut at unit {cut} ({torn:?}) the step did not \
                             recover: {again:?}, read {now:?}"
                        ),
                    );
                    continue;
                }
                figures.survived += 1;
            }
        }
        // The cut right after the last unit: the step must have completed (it reads back
        // without spending power) and the reboot must read its result.
        figures.cut_points += 1;
        let chip = clean.snapshot();
        chip.set_bytes(&before_bytes);
        chip.cut_power_after(units, Torn::Mix);
        let completed = run(open, &chip, step);
        chip.power_on();
        let read = load(open, &chip).unwrap_or_else(|e| Loaded::Corrupt(e.to_string()));
        if completed.is_ok() && read == after {
            figures.survived += 1;
        } else {
            fail(
                &mut sweep,
                format!("{label}: a cut after its last unit: {completed:?}, read {read:?}"),
            );
        }
        flash.set_bytes(&clean.bytes());
        sweep.steps.push(figures);
    }
    sweep
}
