//! Delivery against a hostile server: one that trickles its reply a byte at a time for ever
//! (every read answered, so a per-read timeout never fires), and one whose reply never ends.
//! `flush` must end within its documented bound and `run` must stop on SIGTERM while its
//! delivery waits; nothing queued is lost. The real binary against the simulator's REST
//! faults (`Fault::RestTrickle`, `Fault::RestEndless`).

use std::time::{Duration, Instant};

use serde_json::Value;
use sfpair_sim::Fault;

use crate::harness::{Env, Output, RUN_LIMIT, fast};

const RECORD: &str = r#"{"Reading_Key__c":"h-1","Value__c":1.5}"#;

fn send_one(env: &Env) {
    let out = env.run(&[
        "send",
        "Device_Reading__c",
        "--external-id",
        "Reading_Key__c",
        "--data",
        RECORD,
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
}

fn queued(env: &Env) -> u64 {
    let out = env.run(&["outbox", "status", "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    v["queued"].as_u64().unwrap()
}

/// `outbox flush` with `extra`, and how long it took.
fn flush(env: &Env, extra: &[&str]) -> (Output, Duration) {
    let mut args = vec!["outbox", "flush"];
    args.extend_from_slice(extra);
    let start = Instant::now();
    let out = env.run(&args);
    (out, start.elapsed())
}

/// A reply trickled a byte every 200 ms kept a request open for as long as the server liked
/// (75 s against a documented 30 s in the sweep; here the simulator would go on for 10
/// minutes). Each request now ends at `--timeout`, so `flush` ends within its bound:
/// `FLUSH_GIVE_UP` (5) requests of `--timeout` each, plus about 8 s of backoff.
#[test]
fn a_trickling_reply_ends_at_the_deadline_and_flush_within_its_bound() {
    let env = Env::start(fast());
    env.pair_approved();
    send_one(&env);
    env.sim()
        .push_faults(&vec![Fault::RestTrickle(Duration::from_millis(200)); 5]);
    let (out, took) = flush(&env, &["--timeout", "2"]);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(out.stderr.contains("deadline"), "{}", out.stderr);
    // 5 × 2 s + the backoff (1, 2, 4 s with jitter, at most about 8 s) + the refresh, with
    // room for a loaded machine; each request alone would have run for 10 minutes.
    assert!(took < Duration::from_secs(40), "flush took {took:?}");
    assert_eq!(queued(&env), 1, "nothing lost");
    let (out, _) = flush(&env, &[]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(env.sim().records("Device_Reading__c").len(), 1);
}

/// A reply that never ends was read and discarded past its limit for as long as the server
/// sent (a terabyte here). Reading now stops at the limit (1 MiB), at once, and the batch is
/// sent again later; `flush` gives up after its five attempts, quickly.
#[test]
fn an_endless_reply_stops_at_its_limit_at_once() {
    let env = Env::start(fast());
    env.pair_approved();
    send_one(&env);
    env.sim().push_faults(&vec![Fault::RestEndless; 5]);
    let (out, took) = flush(&env, &[]);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(
        out.stderr.contains("passed 1048576 bytes"),
        "{}",
        out.stderr
    );
    // Five attempts at loopback speed and the backoff; the old reading went on for minutes.
    assert!(took < Duration::from_secs(30), "flush took {took:?}");
    assert_eq!(queued(&env), 1, "nothing lost");
}

/// `run` whose delivery thread waited on a trickling reply stayed alive 45 s after SIGTERM in
/// the sweep (here it would wait for the simulator's 10 minutes, or `--timeout`, 60 s), and
/// health said nothing was queued. Now health shows the record while it waits, and SIGTERM
/// ends `run` within `STOP_WAIT` (5 s); the record is kept and delivered at the next start.
#[test]
fn run_stops_on_sigterm_while_delivery_waits_on_a_trickle() {
    let env = Env::start(fast());
    env.pair_approved();
    env.sim()
        .push_faults(&vec![Fault::RestTrickle(Duration::from_millis(200)); 3]);
    let socket = env.scratch.0.join("run.sock");
    let socket_arg = socket.display().to_string();
    let mut running = env.spawn(&["run", "--socket", &socket_arg, "--timeout", "60"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(!running.exited() && Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    send_one(&env);
    // The delivery request reaches the simulator, which starts trickling.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env
        .requests()
        .iter()
        .any(|l| l.contains("/composite/sobjects"))
    {
        assert!(Instant::now() < deadline, "{:?}", env.requests());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let health = env.run(&["status", "--socket", &socket_arg, "--json"]);
    assert_eq!(health.code(), 0, "{health:?}");
    let health: Value = serde_json::from_str(health.stdout.trim()).unwrap();
    assert_eq!(health["outbox"]["queued"], 1, "{health}");
    let start = Instant::now();
    running.terminate();
    let out = running.finish(RUN_LIMIT);
    let took = start.elapsed();
    assert_eq!(out.code(), 0, "{out:?}");
    // STOP_WAIT (5 s) and the rest of the shutdown, with room for a loaded machine; the
    // request alone would have held it for --timeout, 60 s.
    assert!(took < Duration::from_secs(15), "run took {took:?} to stop");
    assert!(!socket.exists(), "the socket was removed");
    assert_eq!(queued(&env), 1, "nothing lost");
    assert!(env.sim().records("Device_Reading__c").is_empty());
}
