//! Once means once, under fire: commands published while the simulator forgets the client
//! every 5th connect and cuts every 4th reply that carries events, and `sfpair run --listen`
//! is killed -9 again and again (during a run of the hook, right after the hook's exit, during a
//! reconnect). Every command for this device finishes once with `SFPAIR_ATTEMPT=1`, except
//! a run the kill cut, which finishes once more with the next attempt; none for another
//! device runs; the org holds one `done` result row per command.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Env, RUN_LIMIT, Running, fast};

/// Commands for this device, and for another one, per batch; a batch is published before
/// each start of the daemon.
const MINE_PER_BATCH: usize = 12;
const OTHERS_PER_BATCH: usize = 4;
/// The daemon is killed this many times; one more start finishes the work.
const KILLS: usize = 24;
const RESULTS: &str = "Device_Command_Result__c";

/// Where a kill lands.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// A run of the hook has started and not ended.
    DuringTheHook,
    /// The hook has written its last line: it is exiting, or has exited and its outcome is
    /// being recorded.
    AfterTheHook,
    /// The simulator has just forgotten the client: the daemon is shaking hands again.
    DuringAReconnect,
}

const MOMENTS: [Moment; 3] = [
    Moment::DuringTheHook,
    Moment::AfterTheHook,
    Moment::DuringAReconnect,
];

/// One line of the hook's log: `start UUID ATTEMPT PID` or `end UUID ATTEMPT`.
#[derive(Debug)]
struct Line {
    start: bool,
    uuid: String,
    attempt: u32,
    pid: i32,
}

fn read_log(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        // A line being appended right now may be partial; the next read has it whole.
        .filter(|l| l.ends_with('.'))
        .map(|l| {
            let f: Vec<&str> = l.trim_end_matches('.').split(' ').collect();
            Line {
                start: f[0] == "start",
                uuid: f[1].to_string(),
                attempt: f[2].parse().unwrap(),
                pid: f.get(3).map_or(0, |p| p.parse().unwrap()),
            }
        })
        .collect()
}

/// Whether `pid` is gone (or a zombie nobody has reaped yet).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn wait_until(what: &str, limit: Duration, ready: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !ready() {
        if Instant::now() >= deadline {
            eprintln!("not within {limit:?}: {what}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

fn daemon(env: &Env, log: &Path) -> Running {
    let inbox = env.scratch.0.join("inbox");
    let outbox = env.scratch.0.join("outbox");
    let script = format!(
        "echo \"start $SFPAIR_EVENT_UUID $SFPAIR_ATTEMPT $$.\" >> {log}; sleep 0.02; \
         echo \"end $SFPAIR_EVENT_UUID $SFPAIR_ATTEMPT.\" >> {log}; echo ok",
        log = log.display()
    );
    let socket = env.scratch.0.join("run.sock");
    let mut command = env.command(&[
        "run",
        "--socket",
        socket.to_str().unwrap(),
        "--listen",
        "/event/Device_Command__e",
        "--match",
        "Device_Id__c=GW-1",
        "--inbox",
        inbox.to_str().unwrap(),
        "--outbox",
        outbox.to_str().unwrap(),
        "--results",
        RESULTS,
        "--exec",
        "/bin/sh",
        "-c",
        &script,
    ]);
    command.env("RUST_LOG", "warn");
    Running::spawn(command)
}

#[test]
fn every_command_runs_once_through_forgotten_clients_cut_replies_and_two_dozen_kills() {
    let env = Env::start(fast());
    let sim = env.sim();
    sim.set_streaming_hold(Duration::from_millis(300));
    env.pair_approved();
    sim.set_forget_client_every(5);
    sim.set_cut_event_reply_every(4);
    let log = env.scratch.0.join("ran");

    let mut mine = Vec::new();
    let mut others = Vec::new();
    let mut n = 0;
    let mut publish = |mine: &mut Vec<String>, others: &mut Vec<String>| {
        for i in 0..MINE_PER_BATCH + OTHERS_PER_BATCH {
            let device = if i % 4 == 3 { "GW-2" } else { "GW-1" };
            let (_, uuid) = sim
                .publish_event(
                    "Device_Command__e",
                    json!({"Device_Id__c": device, "Command__c": format!("cmd-{n}")}),
                )
                .unwrap();
            n += 1;
            if device == "GW-1" {
                &mut *mine
            } else {
                &mut *others
            }
            .push(uuid);
        }
    };

    let mut landed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut cut = Vec::new();
    for kill in 0..KILLS {
        let subscribes = sim.streaming_stats().subscribes;
        let run = daemon(&env, &log);
        if kill == 0 {
            // Nothing is stored yet: the first start subscribes for new events, so the first
            // batch waits for it.
            assert!(wait_until("the first subscription", RUN_LIMIT, || {
                sim.streaming_stats().subscribes > subscribes
            }));
        }
        publish(&mut mine, &mut others);
        let moment = MOMENTS[kill % MOMENTS.len()];
        let before = read_log(&log).len();
        let forgotten = sim.streaming_stats().forgotten;
        let hit = match moment {
            Moment::DuringTheHook => wait_until("a run of the hook", RUN_LIMIT, || {
                read_log(&log).last().is_some_and(|l| l.start)
            }),
            Moment::AfterTheHook => wait_until("the end of a run", RUN_LIMIT, || {
                let lines = read_log(&log);
                lines.len() > before && lines.last().is_some_and(|l| !l.start)
            }),
            Moment::DuringAReconnect => wait_until("a forgotten client", RUN_LIMIT, || {
                sim.streaming_stats().forgotten > forgotten
            }),
        };
        run.signal(libc::SIGKILL);
        let out = run.finish(RUN_LIMIT);
        assert_eq!(out.status.code(), None, "killed: {out:?}");
        if hit {
            *landed.entry(format!("{moment:?}").leak()).or_default() += 1;
        }
        // The hook dies with the daemon: a second attempt never runs beside the first. (The
        // kernel signals it while the daemon exits, before the daemon can be reaped: a run
        // open now never writes its end.)
        let lines = read_log(&log);
        if let Some(open) = lines.last().filter(|l| l.start) {
            let run = (open.uuid.clone(), open.attempt);
            // Still the last line when this start was killed before it ran anything.
            if !cut.contains(&run) {
                cut.push(run);
            }
            assert!(
                wait_until(
                    "the hook to die with the daemon",
                    Duration::from_secs(2),
                    || { gone(open.pid) }
                ),
                "the hook {} outlived the daemon killed -9",
                open.pid
            );
        }
    }
    publish(&mut mine, &mut others);
    assert_eq!((mine.len(), others.len()), (300, 100));

    let run = daemon(&env, &log);
    let finished = wait_until("300 results in the org", Duration::from_secs(120), || {
        sim.records(RESULTS).len() >= mine.len()
    });
    run.terminate();
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(finished, "results: {}", sim.records(RESULTS).len());

    // The hook's log: per command, attempts 1..=k started in order, the last one ended.
    let mut runs: BTreeMap<String, Vec<(u32, bool)>> = BTreeMap::new();
    for line in read_log(&log) {
        runs.entry(line.uuid)
            .or_default()
            .push((line.attempt, line.start));
    }
    for (uuid, attempt) in &cut {
        assert!(
            !runs[uuid].contains(&(*attempt, false)),
            "{uuid}: attempt {attempt} went on after the daemon was killed: {:?}",
            runs[uuid]
        );
    }
    // Attempts go up by one per run; the last one ended. An attempt may leave no line: the
    // kill can land after the run was recorded as started and before the shell wrote.
    let mut again = 0;
    for uuid in &mine {
        let lines = runs.get(uuid).unwrap_or_else(|| panic!("{uuid} never ran"));
        let starts: Vec<u32> = lines.iter().filter(|l| l.1).map(|l| l.0).collect();
        let ends: Vec<u32> = lines.iter().filter(|l| !l.1).map(|l| l.0).collect();
        let last = *starts.last().unwrap();
        assert!(starts.windows(2).all(|w| w[0] < w[1]), "{uuid}: {lines:?}");
        assert_eq!(ends.last(), Some(&last), "{uuid} finished: {lines:?}");
        if last == 1 {
            assert_eq!(ends, [1], "{uuid} finished once: {lines:?}");
        }
        again += (last - 1) as usize;
    }
    // Each kill can cut one run (the worker runs one at a time): at most that many again.
    assert!(
        again <= KILLS,
        "{again} runs again for {KILLS} kills: a kill cuts at most one run"
    );
    for uuid in &others {
        assert!(!runs.contains_key(uuid), "{uuid} is another device's");
    }
    assert_eq!(runs.len(), mine.len(), "nothing else ran");

    let results = sim.records(RESULTS);
    assert_eq!(results.len(), mine.len());
    for row in &results {
        assert_eq!(row["Status__c"], "done", "{row:?}");
        assert!(mine.iter().any(|u| row["Event_Uuid__c"] == u.as_str()));
    }
    let stats = sim.streaming_stats();
    assert!(stats.forgotten > 0 && stats.cut_replies > 0, "{stats:?}");
    let kills: usize = landed.values().sum();
    eprintln!(
        "kills landed: {landed:?}; runs cut: {}; runs again: {again}; forgotten: {}; cut replies: {}",
        cut.len(),
        stats.forgotten,
        stats.cut_replies
    );
    assert!(kills >= 20, "only {kills} kills landed at their moment");
}
