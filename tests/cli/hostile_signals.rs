//! Signals a hostile or careless environment sends: SIGHUP to `run` and `serve` (a closed
//! terminal, a log rotator's `kill -HUP`), and a file size limit (`ulimit -f`) under `send`.
//! The real binary, a real socket, real files.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Env, Running, fast};

const LIMIT: Duration = Duration::from_secs(30);

fn ask(socket: &Path, line: &str) -> Value {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.write_all(line.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"))
}

fn wait_for_socket(socket: &Path, running: &mut Running) {
    let deadline = Instant::now() + LIMIT;
    while UnixStream::connect(socket).is_err() {
        assert!(!running.exited(), "it exited before listening");
        assert!(
            Instant::now() < deadline,
            "no socket at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGHUP used to kill `run` (the default action) and leave its socket behind, so the next
/// start met a stale socket. Now both `run` and `serve` ignore it: they keep answering, and
/// SIGTERM still stops them cleanly, the socket removed.
#[test]
fn sighup_neither_ends_run_or_serve_nor_leaves_a_stale_socket() {
    let env = Env::start(fast());
    env.pair_approved();
    for command in ["run", "serve"] {
        let socket = env.scratch.0.join(format!("{command}.sock"));
        let mut running = env.spawn(&[command, "--socket", socket.to_str().unwrap()]);
        wait_for_socket(&socket, &mut running);
        for _ in 0..3 {
            running.signal(libc::SIGHUP);
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!running.exited(), "{command}: SIGHUP ended it");
        let answer = ask(&socket, r#"{"get":"access_token"}"#);
        assert!(answer["access_token"].is_string(), "{command}: {answer}");
        running.terminate();
        let out = running.finish(LIMIT);
        assert_eq!(out.code(), 0, "{command}: {out:?}");
        assert!(!socket.exists(), "{command}: the socket was left behind");
    }
}

/// Under a file size limit below the record's size, `send` used to die of SIGXFSZ in the
/// middle of its write (no message, exit by signal). Now the write fails with EFBIG: exit 8,
/// the limit named, nothing queued, and the outbox still works once the limit allows.
#[test]
fn a_file_size_limit_is_exit_8_with_the_limit_named_not_a_signal() {
    let env = Env::start(fast());
    let record = format!(
        r#"{{"Reading_Key__c":"big","Sensor__c":"{}"}}"#,
        "x".repeat(16 * 1024)
    );
    let mut command = env.command(&[
        "send",
        "Device_Reading__c",
        "--external-id",
        "Reading_Key__c",
        "--data",
        &record,
    ]);
    // SAFETY: setrlimit in the child before exec, on a plain struct.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 8 * 1024,
                rlim_max: 8 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = Running::spawn(command).finish(LIMIT);
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    assert!(out.stderr.contains("ulimit -f"), "{}", out.stderr);
    let status = env.run(&["outbox", "status", "--json"]);
    assert_eq!(status.code(), 0, "{status:?}");
    assert!(
        !status.stderr.contains("cut"),
        "the failed push took its bytes back: {}",
        status.stderr
    );
    let status: Value = serde_json::from_str(status.stdout.trim()).unwrap();
    assert_eq!(status["queued"], 0, "{status}");
    let sent = env.run(&[
        "send",
        "Device_Reading__c",
        "--external-id",
        "Reading_Key__c",
        "--data",
        &record,
    ]);
    assert_eq!(sent.code(), 0, "{sent:?}");
}
