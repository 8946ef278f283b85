//! The envelope's rules, through real stores (files and the slot store over the in-memory
//! chip) with a stand-in sealer: a "board" that seals a key so that only the same board opens
//! it, and counts its calls. The real sealers are tested against their real tools in
//! `tests/cli/seal.rs`; what is checked here is the envelope's own logic.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::error::ErrorKind;
use crate::flow::dialect::Dialect;
use crate::seal::{Choice, Sealer, Ways};
use crate::secret::Secret;
use crate::store::file::FileStore;
use crate::store::flash::SlotStore;
use crate::store::record::{CRC_LEN, HEADER_LEN, decode_frame};
use crate::store::{Loaded, TokenStore};
use crate::testing::{NorFlash, Step, sweep_power_cuts_with};

fn rec(n: u32) -> Record {
    Record {
        refresh_token: Secret::new(format!("5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrfg.{n:08}")),
        client_id: "3MVG9KEY".into(),
        dialect: Dialect::Salesforce,
        login_url: "https://login.salesforce.com".into(),
        token_url: "https://login.salesforce.com/services/oauth2/token".into(),
        revoke_url: None,
        instance_url: "https://acme.my.salesforce.com".into(),
        identity_url: "https://login.salesforce.com/id/00D/005".into(),
        scope: "api refresh_token".into(),
        issued_at_ms: 1,
        paired_at: 2,
        grant: Default::default(),
    }
}

#[derive(Default)]
struct Calls {
    seals: AtomicUsize,
    unseals: AtomicUsize,
}

/// A board's stand-in seal: the key XOR the board's byte, behind the board's id. Another
/// board refuses it, as a TPM does another TPM's blob.
struct Board {
    id: u8,
    calls: Arc<Calls>,
    broken: bool,
}

impl Sealer for Board {
    fn seal(&self, key: &[u8; KEY_LEN]) -> Result<Vec<u8>, Error> {
        self.calls.seals.fetch_add(1, Ordering::SeqCst);
        if self.broken {
            return Err(Error::config("the test board's sealer is out of order"));
        }
        let mut out = vec![self.id];
        out.extend(key.iter().map(|b| b ^ self.id));
        Ok(out)
    }

    fn unseal(&self, sealed: &[u8]) -> Result<DataKey, Error> {
        self.calls.unseals.fetch_add(1, Ordering::SeqCst);
        match sealed.split_first() {
            Some((&id, key)) if id == self.id && key.len() == KEY_LEN => {
                let mut out: DataKey = Zeroizing::new([0; KEY_LEN]);
                for (o, k) in out.iter_mut().zip(key) {
                    *o = k ^ self.id;
                }
                Ok(out)
            }
            _ => Err(Error::config(format!(
                "sealed on another board, not on board {}",
                self.id
            ))),
        }
    }
}

fn sealing(board: u8, seal: Option<Choice>, calls: &Arc<Calls>) -> Sealing {
    sealing_with(board, seal, calls, false)
}

fn sealing_with(board: u8, seal: Option<Choice>, calls: &Arc<Calls>, broken: bool) -> Sealing {
    let calls = Arc::clone(calls);
    Sealing::new(
        Settings {
            seal,
            ways: Ways::default(),
        },
        Box::new(move |name: &str, _: &Ways| {
            if name != "tpm2" {
                return Err(format!("the sealer '{name}' is unknown"));
            }
            Ok(Box::new(Board {
                id: board,
                calls: Arc::clone(&calls),
                broken,
            }) as Box<dyn Sealer>)
        }),
    )
}

fn tpm2() -> Option<Choice> {
    Some(Choice::Tpm2)
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sfpair-seal-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir.join("token")
}

fn file(path: &PathBuf, board: u8, seal: Option<Choice>, calls: &Arc<Calls>) -> FileStore {
    FileStore::new(path).with_envelope(Box::new(sealing(board, seal, calls)))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_sealed_file_holds_no_secret_and_opens_on_its_board_only() {
    let path = temp("board");
    let calls = Arc::new(Calls::default());
    let mut store = file(&path, 1, tpm2(), &calls);
    store.save(&rec(1)).unwrap();
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes[4], record::VERSION_SEALED);
    assert!(!contains(&bytes, rec(1).refresh_token.expose()));
    assert!(
        !contains(&bytes, "acme.my.salesforce.com"),
        "the whole record is sealed"
    );
    assert_eq!(record::sealer_of(&bytes).as_deref(), Some("tpm2"));
    // Another process on the same board (a fresh envelope, nothing cached) opens it.
    let mut again = file(&path, 1, None, &calls);
    assert_eq!(again.load().unwrap(), Loaded::Paired(rec(1)));
    // Another board: refused with the sealer's reason, and the file is kept byte for byte,
    // even by a new pairing's checks (only a completed new pairing replaces it).
    let mut other = file(&path, 2, None, &calls);
    match other.load().unwrap() {
        Loaded::Unopened(reason) => {
            assert!(reason.contains("sealed with tpm2"), "{reason}");
            assert!(reason.contains("another board"), "{reason}");
        }
        loaded => panic!("{loaded:?}"),
    }
    other.check_writable().unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    // The board comes back: it opens again.
    assert_eq!(
        file(&path, 1, None, &calls).load().unwrap(),
        Loaded::Paired(rec(1))
    );
    fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_refresh_reuses_the_data_key_and_a_new_pairing_makes_a_new_one() {
    let path = temp("reuse");
    let calls = Arc::new(Calls::default());
    file(&path, 1, tpm2(), &calls).save(&rec(1)).unwrap();
    assert_eq!(calls.seals.load(Ordering::SeqCst), 1);
    // A long-running process: one unseal, then refreshes that rotate the token never call
    // the sealer again.
    let mut running = file(&path, 1, None, &calls);
    for n in 2..6 {
        assert!(matches!(running.load().unwrap(), Loaded::Paired(_)));
        running.save_rotated(&rec(n)).unwrap();
    }
    assert_eq!(running.load().unwrap(), Loaded::Paired(rec(5)));
    assert_eq!(calls.unseals.load(Ordering::SeqCst), 1);
    assert_eq!(calls.seals.load(Ordering::SeqCst), 1);
    let key_blob = |bytes: &[u8]| {
        let h = frame::decode(bytes, &MAGIC, MAX_PAYLOAD, VERSION).unwrap();
        Sealed::parse(&bytes[HEADER_LEN..HEADER_LEN + h.len])
            .unwrap()
            .key
            .to_vec()
    };
    let rotated = fs::read(&path).unwrap();
    // A new pairing: a new key, sealed once.
    running.save(&rec(9)).unwrap();
    assert_eq!(calls.seals.load(Ordering::SeqCst), 2);
    let paired = fs::read(&path).unwrap();
    assert_ne!(key_blob(&paired), key_blob(&rotated));
    // Two saves of the same record never share a nonce (the data key is reused).
    running.save_rotated(&rec(9)).unwrap();
    assert_ne!(fs::read(&path).unwrap(), paired);
    fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn which_form_a_save_takes() {
    let path = temp("form");
    let calls = Arc::new(Calls::default());
    let sealer = |path: &PathBuf| record::sealer_of(&fs::read(path).unwrap());
    // Plain, then a new pairing without --seal: still plain.
    FileStore::new(&path).save(&rec(1)).unwrap();
    file(&path, 1, None, &calls).save(&rec(2)).unwrap();
    assert_eq!(sealer(&path), None);
    // --seal tpm2: a new pairing is sealed; a refresh with --seal none keeps the seal.
    file(&path, 1, tpm2(), &calls).save(&rec(3)).unwrap();
    assert_eq!(sealer(&path).as_deref(), Some("tpm2"));
    let mut store = file(&path, 1, Some(Choice::None), &calls);
    store.load().unwrap();
    store.save_rotated(&rec(4)).unwrap();
    assert_eq!(sealer(&path).as_deref(), Some("tpm2"));
    // A new pairing without --seal is sealed like the one it replaces.
    file(&path, 1, None, &calls).save(&rec(5)).unwrap();
    assert_eq!(sealer(&path).as_deref(), Some("tpm2"));
    // --seal none: the new pairing is plain (`sfpair unseal` is this, with the same record).
    store.save(&rec(5)).unwrap();
    assert_eq!(sealer(&path), None);
    assert_eq!(
        FileStore::new(&path).load().unwrap(),
        Loaded::Paired(rec(5))
    );
    let envelope = sealing(1, None, &calls);
    assert!(!envelope.reforms(true, Some("tpm2")));
    assert!(!envelope.reforms(false, None));
    assert!(sealing(1, Some(Choice::None), &calls).reforms(true, Some("tpm2")));
    assert!(!sealing(1, Some(Choice::None), &calls).reforms(false, Some("tpm2")));
    fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_sealer_that_cannot_seal_stops_a_pairing_before_it_starts() {
    let path = temp("broken");
    let calls = Arc::new(Calls::default());
    let mut store =
        FileStore::new(&path).with_envelope(Box::new(sealing_with(1, tpm2(), &calls, true)));
    let err = store.check_writable().unwrap_err();
    assert!(err.message().contains("out of order"), "{err}");
    assert!(store.save(&rec(1)).is_err());
    assert!(!path.exists());
    // A sealer that works: the key made before the pairing is the one the pairing uses.
    let mut store = file(&path, 1, tpm2(), &calls);
    store.check_writable().unwrap();
    let seals = calls.seals.load(Ordering::SeqCst);
    store.save(&rec(1)).unwrap();
    assert_eq!(calls.seals.load(Ordering::SeqCst), seals);
    fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

/// Re-frames `bytes` after `change` (a valid CRC, so only the seal can notice).
fn reframed(bytes: &[u8], change: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = bytes.to_vec();
    change(&mut b);
    let end = b.len() - CRC_LEN;
    let crc = crate::store::crc32::crc32(&b[..end]);
    b[end..].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn every_change_to_a_sealed_record_is_refused_even_with_a_good_checksum() {
    let calls = Arc::new(Calls::default());
    let mut envelope = sealing(1, tpm2(), &calls);
    let bytes = envelope.encode(&rec(1), 7, true, None).unwrap().to_vec();
    assert_eq!(envelope.open(&bytes).unwrap().record, rec(1));
    // Every byte from the flags on, the CRC excepted: header (its sequence number: a record
    // cannot be moved to another slot's place), the clear fields, the ciphertext, the tag.
    for i in 5..bytes.len() - CRC_LEN {
        let bad = reframed(&bytes, |b| b[i] ^= 0x01);
        match decode_frame(&bad) {
            Err(_) => continue,
            Ok(_) => {
                let mut fresh = sealing(1, None, &calls);
                assert!(
                    fresh.open(&bad).is_err(),
                    "a change at byte {i} went unnoticed"
                );
                assert!(envelope.open(&bad).is_err(), "byte {i}, cached key");
            }
        }
    }
}

#[test]
fn a_sealed_record_that_opens_but_does_not_decrypt_says_so() {
    let calls = Arc::new(Calls::default());
    let mut envelope = sealing(1, tpm2(), &calls);
    let bytes = envelope.encode(&rec(1), 1, true, None).unwrap().to_vec();
    let last = bytes.len() - CRC_LEN - 1;
    let bad = reframed(&bytes, |b| b[last] ^= 0x80);
    match sealing(1, None, &calls).open(&bad).unwrap_err() {
        DecodeError::Unopened(reason) => {
            assert!(reason.contains("does not decrypt"), "{reason}")
        }
        e => panic!("{e:?}"),
    }
}

fn sealed_slots(
    board: u8,
    seal: Option<Choice>,
    calls: &Arc<Calls>,
) -> impl Fn(NorFlash) -> Result<Box<dyn TokenStore>, Error> {
    let calls = Arc::clone(calls);
    move |chip: NorFlash| {
        Ok(
            Box::new(SlotStore::new(chip)?.with_envelope(Box::new(sealing(
                board,
                seal.clone(),
                &calls,
            )))) as Box<dyn TokenStore>,
        )
    }
}

/// The slot store's power-cut sweep (`store::flash::tests`), unchanged, with every record
/// sealed: a cut at any point of any write leaves the old pairing or the new one.
#[test]
fn power_cuts_at_every_point_of_every_sealed_write() {
    let chip = NorFlash::nor(4096, 4);
    let calls = Arc::new(Calls::default());
    let sweep = sweep_power_cuts_with(
        &chip,
        &[
            ("pair", Step::Save(rec(1))),
            ("refresh, same token", Step::Save(rec(1))),
            ("refresh, rotated", Step::Save(rec(2))),
            ("refresh, rotated", Step::Save(rec(3))),
            ("forget", Step::Wipe),
            ("pair again", Step::Save(rec(5))),
        ],
        &sealed_slots(1, tpm2(), &calls),
    );
    assert!(sweep.failures.is_empty(), "{:#?}", sweep.failures);
    assert_eq!(sweep.survived(), sweep.cut_points());
    // The same record in the same form is not written again.
    assert_eq!((sweep.steps[1].erases, sweep.steps[1].bytes), (0, 0));
    for step in &sweep.steps {
        assert_eq!(
            step.cut_points,
            (step.erases + step.bytes) * 3 + 1,
            "{step:?}"
        );
    }
    let raw = chip.bytes();
    assert!(!contains(&raw, rec(5).refresh_token.expose()));
}

#[test]
fn power_cuts_while_sealing_and_unsealing_an_existing_pairing() {
    let chip = NorFlash::nand(16 * 1024, 2048, 3);
    let calls = Arc::new(Calls::default());
    let plain = |chip: NorFlash| -> Result<Box<dyn TokenStore>, Error> {
        Ok(Box::new(SlotStore::new(chip)?))
    };
    let sweep =
        crate::testing::sweep_power_cuts_with(&chip, &[("pair", Step::Save(rec(1)))], &plain);
    assert!(sweep.failures.is_empty(), "{:#?}", sweep.failures);
    // `sfpair seal`: the same record, sealed; then `sfpair unseal`: plain again.
    for seal in [tpm2(), Some(Choice::None)] {
        let sweep = sweep_power_cuts_with(
            &chip,
            &[("reform", Step::Save(rec(1)))],
            &sealed_slots(1, seal, &calls),
        );
        assert!(sweep.failures.is_empty(), "{:#?}", sweep.failures);
        assert_eq!(sweep.steps[0].erases, 1, "a change of form is written");
    }
    assert!(
        contains(&chip.bytes(), rec(1).refresh_token.expose()),
        "plain again"
    );
}

#[test]
fn the_newest_slot_unopened_is_reported_never_passed_over_for_an_older_record() {
    let chip = NorFlash::nor(4096, 2);
    let calls = Arc::new(Calls::default());
    // Slot A: a plain older pairing; slot B: a newer one sealed on board 1.
    SlotStore::new(chip.clone()).unwrap().save(&rec(1)).unwrap();
    let mut board1 = SlotStore::new(chip.clone())
        .unwrap()
        .with_envelope(Box::new(sealing(1, tpm2(), &calls)));
    board1.save(&rec(2)).unwrap();
    let before = chip.bytes();
    // Board 2 cannot open slot B: it says so rather than going back to slot A's token.
    let mut board2 = SlotStore::new(chip.clone())
        .unwrap()
        .with_envelope(Box::new(sealing(2, None, &calls)));
    assert!(matches!(board2.load().unwrap(), Loaded::Unopened(_)));
    assert_eq!(chip.bytes(), before);
    // A refresh cannot happen there; a new pairing replaces the older slot, keeping slot B
    // for one more save, as for any pairing.
    board2.save(&rec(3)).unwrap();
    assert_eq!(board2.load().unwrap(), Loaded::Paired(rec(3)));
    // Only the newest slot is opened: a fresh reader on board 2 unseals once (slot B, which
    // board 2 cannot open, is never tried).
    let unseals = calls.unseals.load(Ordering::SeqCst);
    let mut reader = SlotStore::new(chip.clone())
        .unwrap()
        .with_envelope(Box::new(sealing(2, None, &calls)));
    assert_eq!(reader.load().unwrap(), Loaded::Paired(rec(3)));
    assert_eq!(calls.unseals.load(Ordering::SeqCst), unseals + 1);
}

#[test]
fn unopened_is_exit_6_with_what_to_do() {
    let e = crate::store::unopened("file:/var/lib/sfpair/token", "sealed with tpm2: gone");
    assert_eq!(e.kind(), ErrorKind::RepairNeeded);
    assert!(crate::store::is_unopened(&e));
    assert!(e.message().contains("putting the seal back"), "{e}");
    assert!(crate::text::is_clean(e.message()), "{e}");
}
