//! The product's own output when it cannot be written: standard output
//! full, closed, or a reader that went away; standard error full. A failed write is exit 10
//! with a message (never a panic, never exit 0 with nothing printed), a closed pipe ends
//! quietly, and `pair` stops when nobody can see the code. Also the warning for a client id
//! that contradicts the stored pairing.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Env, fast};

/// Runs `command` to its end (killed after 30 s), with stdout and stderr as already set up;
/// returns the exit code and what stderr said when it was piped.
fn finish(mut command: Command) -> (i32, String) {
    let mut child = command.spawn().expect("sfpair starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sfpair did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read;
        err.read_to_string(&mut stderr).unwrap();
    }
    (status.code().unwrap_or(-1), stderr)
}

fn to_full(mut command: Command) -> Command {
    command.stdout(File::options().write(true).open("/dev/full").unwrap());
    command
}

#[test]
fn a_full_standard_output_is_exit_10_with_the_reason_not_a_panic() {
    let env = Env::start(fast());
    env.pair_approved();
    for args in [
        &["status"][..],
        &["token"],
        &["--help"],
        &["status", "--json"],
    ] {
        let (code, stderr) = finish(to_full(env.command(args)));
        assert_eq!(code, 10, "{args:?}: {stderr}");
        assert!(
            stderr.contains("error: cannot write to standard output"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_closed_standard_output_is_an_error_and_a_gone_reader_ends_quietly() {
    let env = Env::start(fast());
    env.pair_approved();
    // `token >&-`: no token printed must not look like success.
    let mut closed = env.command(&["token"]);
    // SAFETY: close(2) in the child between fork and exec touches only the child's fd 1.
    unsafe {
        closed.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let (code, stderr) = finish(closed);
    assert_eq!(code, 10, "{stderr}");
    assert!(
        stderr.contains("cannot write to standard output"),
        "{stderr}"
    );

    // `sfpair status | head -0`: the reader is gone before a byte is written.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut gone = env.command(&["status"]);
    gone.stdout(writer);
    let (code, stderr) = finish(gone);
    assert_eq!(code, 10);
    assert_eq!(stderr, "", "a closed pipe ends quietly");
}

#[test]
fn a_full_standard_error_does_not_turn_an_error_into_a_panic() {
    let env = Env::start(fast());
    let mut command = env.command(&["token"]);
    command
        .stdout(Stdio::null())
        .stderr(File::options().write(true).open("/dev/full").unwrap());
    let (code, _) = finish(command);
    assert_eq!(code, 5, "not paired, said by the exit code alone");
}

#[test]
fn pairing_stops_when_nobody_can_see_the_code() {
    let env = Env::start(fast());
    let mut command = to_full(env.command(&["pair", "--json"]));
    command.stderr(Stdio::piped());
    let (code, stderr) = finish(command);
    assert_eq!(code, 10, "{stderr}");
    assert!(stderr.contains("nobody can see the code"), "{stderr}");
    assert!(!env.token_path().exists(), "nothing stored");
    assert!(
        env.requests()
            .iter()
            .all(|l| !l.contains("POST /services/oauth2/token device ")),
        "it stopped before polling: {:?}",
        env.requests()
    );
}

#[test]
fn a_client_id_that_contradicts_the_stored_pairing_is_warned_about_once() {
    let env = Env::start(fast());
    env.pair_approved();
    let out = env.run(&["status", "--check", "--client-id", "3MVG9other.app"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let warnings = out
        .stderr
        .matches("is not the one this device paired with")
        .count();
    assert_eq!(warnings, 1, "{}", out.stderr);
    assert!(out.stderr.contains("sfpair pair --force"), "{}", out.stderr);
    let same = env.run(&["token"]);
    assert!(!same.stderr.contains("is not the one"), "{}", same.stderr);
}

/// /dev/null opened read-write as standard output (`1<>/dev/null`, Python's
/// `subprocess.DEVNULL`, daemon-style redirections) is a working standard output, not a closed
/// one: it used to be exit 10, "Bad file descriptor".
#[test]
fn dev_null_opened_read_write_is_a_working_standard_output() {
    let env = Env::start(fast());
    env.pair_approved();
    for args in [&["--version"][..], &["token"], &["status", "--json"]] {
        let mut command = env.command(args);
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap();
        command.stdout(null);
        let (code, stderr) = finish(command);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}
