//! The slot store's tests. One suite (`suite!`) runs against the in-memory chip (NOR, and NAND
//! pages with a bad first block) and against real `flash-image:` files (NOR and NAND
//! geometry); the power-cut sweeps run on the in-memory chip, whose torn states are also read
//! back through the image backend.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::error::ErrorKind;
use crate::flow::dialect::Dialect;
use crate::secret::Secret;
use crate::store::image::{ImageFlash, ImageSpec};
use crate::store::record::{VERSION, to_bytes};
use crate::store::{Loaded, TokenStore};
use crate::testing::{NorFlash, Step, Torn, sweep_power_cuts};

/// A realistic pairing; `n` changes the refresh token (a rotation).
fn rec(n: u32) -> Record {
    Record {
        refresh_token: Secret::new(format!(
            "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrfgqjJdLWaR8RJ8YQ9vLoN3xeB1AFnYxJkDTg.{n:08}"
        )),
        client_id: "3MVG9sfpair.sim.consumer.key.for.a.real.external.client.app.0123456789".into(),
        dialect: Dialect::Salesforce,
        login_url: "https://login.salesforce.com".into(),
        token_url: "https://login.salesforce.com/services/oauth2/token".into(),
        revoke_url: Some("https://login.salesforce.com/services/oauth2/revoke".into()),
        instance_url: "https://acme-dev-ed.develop.my.salesforce.com".into(),
        identity_url: "https://login.salesforce.com/id/00D5g000004ABCDEAA/0055g00000AbCdEAAZ"
            .into(),
        scope: "api refresh_token".into(),
        issued_at_ms: 1_700_000_000_000,
        paired_at: 1_700_000_000,
        grant: Default::default(),
    }
}

fn record_len() -> usize {
    to_bytes(&rec(0), 0).unwrap().len()
}

/// A medium the suite can open stores on and look into.
trait Rig {
    fn store(&self) -> Box<dyn TokenStore>;
    fn slots(&self) -> [u64; 2];
    fn erase_size(&self) -> usize;
    fn raw(&self) -> Vec<u8>;
    fn set_raw(&self, bytes: &[u8]);

    fn slot(&self, index: usize) -> Vec<u8> {
        let start = self.slots()[index] as usize;
        self.raw()[start..start + self.erase_size()].to_vec()
    }

    fn decode_slot(&self, index: usize) -> Result<Decoded, DecodeError> {
        record::decode(&self.slot(index))
    }

    /// Writes `bytes` at the start of a slot (the rest of the block as it was).
    fn plant(&self, index: usize, bytes: &[u8]) {
        let mut raw = self.raw();
        let start = self.slots()[index] as usize;
        raw[start..start + bytes.len()].copy_from_slice(bytes);
        self.set_raw(&raw);
    }

    /// Changes one byte of the medium.
    fn poke(&self, offset: usize, byte: u8) {
        let mut raw = self.raw();
        raw[offset] = byte;
        self.set_raw(&raw);
    }

    fn load(&self) -> Loaded {
        self.store().load().unwrap()
    }
}

struct MemoryRig(NorFlash);

impl Rig for MemoryRig {
    fn store(&self) -> Box<dyn TokenStore> {
        Box::new(crate::store::Checked::new(
            SlotStore::new(self.0.clone()).unwrap(),
        ))
    }
    fn slots(&self) -> [u64; 2] {
        SlotStore::new(self.0.clone()).unwrap().slot_offsets()
    }
    fn erase_size(&self) -> usize {
        self.0.geometry().erase_size as usize
    }
    fn raw(&self) -> Vec<u8> {
        self.0.bytes()
    }
    fn set_raw(&self, bytes: &[u8]) {
        self.0.set_bytes(bytes)
    }
}

fn nand_with_bad_first_block() -> MemoryRig {
    let chip = NorFlash::nand(16 * 1024, 2048, 4);
    chip.mark_bad(0);
    MemoryRig(chip)
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A real image file under the temp directory, removed on drop.
struct ImageRig {
    dir: PathBuf,
    spec: String,
}

impl ImageRig {
    fn new(options: &str) -> ImageRig {
        let dir = std::env::temp_dir().join(format!(
            "sfpair-flash-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        let spec = format!("flash-image:{}:{options}", dir.join("flash.img").display());
        ImageRig { dir, spec }
    }

    fn flash(&self) -> ImageFlash {
        let rest = self.spec.strip_prefix("flash-image:").unwrap();
        ImageFlash::open(ImageSpec::parse(rest).unwrap()).unwrap()
    }

    fn path(&self) -> PathBuf {
        self.dir.join("flash.img")
    }
}

impl Drop for ImageRig {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Rig for ImageRig {
    fn store(&self) -> Box<dyn TokenStore> {
        crate::store::open(&crate::store::Spec::parse(&self.spec).unwrap()).unwrap()
    }
    fn slots(&self) -> [u64; 2] {
        SlotStore::new(self.flash()).unwrap().slot_offsets()
    }
    fn erase_size(&self) -> usize {
        self.flash().geometry().erase_size as usize
    }
    fn raw(&self) -> Vec<u8> {
        match fs::read(self.path()) {
            Ok(bytes) => bytes,
            Err(_) => vec![0xFF; self.flash().geometry().size as usize],
        }
    }
    fn poke(&self, offset: usize, byte: u8) {
        use std::os::unix::fs::FileExt;
        let file = OpenOptions::new().write(true).open(self.path()).unwrap();
        file.write_all_at(&[byte], offset as u64).unwrap();
    }
    fn set_raw(&self, bytes: &[u8]) {
        fs::create_dir_all(&self.dir).unwrap();
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(self.path())
            .unwrap();
        f.write_all(bytes).unwrap();
    }
}

fn erased(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0xFF)
}

// ---- the shared suite -------------------------------------------------------------------------

fn round_trip_alternates_slots(rig: &dyn Rig) {
    assert_eq!(rig.load(), Loaded::Empty);
    let mut store = rig.store();
    store.save(&rec(1)).unwrap();
    assert_eq!(store.load().unwrap(), Loaded::Paired(rec(1)));
    assert_eq!(rig.decode_slot(0).unwrap().seq, 1);
    assert!(erased(&rig.slot(1)));
    store.save(&rec(2)).unwrap();
    let (a, b) = (rig.decode_slot(0).unwrap(), rig.decode_slot(1).unwrap());
    assert_eq!((a.record, a.seq), (rec(1), 1), "the previous pairing stays");
    assert_eq!((b.record, b.seq), (rec(2), 2));
    store.save(&rec(3)).unwrap();
    assert_eq!(rig.decode_slot(0).unwrap().seq, 3);
    assert_eq!(rig.decode_slot(1).unwrap().seq, 2);
    // A reboot: a new store over the same medium.
    assert_eq!(rig.load(), Loaded::Paired(rec(3)));
}

fn an_unchanged_save_writes_nothing(rig: &dyn Rig) {
    rig.store().save(&rec(1)).unwrap();
    let before = rig.raw();
    rig.store().save(&rec(1)).unwrap();
    assert_eq!(rig.raw(), before, "the same pairing again writes nothing");
    let mut changed = rec(1);
    changed.instance_url = "https://acme.my.salesforce.com".into();
    rig.store().save(&changed).unwrap();
    assert_ne!(rig.raw(), before, "any change is written");
    assert_eq!(rig.load(), Loaded::Paired(changed));
}

fn wipe_erases_both_slots(rig: &dyn Rig) {
    let mut store = rig.store();
    store.save(&rec(1)).unwrap();
    store.save(&rec(2)).unwrap();
    store.wipe().unwrap();
    assert!(
        erased(&rig.slot(0)) && erased(&rig.slot(1)),
        "the token is gone"
    );
    assert_eq!(rig.load(), Loaded::Empty);
    store.wipe().unwrap();
    store.save(&rec(3)).unwrap();
    assert_eq!(rig.decode_slot(0).unwrap().seq, 1);
    assert_eq!(rig.load(), Loaded::Paired(rec(3)));
}

fn bit_flips_in_every_field_fall_back_to_the_other_slot(rig: &dyn Rig) {
    rig.store().save(&rec(1)).unwrap();
    rig.store().save(&rec(2)).unwrap(); // slot B is the newest
    let good = rig.raw();
    for (slot, survivor) in [(1, rec(1)), (0, rec(2))] {
        let start = rig.slots()[slot] as usize;
        // Every bit of the record (magic, version, flags, reserved, sequence, length, payload,
        // CRC) and the first bytes after it.
        for bit in 0..(record_len() + 8) * 8 {
            let at = start + bit / 8;
            rig.poke(at, good[at] ^ (1 << (bit % 8)));
            let expected = if bit / 8 >= record_len() {
                rec(2) // past the record: not part of it
            } else {
                survivor.clone()
            };
            assert_eq!(
                rig.load(),
                Loaded::Paired(expected),
                "flip of bit {bit} in slot {slot}"
            );
            rig.poke(at, good[at]);
        }
    }
    // A save after damage goes into the damaged slot and keeps the good one.
    let mut raw = good.clone();
    raw[rig.slots()[1] as usize + 20] ^= 0x10;
    rig.set_raw(&raw);
    rig.store().save(&rec(3)).unwrap();
    assert_eq!(rig.decode_slot(0).unwrap().record, rec(1));
    assert_eq!(rig.decode_slot(1).unwrap().record, rec(3));
    assert_eq!(rig.load(), Loaded::Paired(rec(3)));
}

fn records_cut_short_fall_back(rig: &dyn Rig) {
    rig.store().save(&rec(1)).unwrap();
    rig.store().save(&rec(2)).unwrap();
    let good = rig.raw();
    let start = rig.slots()[1] as usize;
    for len in 0..record_len() {
        let mut raw = good.clone();
        raw[start + len..start + record_len()].fill(0xFF);
        rig.set_raw(&raw);
        assert_eq!(rig.load(), Loaded::Paired(rec(1)), "slot B cut at {len}");
    }
}

fn sequence_numbers_wrap_around(rig: &dyn Rig) {
    rig.plant(0, &to_bytes(&rec(1), u32::MAX - 1).unwrap());
    assert_eq!(rig.load(), Loaded::Paired(rec(1)));
    let mut expected_seq = u32::MAX - 1;
    for n in 2..8 {
        rig.store().save(&rec(n)).unwrap();
        expected_seq = expected_seq.wrapping_add(1);
        let slot = (n as usize + 1) % 2;
        let d = rig.decode_slot(slot).unwrap();
        assert_eq!((d.record, d.seq), (rec(n), expected_seq), "save {n}");
        assert_eq!(rig.load(), Loaded::Paired(rec(n)), "save {n}");
    }
    assert_eq!(expected_seq, 4, "went through u32::MAX and 0");
    // 0 is newer than u32::MAX.
    rig.plant(0, &vec![0xFF; rig.erase_size()]);
    rig.plant(1, &vec![0xFF; rig.erase_size()]);
    rig.plant(0, &to_bytes(&rec(10), u32::MAX).unwrap());
    rig.plant(1, &to_bytes(&rec(11), 0).unwrap());
    assert_eq!(rig.load(), Loaded::Paired(rec(11)));
}

/// A record as a newer sfpair would write it: version 2, checksum matching.
fn newer_format(r: &Record, seq: u32) -> Vec<u8> {
    let mut bytes = to_bytes(r, seq).unwrap().to_vec();
    bytes[4] = VERSION + 1;
    let end = bytes.len() - record::CRC_LEN;
    let crc = super::super::crc32::crc32(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

fn a_newer_format_is_kept_and_refused(rig: &dyn Rig) {
    rig.store().save(&rec(1)).unwrap();
    rig.plant(1, &newer_format(&rec(2), 2));
    let before = rig.raw();
    match rig.load() {
        Loaded::Corrupt(reason) => assert!(reason.contains("upgrade sfpair"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let mut store = rig.store();
    let e = store.check_writable().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    let e = store.save(&rec(3)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(e.message().contains("newer sfpair"), "{e}");
    assert_eq!(rig.raw(), before, "nothing written");
    // `sfpair forget` is the explicit way out.
    store.wipe().unwrap();
    assert_eq!(rig.load(), Loaded::Empty);
}

fn foreign_data_is_never_erased(rig: &dyn Rig) {
    let env = b"bootcmd=run distro_bootcmd\0bootdelay=2\0baudrate=115200\0";
    let mut foreign = vec![0x5Au8; 4];
    foreign.extend_from_slice(env);
    rig.plant(0, &foreign);
    rig.plant(1, &foreign);
    let before = rig.raw();
    match rig.load() {
        Loaded::Corrupt(reason) => assert!(reason.contains("did not write"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let mut store = rig.store();
    assert_eq!(
        store.check_writable().unwrap_err().kind(),
        ErrorKind::Config
    );
    let e = store.save(&rec(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("/proc/mtd"), "{e}");
    assert_eq!(store.wipe().unwrap_err().kind(), ErrorKind::Config);
    assert_eq!(rig.raw(), before, "nothing erased");
}

fn both_slots_corrupt_read_as_corrupt_until_a_pairing(rig: &dyn Rig) {
    rig.store().save(&rec(1)).unwrap();
    rig.store().save(&rec(2)).unwrap();
    let mut raw = rig.raw();
    for slot in rig.slots() {
        raw[slot as usize + 40] ^= 0x01;
    }
    rig.set_raw(&raw);
    match rig.load() {
        Loaded::Corrupt(reason) => {
            assert!(
                reason.contains("slot A") && reason.contains("slot B"),
                "{reason}"
            );
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Still there: only a new pairing replaces them, one slot at a time.
    assert_eq!(rig.raw(), raw);
    rig.store().save(&rec(3)).unwrap();
    assert_eq!(rig.load(), Loaded::Paired(rec(3)));
}

macro_rules! suite {
    ($name:ident, $rig:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn round_trip_alternates_slots() {
                super::round_trip_alternates_slots(&$rig)
            }
            #[test]
            fn an_unchanged_save_writes_nothing() {
                super::an_unchanged_save_writes_nothing(&$rig)
            }
            #[test]
            fn wipe_erases_both_slots() {
                super::wipe_erases_both_slots(&$rig)
            }
            #[test]
            fn bit_flips_in_every_field_fall_back_to_the_other_slot() {
                super::bit_flips_in_every_field_fall_back_to_the_other_slot(&$rig)
            }
            #[test]
            fn records_cut_short_fall_back() {
                super::records_cut_short_fall_back(&$rig)
            }
            #[test]
            fn sequence_numbers_wrap_around() {
                super::sequence_numbers_wrap_around(&$rig)
            }
            #[test]
            fn a_newer_format_is_kept_and_refused() {
                super::a_newer_format_is_kept_and_refused(&$rig)
            }
            #[test]
            fn foreign_data_is_never_erased() {
                super::foreign_data_is_never_erased(&$rig)
            }
            #[test]
            fn both_slots_corrupt_read_as_corrupt_until_a_pairing() {
                super::both_slots_corrupt_read_as_corrupt_until_a_pairing(&$rig)
            }
        }
    };
}

suite!(memory_nor, MemoryRig(NorFlash::nor(4096, 4)));
suite!(memory_nand, nand_with_bad_first_block());
suite!(image_nor, ImageRig::new("erase=4K,size=16K"));
suite!(image_nand, ImageRig::new("erase=16K,write=2K,size=64K"));

// ---- geometry and media -----------------------------------------------------------------------

#[test]
fn bad_blocks_are_skipped_and_never_touched() {
    let rig = nand_with_bad_first_block();
    assert_eq!(rig.slots(), [16 * 1024, 32 * 1024]);
    let mut raw = rig.raw();
    raw[..16].copy_from_slice(b"factory bad mark");
    rig.set_raw(&raw);
    rig.store().save(&rec(1)).unwrap();
    rig.store().save(&rec(2)).unwrap();
    rig.store().wipe().unwrap();
    assert_eq!(&rig.raw()[..16], b"factory bad mark");
    // Pages: the record is padded to a whole 2 KiB page.
    rig.store().save(&rec(3)).unwrap();
    assert_eq!(rig.0.programmed_bytes() % 2048, 0);
}

#[test]
fn geometry_that_cannot_hold_two_slots_is_a_config_error() {
    let g = |size, erase_size, write_size| Geometry {
        size,
        erase_size,
        write_size,
    };
    for (geometry, needle) in [
        (g(4096, 4096, 1), "needs two"),
        (g(8192, 512, 1), "too small"),
        (g(10000, 4096, 1), "not a whole number of erase blocks"),
        (g(16384, 4096, 3000), "not a whole number of write pages"),
        (g(16384, 0, 1), "must all be more than 0"),
    ] {
        let e = geometry.check("flash-image:/x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains(needle), "{geometry:?}: {e}");
    }
    assert!(g(8192, 4096, 1).check("x").is_ok());
    // Bad blocks count: two blocks, one bad.
    let chip = NorFlash::nand(16 * 1024, 2048, 2);
    chip.mark_bad(1);
    let e = SlotStore::new(chip).err().unwrap();
    assert!(e.message().contains("two good erase blocks"), "{e}");
}

#[test]
fn a_record_larger_than_a_slot_is_refused_and_nothing_changes() {
    let chip = NorFlash::nor(1024, 2);
    let mut store = SlotStore::new(chip.clone()).unwrap();
    store.save(&rec(1)).unwrap();
    let before = chip.bytes();
    let mut big = rec(2);
    big.scope = "api ".repeat(300);
    let e = store.save(&big).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(e.message().contains("needs"), "{e}");
    assert_eq!(chip.bytes(), before);
    assert_eq!(store.load().unwrap(), Loaded::Paired(rec(1)));
}

#[test]
fn a_failed_write_or_verify_keeps_the_previous_pairing() {
    let chip = NorFlash::nor(4096, 2);
    let mut store = SlotStore::new(chip.clone()).unwrap();
    store.save(&rec(1)).unwrap();
    // A program that stops halfway (an I/O error looks the same to the store as a power cut).
    chip.cut_power_after(100, Torn::Mix);
    assert!(store.save(&rec(2)).is_err());
    chip.power_on();
    assert_eq!(store.load().unwrap(), Loaded::Paired(rec(1)));
    // A block that does not keep what was programmed: the verify fails, the slot is erased.
    struct Stuck(NorFlash);
    impl Flash for Stuck {
        fn geometry(&self) -> Geometry {
            self.0.geometry()
        }
        fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
            self.0.read(offset, buf)
        }
        fn erase(&mut self, offset: u64) -> Result<(), Error> {
            self.0.erase(offset)
        }
        fn program(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
            let mut damaged = bytes.to_vec();
            damaged[30] &= 0x0F;
            self.0.program(offset, &damaged)
        }
        fn describe(&self) -> String {
            "stuck bits".into()
        }
    }
    let mut store = SlotStore::new(Stuck(chip.clone())).unwrap();
    let e = store.save(&rec(3)).unwrap_err();
    assert!(e.message().contains("did not read back"), "{e}");
    assert!(erased(&chip.bytes()[4096..]), "the bad copy is erased");
    assert_eq!(store.load().unwrap(), Loaded::Paired(rec(1)));
}

#[test]
fn a_missing_image_reads_as_empty_and_is_created_0600_on_the_first_write() {
    use std::os::unix::fs::MetadataExt;
    let rig = ImageRig::new("erase=4K,size=32K");
    assert_eq!(rig.load(), Loaded::Empty);
    assert!(!rig.path().exists(), "reading creates nothing");
    rig.store().save(&rec(1)).unwrap();
    let meta = fs::metadata(rig.path()).unwrap();
    assert_eq!(meta.len(), 32 * 1024);
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(
        fs::metadata(&rig.dir).unwrap().mode() & 0o777,
        0o700,
        "a directory it creates is private"
    );
    assert!(erased(&rig.raw()[8192..]), "the rest is erased flash");
    assert!(!rig.dir.join(".flash.img.tmp").exists());
}

#[test]
fn truncated_or_mismatched_images_are_refused_and_left_alone() {
    let rig = ImageRig::new("erase=4K,size=16K");
    rig.store().save(&rec(1)).unwrap();
    let full = rig.raw();
    let open = |spec: &str| {
        crate::store::Spec::parse(spec)
            .and_then(|spec| crate::store::open(&spec))
            .err()
            .expect("refused")
    };
    // Cut short (a copy that stopped early): the size no longer matches.
    for len in [0usize, 100, 4096, 8192 + 17, 12288] {
        fs::write(rig.path(), &full[..len]).unwrap();
        let e = open(&rig.spec);
        assert_eq!(e.kind(), ErrorKind::Config, "{len}: {e}");
        assert!(e.message().contains("truncated"), "{len}: {e}");
        assert_eq!(fs::read(rig.path()).unwrap(), &full[..len], "left alone");
    }
    // Without a size, the file's own size must still be whole blocks, at least two.
    let bare = format!("flash-image:{}:erase=4K", rig.path().display());
    fs::write(rig.path(), &full[..4096 + 17]).unwrap();
    assert!(open(&bare).message().contains("truncated"));
    fs::write(rig.path(), &full[..4096]).unwrap();
    assert!(open(&bare).message().contains("needs two"));
    // A spec that disagrees with the image's geometry.
    fs::write(rig.path(), &full).unwrap();
    let e = open(&format!(
        "flash-image:{}:erase=4K,size=32K",
        rig.path().display()
    ));
    assert!(e.message().contains("size=32768"), "{e}");
    let e = open(&format!("flash-image:{}:erase=3000", rig.path().display()));
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(fs::read(rig.path()).unwrap(), full);
}

#[test]
fn image_programming_only_clears_bits_and_nand_pages_take_one_program() {
    let rig = ImageRig::new("erase=4K,size=8K");
    let mut nor = rig.flash();
    nor.program(0, &[0b1010_1010]).unwrap();
    nor.program(0, &[0b1100_1100]).unwrap();
    let mut b = [0u8; 1];
    nor.read(0, &mut b).unwrap();
    assert_eq!(b[0], 0b1000_1000, "AND of both");
    nor.erase(0).unwrap();
    nor.read(0, &mut b).unwrap();
    assert_eq!(b[0], 0xFF);

    let rig = ImageRig::new("erase=4K,size=8K,write=512");
    let mut nand = rig.flash();
    assert!(nand.program(0, &[0; 100]).is_err(), "not a whole page");
    nand.program(512, &[0xA5; 512]).unwrap();
    let e = nand.program(512, &[0xA5; 512]).unwrap_err();
    assert!(e.message().contains("without an erase"), "{e}");
    nand.erase(0).unwrap();
    nand.program(512, &[0xA5; 512]).unwrap();
}

// ---- power cuts -------------------------------------------------------------------------------

fn assert_survives(sweep: &crate::testing::Sweep) {
    assert!(sweep.failures.is_empty(), "{:#?}", sweep.failures);
    assert_eq!(sweep.survived(), sweep.cut_points());
    for step in &sweep.steps {
        // Every unit of the step, three ways, and the point after it.
        assert_eq!(
            step.cut_points,
            (step.erases + step.bytes) * 3 + 1,
            "{step:?}"
        );
    }
}

#[test]
fn power_cuts_at_every_point_of_every_write_on_nor() {
    let chip = NorFlash::nor(4096, 4);
    let sweep = sweep_power_cuts(
        &chip,
        &[
            ("pair", Step::Save(rec(1))),
            ("refresh, same token", Step::Save(rec(1))),
            ("refresh, rotated", Step::Save(rec(2))),
            ("refresh, rotated", Step::Save(rec(3))),
            ("refresh, rotated", Step::Save(rec(4))),
            ("forget", Step::Wipe),
            ("pair again", Step::Save(rec(5))),
        ],
    );
    assert_survives(&sweep);
    let len = record_len() as u64;
    let costs: Vec<(u64, u64)> = sweep.steps.iter().map(|s| (s.erases, s.bytes)).collect();
    assert_eq!(
        costs,
        [
            (1, len),
            (0, 0),
            (1, len),
            (1, len),
            (1, len),
            (2, 0),
            (1, len)
        ]
    );
    assert_eq!(
        SlotStore::new(chip).unwrap().load().unwrap(),
        Loaded::Paired(rec(5))
    );
}

#[test]
fn power_cuts_at_every_point_of_every_write_on_nand_pages() {
    let chip = NorFlash::nand(16 * 1024, 2048, 3);
    chip.mark_bad(1);
    let sweep = sweep_power_cuts(
        &chip,
        &[
            ("pair", Step::Save(rec(1))),
            ("refresh, rotated", Step::Save(rec(2))),
            ("refresh, rotated", Step::Save(rec(3))),
            ("forget", Step::Wipe),
        ],
    );
    assert_survives(&sweep);
    assert_eq!(sweep.steps[0].bytes, 2048, "one whole page");
}

#[test]
fn power_cuts_across_the_sequence_number_wrap() {
    let chip = NorFlash::nor(4096, 2);
    let mut raw = chip.bytes();
    let seeded = to_bytes(&rec(1), u32::MAX - 1).unwrap();
    raw[..seeded.len()].copy_from_slice(&seeded);
    chip.set_bytes(&raw);
    let sweep = sweep_power_cuts(
        &chip,
        &[
            ("to u32::MAX", Step::Save(rec(2))),
            ("to 0", Step::Save(rec(3))),
            ("to 1", Step::Save(rec(4))),
        ],
    );
    assert_survives(&sweep);
    let store = SlotStore::new(chip.clone()).unwrap();
    let seqs: Vec<u32> = store
        .slot_offsets()
        .iter()
        .map(|&o| record::decode(&chip.bytes()[o as usize..]).unwrap().seq)
        .collect();
    assert_eq!(seqs, [0, 1]);
}

/// Cuts during recoveries too: random steps, random cut points, several cuts in a row, each
/// reboot checked against what the previous reboot read.
#[test]
fn repeated_power_cuts_in_a_row_never_lose_the_last_good_record() {
    let chip = NorFlash::nor(4096, 2);
    let mut current = Loaded::Empty;
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |bound: u64| {
        rng ^= rng << 7;
        rng ^= rng >> 9;
        rng % bound
    };
    let mut cuts = 0;
    for round in 0..600 {
        let step = match next(8) {
            0 => Step::Wipe,
            1 => match &current {
                Loaded::Paired(r) => Step::Save(r.clone()),
                _ => Step::Save(rec(0)),
            },
            n => Step::Save(rec(round * 10 + n as u32)),
        };
        let probe = chip.snapshot();
        let _ = match &step {
            Step::Save(r) => SlotStore::new(probe.clone()).unwrap().save(r),
            Step::Wipe => SlotStore::new(probe.clone()).unwrap().wipe(),
        };
        let units = probe.erases() + probe.programmed_bytes();
        let cut = units > 0 && next(4) != 0;
        if cut {
            cuts += 1;
            chip.cut_power_after(next(units), Torn::ALL[next(3) as usize]);
        }
        let mut store = SlotStore::new(chip.clone()).unwrap();
        let result = match &step {
            Step::Save(r) => store.save(r),
            Step::Wipe => store.wipe(),
        };
        assert_eq!(result.is_err(), cut, "round {round}");
        chip.power_on();
        let read = SlotStore::new(chip.clone()).unwrap().load().unwrap();
        let ok = match (&step, &read) {
            (Step::Save(new), Loaded::Paired(r)) => r == new || current == read,
            (Step::Save(_), _) => !matches!(current, Loaded::Paired(_)),
            (Step::Wipe, Loaded::Paired(_)) => current == read,
            (Step::Wipe, _) => true,
        };
        assert!(
            ok,
            "round {round}: {step:?} read {read:?} after {current:?}"
        );
        if !cut {
            let expected = match &step {
                Step::Save(r) => Loaded::Paired(r.clone()),
                Step::Wipe => Loaded::Empty,
            };
            assert_eq!(read, expected, "round {round}");
        }
        current = read;
    }
    assert!(cuts > 300, "{cuts}");
}

/// Every torn state of a save, written to a real image file, reads the same through the file
/// backend as through the model.
#[test]
fn torn_states_read_the_same_through_flash_image_files() {
    let rig = ImageRig::new("erase=4K,size=8K");
    let chip = NorFlash::nor(4096, 2);
    SlotStore::new(chip.clone()).unwrap().save(&rec(1)).unwrap();
    let before = chip.bytes();
    let units = 1 + record_len() as u64;
    for torn in [Torn::Old, Torn::Mix] {
        for cut in 0..units {
            let torn_chip = chip.snapshot();
            torn_chip.set_bytes(&before);
            torn_chip.cut_power_after(cut, torn);
            assert!(
                SlotStore::new(torn_chip.clone())
                    .unwrap()
                    .save(&rec(2))
                    .is_err()
            );
            torn_chip.power_on();
            let model = SlotStore::new(torn_chip.clone()).unwrap().load().unwrap();
            rig.set_raw(&torn_chip.bytes());
            let file = rig.load();
            assert_eq!(file, model, "cut {cut} {torn:?}");
            assert!(file == Loaded::Paired(rec(1)) || file == Loaded::Paired(rec(2)));
        }
    }
}

#[test]
fn a_newest_sealed_slot_that_cannot_be_opened_is_reported_not_passed_over() {
    use crate::store::sealed;
    let rig = MemoryRig(NorFlash::nor(4096, 4));
    rig.store().save(&rec(1)).unwrap();
    // Slot B: a record sealed with a sealer this build has not, one sequence newer.
    let (mut payload, _) = sealed::begin(2, "tpm2", b"key", 1, &[0; sealed::NONCE_LEN], 4).unwrap();
    payload.extend_from_slice(&[0x5a; 4 + sealed::TAG_LEN]);
    rig.plant(1, &sealed::frame_bytes(2, &payload));
    match rig.load() {
        Loaded::Unopened(reason) => assert!(reason.contains("tpm2"), "{reason}"),
        other => panic!("the older plain record was used: {other:?}"),
    }
    assert_eq!(rig.store().sealer().unwrap().as_deref(), Some("tpm2"));
}

#[test]
fn a_first_save_cut_in_its_magic_beside_foreign_data_is_redone() {
    // Slot B held somebody's data and slot A was blank; the first save was cut after two bytes
    // of the magic. The torn slot is sfpair's own (its bits only partly cleared), so the
    // partition is not refused as foreign: the next save rewrites slot A and leaves B alone.
    let rig = MemoryRig(NorFlash::nor(4096, 4));
    let foreign = b"bootcmd=run distro_bootcmd\0bootdelay=2\0";
    rig.plant(1, foreign);
    rig.plant(0, &MAGIC[..2]);
    assert!(matches!(rig.load(), Loaded::Corrupt(_)));
    rig.store().save(&rec(1)).unwrap();
    assert_eq!(rig.load(), Loaded::Paired(rec(1)));
    assert!(rig.slot(1).starts_with(foreign));
}

#[test]
fn a_record_that_fills_a_slot_exactly_is_stored_and_read_back_whole() {
    // 4 KiB: past the first read of a slot (1 KiB), and the whole erase block.
    let rig = MemoryRig(NorFlash::nor(4096, 4));
    let mut big = rec(1);
    big.scope.push_str(&"s".repeat(4096 - record_len()));
    assert_eq!(to_bytes(&big, 0).unwrap().len(), 4096);
    rig.store().save(&big).unwrap();
    assert_eq!(rig.load(), Loaded::Paired(big.clone()));
    // One byte more does not fit, and nothing changes.
    let before = rig.raw();
    let mut bigger = big.clone();
    bigger.scope.push('s');
    assert!(rig.store().save(&bigger).is_err());
    assert_eq!(rig.raw(), before);
}
