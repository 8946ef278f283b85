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
//!
//! The process itself (the group, the pipes, the time limit) is `child.rs`'s: this file says
//! what the listener gives a program and what it keeps of the run.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use log::{info, warn};

use super::inbox::{Outcome, Pending};
use crate::child::{self, Ended, Spec};
use crate::stop::Stop;

/// Bytes of the program's standard output kept for the result.
pub const KEEP_OUTPUT: usize = 4096;
/// `--exec-timeout` when not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The variables of sfpair's environment a program is given (besides its own four): `PATH`,
/// `HOME`, `LANG`, `LC_*`, `TZ`, `USER` and `LOGNAME`.
fn passed(name: &[u8]) -> bool {
    matches!(
        name,
        b"PATH" | b"HOME" | b"LANG" | b"TZ" | b"USER" | b"LOGNAME"
    ) || name.starts_with(b"LC_")
}

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
    pub status: Outcome,
    /// Its exit code (128 + the signal when a signal ended it).
    pub exit_code: Option<i32>,
    /// The first [`KEEP_OUTPUT`] bytes of its standard output.
    pub output: String,
}

/// Runs `exec` for `event`, its `attempt`th run.
pub fn run(exec: &Exec, event: &Pending, attempt: u32, stop: &Stop) -> Option<Ran> {
    let replay_id = event.replay_id.to_string();
    let attempt_text = attempt.to_string();
    let vars = [
        ("SFPAIR_CHANNEL", event.channel.as_str()),
        ("SFPAIR_EVENT_UUID", event.uuid.as_str()),
        ("SFPAIR_REPLAY_ID", replay_id.as_str()),
        ("SFPAIR_ATTEMPT", attempt_text.as_str()),
    ];
    let what = format!("command {} (attempt {attempt})", event.uuid);
    run_program(exec, event.payload.as_bytes(), &vars, stop, &what)
}

/// Runs `exec` with `input` on its standard input and `vars` beside the passed environment;
/// `what` names the run in the log. The one way sfpair runs the device's programs.
pub fn run_program(
    exec: &Exec,
    input: &[u8],
    vars: &[(&str, &str)],
    stop: &Stop,
    what: &str,
) -> Option<Ran> {
    let args: Vec<&OsStr> = exec.args.iter().map(OsStr::new).collect();
    let spec = Spec {
        program: exec.program.as_os_str(),
        args: &args,
        passes: passed,
        vars,
        input,
        keep: KEEP_OUTPUT,
        keep_stderr: false,
        limit: exec.timeout,
        stop: Some(stop),
    };
    let ran = match child::run(&spec) {
        Ok(ran) => ran,
        Err(e) => {
            let output = format!("cannot start {}: {e}", exec.program.display());
            warn!("{what}: {output}");
            return Some(Ran {
                status: Outcome::Failed,
                exit_code: None,
                output,
            });
        }
    };
    let status = match ran.ended {
        Ended::Stopped => return None,
        Ended::TimedOut => Outcome::TimedOut,
        e if e.success() => Outcome::Done,
        _ => Outcome::Failed,
    };
    let ran = Ran {
        status,
        exit_code: ran.ended.code(),
        output: String::from_utf8_lossy(&ran.stdout).into_owned(),
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
        assert_eq!((ran.status, ran.exit_code), (Outcome::Done, Some(0)));
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
        assert_eq!((ran.status, ran.exit_code), (Outcome::Failed, Some(3)));
        assert_eq!(ran.output.len(), KEEP_OUTPUT);
        let missing = Exec {
            program: "/nonexistent/handler".into(),
            args: vec![],
            timeout: Duration::from_secs(1),
        };
        let ran = run(&missing, &event(), 1, &Stop::new()).unwrap();
        assert_eq!(ran.status, Outcome::Failed);
        assert!(ran.output.contains("cannot start"), "{}", ran.output);
    }

    #[test]
    fn a_program_past_its_timeout_is_killed_with_its_children() {
        let exec = sh("sleep 600 & sleep 600", Duration::from_millis(300));
        let ran = run(&exec, &event(), 1, &Stop::new()).unwrap();
        assert_eq!((ran.status, ran.exit_code), (Outcome::TimedOut, None));
    }

    #[test]
    fn a_stop_ends_the_program_and_reports_no_outcome() {
        let stop = Stop::new();
        let exec = sh("sleep 600", Duration::from_secs(600));
        let stopper = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                stop.stop();
            })
        };
        assert_eq!(run(&exec, &event(), 1, &stop), None);
        stopper.join().unwrap();
    }
}
