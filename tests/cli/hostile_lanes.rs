//! Token requests have their own lane in the broker: a flood of `send` requests that cannot
//! finish (the outbox's lock held by someone else) must not delay a token. The real `sfpair
//! run`, a real socket, and the outbox's real lock file held by this test. (How long a token
//! waits beside a flood of sends is measured by scripts/bench-broker, not here.)

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Env, RUN_LIMIT, fast};

fn ask(socket: &Path, line: &str, wait: Duration) -> Result<Value, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(b"\n").map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("no answer within {wait:?}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{text:?}: {e}"))
}

/// With the outbox's lock held, each `send` waits in its worker. Six of them used to hold all
/// four workers, and a token request waited behind them for as long as the lock was held;
/// now it is answered at once, and the sends complete once the lock is free.
#[test]
fn a_token_is_answered_while_sends_wait_for_the_outbox() {
    let env = Env::start(fast());
    env.pair_approved();
    let socket = env.scratch.0.join("run.sock");
    let mut running = env.spawn(&["run", "--socket", socket.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&socket).is_err() {
        assert!(!running.exited() && Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        ask(&socket, r#"{"get":"access_token"}"#, RUN_LIMIT).unwrap()["access_token"].is_string()
    );

    // Hold the outbox's queue lock, as another process in the middle of a long push would.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(env.scratch.0.join("state/outbox/lock"))
        .unwrap();
    // SAFETY: flock on a descriptor we own, for the life of `lock`.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let senders: Vec<_> = (0..6)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let line = format!(
                    r#"{{"do":"send","sobject":"Device_Reading__c","external_id":"Reading_Key__c","records":[{{"Reading_Key__c":"lane-{i}","Value__c":1}}]}}"#
                );
                ask(&socket, &line, RUN_LIMIT)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let token = ask(
        &socket,
        r#"{"get":"access_token"}"#,
        Duration::from_secs(10),
    );
    let health = ask(&socket, r#"{"get":"health"}"#, Duration::from_secs(10));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_UN) }, 0);
    let token = token.expect("a token while sends wait");
    assert!(token["access_token"].is_string(), "{token}");
    assert_eq!(health.expect("health while sends wait")["state"], "paired");
    for sender in senders {
        let answer = sender.join().unwrap().unwrap();
        assert_eq!(answer["queued"], 1, "{answer}");
    }
    running.terminate();
    assert_eq!(running.finish(RUN_LIMIT).code(), 0);
}
