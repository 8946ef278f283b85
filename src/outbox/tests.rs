//! The outbox's tests: real files in a temporary directory, and the power-cut model
//! (`model.rs`) swept over every write boundary of a script of pushes, settles, compactions
//! and retries.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::model::{Loss, Power};
use super::*;
use crate::error::ErrorKind;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("sfpair-outbox-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.parent().unwrap()).unwrap();
    dir
}

fn upsert(object: &str) -> Target {
    Target::Upsert {
        object: object.into(),
        field: "Key__c".into(),
    }
}

fn rec(object: &str, key: &str) -> NewRecord {
    NewRecord {
        target: upsert(object),
        json: format!(r#"{{"Key__c":"{key}","V__c":1}}"#),
        auto_id: false,
    }
}

fn recs(object: &str, prefix: &str, n: usize) -> Vec<NewRecord> {
    (0..n)
        .map(|i| rec(object, &format!("{prefix}{i}")))
        .collect()
}

fn key_of(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["Key__c"].as_str().unwrap().to_string()
}

/// Every queued (seq, key), in log order, read through the same streaming path.
fn all_pending(ob: &mut Outbox) -> Vec<(u64, String)> {
    all_pending_result(ob).unwrap()
}

fn dead_keys(ob: &mut Outbox) -> Vec<(u64, String, String)> {
    ob.dead_letters(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|d| (d.seq, key_of(&d.json), d.error))
        .collect()
}

type Snapshot = (
    Vec<(u64, String)>,
    Vec<(u64, String, String)>,
    (u64, u64, Option<u64>, u64, u64),
    String,
);

fn snapshot(ob: &mut Outbox) -> Snapshot {
    let s = ob.status().unwrap();
    (
        all_pending(ob),
        dead_keys(ob),
        (
            s.queued,
            s.queued_bytes,
            s.oldest_queued_at,
            s.delivered,
            s.dead,
        ),
        ob.id().to_string(),
    )
}

fn delivered(batch: &[Pending]) -> Vec<Settle> {
    batch.iter().map(|p| Settle::Delivered(p.seq)).collect()
}

#[test]
fn batches_are_oldest_first_grouped_by_target_and_capped_at_200() {
    let dir = temp_dir("batches");
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    let p = ob.push(recs("A__c", "a", 250), 100).unwrap();
    assert_eq!((p.count, p.first_seq, p.queued), (250, 1, 250));
    ob.push(
        vec![rec("B__c", "b0"), rec("B__c", "b1"), rec("B__c", "b2")],
        101,
    )
    .unwrap();
    let events = (0..2)
        .map(|i| NewRecord {
            target: Target::Event {
                object: "Alarm__e".into(),
            },
            json: format!(r#"{{"Key__c":"e{i}"}}"#),
            auto_id: false,
        })
        .collect();
    ob.push(events, 102).unwrap();
    ob.push(recs("A__c", "late", 10), 103).unwrap();

    let b = ob.next_batch(1000).unwrap();
    assert_eq!(b.len(), MAX_BATCH);
    assert_eq!(b[0].seq, 1);
    assert!(b.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        b.iter()
            .all(|p| p.target == upsert("A__c") && p.queued_at == 100)
    );
    // Asking again without settling hands out the same batch.
    assert_eq!(ob.next_batch(5).unwrap()[0].seq, 1);
    ob.settle(&delivered(&b), 200).unwrap();

    // The rest of A, skipping B and the events, then the late A records.
    let b = ob.next_batch(MAX_BATCH).unwrap();
    let keys: Vec<String> = b.iter().map(|p| key_of(&p.json)).collect();
    assert_eq!(keys.len(), 60);
    assert_eq!(keys[0], "a200");
    assert_eq!(keys[49], "a249");
    assert_eq!(keys[50], "late0");
    ob.settle(&delivered(&b), 201).unwrap();
    let b = ob.next_batch(MAX_BATCH).unwrap();
    assert_eq!(b.len(), 3);
    assert!(b.iter().all(|p| p.target == upsert("B__c")));
    ob.settle(&delivered(&b), 202).unwrap();
    let b = ob.next_batch(MAX_BATCH).unwrap();
    assert_eq!(b.len(), 2);
    assert!(matches!(&b[0].target, Target::Event { object } if object == "Alarm__e"));
    ob.settle(&delivered(&b), 203).unwrap();
    assert!(ob.next_batch(MAX_BATCH).unwrap().is_empty());
    let s = ob.status().unwrap();
    assert_eq!(
        (s.queued, s.queued_bytes, s.delivered, s.dead),
        (0, 0, 265, 0)
    );
    assert_eq!(s.oldest_queued_at, None);
    // The queue became empty: compacted down to the header.
    assert_eq!(
        fs::metadata(dir.join("log")).unwrap().len(),
        ob.st.header_len
    );
    assert!(ob.next_batch(0).unwrap().is_empty());
}

#[test]
fn reopening_after_every_operation_gives_the_same_state() {
    let dir = temp_dir("reopen");
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    let check = |ob: &mut Outbox| {
        let mine = snapshot(ob);
        let mut other = Outbox::open(&dir, Limits::default()).unwrap();
        assert_eq!(snapshot(&mut other), mine);
    };
    check(&mut ob);
    ob.push(recs("A__c", "a", 30), 1).unwrap();
    check(&mut ob);
    ob.push(recs("B__c", "b", 5), 2).unwrap();
    check(&mut ob);
    let b = ob.next_batch(10).unwrap();
    let mut outcomes = delivered(&b[1..]);
    outcomes.push(Settle::Dead {
        seq: b[0].seq,
        error: "INVALID_FIELD: No such column 'V__c'".into(),
    });
    ob.settle(&outcomes, 3).unwrap();
    check(&mut ob);
    assert_eq!(dead_keys(&mut ob)[0].1, "a0");
    ob.compact().unwrap();
    check(&mut ob);
    assert_eq!(ob.retry_dead(4).unwrap(), 1);
    check(&mut ob);
    let s = ob.status().unwrap();
    assert_eq!((s.queued, s.delivered, s.dead), (26, 9, 0));
    // The retried letter is last in the log, with a new seq and its own key.
    let last = all_pending(&mut ob).pop().unwrap();
    assert_eq!((last.0, last.1.as_str()), (36, "a0"));
}

#[test]
fn seqs_are_never_reused_after_compaction_or_retry_dead() {
    let dir = temp_dir("seqs");
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    ob.push(recs("A__c", "a", 3), 1).unwrap();
    let b = ob.next_batch(10).unwrap();
    ob.settle(
        &[
            Settle::Delivered(1),
            Settle::Delivered(2),
            Settle::Dead {
                seq: 3,
                error: "x".into(),
            },
        ],
        2,
    )
    .unwrap();
    assert_eq!(b.len(), 3);
    // Empty queue: compacted to the header, which carries the next seq.
    drop(ob);
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    assert_eq!(ob.push(recs("A__c", "n", 1), 3).unwrap().first_seq, 4);
    assert_eq!(ob.retry_dead(4).unwrap(), 1);
    assert_eq!(
        all_pending(&mut ob),
        vec![(4, "n0".to_string()), (5, "a2".to_string())]
    );
    let b = ob.next_batch(10).unwrap();
    ob.settle(&delivered(&b), 5).unwrap();
    drop(ob);
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    assert_eq!(ob.push(recs("A__c", "m", 1), 6).unwrap().first_seq, 6);
    assert_eq!(ob.status().unwrap().delivered, 4);
}

#[test]
fn settling_unknown_or_settled_seqs_changes_nothing() {
    let dir = temp_dir("unknown");
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    ob.push(recs("A__c", "a", 3), 1).unwrap();
    ob.settle(&[Settle::Delivered(1)], 2).unwrap();
    let before = snapshot(&mut ob);
    let mark = fs::read(dir.join("mark")).unwrap();
    ob.settle(&[Settle::Delivered(1), Settle::Delivered(99)], 3)
        .unwrap();
    assert_eq!(snapshot(&mut ob), before);
    assert_eq!(fs::read(dir.join("mark")).unwrap(), mark, "nothing written");
    assert_eq!(before.2.3, 1);
}

#[test]
fn outcomes_in_any_order_settle_each_seq_once_by_its_first_outcome() {
    let dir = temp_dir("first-outcome");
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    ob.push(recs("A__c", "a", 7), 1).unwrap();
    let dead = |seq, error: &str| Settle::Dead {
        seq,
        error: error.into(),
    };
    ob.settle(
        &[
            Settle::Delivered(6),
            dead(3, "first"),
            Settle::Delivered(5),
            Settle::Delivered(1),
            Settle::Delivered(3),
            dead(1, "later"),
            dead(6, "later"),
            dead(2, "two"),
        ],
        2,
    )
    .unwrap();
    let status = ob.status().unwrap();
    assert_eq!((status.queued, status.delivered, status.dead), (2, 3, 2));
    let letters = ob.dead_letters(10).unwrap();
    let letters: Vec<_> = letters.iter().map(|d| (d.seq, d.error.as_str())).collect();
    assert_eq!(letters, [(2, "two"), (3, "first")]);
    assert_eq!(
        all_pending(&mut ob).iter().map(|p| p.0).collect::<Vec<_>>(),
        [4, 7]
    );
}

#[test]
fn auto_ids_are_unique_to_the_outbox_and_stable() {
    let dir = temp_dir("autoid");
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    let id = ob.id().to_string();
    assert_eq!(id.len(), 16);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    let auto = |json: &str| NewRecord {
        target: upsert("A__c"),
        json: json.into(),
        auto_id: true,
    };
    ob.push(
        vec![
            auto(r#"{"V__c":1}"#),
            auto(" { } "),
            auto(r#"{"Key__c":"mine","V__c":2}"#),
        ],
        1,
    )
    .unwrap();
    let b = ob.next_batch(10).unwrap();
    assert_eq!(b[0].json, format!(r#"{{"Key__c":"{id}-1","V__c":1}}"#));
    assert_eq!(b[1].json, format!(r#"{{"Key__c":"{id}-2"}}"#));
    assert_eq!(b[2].json, r#"{"Key__c":"mine","V__c":2}"#);
    let mut again = Outbox::open(&dir, Limits::default()).unwrap();
    assert_eq!(again.id(), id);
    let b2 = again.next_batch(10).unwrap();
    assert!(b.iter().zip(&b2).all(|(x, y)| x.json == y.json));
    // Another outbox, another id: the two never collide.
    let other = Outbox::open(&temp_dir("autoid2"), Limits::default()).unwrap();
    assert_ne!(other.id(), id);
    // Not an object: refused (exit 2) before anything is written.
    let err = ob.push(vec![auto("[1]")], 2).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message().contains("record 1 is not"),
        "{}",
        err.message()
    );
}

/// An org that refuses every record for good must not fill the flash: dead letters count
/// toward the limit, and `retry-dead` still fits (it moves them, it does not add).
#[test]
fn dead_letters_count_toward_the_limit() {
    let dir = temp_dir("deadfull");
    let limits = Limits {
        max_bytes: 8192,
        max_record: 1000,
    };
    let mut ob = Outbox::open(&dir, limits).unwrap();
    let mut rounds = 0;
    let err = loop {
        match ob.push(recs("A__c", &format!("d{rounds}-"), 5), 1) {
            Ok(_) => {}
            Err(e) => break e,
        }
        let b = ob.next_batch(10).unwrap();
        let dead: Vec<Settle> = b
            .iter()
            .map(|p| Settle::Dead {
                seq: p.seq,
                error: "INVALID_FIELD: No such column".into(),
            })
            .collect();
        ob.settle(&dead, 2).unwrap();
        rounds += 1;
        assert!(rounds < 200, "dead letters never filled the outbox");
    };
    assert_eq!(err.exit_code(), 8);
    assert!(
        err.message().contains("bytes of dead letters"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("sfpair outbox retry-dead"),
        "{}",
        err.message()
    );
    assert_eq!(ob.status().unwrap().queued, 0);
    let dead = ob.status().unwrap().dead;
    assert_eq!(dead, rounds as u64 * 5);
    assert_eq!(
        ob.retry_dead(3).unwrap() as u64,
        dead,
        "moving them back fits"
    );
    assert_eq!(ob.status().unwrap().queued, dead);
}

#[test]
fn a_full_outbox_refuses_the_whole_push_and_keeps_what_it_had() {
    let dir = temp_dir("full");
    let limits = Limits {
        max_bytes: 4096,
        max_record: 1000,
    };
    let mut ob = Outbox::open(&dir, limits).unwrap();
    let mut pushed = 0;
    while ob.push(recs("A__c", &format!("p{pushed}-"), 5), 1).is_ok() {
        pushed += 1;
        assert!(pushed < 100, "never full");
    }
    let before = snapshot(&mut ob);
    let len = fs::metadata(dir.join("log")).unwrap().len();
    let err = ob.push(recs("A__c", "x", 5), 2).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Storage);
    assert_eq!(err.exit_code(), 8);
    for needle in [
        "is full",
        "sfpair outbox flush",
        "--outbox-max-bytes",
        "4096",
    ] {
        assert!(err.message().contains(needle), "{}", err.message());
    }
    assert_eq!(snapshot(&mut ob), before);
    assert_eq!(fs::metadata(dir.join("log")).unwrap().len(), len);
    assert_eq!(before.0.len(), pushed * 5);
    // Delivering some makes room: the push compacts first, then fits.
    let b = ob.next_batch(10).unwrap();
    ob.settle(&delivered(&b), 3).unwrap();
    ob.push(recs("A__c", "x", 5), 4).unwrap();
    assert_eq!(all_pending(&mut ob).len(), pushed * 5 - 10 + 5);
    assert!(fs::metadata(dir.join("log")).unwrap().len() <= 4096);

    // An oversize record: Config (exit 2), naming which one; nothing written.
    let mut batch = recs("A__c", "ok", 2);
    batch.insert(
        1,
        NewRecord {
            target: upsert("A__c"),
            json: format!(r#"{{"Key__c":"big","D__c":"{}"}}"#, "x".repeat(1000)),
            auto_id: false,
        },
    );
    let before = snapshot(&mut ob);
    let err = ob.push(batch, 5).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message().contains("record 2 is 1026 bytes"),
        "{}",
        err.message()
    );
    assert_eq!(snapshot(&mut ob), before);
    // A bad name is refused too.
    let err = ob.push(vec![rec("", "k")], 5).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
}

/// A logger that keeps warnings, for the tests that check one was given.
struct Capture(Mutex<Vec<String>>);
static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            self.0.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn warnings_about(path: &Path) -> Vec<String> {
    if log::set_logger(&CAPTURE).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let needle = path.display().to_string();
    CAPTURE
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains(&needle))
        .cloned()
        .collect()
}

#[test]
fn a_torn_tail_is_cut_with_a_warning_and_nothing_before_it_is_lost() {
    let dir = temp_dir("torn");
    let log_path = dir.join("log");
    warnings_about(&log_path);
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    ob.push(recs("A__c", "a", 3), 1).unwrap();
    let good = fs::read(&log_path).unwrap();
    // Half of a second push, as a power cut leaves it.
    let mut torn = Vec::new();
    for (i, r) in recs("A__c", "t", 2).into_iter().enumerate() {
        let e = entry::Entry {
            seq: 4 + i as u64,
            queued_at: 2,
            target: r.target,
            json: r.json,
        };
        entry::encode_entry(&mut torn, &e, i == 0);
    }
    for cut in [1, 16, 40, torn.len() / 2 + 3, torn.len() - 1] {
        let mut bytes = good.clone();
        bytes.extend_from_slice(&torn[..cut]);
        fs::write(&log_path, &bytes).unwrap();
        let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
        assert_eq!(all_pending(&mut ob).len(), 3, "cut {cut}");
        assert_eq!(fs::read(&log_path).unwrap(), good, "cut {cut}");
        let w = warnings_about(&log_path);
        let said = w
            .iter()
            .find(|w| w.contains(&format!("cut {cut} bytes")))
            .unwrap_or_else(|| panic!("{w:?}"));
        // A push is acknowledged after its fsync: a cut one was acknowledged only if the
        // storage lost a confirmed write, and the warning must not claim it never was.
        assert!(!said.contains("had not been acknowledged"), "{said}");
        assert!(said.contains("unless the storage lost a write"), "{said}");
    }
    // Garbage, then a good frame: damage in the middle, refused with the offset, not cut.
    let mut bytes = good.clone();
    let at = bytes.len();
    bytes.extend_from_slice(b"garbage!");
    bytes.extend_from_slice(&good[ob.st.header_len as usize..]);
    fs::write(&log_path, &bytes).unwrap();
    let err = Outbox::open(&dir, Limits::default()).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Storage);
    assert!(
        err.message().contains(&format!("damaged at byte {at}")),
        "{}",
        err.message()
    );
    assert_eq!(fs::read(&log_path).unwrap(), bytes, "nothing cut");
    // A flipped bit in the first record, with good ones after it: refused too.
    let mut bytes = good.clone();
    let first = ob.st.header_len as usize;
    bytes[first + 30] ^= 4;
    fs::write(&log_path, &bytes).unwrap();
    let err = Outbox::open(&dir, Limits::default()).err().unwrap();
    assert!(
        err.message().contains(&format!("damaged at byte {first}")),
        "{}",
        err.message()
    );
}

/// A log whose header frame is damaged and that holds nothing else was cut to an empty file,
/// which every later open refused: the queue was dead until someone came. Now it is set aside
/// whole and an empty queue starts, numbering above what the mark and dead letters name; an
/// empty log left by an older sfpair starts over too; a damaged header with records after it
/// is refused and left as it is.
#[test]
fn a_damaged_header_is_never_cut_and_a_log_with_nothing_readable_is_set_aside() {
    let dir = temp_dir("header");
    let log_path = dir.join("log");
    warnings_about(&log_path);
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    ob.push(recs("A__c", "a", 2), 1).unwrap();
    let batch = ob.next_batch(10).unwrap();
    ob.settle(&delivered(&batch), 2).unwrap(); // compacts: a header-only log
    let old_id = ob.id().to_string();
    let header_only = fs::read(&log_path).unwrap();
    assert_eq!(header_only.len() as u64, ob.st.header_len);
    let mut damaged = header_only.clone();
    damaged[20] ^= 0x10;
    fs::write(&log_path, &damaged).unwrap();
    for pushed_before in 0..2 {
        let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
        assert_eq!(ob.status().unwrap().queued, pushed_before);
        assert_ne!(ob.id(), old_id, "a new log");
        let pushed = ob.push(recs("A__c", "b", 1), 3).unwrap();
        assert!(pushed.first_seq >= 1);
    }
    assert_eq!(
        fs::read(dir.join("log.damaged.1")).unwrap(),
        damaged,
        "kept whole"
    );
    assert!(!dir.join("log.damaged.2").exists(), "set aside once");
    let w = warnings_about(&log_path);
    assert!(w.iter().any(|w| w.contains("log.damaged.1")), "{w:?}");

    // An empty log (what the old cut left): a new one starts.
    fs::write(&log_path, b"").unwrap();
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    assert_eq!(ob.status().unwrap().queued, 0);

    // A damaged header with a record after it: refused, nothing cut or moved.
    ob.push(recs("A__c", "c", 1), 4).unwrap();
    let mut bytes = fs::read(&log_path).unwrap();
    bytes[20] ^= 0x10;
    fs::write(&log_path, &bytes).unwrap();
    let err = Outbox::open(&dir, Limits::default()).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Storage);
    assert!(
        err.message().contains("holds a good record frame"),
        "{}",
        err.message()
    );
    assert_eq!(fs::read(&log_path).unwrap(), bytes, "nothing cut");
    assert!(!dir.join("log.damaged.2").exists());
}

#[test]
fn the_directory_is_0700_and_every_file_0600() {
    let dir = temp_dir("modes").join("nested");
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    ob.push(recs("A__c", "a", 2), 1).unwrap();
    ob.settle(
        &[
            Settle::Delivered(1),
            Settle::Dead {
                seq: 2,
                error: "e".into(),
            },
        ],
        2,
    )
    .unwrap();
    let _held = ob.try_deliver_lock().unwrap().unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for name in ["log", "mark", "dead", "lock", "deliver.lock"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    // A directory others can write to is refused.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let err = Outbox::open(&dir, Limits::default()).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("chmod go-w"), "{}", err.message());
    // Sticky does not make the outbox's own directory private.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    let err = Outbox::open(&dir, Limits::default()).err().unwrap();
    assert!(err.message().contains("chmod 700"), "{}", err.message());
}

/// An outbox whose parent others may write (not sticky) was accepted, so another user could
/// move it aside and put theirs in its place. Now every directory above it is checked.
#[test]
fn a_parent_others_may_write_is_refused_unless_sticky() {
    let top = temp_dir("parent");
    fs::create_dir_all(&top).unwrap();
    fs::set_permissions(&top, fs::Permissions::from_mode(0o777)).unwrap();
    let dir = top.join("outbox");
    let err = Outbox::open(&dir, Limits::default()).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message().contains("writable by other users"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("--outbox"), "{}", err.message());
    assert!(!dir.exists(), "nothing created there");
    fs::set_permissions(&top, fs::Permissions::from_mode(0o1777)).unwrap();
    Outbox::open(&dir, Limits::default()).unwrap();
}

/// Files were opened by path and never checked: a world-writable log planted in the outbox
/// was written to and read from. Now each is checked on its descriptor: a file others may read
/// or write, a symbolic link, a FIFO are refused (exit 2) and left as they are.
#[test]
fn a_planted_or_shared_file_in_the_outbox_is_refused_and_left_alone() {
    let dir = temp_dir("planted");
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    ob.push(recs("A__c", "a", 1), 1).unwrap();
    drop(ob);
    let log = dir.join("log");
    let before = fs::read(&log).unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    let err = Outbox::open(&dir, Limits::default()).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("chmod 600"), "{}", err.message());
    assert!(err.message().contains(&log.display().to_string()));
    assert_eq!(fs::read(&log).unwrap(), before);
    fs::set_permissions(&log, fs::Permissions::from_mode(0o600)).unwrap();

    let elsewhere = dir.parent().unwrap().join("planted-target");
    fs::write(&elsewhere, b"not yours").unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("mark")).unwrap();
    let err = Outbox::open(&dir, Limits::default()).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("symbolic link"), "{}", err.message());
    fs::remove_file(dir.join("mark")).unwrap();
    assert_eq!(fs::read(&elsewhere).unwrap(), b"not yours");

    let fifo = std::ffi::CString::new(dir.join("dead").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let err = Outbox::open(&dir, Limits::default()).err().unwrap();
    assert!(
        err.message().contains("not a regular file"),
        "{}",
        err.message()
    );
    fs::remove_file(dir.join("dead")).unwrap();
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    assert_eq!(ob.status().unwrap().queued, 1);
}

/// The directory is held open and every file is reached through it: once open, a name
/// swapped at the outbox's path (by its own user, the only one who still can) does not
/// redirect a push.
#[test]
fn an_open_outbox_works_in_the_directory_it_opened_not_at_its_path() {
    let dir = temp_dir("held");
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    ob.push(recs("A__c", "a", 1), 1).unwrap();
    let moved = dir.with_file_name(format!(
        "{}-moved",
        dir.file_name().unwrap().to_str().unwrap()
    ));
    fs::rename(&dir, &moved).unwrap();
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    ob.push(recs("A__c", "b", 1), 2).unwrap();
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing at the path"
    );
    assert_eq!(ob.status().unwrap().queued, 2);
    let mut reopened = Outbox::open(&moved, Limits::default()).unwrap();
    assert_eq!(reopened.status().unwrap().queued, 2);
}

/// A full disk: the room for the mark is set aside before a batch is sent, so the outcome of
/// a reply can always be recorded, and without that room nothing is sent. Dead letters that
/// cannot be written leave their records queued and the delivered ones recorded; a compaction
/// that cannot be written does not undo a settle.
#[test]
fn on_a_full_disk_the_outcome_is_reserved_before_sending_and_nothing_is_recorded_twice() {
    let power = Power::default();
    let mut ob = model_outbox(&power).unwrap();
    ob.push(recs("A__c", "a", 3), 1).unwrap();
    power.set_full(true);
    let e = ob.reserve_outcome(3).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(e.message().contains("Nothing was sent"), "{}", e.message());
    power.set_full(false);
    ob.reserve_outcome(3).unwrap();
    power.set_full(true);
    // The reply came back: recorded in the room set aside, though the disk is full (and the
    // compaction that an empty queue starts fails, without undoing it).
    let batch = ob.next_batch(10).unwrap();
    ob.settle(&delivered(&batch), 2).unwrap();
    let mut again = model_outbox(&power).unwrap();
    let s = again.status().unwrap();
    assert_eq!((s.queued, s.delivered), (0, 3));

    // Dead letters without room: the delivered one is recorded, the refused one stays queued.
    power.set_full(false);
    let mut ob = model_outbox(&power).unwrap();
    let pushed = ob.push(recs("A__c", "b", 2), 3).unwrap();
    ob.reserve_outcome(2).unwrap();
    power.set_full(true);
    let (first, second) = (pushed.first_seq, pushed.first_seq + 1);
    let e = ob
        .settle(
            &[
                Settle::Delivered(first),
                Settle::Dead {
                    seq: second,
                    error: "INVALID_FIELD".into(),
                },
            ],
            4,
        )
        .err()
        .unwrap();
    assert!(e.message().contains("stay queued"), "{}", e.message());
    power.set_full(false);
    let mut ob = model_outbox(&power).unwrap();
    let left: Vec<u64> = ob.next_batch(10).unwrap().iter().map(|p| p.seq).collect();
    assert_eq!(left, [second]);
    assert_eq!(ob.status().unwrap().dead, 0);
}

#[test]
fn one_deliverer_at_a_time() {
    let dir = temp_dir("deliver");
    let a = Outbox::open(&dir, Limits::default()).unwrap();
    let b = Outbox::open(&dir, Limits::default()).unwrap();
    let held = a.try_deliver_lock().unwrap();
    assert!(held.is_some());
    assert!(b.try_deliver_lock().unwrap().is_none());
    drop(held);
    assert!(b.try_deliver_lock().unwrap().is_some());
}

#[test]
fn two_pushers_at_once_lose_nothing_and_interleave_nothing() {
    let dir = temp_dir("two");
    Outbox::open(&dir, Limits::default()).unwrap();
    let threads: Vec<_> = ["x", "y"]
        .into_iter()
        .map(|who| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
                for i in 0..500 {
                    // Pairs, so an interleaved push would show as a split pair.
                    let pair = vec![
                        rec("A__c", &format!("{who}{i}a")),
                        rec("A__c", &format!("{who}{i}b")),
                    ];
                    ob.push(pair, i).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut ob = Outbox::open(&dir, Limits::default()).unwrap();
    let all = all_pending(&mut ob);
    assert_eq!(all.len(), 2000);
    let mut keys: Vec<&str> = all.iter().map(|(_, k)| k.as_str()).collect();
    assert!(
        all.windows(2).all(|w| w[0].0 + 1 == w[1].0),
        "seqs in order, no gap"
    );
    for pair in keys.chunks(2) {
        assert_eq!(pair[0].trim_end_matches('a'), pair[1].trim_end_matches('b'));
    }
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 2000, "each record once");
}

#[test]
fn a_hundred_thousand_queued_records_are_streamed_not_loaded() {
    let dir = temp_dir("many");
    let limits = Limits {
        max_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    };
    let mut ob = Outbox::open(&dir, limits).unwrap();
    for chunk in 0..100 {
        ob.push(recs("A__c", &format!("c{chunk}-"), 1000), chunk)
            .unwrap();
    }
    let mut ob = Outbox::open(&dir, limits).unwrap();
    assert_eq!(ob.status().unwrap().queued, 100_000);
    let b = ob.next_batch(100_000).unwrap();
    assert_eq!(b.len(), MAX_BATCH);
    ob.settle(&delivered(&b), 1).unwrap();
    // What the handle keeps: counters and the settled seqs above the oldest (none here).
    assert_eq!(ob.st.above.len(), 0);
    assert_eq!(ob.status().unwrap().queued, 100_000 - 200);
    // The log is streamed through a bounded buffer: see scan.rs (the lead measures RSS).
}

// ---- The power-cut sweep ------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Known {
    Pending(u64),
    Delivered,
    Dead,
}

/// What the failing step may have left for the records it touched.
#[derive(Clone, Debug)]
enum InFlight {
    Push(Vec<String>),
    Deliver(Vec<(String, u64)>),
    Kill(String, u64),
    Retry(Vec<String>),
    Nothing,
}

#[derive(Clone)]
enum Step {
    /// (sObject, key) pairs: one push may mix targets.
    Push(&'static [(&'static str, &'static str)]),
    Deliver(usize),
    Kill,
    Compact,
    Retry,
}

const SCRIPT: &[Step] = &[
    Step::Push(&[
        ("A__c", "a0"),
        ("A__c", "a1"),
        ("A__c", "a2"),
        ("A__c", "a3"),
    ]),
    Step::Push(&[("B__c", "b0"), ("B__c", "b1")]),
    Step::Deliver(2),
    Step::Kill,
    Step::Push(&[("A__c", "a4")]),
    Step::Deliver(10),
    Step::Compact,
    Step::Retry,
    Step::Kill,
    Step::Deliver(10),
    Step::Deliver(10),
    Step::Retry,
    Step::Deliver(10),
    // Delivering m0 and m2 leaves m1, the middle of its push, last in the compacted log.
    Step::Push(&[("A__c", "m0"), ("B__c", "m1"), ("A__c", "m2")]),
    Step::Deliver(10),
    Step::Compact,
    Step::Push(&[("B__c", "b2"), ("B__c", "b3")]),
];

struct Run {
    known: BTreeMap<String, Known>,
    in_flight: Option<InFlight>,
    max_seq: u64,
}

fn model_outbox(power: &Power) -> Result<Outbox, Error> {
    Outbox::with_disk(
        Path::new("/model/outbox"),
        Box::new(power.disk()),
        Limits::default(),
    )
}

/// Runs the script until the power goes (the first error).
fn run(power: &Power) -> Run {
    let mut r = Run {
        known: BTreeMap::new(),
        in_flight: Some(InFlight::Nothing),
        max_seq: 0,
    };
    let Ok(mut ob) = model_outbox(power) else {
        return r;
    };
    for step in SCRIPT {
        let ok = match step {
            Step::Push(pairs) => {
                let keys: Vec<&str> = pairs.iter().map(|(_, k)| *k).collect();
                r.in_flight = Some(InFlight::Push(keys.iter().map(|k| k.to_string()).collect()));
                let records = pairs.iter().map(|(o, k)| rec(o, k)).collect();
                ob.push(records, 1).map(|p| {
                    for (i, k) in keys.iter().enumerate() {
                        let seq = p.first_seq + i as u64;
                        r.known.insert(k.to_string(), Known::Pending(seq));
                        r.max_seq = r.max_seq.max(seq);
                    }
                })
            }
            Step::Deliver(n) => {
                r.in_flight = Some(InFlight::Nothing);
                ob.next_batch(*n).and_then(|b| {
                    let keys = b.iter().map(|p| (key_of(&p.json), p.seq)).collect();
                    r.in_flight = Some(InFlight::Deliver(keys));
                    ob.settle(&delivered(&b), 2).map(|()| {
                        for p in &b {
                            r.known.insert(key_of(&p.json), Known::Delivered);
                        }
                    })
                })
            }
            Step::Kill => {
                r.in_flight = Some(InFlight::Nothing);
                ob.next_batch(1).and_then(|b| {
                    let Some(p) = b.first() else { return Ok(()) };
                    let key = key_of(&p.json);
                    r.in_flight = Some(InFlight::Kill(key.clone(), p.seq));
                    let dead = Settle::Dead {
                        seq: p.seq,
                        error: "INVALID_FIELD".into(),
                    };
                    ob.settle(&[dead], 3).map(|()| {
                        r.known.insert(key, Known::Dead);
                    })
                })
            }
            Step::Compact => {
                r.in_flight = Some(InFlight::Nothing);
                ob.compact()
            }
            Step::Retry => {
                let dead: Vec<String> = r
                    .known
                    .iter()
                    .filter(|(_, k)| **k == Known::Dead)
                    .map(|(j, _)| j.clone())
                    .collect();
                r.in_flight = Some(InFlight::Retry(dead.clone()));
                ob.retry_dead(4).and_then(|_| {
                    // Their new seqs, read back as a deliverer would.
                    for (seq, key) in all_pending_result(&mut ob)? {
                        if dead.contains(&key) {
                            r.known.insert(key, Known::Pending(seq));
                            r.max_seq = r.max_seq.max(seq);
                        }
                    }
                    Ok(())
                })
            }
        };
        if ok.is_err() {
            return r;
        }
    }
    r.in_flight = None;
    r
}

fn all_pending_result(ob: &mut Outbox) -> Result<Vec<(u64, String)>, Error> {
    ob.locked(|ob| {
        let mut out = Vec::new();
        let (from, end) = (ob.st.header_len, ob.st.log_len);
        ob.entries(from, end, |st, e, _| {
            if !st.settled(e.seq) {
                out.push((e.seq, key_of(&e.json)));
            }
            true
        })?;
        Ok(out)
    })
}

/// Checks a reopened outbox against what the script knew when the power went.
fn check_after_cut(r: &Run, ob: &mut Outbox, what: &str) {
    let pending = all_pending(ob);
    assert!(
        pending.windows(2).all(|w| w[0].0 < w[1].0),
        "{what}: seq order"
    );
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for (seq, key) in &pending {
        assert!(
            seen.insert(key.clone(), *seq).is_none(),
            "{what}: {key} queued twice"
        );
    }
    let dead: Vec<String> = dead_keys(ob).into_iter().map(|d| d.1).collect();
    let is_dead = |k: &str| dead.iter().any(|d| d == k);
    let touched: Vec<String> = match &r.in_flight {
        Some(InFlight::Push(keys)) | Some(InFlight::Retry(keys)) => keys.clone(),
        Some(InFlight::Deliver(keys)) => keys.iter().map(|(k, _)| k.clone()).collect(),
        Some(InFlight::Kill(k, _)) => vec![k.clone()],
        Some(InFlight::Nothing) | None => vec![],
    };
    for (key, known) in &r.known {
        if touched.contains(key) {
            continue;
        }
        let got = (seen.get(key).copied(), is_dead(key));
        let want = match known {
            Known::Pending(s) => (Some(*s), false),
            Known::Delivered => (None, false),
            Known::Dead => (None, true),
        };
        assert_eq!(got, want, "{what}: {key} was {known:?}");
    }
    match &r.in_flight {
        Some(InFlight::Push(keys)) => {
            let present = keys.iter().filter(|k| seen.contains_key(*k)).count();
            assert!(present == 0 || present == keys.len(), "{what}: half a push");
            assert!(keys.iter().all(|k| !is_dead(k)), "{what}");
        }
        Some(InFlight::Deliver(keys)) => {
            for (k, s) in keys {
                let got = seen.get(k).copied();
                assert!(got.is_none() || got == Some(*s), "{what}: {k}");
                assert!(!is_dead(k), "{what}: {k}");
            }
        }
        Some(InFlight::Kill(k, s)) => {
            let got = seen.get(k).copied();
            assert!(got.is_none() || got == Some(*s), "{what}: {k}");
            assert!(got.is_some() || is_dead(k), "{what}: {k} lost");
        }
        Some(InFlight::Retry(keys)) => {
            for k in keys {
                let got = seen.get(k).copied();
                assert!(got.is_some() || is_dead(k), "{what}: dead letter {k} lost");
                assert!(
                    got.is_none_or(|s| s > r.max_seq),
                    "{what}: {k} reused a seq"
                );
            }
        }
        Some(InFlight::Nothing) | None => {}
    }
    for key in seen.keys().chain(dead.iter()) {
        assert!(
            r.known.contains_key(key) || touched.contains(key),
            "{what}: {key} came from nowhere"
        );
    }
    // The delivered count survives compaction, counted once.
    let known = r.known.values().filter(|k| **k == Known::Delivered).count() as u64;
    let flying = match &r.in_flight {
        Some(InFlight::Deliver(keys)) => keys.len() as u64,
        _ => 0,
    };
    let count = ob.status().unwrap().delivered;
    assert!(
        (known..=known + flying).contains(&count),
        "{what}: delivered {count}, known {known}"
    );
    // A new push never reuses a seq anyone has seen.
    let highest = pending
        .iter()
        .map(|p| p.0)
        .max()
        .unwrap_or(0)
        .max(r.max_seq);
    let p = ob.push(vec![rec("C__c", "fresh")], 9).unwrap();
    assert!(p.first_seq > highest, "{what}: seq {} reused", p.first_seq);
}

#[test]
fn a_power_cut_at_every_write_boundary_loses_nothing_and_resurrects_nothing() {
    let full = Power::default();
    let complete = run(&full);
    assert!(complete.in_flight.is_none(), "the script runs to the end");
    let total = full.ops();
    assert!(total > 40, "the script does {total} write operations");
    let mut cases = 0;
    for budget in 0..=total {
        let power = Power::default();
        power.set_budget(Some(budget));
        let r = run(&power);
        assert_eq!(r.in_flight.is_some(), budget < total, "budget {budget}");
        let losses = [
            Loss::All,
            Loss::None,
            Loss::TornLast,
            Loss::Random(budget as u64 * 31 + 1),
            Loss::Random(budget as u64 * 31 + 2),
            Loss::Random(budget as u64 * 31 + 3),
        ];
        for (n, loss) in losses.into_iter().enumerate() {
            let after = power.cut(loss);
            let what = format!("cut after {budget} of {total} writes, loss {n}");
            let mut ob = match model_outbox(&after) {
                Ok(ob) => ob,
                Err(e) => panic!("{what}: the outbox does not open: {}", e.message()),
            };
            let first = snapshot(&mut ob);
            // Opening again (in a fresh handle) sees the same state.
            let mut again = model_outbox(&after).unwrap();
            assert_eq!(snapshot(&mut again), first, "{what}");
            check_after_cut(&r, &mut ob, &what);
            cases += 1;
        }
    }
    assert!(cases > 240);
}

#[test]
fn the_model_loses_unsynced_bytes_and_unsynced_renames() {
    let power = Power::default();
    let mut d = power.disk();
    d.append("a", b"synced").unwrap();
    d.fsync("a").unwrap();
    d.fsync_dir().unwrap();
    d.append("a", b"+more").unwrap();
    d.append("b", b"new").unwrap();
    d.fsync("b").unwrap();
    d.rename("b", "c").unwrap();
    let lost = power.cut(Loss::All);
    assert_eq!(lost.content("a").unwrap(), b"synced");
    assert!(lost.content("b").is_none() && lost.content("c").is_none());
    let kept = power.cut(Loss::None);
    assert_eq!(kept.content("a").unwrap(), b"synced+more");
    assert_eq!(kept.content("c").unwrap(), b"new");
    let torn = power.cut(Loss::TornLast);
    assert_eq!(torn.content("a").unwrap(), b"synced+m");
    power.set_budget(Some(power.ops()));
    assert!(d.append("a", b"x").is_err(), "no power, no write");
}

#[test]
fn a_handle_sees_what_another_pushed_settled_and_compacted() {
    let dir = temp_dir("handles");
    let mut a = Outbox::open(&dir, Limits::default()).unwrap();
    let mut b = Outbox::open(&dir, Limits::default()).unwrap();
    assert_eq!(a.id(), b.id());
    a.push(recs("A__c", "a", 3), 1).unwrap();
    // b only reads the appended frames, and hands them out.
    let batch = b.next_batch(10).unwrap();
    assert_eq!(batch.len(), 3);
    b.settle(&delivered(&batch[..1]), 2).unwrap();
    // a re-reads the changed mark: the settled one is not handed out again.
    assert_eq!(a.next_batch(10).unwrap()[0].seq, 2);
    b.settle(&delivered(&batch), 3).unwrap();
    // The queue became empty: b compacted to a new generation behind a's back.
    let p = a.push(recs("A__c", "n", 1), 4).unwrap();
    assert_eq!((p.first_seq, p.queued), (4, 1));
    assert_eq!(snapshot(&mut a), snapshot(&mut b));
    assert_eq!(b.status().unwrap().delivered, 3);
}
