//! The durable outbox with the real binary against the simulator: `send`,
//! `outbox flush|status|retry-dead`, delivery in `run`, and the broker's `send`.
//!
//! What must hold whatever goes wrong: every record `send` accepted (exit 0) reaches the org
//! exactly once with the values sent, or is kept (queued, or a dead letter with its reason).
//! "Exactly once" is checked on the simulator's rows (one per external id, no more rows than
//! records) and on its write ledger (`Sim::writes`): an upsert sent twice leaves one row but
//! two writes, so every row must have exactly one write whose reply the client received. A
//! write whose reply was lost does not count: sending it again is the client's duty.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Env, Output, RUN_LIMIT, Running, fast, wait_for, wait_until};

pub(crate) const OBJECT: &str = "Device_Reading__c";
pub(crate) const KEY: &str = "Reading_Key__c";
/// Records per collections request (docs/outbox.md, "Delivery").
const BATCH: usize = 200;

pub(crate) fn outbox_dir(env: &Env) -> PathBuf {
    env.scratch.0.join("state/outbox")
}

/// `count` readings `{prefix}-{i}` with a value each, as JSON lines.
pub(crate) fn readings(prefix: &str, count: usize) -> (String, BTreeMap<String, f64>) {
    let mut lines = String::new();
    let mut sent = BTreeMap::new();
    for i in 0..count {
        let key = format!("{prefix}-{i}");
        let value = i as f64 + 0.5;
        lines.push_str(&json!({ KEY: key, "Value__c": value, "Sensor__c": "t1" }).to_string());
        lines.push('\n');
        sent.insert(key, value);
    }
    (lines, sent)
}

/// `sfpair send Device_Reading__c --external-id Reading_Key__c --data @file` with `lines`.
pub(crate) fn send(env: &Env, name: &str, lines: &str, extra: &[&str]) -> Output {
    let file = env.scratch.0.join(format!("{name}.jsonl"));
    std::fs::write(&file, lines).unwrap();
    let data = format!("@{}", file.display());
    let mut args = vec!["send", OBJECT, "--external-id", KEY, "--data", &data];
    args.extend_from_slice(extra);
    env.run(&args)
}

/// The simulator's rows of `OBJECT` by external id, failing on a duplicate key.
pub(crate) fn rows(env: &Env) -> BTreeMap<String, f64> {
    let mut by_key = BTreeMap::new();
    for row in env.sim().records(OBJECT) {
        let key = row[KEY]
            .as_str()
            .expect("every row has its key")
            .to_string();
        let value = row["Value__c"].as_f64().unwrap_or(f64::NAN);
        assert!(
            by_key.insert(key.clone(), value).is_none(),
            "{key} stored twice"
        );
    }
    by_key
}

/// What the write ledger holds for one row (or one event): writes whose reply the client
/// received, and writes whose reply was lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Writes {
    acknowledged: u32,
    lost: u32,
}

/// The simulator's writes to the rows of `object` from `writes[since..]`, by the value of the
/// row's `field` (the external id for rows, any field that tells events apart for events).
fn writes_by(env: &Env, object: &str, field: &str, since: usize) -> BTreeMap<String, Writes> {
    let names: BTreeMap<String, String> = env
        .sim()
        .records(object)
        .iter()
        .map(|r| (r["Id"].as_str().unwrap().to_string(), r[field].to_string()))
        .collect();
    let mut by = BTreeMap::<String, Writes>::new();
    for write in env.sim().writes().into_iter().skip(since) {
        if write.object != object {
            continue;
        }
        let name = names
            .get(&write.id)
            .unwrap_or_else(|| panic!("a write to {} that is not a live row", write.id));
        let counts = by.entry(name.trim_matches('"').to_string()).or_default();
        match write.acknowledged {
            true => counts.acknowledged += 1,
            false => counts.lost += 1,
        }
    }
    by
}

/// Every row of `OBJECT` was written exactly once with its reply received (writes whose reply
/// was lost may come before it); returns how many writes were lost, so a test can tell that
/// its faults happened.
#[track_caller]
fn assert_written_once(env: &Env) -> u32 {
    let writes = writes_by(env, OBJECT, KEY, 0);
    let twice: Vec<_> = writes
        .iter()
        .filter(|(_, w)| w.acknowledged != 1)
        .take(5)
        .collect();
    assert!(
        twice.is_empty(),
        "rows not written exactly once (acknowledged writes != 1): {twice:?}"
    );
    assert_eq!(writes.len(), rows(env).len(), "every row has its writes");
    writes.values().map(|w| w.lost).sum()
}

/// Delivered exactly once: the rows hold what was sent ([`assert_delivered`]) and each was
/// written once ([`assert_written_once`]); returns the lost writes.
#[track_caller]
fn assert_delivered_once(env: &Env, sent: &BTreeMap<String, f64>) -> u32 {
    assert_delivered(&rows(env), sent);
    assert_written_once(env)
}

/// `stored == sent`, reporting only what differs (the maps are large).
#[track_caller]
pub(crate) fn assert_delivered(stored: &BTreeMap<String, f64>, sent: &BTreeMap<String, f64>) {
    let missing: Vec<_> = sent
        .keys()
        .filter(|k| !stored.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = stored
        .keys()
        .filter(|k| !sent.contains_key(*k))
        .take(5)
        .collect();
    let wrong: Vec<_> = sent
        .iter()
        .filter(|(k, v)| stored.get(*k).is_some_and(|s| s != *v))
        .map(|(k, _)| k)
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && wrong.is_empty(),
        "{} stored, {} sent; missing {missing:?}, not sent {extra:?}, other values {wrong:?}",
        stored.len(),
        sent.len()
    );
}

fn status(env: &Env) -> Value {
    let out = env.run(&["outbox", "status", "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    serde_json::from_str(out.stdout.trim()).unwrap()
}

#[test]
fn a_thousand_records_arrive_once_through_lost_replies_and_locked_rows() {
    let mut config = fast();
    config.commit_then_drop_every = 3;
    config.lock_row_every = 11;
    let env = Env::start(config);
    env.pair_approved();
    let mut sent = BTreeMap::new();
    for call in 0..10 {
        let (lines, these) = readings(&format!("r{call}"), 100);
        let out = send(&env, &format!("burst{call}"), &lines, &[]);
        assert_eq!(out.code(), 0, "{out:?}");
        assert!(
            out.stdout.contains("100 record(s) queued"),
            "{}",
            out.stdout
        );
        sent.extend(these);
    }
    assert_eq!(status(&env)["queued"], 1000);
    let out = env.run(&["outbox", "flush"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout.contains("1000 record(s) delivered"),
        "{}",
        out.stdout
    );
    let lost = assert_delivered_once(&env, &sent);
    assert!(env.sim().dropped_replies() >= 2, "the faults happened");
    assert!(
        lost >= 200,
        "lost replies were replayed: {lost} lost writes"
    );
    assert!(env.sim().lock_row_refusals() >= 50);
    let s = status(&env);
    assert_eq!(
        (s["queued"].as_u64(), s["dead"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert_eq!(s["delivered"], 1000);
}

#[test]
fn offline_for_a_whole_burst_then_everything_is_delivered() {
    let env = Env::start(fast());
    env.pair_approved();
    env.sim().set_offline(true);
    let mut sent = BTreeMap::new();
    for call in 0..5 {
        let (lines, these) = readings(&format!("off{call}"), 20);
        assert_eq!(send(&env, &format!("off{call}"), &lines, &[]).code(), 0);
        sent.extend(these);
    }
    let out = env.run(&["outbox", "flush"]);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(out.stderr.contains("nothing lost"), "{}", out.stderr);
    assert_eq!(status(&env)["queued"], 100);
    env.sim().set_offline(false);
    let out = env.run(&["outbox", "flush"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_delivered_once(&env, &sent);
}

#[test]
fn a_field_the_org_lacks_goes_to_the_dead_letters_and_comes_back_after_the_fix() {
    let env = Env::start(fast());
    env.pair_approved();
    let (mut lines, mut sent) = readings("d", 9);
    lines.push_str(&json!({ KEY: "d-colour", "Value__c": 1.0, "Colour__c": "red" }).to_string());
    assert_eq!(send(&env, "dead", &lines, &[]).code(), 0);
    let out = env.run(&["outbox", "flush"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout
            .contains("9 record(s) delivered, 1 moved to the dead letters"),
        "{}",
        out.stdout
    );
    assert_delivered_once(&env, &sent);

    let s = status(&env);
    assert_eq!(
        (s["queued"].as_u64(), s["dead"].as_u64()),
        (Some(0), Some(1)),
        "{s}"
    );
    let dead = &s["dead_letters"][0];
    assert_eq!(dead["external_id"], "d-colour");
    assert!(
        dead["error"].as_str().unwrap().contains("INVALID_FIELD"),
        "{dead}"
    );
    let text = env.run(&["outbox", "status"]);
    assert!(
        text.stdout.contains(
            "dead: Device_Reading__c by Reading_Key__c Reading_Key__c=d-colour: INVALID_FIELD"
        ),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("sfpair outbox retry-dead"));

    // The admin adds the field; the dead letter goes out again.
    env.sim()
        .add_field(
            OBJECT,
            json!({ "name": "Colour__c", "type": "string", "length": 20 }),
        )
        .unwrap();
    let out = env.run(&["outbox", "retry-dead"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout.contains("1 dead letter(s) queued again"),
        "{}",
        out.stdout
    );
    let out = env.run(&["outbox", "flush"]);
    assert_eq!(out.code(), 0, "{out:?}");
    sent.insert("d-colour".into(), 1.0);
    assert_delivered_once(&env, &sent);
    assert_eq!(status(&env)["dead"], 0);
}

#[test]
fn a_full_outbox_refuses_with_exit_8_and_keeps_what_it_had() {
    let env = Env::start(fast());
    env.pair_approved();
    let mut accepted = BTreeMap::new();
    let mut refused = None;
    for call in 0..200 {
        let (lines, these) = readings(&format!("full{call}"), 50);
        let out = send(
            &env,
            &format!("full{call}"),
            &lines,
            &["--outbox-max-bytes", "64K"],
        );
        match out.code() {
            0 => accepted.extend(these),
            8 => {
                refused = Some(out);
                break;
            }
            other => panic!("send exited {other}: {out:?}"),
        }
    }
    let out = refused.expect("64 KiB fills up");
    assert!(out.stderr.contains("full"), "{}", out.stderr);
    assert!(!accepted.is_empty());
    assert_eq!(status(&env)["queued"].as_u64(), Some(accepted.len() as u64));
    let out = env.run(&["outbox", "flush"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        rows(&env),
        accepted,
        "what was accepted is delivered, nothing of the refused push"
    );
    assert_written_once(&env);
}

#[test]
fn bad_records_are_refused_before_anything_is_written() {
    let env = Env::start(fast());
    let (good, _) = readings("ok", 3);
    for (data, words) in [
        (
            format!("{good}{{\"Value__c\":1}}\n"),
            "record 4 refused: it has no Reading_Key__c",
        ),
        (format!("{good}[1]\n"), "record 4 refused: it is an array"),
        (
            "{\"Reading_Key__c\":5}".to_string(),
            "record 1 refused: its Reading_Key__c is a number",
        ),
        (
            format!("{good}{{oops\n"),
            "record 4 refused: not valid JSON",
        ),
        (
            format!(
                "{{\"Reading_Key__c\":\"big\",\"Sensor__c\":\"{}\"}}",
                "x".repeat(200 * 1024)
            ),
            "bytes of JSON; the limit per record is",
        ),
    ] {
        let out = send(&env, "bad", &data, &[]);
        assert_eq!(out.code(), 2, "{out:?}");
        assert!(out.stderr.contains(words), "{words}: {}", out.stderr);
    }
    for (args, words) in [
        (vec!["send", OBJECT], "needs --external-id"),
        (
            vec!["send", "Bad/Name", "--external-id", KEY],
            "not a Salesforce API name",
        ),
        (vec!["send", "--event", "Device_Alarm__c"], "ends in __e"),
        (vec!["outbox"], "needs an action"),
        (vec!["outbox", "purge"], "unknown outbox action 'purge'"),
        (
            vec!["outbox", "flush", "--api-reserve", "0"],
            "percentage from 1 to 100",
        ),
    ] {
        let out = env.run(&args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(words), "{words}: {}", out.stderr);
    }
    assert_eq!(
        status(&env)["queued"],
        0,
        "nothing was queued by any of them"
    );
}

/// The reply of the first batch is cut after the org committed it: the batch goes again with
/// the same auto ids, so each record is one row, written twice (once unacknowledged).
#[test]
fn auto_ids_are_unique_to_this_device_and_a_lost_reply_replays_the_same_ids() {
    let env = Env::start(fast());
    env.pair_approved();
    let out = send(
        &env,
        "auto",
        "{\"Value__c\":1}\n{\"Value__c\":2}\n",
        &["--auto-id"],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    env.sim().drop_next_collections_replies(1);
    assert_eq!(env.run(&["outbox", "flush"]).code(), 0);
    assert_eq!(env.sim().dropped_replies(), 1, "the reply was cut");
    let keys: Vec<String> = rows(&env).into_keys().collect();
    assert_eq!(keys.len(), 2, "one row each: {keys:?}");
    assert_ne!(keys[0], keys[1]);
    let writes = writes_by(&env, OBJECT, KEY, 0);
    for key in &keys {
        assert_eq!(
            writes[key],
            Writes {
                acknowledged: 1,
                lost: 1
            },
            "{key}: the committed write whose reply was lost, then the replay of the same id"
        );
    }
    let out = send(&env, "auto2", "{\"Value__c\":3}\n", &["--auto-id"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(env.run(&["outbox", "flush"]).code(), 0);
    assert_eq!(rows(&env).len(), 3, "a later auto id is new too");
    assert_eq!(assert_written_once(&env), 2);
}

#[test]
fn the_api_reserve_and_the_limit_pause_delivery_without_losing_anything() {
    let mut config = fast();
    config.api_limit = Some(1000);
    let env = Env::start(config);
    env.pair_approved();
    let (lines, sent) = readings("lim", 10);
    assert_eq!(send(&env, "lim", &lines, &[]).code(), 0);
    // Near the limit: above the 90 % reserve after the first request.
    env.sim().set_api_usage(950);
    let out = env.run(&["outbox", "flush", "--api-reserve", "90"]);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(out.stderr.contains("--api-reserve 90%"), "{}", out.stderr);
    // At the limit: 403 REQUEST_LIMIT_EXCEEDED, nothing committed.
    let (more, more_sent) = readings("lim2", 5);
    assert_eq!(send(&env, "lim2", &more, &[]).code(), 0);
    env.sim().set_api_usage(1000);
    let out = env.run(&["outbox", "flush"]);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(
        out.stderr.contains("REQUEST_LIMIT_EXCEEDED"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing lost"), "{}", out.stderr);
    assert_eq!(status(&env)["queued"], 5);
    env.sim().set_api_usage(0);
    assert_eq!(env.run(&["outbox", "flush"]).code(), 0);
    let mut all = sent;
    all.extend(more_sent);
    assert_delivered_once(&env, &all);
}

#[test]
fn platform_events_are_published() {
    let env = Env::start(fast());
    env.pair_approved();
    let out = env.run(&[
        "send",
        "--event",
        "Device_Alarm__e",
        "--data",
        r#"[{"Code__c":"E1","Severity__c":3},{"Code__c":"E2","Severity__c":1}]"#,
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(env.run(&["outbox", "flush"]).code(), 0);
    let events = env.sim().records("Device_Alarm__e");
    let codes: Vec<_> = events.iter().map(|e| e["Code__c"].clone()).collect();
    assert_eq!(codes, vec![json!("E1"), json!("E2")]);

    // A lost reply: at least once, so published again; but only once after the client heard.
    let out = env.run(&[
        "send",
        "--event",
        "Device_Alarm__e",
        "--data",
        r#"[{"Code__c":"E3","Severity__c":2}]"#,
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    env.sim().drop_next_collections_replies(1);
    assert_eq!(env.run(&["outbox", "flush"]).code(), 0);
    let publishes = writes_by(&env, "Device_Alarm__e", "Code__c", 0);
    let once = Writes {
        acknowledged: 1,
        lost: 0,
    };
    let again = Writes {
        acknowledged: 1,
        lost: 1,
    };
    assert_eq!(
        publishes,
        BTreeMap::from([
            ("E1".into(), once),
            ("E2".into(), once),
            ("E3".into(), again)
        ])
    );
}

/// Kill -9 at many moments of `send` and of `flush` (batches in flight, settling, compacting),
/// restarting each time: what `send` accepted is delivered once; the outbox always opens.
#[test]
fn kill_9_at_twenty_four_moments_loses_nothing_and_duplicates_nothing() {
    let mut config = fast();
    config.commit_then_drop_every = 4;
    let env = Env::start(config);
    env.pair_approved();
    let mut accepted = BTreeMap::new();
    // Kills that landed while a flush had sent some batches and not yet emptied the queue.
    let mut mid_delivery = 0;
    // Each flush's slice of the write ledger, and whether it was killed.
    let mut flushes = Vec::new();
    for round in 0..24u64 {
        // A send that may be killed too: its records count only if it said so.
        let (lines, these) = readings(&format!("k{round}"), 450);
        let file = env.scratch.0.join(format!("k{round}.jsonl"));
        std::fs::write(&file, &lines).unwrap();
        let data = format!("@{}", file.display());
        let sender = env.spawn(&["send", OBJECT, "--external-id", KEY, "--data", &data]);
        if round % 3 == 0 {
            std::thread::sleep(Duration::from_millis(round * 2));
            sender.signal(libc::SIGKILL);
        }
        let sent = sender.finish(RUN_LIMIT);
        if sent.code() == 0 {
            accepted.extend(these);
        }
        // The moment is set by progress, not by a clock (a loaded machine shifts every
        // clock): after the k-th batch reached the org (k = 1..3), at once or a few
        // milliseconds later, while its reply, its settling or a compaction is under way.
        let before = env.sim().collections_requests();
        let mark = env.sim().writes().len();
        let mut flusher = env.spawn(&["outbox", "flush"]);
        let k = 1 + round % 3;
        let deadline = Instant::now() + RUN_LIMIT;
        while env.sim().collections_requests() < before + k
            && !flusher.exited()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(round % 4));
        let killed = !flusher.exited();
        if killed {
            flusher.signal(libc::SIGKILL);
        }
        let _ = flusher.finish(RUN_LIMIT);
        flushes.push((mark..env.sim().writes().len(), killed));
        let s = status(&env);
        assert!(
            s["queued"].is_u64(),
            "the outbox opens after kill -9 number {round}: {s}"
        );
        if env.sim().collections_requests() > before && s["queued"].as_u64() > Some(0) {
            mid_delivery += 1;
        }
    }
    eprintln!("{mid_delivery} of 24 kills landed mid-delivery");
    assert!(
        mid_delivery >= 8,
        "only {mid_delivery} kills landed mid-delivery"
    );
    let mark = env.sim().writes().len();
    let out = env.run(&["outbox", "flush"]);
    assert_eq!(out.code(), 0, "{out:?}");
    flushes.push((mark..env.sim().writes().len(), false));
    let stored = rows(&env);
    for (key, value) in &accepted {
        assert_eq!(stored.get(key), Some(value), "{key} accepted, so delivered");
    }
    for key in stored.keys() {
        assert!(key.starts_with('k'), "{key}: a row nobody sent");
    }
    assert!(accepted.len() >= 16 * 450, "most sends were not killed");
    assert_eq!(status(&env)["queued"], 0);
    assert_once_per_flush(&env, &flushes);
}

/// Once, across kills: no flush writes a row twice with both replies received, and a row is
/// written again (its reply received each time) by a later flush only when the earlier one was
/// killed between that reply and settling it, which leaves at most one batch behind.
#[track_caller]
fn assert_once_per_flush(env: &Env, flushes: &[(std::ops::Range<usize>, bool)]) {
    let writes = env.sim().writes();
    assert_eq!(flushes.last().map(|f| f.0.end), Some(writes.len()));
    let mut flushes_of = BTreeMap::<&str, Vec<usize>>::new();
    for (n, (range, _)) in flushes.iter().enumerate() {
        let mut seen = std::collections::BTreeSet::new();
        for write in writes[range.clone()].iter().filter(|w| w.acknowledged) {
            assert!(
                seen.insert(write.id.as_str()),
                "flush {n} wrote {} twice and received both replies",
                write.id
            );
            flushes_of.entry(write.id.as_str()).or_default().push(n);
        }
    }
    let mut again = vec![0; flushes.len()];
    for of in flushes_of.values() {
        for &n in &of[..of.len() - 1] {
            assert!(
                flushes[n].1,
                "flush {n} ended by itself, yet a later one sent its rows again"
            );
            again[n] += 1;
        }
    }
    assert!(
        again.iter().all(|&n| n <= BATCH),
        "rows sent again per flush: {again:?}"
    );
    let ids: std::collections::BTreeSet<String> = env
        .sim()
        .records(OBJECT)
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ids.iter().all(|id| flushes_of.contains_key(id.as_str())),
        "every row was written with its reply received"
    );
}

#[test]
fn run_delivers_soon_after_a_send_and_health_shows_the_queue() {
    let env = Env::start(fast());
    env.pair_approved();
    let (agent, socket_arg) = start_run(&env, &["--json"]);
    let (lines, mut sent) = readings("run", 30);
    assert_eq!(send(&env, "run", &lines, &[]).code(), 0);
    wait_for_rows(&env, &sent);

    // Through the broker: no access to the outbox's files needed.
    let out = env.run(&[
        "send",
        OBJECT,
        "--external-id",
        KEY,
        "--socket",
        &socket_arg,
        "--json",
        "--data",
        r#"{"Reading_Key__c":"via-broker","Value__c":7.5}"#,
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let receipt: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(receipt["queued"], 1);
    sent.insert("via-broker".into(), 7.5);
    wait_for_rows(&env, &sent);
    assert_written_once(&env);

    // The rows reach the org before the agent settles them: health is read once it has.
    let health = wait_until(RUN_LIMIT, "health shows 31 delivered", || {
        let out = env.run(&["status", "--socket", &socket_arg, "--json"]);
        assert_eq!(out.code(), 0, "{out:?}");
        let health: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let settled = health["outbox"]["queued"] == 0 && health["outbox"]["delivered"] == 31;
        settled.then_some(health)
    });
    assert_eq!(health["outbox"]["queued"], 0, "{health}");
    assert_eq!(health["outbox"]["dead"], 0, "{health}");
    agent.terminate();
    let out = agent.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
}

/// `sfpair run --socket … extra…`, once its socket is there; the socket's path as an argument.
pub(crate) fn start_run(env: &Env, extra: &[&str]) -> (Running, String) {
    let socket = env.scratch.0.join("agent.sock");
    let socket_arg = socket.display().to_string();
    let mut args = vec!["run", "--socket", &socket_arg];
    args.extend_from_slice(extra);
    let agent = env.spawn(&args);
    wait_for(RUN_LIMIT, "run starts serving", || socket.exists());
    (agent, socket_arg)
}

fn wait_for_rows(env: &Env, sent: &BTreeMap<String, f64>) {
    let what = format!("{} rows delivered", sent.len());
    wait_for(RUN_LIMIT, &what, || rows(env) == *sent);
}

#[test]
fn the_outbox_lives_beside_the_store_with_private_modes() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::start(fast());
    let (lines, _) = readings("m", 2);
    assert_eq!(send(&env, "m", &lines, &[]).code(), 0);
    let dir = outbox_dir(&env);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", entry.path().display());
    }
}

/// `send`'s product is the queued record: a report that cannot be written (a full standard
/// output) does not undo it, so the exit code stays 0 (a caller that saw a failure would send
/// again; for an event, twice).
#[test]
fn a_send_whose_report_cannot_be_written_still_exits_0() {
    let env = Env::start(fast());
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut command = env.command(&[
        "send",
        OBJECT,
        "--external-id",
        KEY,
        "--data",
        r#"{"Reading_Key__c":"quiet"}"#,
    ]);
    command.stdout(null);
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + RUN_LIMIT;
    let status_code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "send did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status_code, Some(0), "{stderr}");
    assert!(
        stderr.contains("the report could not be written"),
        "{stderr}"
    );
    assert_eq!(status(&env)["queued"], 1);
}

/// A session the org expired (401 INVALID_SESSION_ID) is refreshed once and the batch sent
/// again, as `sfpair call` does: one refresh for the whole flush, nothing dead-lettered.
#[test]
fn an_expired_session_is_refreshed_once_and_the_batch_sent_again() {
    let env = Env::start(fast());
    env.pair_approved();
    let (lines, sent) = readings("exp", 250);
    assert_eq!(send(&env, "exp", &lines, &[]).code(), 0);
    // A new process refreshes once to get its first session; the org then refuses it once.
    env.sim().push_faults(&[sfpair_sim::Fault::InvalidSession]);
    let before = env.requests().len();
    let out = env.run(&["outbox", "flush"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let after: Vec<String> = env.requests().into_iter().skip(before).collect();
    let refreshes = after
        .iter()
        .filter(|l| l.contains(" refresh_token "))
        .count();
    let batches = after
        .iter()
        .filter(|l| l.contains("composite/sobjects"))
        .count();
    assert_eq!(
        refreshes, 2,
        "the first session, then one renewal: {after:?}"
    );
    assert_eq!(batches, 3, "one refused, then the two batches: {after:?}");
    assert_eq!(assert_delivered_once(&env, &sent), 0, "no write was lost");
    assert_eq!(status(&env)["dead"], 0);
}

/// Delivery that finds the pairing dead (the refresh token revoked) tells `run`'s supervisor,
/// as a broker request would: health says so at once, and the records stay queued.
#[test]
fn run_learns_from_delivery_that_the_pairing_died() {
    let env = Env::start(fast());
    env.pair_approved();
    let (agent, socket_arg) = start_run(&env, &["--repair", "never"]);
    env.sim().revoke_user();
    env.sim().expire_sessions();
    let (lines, _) = readings("dead-pairing", 3);
    assert_eq!(send(&env, "dp", &lines, &[]).code(), 0);
    let health = wait_until(RUN_LIMIT, "health says repair_needed", || {
        let out = env.run(&["status", "--socket", &socket_arg, "--json"]);
        let health: Value = serde_json::from_str(out.stdout.trim()).unwrap_or(Value::Null);
        (health["state"] == "repair_needed").then_some(health)
    });
    assert_eq!(health["outbox"]["queued"], 3, "{health}");
    agent.terminate();
    let out = agent.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
}
