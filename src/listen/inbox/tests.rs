//! The inbox's promises, on the outbox's power-cut model of a directory: after a cut at every
//! write of a day's work, the inbox opens; no event that counted as received is lost; nothing
//! that finished runs again; a run that was started and not finished is counted as an attempt.

use std::path::Path;

use super::*;
use crate::outbox::model::{Loss, Power};

fn event(n: i64, uuid: &str) -> Delivered {
    Delivered {
        channel: "/event/Device_Command__e".into(),
        replay_id: n * 7 + 3,
        uuid: Some(uuid.into()),
        payload: format!(r#"{{"Device_Id__c":"GW-1","N__c":{n}}}"#),
    }
}

/// Runs `u` to its end at `at`: started, then finished as `s` (exit 0 when done), with no
/// output kept.
fn run(inbox: &mut Inbox, u: &str, s: Outcome, at: u64) {
    inbox.start(u).unwrap();
    let exit = (s == Outcome::Done).then_some(0);
    inbox.finish(u, s, exit, None, at).unwrap();
}

/// An inbox on `power`'s disk with a limit of `max` bytes.
fn inbox_of(power: &Power, max: u64) -> Inbox {
    Inbox::with_disk(Path::new("/model/inbox"), Box::new(power.disk()), max).unwrap()
}

fn open(power: &Power) -> Result<Inbox, Error> {
    Inbox::with_disk(Path::new("/model/inbox"), Box::new(power.disk()), 1 << 20)
}

fn all(_: &Delivered) -> bool {
    true
}

#[test]
fn an_event_is_run_once_and_a_redelivery_only_moves_the_position() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    let a = inbox
        .accept(&[event(1, "u1"), event(2, "u2")], 10, all)
        .unwrap();
    assert_eq!((a.new, a.skipped), (2, 0));
    assert_eq!(inbox.position("/event/Device_Command__e"), Some(17));
    let first = inbox.next().unwrap().clone();
    assert_eq!((first.uuid.as_str(), first.attempts), ("u1", 0));
    inbox.start("u1").unwrap();
    inbox
        .finish("u1", Outcome::Done, Some(0), Some("ok".into()), 11)
        .unwrap();
    // The org sends everything again (a replay from an older position, or -2).
    let again = inbox
        .accept(&[event(1, "u1"), event(2, "u2"), event(3, "u3")], 12, all)
        .unwrap();
    assert_eq!((again.new, again.skipped), (1, 2));
    assert_eq!(inbox.next().unwrap().uuid, "u2");
    assert_eq!(inbox.position("/event/Device_Command__e"), Some(24));
    // Reopened (a restart), it says the same.
    drop(inbox);
    let inbox = open(&power).unwrap();
    assert!(inbox.finished("u1").is_some());
    let pending: Vec<&str> = inbox.pending.iter().map(|p| p.uuid.as_str()).collect();
    assert_eq!(pending, ["u2", "u3"]);
    assert_eq!(inbox.unsent().len(), 1, "u1's result is not queued yet");
}

#[test]
fn an_event_twice_in_one_reply_is_accepted_once_and_the_newest_position_kept() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    let mut other = event(9, "v1");
    other.channel = "/event/Other__e".into();
    let a = inbox
        .accept(
            &[event(2, "u2"), other, event(1, "u2"), event(3, "u3")],
            10,
            all,
        )
        .unwrap();
    assert_eq!((a.new, a.skipped), (3, 1));
    let pending: Vec<&str> = inbox.pending.iter().map(|p| p.uuid.as_str()).collect();
    assert_eq!(pending, ["u2", "v1", "u3"]);
    assert_eq!(inbox.position("/event/Device_Command__e"), Some(24));
    assert_eq!(inbox.position("/event/Other__e"), Some(66));
}

#[test]
fn events_that_are_not_ours_move_the_position_and_never_run() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    let ours = |e: &Delivered| e.payload.contains("\"N__c\":2");
    let a = inbox
        .accept(&[event(1, "u1"), event(2, "u2"), event(3, "u3")], 10, ours)
        .unwrap();
    assert_eq!((a.new, a.skipped), (1, 2));
    assert_eq!(inbox.position("/event/Device_Command__e"), Some(24));
    assert_eq!(inbox.pending.len(), 1);
}

#[test]
fn a_started_run_that_was_cut_counts_as_an_attempt() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    inbox.accept(&[event(1, "u1")], 10, all).unwrap();
    inbox.start("u1").unwrap();
    let inbox = open(&power.cut(Loss::None)).unwrap();
    assert_eq!(inbox.next().unwrap().attempts, 1, "runs again as attempt 2");
}

#[test]
fn a_batch_bigger_than_the_room_is_taken_from_its_beginning_and_the_position_stops_there() {
    let power = Power::default();
    let mut inbox = inbox_of(&power, 600);
    inbox.accept(&[event(1, "u1")], 10, all).unwrap();
    let big: Vec<Delivered> = (2..20).map(|n| event(n, &format!("u{n}"))).collect();
    let a = inbox.accept(&big, 11, all).unwrap();
    assert!(a.new > 0 && a.left > 0, "{a:?}");
    assert_eq!(a.new + a.left, big.len());
    let last_taken = &big[a.new - 1];
    assert_eq!(
        inbox.position("/event/Device_Command__e"),
        Some(last_taken.replay_id),
        "the rest comes again from the stored position"
    );
    assert!(inbox.log_len <= 600, "{}", inbox.log_len);
    // Durable as it returned; the first event left is not known.
    let reopened = inbox_of(&power, 600);
    assert_eq!(reopened.pending.len(), 1 + a.new);
    assert!(!reopened.knows(&identity(&big[a.new])));
}

#[test]
fn a_beginning_that_fits_exactly_is_taken_and_the_rest_left() {
    // What the first event takes in the log (its Accept and the position it moves).
    let scratch = Power::default();
    let mut measure = open(&scratch).unwrap();
    measure.accept(&[event(1, "u1")], 10, all).unwrap();
    let first = measure.log_len;
    let power = Power::default();
    let mut inbox = inbox_of(&power, first);
    let a = inbox
        .accept(&[event(1, "u1"), event(2, "u2")], 10, all)
        .unwrap();
    assert_eq!((a.new, a.left), (1, 1));
    assert_eq!(inbox.log_len, first, "exactly the room there was");
}

#[test]
fn a_full_inbox_takes_nothing_moves_nothing_and_says_why() {
    let power = Power::default();
    let mut inbox = inbox_of(&power, 600);
    let mut n = 1;
    while inbox
        .accept(&[event(n, &format!("u{n}"))], 10, all)
        .unwrap()
        .left
        == 0
    {
        n += 1;
        assert!(n < 100, "600 bytes hold fewer than 100 events");
    }
    let len = inbox.log_len;
    let a = inbox.accept(&[event(n + 1, "next")], 11, all).unwrap();
    assert_eq!(
        a,
        Accepted {
            new: 0,
            skipped: 0,
            left: 1
        }
    );
    assert_eq!(inbox.log_len, len, "nothing written");
    assert_eq!(
        inbox.position("/event/Device_Command__e"),
        Some(event(n - 1, "").replay_id)
    );
    assert!(inbox.full().contains("is full"), "{}", inbox.full());
    // Once the commands waiting have run (and, in an inbox this small, their ids are older
    // than the org keeps events), the room comes back.
    for k in 1..n {
        let u = format!("u{k}");
        run(&mut inbox, &u, Outcome::Done, 12);
        inbox.sent(&u).unwrap();
    }
    let later = 12 + KEEP_FINISHED + 1;
    let a = inbox.accept(&[event(n + 1, "next")], later, all).unwrap();
    assert_eq!((a.new, a.left), (1, 0));
}

#[test]
fn an_event_bigger_than_the_whole_inbox_says_to_raise_the_limit() {
    let power = Power::default();
    let mut inbox = inbox_of(&power, 600);
    let a = inbox
        .accept(&[event_of_size("huge", 700)], 10, all)
        .unwrap();
    assert_eq!(a.left, 1);
    assert!(inbox.full().contains("raise the limit"), "{}", inbox.full());
}

#[test]
fn compaction_keeps_what_is_live_and_forgets_old_finished_ids() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    for n in 0..400 {
        let u = format!("u{n}");
        inbox.accept(&[event(n, &u)], 1000, all).unwrap();
        run(&mut inbox, &u, Outcome::Done, 1000);
        inbox.sent(&u).unwrap();
    }
    inbox.accept(&[event(400, "u400")], 1000, all).unwrap();
    let before = inbox.log_len;
    inbox.maybe_compact(1000).unwrap();
    assert!(inbox.log_len < before / 2, "{before} -> {}", inbox.log_len);
    drop(inbox);
    let mut inbox = open(&power).unwrap();
    assert!(inbox.finished("u0").is_some(), "kept within KEEP_FINISHED");
    assert_eq!(inbox.next().unwrap().uuid, "u400");
    assert_eq!(inbox.position("/event/Device_Command__e"), Some(2803));
    // Past the retention the ids go, but never an unfinished event.
    inbox.compact(1000 + KEEP_FINISHED + 1).unwrap();
    assert!(inbox.finished("u0").is_none());
    assert_eq!(inbox.next().unwrap().uuid, "u400");
}

/// What a run of the day's work looked like, step by step, and what is durable after each.
#[derive(Default, Clone)]
struct Seen {
    received: Vec<String>,
    finished: Vec<String>,
    started: Vec<String>,
}

/// A day's work: events arrive in batches (some redelivered), run, finish, results sent, a
/// compaction in the middle. Returns what was durable after each step (an `Ok` return).
fn work(power: &Power) -> Vec<Seen> {
    let mut seen = Seen::default();
    let mut steps = vec![seen.clone()];
    let Ok(mut inbox) = open(power) else {
        return steps;
    };
    for round in 0..6i64 {
        let batch: Vec<Delivered> = (round * 3..round * 3 + 4)
            .map(|n| event(n, &format!("u{n}")))
            .collect();
        if inbox.accept(&batch, 100 + round as u64, all).is_err() {
            return steps;
        }
        for e in &batch {
            let u = e.uuid.clone().unwrap();
            if !seen.received.contains(&u) {
                seen.received.push(u);
            }
        }
        steps.push(seen.clone());
        while let Some(p) = inbox.next().cloned() {
            if inbox.start(&p.uuid).is_err() {
                return steps;
            }
            seen.started.push(p.uuid.clone());
            steps.push(seen.clone());
            if inbox
                .finish(&p.uuid, Outcome::Done, Some(0), Some("out".into()), 200)
                .is_err()
            {
                return steps;
            }
            seen.finished.push(p.uuid.clone());
            steps.push(seen.clone());
            if inbox.sent(&p.uuid).is_err() {
                return steps;
            }
        }
        if round == 3 && inbox.compact(300).is_err() {
            return steps;
        }
    }
    steps
}

fn check(inbox: &Inbox, durable: &Seen, what: &str) {
    for u in &durable.received {
        assert!(
            inbox.knows(u),
            "{what}: {u} counted as received and is gone"
        );
    }
    for u in &durable.finished {
        assert!(
            inbox.finished(u).is_some(),
            "{what}: {u} finished and would run again"
        );
    }
    for p in &inbox.pending {
        let starts = durable.started.iter().filter(|s| **s == p.uuid).count() as u32;
        assert!(
            p.attempts >= starts,
            "{what}: {} had {starts} durable starts but counts {} attempts",
            p.uuid,
            p.attempts
        );
    }
}

#[test]
fn a_power_cut_at_every_write_loses_nothing_received_and_reruns_nothing_finished() {
    let full = Power::default();
    let steps = work(&full);
    let writes = full.ops();
    assert!(
        writes > 60,
        "the day's work writes enough to be a sweep: {writes}"
    );
    let mut cases = 0;
    for budget in 0..=writes {
        let power = Power::default();
        power.set_budget(Some(budget));
        let durable = work(&power);
        let last = durable.last().cloned().unwrap_or_default();
        for loss in [
            Loss::All,
            Loss::None,
            Loss::TornLast,
            Loss::Random(budget as u64 * 31 + 1),
            Loss::Random(budget as u64 * 31 + 2),
        ] {
            let after = power.cut(loss);
            after.set_budget(None);
            let what = format!("cut after {budget} writes");
            let inbox = open(&after).unwrap_or_else(|e| panic!("{what}: does not open: {e}"));
            check(&inbox, &last, &what);
            cases += 1;
        }
    }
    assert!(cases > 300, "{cases}");
    assert_eq!(steps.last().unwrap().finished.len(), 19);
}

#[test]
fn entries_keep_the_log_format_of_the_first_release_and_read_back() {
    // The text serde wrote for each kind before the codec was hand-written: logs written then
    // must read the same now, and new ones are byte for byte what they were.
    let cases = [
        (
            Entry::Accept {
                ch: "/event/Device_Command__e".into(),
                id: -2,
                u: "u\"1".into(),
                p: r#"{"Value__c":1.10}"#.into(),
                at: 1_765_000_000,
            },
            r#"{"t":"accept","ch":"/event/Device_Command__e","id":-2,"u":"u\"1","p":"{\"Value__c\":1.10}","at":1765000000}"#,
        ),
        (
            Entry::Position {
                ch: "/event/X__e".into(),
                id: 17,
            },
            r#"{"t":"position","ch":"/event/X__e","id":17}"#,
        ),
        (Entry::Start { u: "u1".into() }, r#"{"t":"start","u":"u1"}"#),
        (
            Entry::Done {
                u: "u1".into(),
                s: Outcome::TimedOut,
                x: None,
                o: None,
                at: 5,
            },
            r#"{"t":"done","u":"u1","s":"timed_out","x":null,"o":null,"at":5}"#,
        ),
        (
            Entry::Done {
                u: "u2".into(),
                s: Outcome::Failed,
                x: Some(-3),
                o: Some("line\n".into()),
                at: 6,
            },
            r#"{"t":"done","u":"u2","s":"failed","x":-3,"o":"line\n","at":6}"#,
        ),
        (Entry::Sent { u: "u1".into() }, r#"{"t":"sent","u":"u1"}"#),
    ];
    for (entry, text) in cases {
        assert_eq!(String::from_utf8(entry.encode()).unwrap(), text);
        assert_eq!(Entry::decode(text.as_bytes()), Some(entry));
    }
    // Written by another program, in another order and spacing: the same entry.
    let reordered = br#"{ "at": 6, "o": null, "u": "u3", "s": "expired", "t": "done" }"#;
    assert!(matches!(
        Entry::decode(reordered),
        Some(Entry::Done {
            s: Outcome::Expired,
            x: None,
            ..
        })
    ));
    for unknown in [
        &br#"{"t":"later","u":"u1"}"#[..],
        br#"{"t":"start"}"#,
        br#"{"t":"done","u":"u1","s":"maybe","at":1}"#,
        br#"{"t":"position","ch":"/event/X__e","id":"17"}"#,
        b"not json",
        b"\xff",
    ] {
        assert_eq!(Entry::decode(unknown), None, "{unknown:?}");
    }
}

/// An event of `size` payload bytes, JSON in fields of about 4 KiB: its quotes are escaped in
/// the log, so its entry is about 1 KiB longer than the payload per MiB, plus the channel and ids.
fn event_of_size(uuid: &str, size: usize) -> Delivered {
    let mut payload = String::from("{");
    let mut n = 0;
    while payload.len() < size {
        let field = format!("\"F{n}__c\":\"");
        let room = size - payload.len() - field.len() - 2;
        payload.push_str(&field);
        payload.push_str(&"x".repeat(room.min(4096)));
        payload.push_str("\",");
        n += 1;
    }
    payload.truncate(size - 1);
    payload.push('}');
    assert_eq!(payload.len(), size);
    let mut e = event(1, uuid);
    e.payload = payload;
    e
}

/// An event whose `Accept` entry is exactly `len` bytes.
fn event_of_entry_len(uuid: &str, len: usize) -> Delivered {
    let mut e = event(1, uuid);
    let empty = Entry::Accept {
        ch: e.channel.clone(),
        id: e.replay_id,
        u: uuid.into(),
        p: String::new(),
        at: 10,
    };
    e.payload = "x".repeat(len - empty.encode().len());
    e
}

#[test]
fn the_default_inbox_takes_an_event_of_a_mib_even_all_escapes_and_refuses_one_of_three() {
    // The org publishes events of up to 1 MB. The worst for the log: a field of escaped quotes,
    // each written twice as long again in the entry. One of 1 MiB is taken and read back, in
    // an inbox of the default size.
    let power = Power::default();
    let mut inbox = inbox_of(&power, DEFAULT_MAX_BYTES);
    let mut largest = event(1, "big");
    let head = r#"{"F__c":""#;
    let quotes = ((1 << 20) - head.len() - 2) / 2;
    largest.payload = format!("{head}{}\"}}", r#"\""#.repeat(quotes));
    assert!(
        largest.payload.len() > (1 << 20) - 2,
        "{}",
        largest.payload.len()
    );
    let a = inbox.accept(std::slice::from_ref(&largest), 10, all);
    assert_eq!(a.unwrap().new, 1);
    drop(inbox);
    let inbox = open(&power).unwrap();
    assert_eq!(inbox.next().unwrap().payload, largest.payload);

    // In an inbox with room for it, an event of 3 MiB is over the limit of one entry...
    let power = Power::default();
    let mut inbox = inbox_of(&power, 8 << 20);
    let e = inbox
        .accept(&[event_of_size("bigger", 3 << 20)], 10, all)
        .unwrap_err();
    assert!(e.message().contains("over the limit"), "{e}");
    assert!(!inbox.knows("bigger"));
    // ...and the limit itself is allowed.
    let exact = event_of_entry_len("exact", MAX_ENTRY);
    assert_eq!(inbox.accept(&[exact], 10, all).unwrap().new, 1);
}

#[test]
fn finished_ids_outlive_the_72_hours_the_org_keeps_events() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    inbox.accept(&[event(1, "u1")], 1000, all).unwrap();
    run(&mut inbox, "u1", Outcome::Done, 1000);
    inbox.sent("u1").unwrap();
    // A redelivery may come up to 72 hours after the event was first sent: still known.
    inbox.compact(1000 + 72 * 3600).unwrap();
    assert!(inbox.finished("u1").is_some());
    let again = inbox
        .accept(&[event(1, "u1")], 1000 + 72 * 3600, all)
        .unwrap();
    assert_eq!((again.new, again.skipped), (0, 1));
    // Kept until KEEP_FINISHED has passed, and no longer.
    inbox.compact(1000 + KEEP_FINISHED - 1).unwrap();
    assert!(inbox.finished("u1").is_some());
    inbox.compact(1000 + KEEP_FINISHED).unwrap();
    assert!(inbox.finished("u1").is_none());
}

#[test]
fn a_log_under_64_kib_is_not_compacted_even_when_it_is_all_history() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    let mut n = 0;
    // Finished and sent events until the log is just under 64 KiB: all history.
    loop {
        let u = format!("u{n}");
        inbox.accept(&[event(n, &u)], 1000, all).unwrap();
        run(&mut inbox, &u, Outcome::Done, 1000);
        inbox.sent(&u).unwrap();
        n += 1;
        if inbox.log_len > 60 * 1024 {
            break;
        }
    }
    let now = 1000 + KEEP_FINISHED + 1;
    let small = inbox.log_len;
    inbox.maybe_compact(now).unwrap();
    assert_eq!(inbox.log_len, small, "compacted at {small} bytes");
    // Past 64 KiB it is.
    while inbox.log_len <= 64 * 1024 {
        inbox
            .accept(&[event(n, &format!("u{n}"))], 1000, all)
            .unwrap();
        n += 1;
    }
    let large = inbox.log_len;
    inbox.maybe_compact(now).unwrap();
    assert!(inbox.log_len < large / 2, "{large} -> {}", inbox.log_len);
}

#[test]
fn damage_followed_by_more_frames_is_refused_and_kept_not_cut_as_a_torn_tail() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    for n in 1..=3 {
        inbox
            .accept(&[event(n, &format!("u{n}"))], 10, all)
            .unwrap();
    }
    drop(inbox);
    // A flipped bit in the first frame's payload: the frames after it are good, so this is
    // not a write cut short, and cutting there would lose three received events.
    let mut log = power.content(LOG).unwrap();
    log[HEADER_LEN + 5] ^= 0x04;
    let mut disk = power.disk();
    disk.remove(LOG).unwrap();
    disk.append(LOG, &log).unwrap();
    let e = open(&power).err().expect("a damaged log opens");
    assert_eq!(e.kind(), crate::error::ErrorKind::Storage);
    assert!(e.message().contains("damaged at byte 0"), "{e}");
    assert_eq!(power.content(LOG).unwrap(), log, "the log is kept as it is");
}

#[test]
fn figures_count_done_and_failed_runs_and_say_the_same_after_a_restart() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    let batch: Vec<Delivered> = (1..=4).map(|n| event(n, &format!("u{n}"))).collect();
    inbox.accept(&batch, 10, all).unwrap();
    for (u, s) in [
        ("u1", Outcome::Done),
        ("u2", Outcome::Failed),
        ("u3", Outcome::TimedOut),
        ("u4", Outcome::Done),
    ] {
        run(&mut inbox, u, s, 11);
    }
    inbox.accept(&[event(5, "u5")], 12, all).unwrap();
    let f = inbox.figures();
    assert_eq!((f.pending, f.done, f.failed), (1, 2, 2));
    assert_eq!(f.bytes, inbox.log_len);
    assert_eq!(f.max_bytes, 1 << 20);
    assert_eq!(f.positions.get("/event/Device_Command__e"), Some(&38));
    drop(inbox);
    assert_eq!(open(&power).unwrap().figures(), f);
}

#[test]
fn the_counts_survive_compactions_that_drop_the_finished_ids_and_a_restart() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    let batch: Vec<Delivered> = (1..=3).map(|n| event(n, &format!("u{n}"))).collect();
    inbox.accept(&batch, 10, all).unwrap();
    for (u, s) in [
        ("u1", Outcome::Done),
        ("u2", Outcome::Failed),
        ("u3", Outcome::Done),
    ] {
        run(&mut inbox, u, s, 11);
        inbox.sent(u).unwrap();
    }
    let counts = |i: &Inbox| (i.figures().done, i.figures().failed);
    assert_eq!(counts(&inbox), (2, 1));
    // Past the retention: the ids go, the counts stay; a second compaction counts none twice.
    let later = 11 + KEEP_FINISHED + 1;
    inbox.compact(later).unwrap();
    assert!(inbox.finished("u1").is_none());
    assert_eq!(counts(&inbox), (2, 1));
    inbox.accept(&[event(4, "u4")], later, all).unwrap();
    run(&mut inbox, "u4", Outcome::TimedOut, later);
    inbox.compact(later).unwrap();
    assert_eq!(counts(&inbox), (2, 2));
    drop(inbox);
    let mut inbox = open(&power).unwrap();
    assert_eq!(counts(&inbox), (2, 2), "after a restart");
    inbox.sent("u4").unwrap();
    inbox.compact(later + KEEP_FINISHED + 1).unwrap();
    drop(inbox);
    assert_eq!(counts(&open(&power).unwrap()), (2, 2));
}

/// A flood of commands through the smallest inbox within the 80 hours ids are kept: the
/// finished ids take at most half of it (the oldest go first), so every command still finds
/// room, and the counts stay whole. Without `--results` (no output kept, nothing to queue)
/// as with it (each result queued).
#[test]
fn a_flood_of_commands_never_fills_a_small_inbox_with_finished_ids() {
    for results in [false, true] {
        let power = Power::default();
        let mut inbox = inbox_of(&power, 64 * 1024);
        for n in 0..2000 {
            let u = format!("u{n}");
            let a = inbox.accept(&[event(n, &u)], 1000, all).unwrap();
            assert_eq!(
                (a.new, a.left),
                (1, 0),
                "command {n} found room ({results})"
            );
            inbox.start(&u).unwrap();
            let output = results.then(|| "ok".to_string());
            inbox
                .finish(&u, Outcome::Done, Some(0), output, 1000)
                .unwrap();
            if results {
                assert_eq!(inbox.unsent().len(), 1);
                inbox.sent(&u).unwrap();
            }
            assert!(inbox.unsent().is_empty());
            inbox.maybe_compact(1000).unwrap();
            assert!(inbox.log_len <= 64 * 1024);
        }
        assert!(inbox.finished("u1999").is_some());
        assert!(inbox.finished("u0").is_none(), "the oldest ids went first");
        drop(inbox);
        let inbox = open(&power).unwrap();
        assert_eq!(inbox.figures().done, 2000);
    }
}

#[test]
fn without_results_finished_ids_are_forgotten_after_the_retention() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    inbox.accept(&[event(1, "u1")], 10, all).unwrap();
    run(&mut inbox, "u1", Outcome::Done, 11);
    inbox.compact(11 + KEEP_FINISHED - 1).unwrap();
    assert!(inbox.finished("u1").is_some(), "kept within the retention");
    inbox.compact(11 + KEEP_FINISHED + 1).unwrap();
    assert!(inbox.finished("u1").is_none(), "forgotten after it");
}

#[test]
fn a_batch_that_fits_exactly_is_taken_and_one_byte_less_room_leaves_its_last_event() {
    let batch = [event(1, "u1"), event(2, "u2")];
    // What the batch takes in the log: its frames (header and checksum around each entry).
    let scratch = Power::default();
    let mut measure = open(&scratch).unwrap();
    measure.accept(&batch, 10, all).unwrap();
    let size = measure.log_len;
    for (max, left) in [(size, 0), (size - 1, 1)] {
        let power = Power::default();
        let mut inbox = inbox_of(&power, max);
        let got = inbox.accept(&batch, 10, all).unwrap();
        assert_eq!(got.left, left, "{max} bytes for {size}: {got:?}");
        assert!(inbox.log_len <= max, "{}", inbox.log_len);
        assert_eq!(inbox.log_len == size, left == 0);
    }
}

#[test]
fn only_a_newer_position_is_written_even_when_no_event_is_ours() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    inbox.accept(&[event(1, "u1")], 10, all).unwrap();
    let none = |_: &Delivered| false;
    // Newer events, none of them ours: the position moves, durably.
    inbox
        .accept(&[event(2, "u2"), event(3, "u3")], 11, none)
        .unwrap();
    assert_eq!(inbox.position("/event/Device_Command__e"), Some(24));
    // A redelivery of what is known, up to the stored position: nothing is written.
    let len = inbox.log_len;
    for batch in [&[event(3, "u3")][..], &[event(1, "u1"), event(2, "u2")]] {
        let a = inbox.accept(batch, 12, none).unwrap();
        assert_eq!(a.new, 0);
        assert_eq!(inbox.log_len, len);
    }
    drop(inbox);
    let inbox = open(&power).unwrap();
    assert_eq!(inbox.position("/event/Device_Command__e"), Some(24));
    assert!(inbox.next().is_some_and(|p| p.uuid == "u1"));
}

#[test]
fn a_batch_that_fits_before_or_only_after_a_compaction_is_taken_and_compacts_only_if_needed() {
    let later = 1000 + KEEP_FINISHED + 1;
    // Five events run and sent at 1000: history by `later`.
    // (Made under a large limit, then given `max`, as a restart with a new --inbox-max-bytes.)
    let with_history = |max: u64| {
        let power = Power::default();
        let mut inbox = open(&power).unwrap();
        for n in 1..=5 {
            let u = format!("u{n}");
            inbox.accept(&[event(n, &u)], 1000, all).unwrap();
            run(&mut inbox, &u, Outcome::Done, 1000);
            inbox.sent(&u).unwrap();
        }
        inbox.max_bytes = max;
        inbox
    };
    let batch = [event(6, "u6"), event(7, "u7")];
    let mut scratch = with_history(1 << 20);
    let before = scratch.log_len;
    scratch.accept(&batch, later, all).unwrap();
    let size = scratch.log_len - before;
    let mut scratch = with_history(1 << 20);
    scratch.compact(later).unwrap();
    let compacted = scratch.log_len;
    assert!(compacted + size < before);
    // One byte short even after the compaction: the first event is taken, the second left.
    for (max, left, len) in [
        (before + size, 0, Some(before + size)),
        (compacted + size, 0, Some(compacted + size)),
        (compacted + size - 1, 1, None),
    ] {
        let mut inbox = with_history(max);
        let got = inbox.accept(&batch, later, all).unwrap();
        assert_eq!(got.left, left, "{max}: {got:?}");
        if let Some(len) = len {
            assert_eq!(inbox.log_len, len, "{max}");
        }
        assert!(inbox.log_len <= max);
    }
}

/// A frame's bytes in the log (its header and checksum around the entry).
fn frame_len(e: &Entry) -> u64 {
    let mut bytes = Vec::new();
    frame::encode(&mut bytes, MAGIC, VERSION, 0, 0, &e.encode());
    bytes.len() as u64
}

#[test]
fn a_large_log_is_compacted_only_once_less_than_half_of_it_is_live() {
    let power = Power::default();
    let mut inbox = open(&power).unwrap();
    let now = 1000 + KEEP_FINISHED + 1;
    // 40 KB of history (run and sent at 1000, forgotten by `now`)...
    let mut n = 0;
    while inbox.log_len < 40_000 {
        let u = format!("u{n}");
        inbox.accept(&[event(n, &u)], 1000, all).unwrap();
        run(&mut inbox, &u, Outcome::Done, 1000);
        inbox.sent(&u).unwrap();
        n += 1;
    }
    let history = n as u64;
    // ...then events waiting to run, until what a compaction keeps (reckoned here frame by
    // frame: the position and each waiting event) is half of the log or more.
    let position = |n: i64| Entry::Position {
        ch: "/event/Device_Command__e".into(),
        id: n * 7 + 3,
    };
    let mut live = 0;
    for _ in 0..1000 {
        let e = event(n, &format!("u{n}"));
        inbox.accept(std::slice::from_ref(&e), 1000, all).unwrap();
        live += frame_len(&Entry::Accept {
            ch: e.channel.clone(),
            id: e.replay_id,
            u: identity(&e),
            p: e.payload.clone(),
            at: 1000,
        });
        if (live + frame_len(&position(n))) * 2 >= inbox.log_len {
            break;
        }
        n += 1;
    }
    let half_live = inbox.log_len;
    assert!(half_live > 64 * 1024, "{half_live}");
    inbox.maybe_compact(now).unwrap();
    assert_eq!(
        inbox.log_len, half_live,
        "compacted while half of it was live"
    );
    // One more event run and sent tips it: compacted to what is live.
    let u = format!("u{}", n + 1);
    inbox.accept(&[event(n + 1, &u)], 1000, all).unwrap();
    run(&mut inbox, &u, Outcome::Done, 1000);
    inbox.sent(&u).unwrap();
    inbox.maybe_compact(now).unwrap();
    // What is live, and the count of the runs whose ids went.
    let tally = Entry::Tally {
        d: history + 1,
        f: 0,
    };
    assert_eq!(
        inbox.log_len,
        frame_len(&tally) + live + frame_len(&position(n + 1))
    );
}
