//! The device follows its record: `sfpair desired` once, and `sfpair run --desired` through ten
//! changes (two while the network is away, one while the run is stopped), reads that change
//! nothing, and kill -9 around the write and the program. The file is always the old content
//! or the new, whole; the program runs once per content the file held; REST reads stay bounded.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Env, RUN_LIMIT, Running, fast};
use crate::run::wait_for_socket;

const RECORD: &str = "Device__c/Device_Id__c/GW-1";

fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sets the record's brightness, as an admin would.
fn set(env: &Env, brightness: i64) -> String {
    env.sim()
        .upsert_record(
            "Device__c",
            "Device_Id__c",
            "GW-1",
            json!({"Name": "GW-1", "Desired_Brightness__c": brightness}),
        )
        .unwrap()
}

/// What the file holds: its brightness, or `None` when it does not exist. Any other content
/// (half a file, not JSON) fails the test.
fn held(file: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(file).ok()?;
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the file is not whole JSON ({e}): {text:?}"));
    Some(v["Desired_Brightness__c"].as_i64().expect("a brightness"))
}

/// A program that logs `begin new=B`, then after `pause` seconds `new=B prev=B` (the previous
/// content's brightness, or `none`).
fn program(dir: &Path, pause: &str) -> (PathBuf, PathBuf) {
    let log = dir.join("applied");
    let script = dir.join("apply.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nnew=$(grep -o '\"Desired_Brightness__c\":[0-9]*' | cut -d: -f2)\n\
             prev=$(grep -o '\"Desired_Brightness__c\":[0-9]*' \"$SFPAIR_PREVIOUS\" | cut -d: -f2)\n\
             echo \"begin new=$new\" >> {log}\nsleep {pause}\necho \"new=$new prev=${{prev:-none}}\" >> {log}\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

/// The program's finished runs.
fn applied(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("begin "))
        .map(str::to_string)
        .collect()
}

/// How many runs of the program began for `brightness`.
fn begun(log: &Path, brightness: i64) -> usize {
    let line = format!("begin new={brightness}");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == line)
        .count()
}

/// Health once `ready` holds (bounded).
fn health_where(socket: &Path, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = crate::run::ask(socket, r#"{"get":"health"}"#);
        if ready(&health) {
            return health;
        }
        assert!(Instant::now() < deadline, "health never came: {health}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GETs of the record in the simulator's log.
fn reads(env: &Env) -> usize {
    env.sim()
        .log()
        .iter()
        .filter(|e| e.method == "GET" && e.path.ends_with("/sobjects/Device__c/Device_Id__c/GW-1"))
        .count()
}

#[test]
fn desired_once_writes_the_record_runs_the_program_once_per_change_and_a_missing_record_is_exit_9()
{
    let env = Env::start(fast());
    env.pair_approved();
    let file = env.scratch.0.join("desired.json");
    let (script, log) = program(&env.scratch.0, "0");
    let once = || {
        env.run(&[
            "desired",
            "--desired",
            RECORD,
            "--desired-file",
            file.to_str().unwrap(),
            "--desired-exec",
            script.to_str().unwrap(),
        ])
    };
    let out = once();
    assert_eq!(out.code(), 9, "{out:?}");
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    assert!(!file.exists(), "nothing written");

    set(&env, 10);
    let out = once();
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(held(&file), Some(10));
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    let out = once();
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("up to date"), "{}", out.stdout);
    set(&env, 20);
    assert_eq!(once().code(), 0);
    assert_eq!(applied(&log), ["new=10 prev=none", "new=20 prev=10"]);
}

struct Follow<'a> {
    env: &'a Env,
    file: PathBuf,
    script: PathBuf,
}

impl Follow<'_> {
    fn start(&self) -> Running {
        let socket = self.env.scratch.0.join("run.sock");
        let running = self.env.spawn(&[
            "run",
            "--socket",
            socket.to_str().unwrap(),
            "--desired",
            RECORD,
            "--desired-file",
            self.file.to_str().unwrap(),
            "--desired-exec",
            self.script.to_str().unwrap(),
        ]);
        wait_for_socket(&socket);
        running
    }

    /// Waits until the file holds `brightness` and its program has finished: the marker of an
    /// apply under way is gone. A stop before that would, as promised,
    /// run the program again at the next start.
    fn holds(&self, brightness: i64) {
        let marker = sfpair::desired::apply::marker(&self.file);
        wait_until(&format!("the file to hold {brightness}, applied"), || {
            held(&self.file) == Some(brightness) && !marker.exists()
        });
    }
}

#[test]
fn run_follows_ten_changes_through_a_network_outage_and_a_stop_and_runs_the_program_once_each() {
    let env = Env::start(fast());
    env.sim().set_streaming_hold(Duration::from_secs(2));
    env.pair_approved();
    let (script, log) = program(&env.scratch.0, "0");
    let follow = Follow {
        env: &env,
        file: env.scratch.0.join("desired.json"),
        script,
    };
    set(&env, 1);
    let mut run = follow.start();
    follow.holds(1);
    for b in 2..=5 {
        set(&env, b);
        follow.holds(b);
    }
    // Reads that change nothing: the server forgets the client, which resubscribes and reads.
    let (subscribes, before) = (env.sim().streaming_stats().subscribes, reads(&env));
    env.sim().forget_streaming_clients();
    wait_until("the resubscription and its read", || {
        env.sim().streaming_stats().subscribes > subscribes && reads(&env) > before
    });

    // Two changes while the network is away.
    env.sim().set_offline(true);
    std::thread::sleep(Duration::from_millis(500));
    set(&env, 6);
    set(&env, 7);
    std::thread::sleep(Duration::from_millis(500));
    env.sim().set_offline(false);
    follow.holds(7);

    // One while the run is stopped.
    run.terminate();
    assert_eq!(run.finish(RUN_LIMIT).code(), 0);
    set(&env, 8);
    run = follow.start();
    follow.holds(8);
    for b in 9..=10 {
        set(&env, b);
        follow.holds(b);
    }
    // Let a late read (a doorbell after the last change) finish before counting.
    std::thread::sleep(Duration::from_millis(500));
    run.terminate();
    assert_eq!(run.finish(RUN_LIMIT).code(), 0);

    let expected: Vec<String> = [1, 2, 3, 4, 5, 7, 8, 9, 10]
        .windows(2)
        .map(|w| format!("new={} prev={}", w[1], w[0]))
        .collect();
    let mut want = vec!["new=1 prev=none".to_string()];
    want.extend(expected);
    assert_eq!(applied(&log), want, "once per content the file held");

    // One read per change event, per (re)subscription, plus one at each start.
    let stats = env.sim().streaming_stats();
    let changes = env
        .sim()
        .published_events()
        .iter()
        .filter(|e| e.channel == "/data/Device__ChangeEvent")
        .count();
    let reads = reads(&env);
    eprintln!(
        "{reads} reads for {changes} change events, {} subscriptions",
        stats.subscribes
    );
    assert!(
        reads <= changes + stats.subscribes as usize + 2,
        "{reads} reads for {changes} changes and {} subscriptions",
        stats.subscribes
    );
}

#[test]
fn a_kill_during_the_write_or_the_program_leaves_the_old_or_the_new_content_and_runs_it_again() {
    let env = Env::start(fast());
    env.sim().set_streaming_hold(Duration::from_secs(2));
    env.pair_approved();
    let (script, log) = program(&env.scratch.0, "0.3");
    let follow = Follow {
        env: &env,
        file: env.scratch.0.join("desired.json"),
        script,
    };
    set(&env, 100);
    let mut run = follow.start();
    follow.holds(100);
    wait_until("the first program", || applied(&log).len() == 1);
    let mut expected_last = 100;
    for n in 0..12u64 {
        let b = 101 + n as i64;
        set(&env, b);
        // From the change to well past the program's end, in steps.
        std::thread::sleep(Duration::from_millis(n * 40));
        run.signal(libc::SIGKILL);
        let _ = run.finish(RUN_LIMIT);
        let now = held(&follow.file);
        assert!(
            now == Some(expected_last) || now == Some(b),
            "after a kill {n}: {now:?}, neither {expected_last} nor {b}"
        );
        run = follow.start();
        follow.holds(b);
        // The program finishes for this content (again, if the kill cut it).
        wait_until("the program for the new content", || {
            applied(&log)
                .last()
                .is_some_and(|l| l.starts_with(&format!("new={b} ")))
        });
        expected_last = b;
    }
    run.terminate();
    assert_eq!(run.finish(RUN_LIMIT).code(), 0);
    // Each content's program finished: a run the kill cut (it dies with sfpair) began again
    // after the restart.
    let lines = applied(&log);
    let mut again = 0;
    for b in 101..=112 {
        let n = lines
            .iter()
            .filter(|l| l.starts_with(&format!("new={b} ")))
            .count();
        // Twice only when the kill came after the program's work and before sfpair saw it
        // exit: it began twice then.
        let began = begun(&log, b);
        assert!(
            n == 1 || (n == 2 && began == 2),
            "{b}: {n} finished, {began} began: {lines:?}"
        );
        again += usize::from(began == 2);
    }
    assert!(again > 0, "no kill cut a program: the sweep missed it");
}

#[test]
fn a_record_that_does_not_exist_yet_is_a_health_error_until_it_is_created() {
    let env = Env::start(fast());
    env.sim().set_streaming_hold(Duration::from_secs(2));
    env.pair_approved();
    let (script, log) = program(&env.scratch.0, "0");
    let follow = Follow {
        env: &env,
        file: env.scratch.0.join("desired.json"),
        script,
    };
    let run = follow.start();
    let socket = env.scratch.0.join("run.sock");
    let health = health_where(&socket, |h| !h["desired"]["last_error"].is_null());
    let error = health["desired"]["last_error"].as_str().unwrap();
    assert!(error.contains("does not exist"), "{health}");
    assert_eq!(health["desired"]["record"], RECORD);
    assert!(!follow.file.exists());
    // Created: its change event rings (the record's id was not known yet), and it is read.
    set(&env, 42);
    follow.holds(42);
    // Health follows once the program has run too.
    let health = health_where(&socket, |h| h["desired"]["last_error"].is_null());
    assert_eq!(health["desired"]["program"], "done", "{health}");
    assert!(health["desired"]["last_modified"].is_string(), "{health}");
    run.terminate();
    assert_eq!(run.finish(RUN_LIMIT).code(), 0);
    assert_eq!(applied(&log), ["new=42 prev=none"]);
}
