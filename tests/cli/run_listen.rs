//! `sfpair run --listen`: the listener as a thread of the run. Health answers its state (the
//! stored position, the inbox's counts, the last command), and SIGTERM ends a held connect at
//! once: the run exits within 2 s and frees the org's streaming client.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Env, fast};
use crate::run::{LIMIT, ask, start, wait_for_socket};

fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn health_answers_the_listener_and_sigterm_ends_a_held_connect_within_two_seconds() {
    let env = Env::start(fast());
    env.sim().set_streaming_hold(Duration::from_secs(100));
    env.pair_approved();
    let inbox = env.scratch.0.join("inbox");
    let ran = env.scratch.0.join("ran");
    let script = format!("cat >> {}", ran.display());
    let (run, socket) = start(
        &env,
        &[
            "--listen",
            "Device_Command__e",
            "--match",
            "Device_Id__c=GW-1",
            "--replay",
            "new",
            "--inbox",
            inbox.to_str().unwrap(),
            "--exec",
            "/bin/sh",
            "-c",
            &script,
        ],
    );
    wait_for_socket(&socket);
    wait_until("the subscription", || {
        env.sim().streaming_stats().subscribes >= 1
    });
    let (replay_id, uuid) = env
        .sim()
        .publish_event(
            "Device_Command__e",
            json!({"Device_Id__c": "GW-1", "Command__c": "reboot"}),
        )
        .unwrap();
    wait_until("the command's run", || {
        std::fs::read_to_string(&ran).is_ok_and(|t| t.contains("reboot"))
    });
    let deadline = Instant::now() + LIMIT;
    let health = loop {
        let health = ask(&socket, r#"{"get":"health"}"#);
        if health["listen"]["inbox"]["done"] == 1 {
            break health;
        }
        assert!(Instant::now() < deadline, "health: {health}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let listen = &health["listen"];
    assert_eq!(listen["state"], "connected", "{health}");
    assert_eq!(
        listen["positions"]["/event/Device_Command__e"], replay_id,
        "{health}"
    );
    assert_eq!(listen["last_command"]["event_uuid"], uuid.as_str());
    assert_eq!(listen["last_command"]["status"], "done");
    assert!(health.get("desired").is_none(), "no --desired: {health}");

    // The run's connect is held now (the hold is 100 s): no new connect comes meanwhile.
    wait_until("a held connect", || {
        let before = env.sim().streaming_stats().connects;
        std::thread::sleep(Duration::from_millis(300));
        before >= 2 && env.sim().streaming_stats().connects == before
    });
    let asked = Instant::now();
    run.terminate();
    let out = run.finish(LIMIT);
    let took = asked.elapsed();
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(took < Duration::from_secs(2), "stopped after {took:?}");
    let stats = env.sim().streaming_stats();
    assert_eq!(
        (stats.disconnects, stats.clients_now),
        (1, 0),
        "the org's client is freed: {stats:?}"
    );
}
