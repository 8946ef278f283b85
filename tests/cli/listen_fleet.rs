//! A fleet larger than the org's streaming client limit: 24 devices (processes) share a
//! simulator that allows 4 concurrent clients, each connected 2 s out of every 20 s
//! (`--listen-duty 2s/20s`). Every command reaches its device within one period, twice over;
//! the second time the org lets no client in for the first 4 s (its other integrations hold
//! the slots), so the devices whose turn fell there are refused and must take it late, not a
//! period late. The handshakes stay bounded: no device loops on the limit.

use std::path::PathBuf;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Env, RUN_LIMIT, Running, fast};

const DEVICES: usize = 24;
const LIMIT: usize = 4;
const DUTY: &str = "2s/20s";
const EVERY: Duration = Duration::from_secs(20);
/// How long the org is full in the second round.
const FULL: Duration = Duration::from_secs(4);
/// A command published at any moment waits at most a period for its device's turn; on top
/// of that: the hold of the connect under way when it was published, a handshake and a
/// subscribe, and a loaded test machine.
const SLACK: Duration = Duration::from_secs(3);

#[test]
fn two_dozen_devices_share_four_streaming_clients_and_each_hears_within_a_period() {
    let env = Env::start(fast());
    let sim = env.sim();
    sim.set_streaming_hold(Duration::from_millis(300));
    env.pair_approved();
    sim.set_streaming_client_limit(LIMIT);

    let mut devices: Vec<Running> = (0..DEVICES)
        .map(|n| {
            // A store of its own: each device is a board with its own files.
            let dir: PathBuf = env.scratch.0.join(format!("device-{n}"));
            std::fs::create_dir_all(&dir).unwrap();
            let store = dir.join("token");
            std::fs::copy(env.token_path(), &store).unwrap();
            let inbox = dir.join("inbox");
            let mut command = env.command(&[
                "listen",
                "Device_Command__e",
                "--match",
                &format!("Device_Id__c=GW-{n}"),
                "--inbox",
                inbox.to_str().unwrap(),
                "--listen-duty",
                DUTY,
            ]);
            command
                .env("SFPAIR_STORE", format!("file:{}", store.display()))
                .env("RUST_LOG", "warn");
            Running::spawn(command)
        })
        .collect();

    let started = sim.streaming_stats();
    let mut worst = Duration::ZERO;
    for round in 0..2 {
        if round == 1 {
            sim.set_streaming_client_limit(0);
        }
        let published = Instant::now();
        let mut uuids = Vec::new();
        for n in 0..DEVICES {
            let (_, uuid) = sim
                .publish_event(
                    "Device_Command__e",
                    json!({"Device_Id__c": format!("GW-{n}"), "Command__c": format!("round-{round}")}),
                )
                .unwrap();
            uuids.push(uuid);
        }
        // Each device's line, read on its own thread, with when it came.
        let (tx, rx) = channel();
        std::thread::scope(|scope| {
            if round == 1 {
                scope.spawn(|| {
                    std::thread::sleep(FULL);
                    sim.set_streaming_client_limit(LIMIT);
                });
            }
            for (n, device) in devices.iter_mut().enumerate() {
                let tx = tx.clone();
                scope.spawn(move || {
                    let line: Value = serde_json::from_str(&device.line(EVERY + SLACK)).unwrap();
                    tx.send((n, line, published.elapsed())).unwrap();
                });
            }
        });
        drop(tx);
        let heard: Vec<_> = rx.iter().collect();
        assert_eq!(heard.len(), DEVICES);
        for (n, line, after) in heard {
            assert_eq!(line["event_uuid"], uuids[n].as_str(), "device {n}: {line}");
            assert!(after <= EVERY + SLACK, "device {n} heard after {after:?}");
            worst = worst.max(after);
        }
    }
    let stats = sim.streaming_stats();
    for device in devices {
        device.terminate();
        assert_eq!(device.finish(RUN_LIMIT).code(), 0);
    }
    let handshakes = stats.handshakes - started.handshakes;
    let refused = stats.limit_refusals - started.limit_refusals;
    eprintln!(
        "{DEVICES} devices, limit {LIMIT}: slowest command {worst:?}; handshakes {handshakes}, \
         refused for the limit {refused}, most clients at once {}",
        stats.clients_max
    );
    assert!(stats.clients_max <= LIMIT);
    assert!(
        refused > 0,
        "the full org refused nobody: the late turns were not tried"
    );
    // About three periods ran: a turn per device per period is 72 handshakes; a refused
    // device tries again every 1-2 s while its turn is owed. One that looped on the limit
    // would make hundreds within a second.
    assert!(
        handshakes + refused <= (DEVICES * 3 * 4) as u64,
        "a handshake storm: {handshakes} handshakes, {refused} refused"
    );
}
