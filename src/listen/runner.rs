//! `--exec PROGRAM [ARG…]`: one run of the device's own program for one command (and, through
//! [`run_program`], for a change of the desired state).
//!
//! The program is started directly (no shell), in its own process group, with the event's
//! payload (the exact JSON text the org sent) on standard input and these variables:
//! `SFPAIR_CHANNEL`, `SFPAIR_EVENT_UUID`, `SFPAIR_REPLAY_ID`, `SFPAIR_ATTEMPT` (1, or more when a
//! crash cut an earlier run). Its environment is otherwise only `PATH`, `HOME`, `LANG`, `LC_*`,
//! `TZ`, `USER` and `LOGNAME` from sfpair's own: nothing of sfpair's settings, and never a secret.
//! Exit 0 is done, anything else failed; past the timeout the process group gets SIGTERM, then
//! SIGKILL a second later, and the run timed out. The first [`KEEP_OUTPUT`] bytes of its standard
//! output are kept for the result; its standard error goes to sfpair's (the journal).
//!
//! A stop (SIGTERM to sfpair) ends the program the same way and reports no outcome: the event
//! was not finished, so it runs again after the restart, with the next attempt number.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use log::{info, warn};

use super::inbox::{Pending, Status};
use crate::stop::Stop;

/// Bytes of the program's standard output kept for the result.
pub const KEEP_OUTPUT: usize = 4096;
/// `--exec-timeout` when not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(1);
/// How often a running program's end, its timeout and a stop are looked at.
const TICK: Duration = Duration::from_millis(100);
/// The variables of sfpair's environment a program is given (besides its own four).
const PASSED: &[&str] = &["PATH", "HOME", "LANG", "TZ", "USER", "LOGNAME"];

/// What to run for each command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exec {
    /// The program, run directly (no shell).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Past this it is killed (`--exec-timeout`).
    pub timeout: Duration,
}

/// How a run ended: `None` when a stop cut it (it runs again after the restart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ran {
    /// How it ended.
    pub status: Status,
    /// Its exit code (128 + the signal when a signal ended it).
    pub exit_code: Option<i32>,
    /// The first [`KEEP_OUTPUT`] bytes of its standard output.
    pub output: String,
}

/// Runs `exec` for `event`, its `attempt`th run.
pub fn run(exec: &Exec, event: &Pending, attempt: u32, stop: &Stop) -> Option<Ran> {
    let vars = [
        ("SFPAIR_CHANNEL", event.channel.clone()),
        ("SFPAIR_EVENT_UUID", event.uuid.clone()),
        ("SFPAIR_REPLAY_ID", event.replay_id.to_string()),
        ("SFPAIR_ATTEMPT", attempt.to_string()),
    ];
    let what = format!("command {} (attempt {attempt})", event.uuid);
    run_program(exec, event.payload.as_bytes(), &vars, stop, &what)
}

/// Runs `exec` with `input` on its standard input and `vars` beside the passed environment;
/// `what` names the run in the log. The one way sfpair runs the device's programs.
pub fn run_program(
    exec: &Exec,
    input: &[u8],
    vars: &[(&str, String)],
    stop: &Stop,
    what: &str,
) -> Option<Ran> {
    let mut command = Command::new(&exec.program);
    command
        .args(&exec.args)
        .env_clear()
        .envs(passed_environment())
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec and calls only prctl(2),
    // getppid(2) and _exit(2), which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // The program dies with sfpair: a daemon killed -9 and started again by a
            // supervisor that does not kill the whole group (BusyBox init, sysvinit) must
            // not find its first attempt still running beside the second.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if libc::getppid() != parent {
                libc::_exit(127);
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            warn!("{what}: cannot start {}: {e}", exec.program.display());
            return Some(Ran {
                status: Status::Failed,
                exit_code: None,
                output: format!("cannot start {}: {e}", exec.program.display()),
            });
        }
    };
    // Feeding and draining on their own threads: a program that does not read its input, or
    // writes a lot, must not block sfpair.
    let input = input.to_vec();
    if let Some(mut stdin) = child.stdin.take() {
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let (kept_tx, kept) = channel();
    if let Some(stdout) = child.stdout.take() {
        thread::spawn(move || {
            let _ = kept_tx.send(keep(stdout));
        });
    }
    let ended = wait(&mut child, exec.timeout, stop);
    // A grandchild outside the process group may hold the pipe open: do not wait for it.
    let output = kept.recv_timeout(GRACE).unwrap_or_default();
    let ran = match ended {
        Ended::Stopped => return None,
        Ended::TimedOut => Ran {
            status: Status::TimedOut,
            exit_code: None,
            output,
        },
        Ended::Exited(status) => Ran {
            status: if status.success() {
                Status::Done
            } else {
                Status::Failed
            },
            exit_code: status.code().or(status.signal().map(|s| 128 + s)),
            output,
        },
    };
    info!(
        "{what}: {}{}",
        ran.status.name(),
        ran.exit_code
            .map(|c| format!(", exit {c}"))
            .unwrap_or_default()
    );
    Some(ran)
}

fn passed_environment() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            PASSED.contains(&k.as_ref()) || k.starts_with("LC_")
        })
        .collect()
}

/// The first [`KEEP_OUTPUT`] bytes, as text; the rest is read and dropped.
fn keep(mut from: impl Read) -> String {
    let mut kept = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = KEEP_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

enum Ended {
    Exited(ExitStatus),
    TimedOut,
    Stopped,
}

/// Waits for the child, its timeout or a stop, whichever comes first.
fn wait(child: &mut Child, timeout: Duration, stop: &Stop) -> Ended {
    let started = Instant::now();
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = channel();
    // The child is waited for by its own handle below; this thread only watches the clock and
    // the stop, so the wait is a plain blocking one.
    let watcher = {
        let stop = stop.clone();
        thread::spawn(move || {
            loop {
                match rx.recv_timeout(TICK) {
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return None,
                    Err(RecvTimeoutError::Timeout) => {
                        if stop.is_stopped() {
                            end_group(pid);
                            return Some(Ended::Stopped);
                        }
                        if started.elapsed() >= timeout {
                            end_group(pid);
                            return Some(Ended::TimedOut);
                        }
                    }
                }
            }
        })
    };
    let status = child.wait();
    let _ = tx.send(());
    match watcher.join().ok().flatten() {
        Some(cut) => cut,
        None => match status {
            Ok(status) => Ended::Exited(status),
            Err(_) => Ended::Stopped,
        },
    }
}

/// SIGTERM to the program's process group, then SIGKILL after [`GRACE`].
fn end_group(pid: libc::pid_t) {
    // SAFETY: kill(2) on the process group our child leads (it was started with its own).
    unsafe {
        libc::kill(-pid, libc::SIGTERM);
    }
    let until = Instant::now() + GRACE;
    while Instant::now() < until {
        // SAFETY: signal 0 only asks whether the group still has a member.
        if unsafe { libc::kill(-pid, 0) } != 0 {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Pending {
        Pending {
            uuid: "u-1".into(),
            channel: "/event/Device_Command__e".into(),
            replay_id: 42,
            payload: r#"{"Value__c":123456789.123456789}"#.into(),
            received_at: 0,
            attempts: 0,
        }
    }

    fn sh(script: &str, timeout: Duration) -> Exec {
        Exec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            timeout,
        }
    }

    #[test]
    fn the_program_gets_the_payload_and_the_variables_and_its_output_is_kept() {
        let exec = sh(
            "cat; echo; echo \"$SFPAIR_CHANNEL $SFPAIR_EVENT_UUID $SFPAIR_REPLAY_ID $SFPAIR_ATTEMPT ${SFPAIR_CLIENT_SECRET-none}\"",
            Duration::from_secs(30),
        );
        let ran = run(&exec, &event(), 2, &Stop::new()).unwrap();
        assert_eq!((ran.status, ran.exit_code), (Status::Done, Some(0)));
        assert_eq!(
            ran.output,
            "{\"Value__c\":123456789.123456789}\n/event/Device_Command__e u-1 42 2 none\n"
        );
    }

    #[test]
    fn a_failure_keeps_its_exit_code_and_only_the_first_bytes_of_output() {
        let exec = sh(
            "head -c 10000 /dev/zero | tr '\\0' x; exit 3",
            Duration::from_secs(30),
        );
        let ran = run(&exec, &event(), 1, &Stop::new()).unwrap();
        assert_eq!((ran.status, ran.exit_code), (Status::Failed, Some(3)));
        assert_eq!(ran.output.len(), KEEP_OUTPUT);
        let missing = Exec {
            program: "/nonexistent/handler".into(),
            args: vec![],
            timeout: Duration::from_secs(1),
        };
        let ran = run(&missing, &event(), 1, &Stop::new()).unwrap();
        assert_eq!(ran.status, Status::Failed);
        assert!(ran.output.contains("cannot start"), "{}", ran.output);
    }

    #[test]
    fn a_program_past_its_timeout_is_killed_with_its_children() {
        let exec = sh("sleep 600 & sleep 600", Duration::from_millis(300));
        let ran = run(&exec, &event(), 1, &Stop::new()).unwrap();
        assert_eq!((ran.status, ran.exit_code), (Status::TimedOut, None));
    }

    #[test]
    fn a_stop_ends_the_program_and_reports_no_outcome() {
        let stop = Stop::new();
        let exec = sh("sleep 600", Duration::from_secs(600));
        let stopper = {
            let stop = stop.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(200));
                stop.stop();
            })
        };
        assert_eq!(run(&exec, &event(), 1, &stop), None);
        stopper.join().unwrap();
    }
}
