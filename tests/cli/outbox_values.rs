//! What `send` carries (each value exactly as sent) and how it reads (streamed), with the real
//! binary against the simulator: values arrive byte for byte as sent (numbers that an f64
//! would round included), through the outbox and through the broker; a key given twice is
//! refused naming the record and the key, with nothing queued; piped data larger than what
//! `send` keeps in memory is still taken whole or not at all.
//!
//! The simulator stores numbers as f64, so values are checked in the request bodies it kept
//! (`Sim::collection_bodies`), i.e. in what arrived.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Env, Output, RUN_LIMIT, Running, fast};

const OBJECT: &str = "Device_Reading__c";
const KEY: &str = "Reading_Key__c";
/// Two numbers that `serde_json::Value` without arbitrary precision rounds.
const DECIMAL: &str = "123456789.123456789";
const LONG_INTEGER: &str = "123456789012345678901234567890";

fn exact_records(prefix: &str) -> String {
    format!(
        "{{\"{KEY}\":\"{prefix}-1\",\"Value__c\":{DECIMAL}}}\n\
         {{\"{KEY}\":\"{prefix}-2\",\"Value__c\":{LONG_INTEGER},\"Sensor__c\":\"t\\u00e9\"}}\n"
    )
}

/// Every collections body the simulator kept, as text.
fn arrived(env: &Env) -> String {
    env.sim()
        .collection_bodies()
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn assert_arrived_exactly(env: &Env, prefix: &str) {
    let bodies = arrived(env);
    for piece in [
        format!("\"{KEY}\":\"{prefix}-1\",\"Value__c\":{DECIMAL}}}"),
        format!(
            "\"{KEY}\":\"{prefix}-2\",\"Value__c\":{LONG_INTEGER},\"Sensor__c\":\"t\\u00e9\"}}"
        ),
    ] {
        assert!(
            bodies.contains(&piece),
            "{piece} not in what arrived: {bodies}"
        );
    }
}

fn queued(env: &Env) -> u64 {
    let out = env.run(&["outbox", "status", "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let status: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    status["queued"].as_u64().unwrap()
}

/// `sfpair send OBJECT --external-id KEY` with `data` coming down a pipe (`cat FILE | sfpair`),
/// so standard input is not a file `send` could read twice.
fn send_piped(env: &Env, data: &[u8]) -> Output {
    let file = env.scratch.0.join("piped.jsonl");
    std::fs::write(&file, data).unwrap();
    let args: Vec<OsString> = vec![
        "-c".into(),
        r#"cat "$0" | exec "$1" send "$2" --external-id "$3""#.into(),
        file.into(),
        env!("CARGO_BIN_EXE_sfpair").into(),
        OBJECT.into(),
        KEY.into(),
    ];
    let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    Running::spawn(Env::wrapped(&env.command(&[]), "sh", &args)).finish(RUN_LIMIT)
}

#[test]
fn exact_numbers_arrive_as_sent_through_the_outbox() {
    let env = Env::start(fast());
    env.pair_approved();
    let file = env.scratch.0.join("exact.jsonl");
    std::fs::write(&file, exact_records("file")).unwrap();
    let data = format!("@{}", file.display());
    let out = env.run(&["send", OBJECT, "--external-id", KEY, "--data", &data]);
    assert_eq!(out.code(), 0, "{out:?}");
    let out = send_piped(&env, exact_records("pipe").as_bytes());
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(env.run(&["outbox", "flush"]).code(), 0);
    assert_arrived_exactly(&env, "file");
    assert_arrived_exactly(&env, "pipe");
}

#[test]
fn exact_numbers_arrive_as_sent_through_the_broker() {
    let env = Env::start(fast());
    env.pair_approved();
    let socket = env.scratch.0.join("agent.sock");
    let socket_arg = socket.display().to_string();
    let agent = env.spawn(&["run", "--socket", &socket_arg]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "run did not start serving");
        std::thread::sleep(Duration::from_millis(20));
    }
    let records = exact_records("broker");
    let out = env.run(&[
        "send",
        OBJECT,
        "--external-id",
        KEY,
        "--data",
        &records,
        "--socket",
        &socket_arg,
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !arrived(&env).contains("broker-2") {
        assert!(
            Instant::now() < deadline,
            "not delivered: {}",
            arrived(&env)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_arrived_exactly(&env, "broker");
    agent.terminate();
    agent.finish(RUN_LIMIT);
}

#[test]
fn a_key_given_twice_is_refused_naming_the_record_and_the_key() {
    let env = Env::start(fast());
    env.pair_approved();
    let data = format!(
        "{{\"{KEY}\":\"a\",\"Value__c\":1}}\n{{\"{KEY}\":\"b\",\"Value__c\":1,\"value__c\":2}}\n"
    );
    let out = env.run(&["send", OBJECT, "--external-id", KEY, "--data", &data]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr
            .contains("record 2 refused: the key \"value__c\" appears twice"),
        "{}",
        out.stderr
    );
    assert_eq!(queued(&env), 0);

    // The broker's own `send` applies the same rules to a request line it is given directly.
    let socket = env.scratch.0.join("agent.sock");
    let socket_arg = socket.display().to_string();
    let agent = env.spawn(&["run", "--socket", &socket_arg]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "run did not start serving");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stream = UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let line = format!(
        "{{\"do\":\"send\",\"sobject\":\"{OBJECT}\",\"external_id\":\"{KEY}\",\"records\":\
         [{{\"{KEY}\":\"c\",\"{KEY}\":\"d\"}}]}}\n"
    );
    stream.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let answer: Value = serde_json::from_str(answer.trim()).unwrap();
    assert_eq!(answer["exit_code"], 2, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("record 1 refused: the key \"Reading_Key__c\" appears twice"),
        "{answer}"
    );
    agent.terminate();
    agent.finish(RUN_LIMIT);
    assert_eq!(queued(&env), 0);
}

#[test]
fn piped_data_larger_than_memory_is_taken_whole_or_not_at_all() {
    let env = Env::start(fast());
    // About 200 KB: more than `send` keeps in memory (64 KiB), so it is copied aside first.
    let mut good = String::new();
    for i in 0..3000 {
        good.push_str(&format!("{{\"{KEY}\":\"p-{i}\",\"Value__c\":{i}.5}}\n"));
    }
    let bad = format!("{good}{{\"Value__c\":1}}\n");
    let out = send_piped(&env, bad.as_bytes());
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr
            .contains("record 3001 refused: it has no Reading_Key__c"),
        "{}",
        out.stderr
    );
    assert_eq!(queued(&env), 0);
    let out = send_piped(&env, good.as_bytes());
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(queued(&env), 3000);
    // The copy had no name, and nothing is left beside the queue's own files.
    let dir = env.scratch.0.join("state/outbox");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["lock", "log"], "{names:?}");
}

#[test]
fn a_long_send_line_written_as_python_writes_json_is_taken_by_the_broker() {
    let env = Env::start(fast());
    env.pair_approved();
    let socket = env.scratch.0.join("agent.sock");
    let socket_arg = socket.display().to_string();
    let agent = env.spawn(&["run", "--socket", &socket_arg]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "run did not start serving");
        std::thread::sleep(Duration::from_millis(20));
    }
    // `json.dumps` puts a space after every ':' and ','; 40 records pass the 512-byte limit of
    // other requests.
    let records: Vec<String> = (0..40)
        .map(|i| format!("{{\"{KEY}\": \"py-{i}\", \"Value__c\": {i}}}"))
        .collect();
    let line = format!(
        "{{\"do\": \"send\", \"sobject\": \"{OBJECT}\", \"external_id\": \"{KEY}\", \"records\": [{}]}}\n",
        records.join(", ")
    );
    assert!(line.len() > 512);
    let mut stream = UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let answer: Value = serde_json::from_str(answer.trim()).unwrap();
    assert_eq!(answer["queued"], 40, "{answer}");
    agent.terminate();
    agent.finish(RUN_LIMIT);
}
