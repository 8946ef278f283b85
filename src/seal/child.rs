//! Running a sealer's tool (`systemd-creds`, tpm2-tools): the data key goes in through the
//! child's standard input and comes back on its standard output, both pipes, never in an
//! argument, the environment or a file.
//!
//! What is the sealers' own here: the child gets `PATH` and the variables the tools themselves
//! read (`SYSTEMD_*`, `TPM2TOOLS_*`, `TSS2_*`), not ours (which may hold `SFPAIR_CLIENT_SECRET`);
//! a run is bounded by [`LIMIT`] and at most 64 KiB of output; a missing tool is a message that
//! names the package to install. The running itself (fork, pipes, poll, the process group, a
//! child that never outlives sfpair) is `crate::child`'s, the one way sfpair starts a program.
//!
//! Must not log standard output (a data key) or standard error whole (a tool may echo what it
//! was given).

use std::ffi::OsStr;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::child::{self, Spec};
use crate::error::Error;

/// Output beyond this is not a sealer's answer.
const MAX_OUTPUT: usize = 64 * 1024;
/// What one tool may take: a real TPM makes a primary key in well under a second; a busy one,
/// or a software TPM on a loaded machine, in a few.
pub const LIMIT: Duration = Duration::from_secs(30);

/// What a finished tool left. No Debug: its output may be a key.
pub struct Ran {
    /// It exited with status 0.
    pub success: bool,
    /// Wiped on drop: it may be a data key.
    pub stdout: Zeroizing<Vec<u8>>,
    /// Its messages.
    pub stderr: String,
}

impl Ran {
    /// What standard error said, for a message: its last three lines that say something
    /// (tools end with "Unable to run X" after the line with the reason), on one line.
    pub fn said(&self) -> String {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        match lines.len() {
            0 => "no message".into(),
            n => lines[n.saturating_sub(3)..].join("; "),
        }
    }
}

/// Whether a variable of ours is one the tools read (and holds no secret of sfpair's).
fn passed_on(name: &[u8]) -> bool {
    name == b"PATH"
        || [&b"SYSTEMD_"[..], b"TPM2TOOLS_", b"TSS2_"]
            .iter()
            .any(|p| name.starts_with(p))
}

/// Runs `program args`, writing `input` to its standard input. `package` names what to
/// install when the program is missing.
pub fn run(program: &str, args: &[&OsStr], input: &[u8], package: &str) -> Result<Ran, Error> {
    let spec = Spec {
        program: OsStr::new(program),
        args,
        passes: passed_on,
        vars: &[],
        input,
        keep: MAX_OUTPUT,
        keep_stderr: true,
        limit: LIMIT,
        stop: None,
    };
    let ran = child::run(&spec).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::config(format!(
                "{program} is not installed: install {package} (docs/sealing.md)"
            ))
        } else {
            Error::config(format!("cannot run {program}: {e}"))
        }
    })?;
    if ran.ended == child::Ended::TimedOut {
        return Err(Error::config(format!(
            "{program} did not finish within {} s; it was stopped",
            LIMIT.as_secs()
        )));
    }
    Ok(Ran {
        success: ran.ended.success(),
        stdout: ran.stdout,
        stderr: String::from_utf8_lossy(&ran.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_goes_through_a_pipe_and_the_environment_is_not_passed_on() {
        let ran = run(
            "sh",
            &[
                OsStr::new("-c"),
                OsStr::new("cat; echo; env; echo oops >&2"),
            ],
            b"data key",
            "a shell",
        )
        .unwrap();
        assert!(ran.success);
        assert_eq!(ran.said(), "oops");
        let out = String::from_utf8(ran.stdout.to_vec()).unwrap();
        let (key, env) = out.split_once('\n').unwrap();
        assert_eq!(key, "data key");
        // Only what the tools read, and what the shell sets itself.
        for line in env.lines() {
            let name = line.split('=').next().unwrap();
            assert!(
                passed_on(name.as_bytes()) || ["PWD", "SHLVL", "_", "OLDPWD"].contains(&name),
                "{name} was passed on"
            );
        }
        let failed = run(
            "sh",
            &[OsStr::new("-c"), OsStr::new("exit 3")],
            b"",
            "a shell",
        );
        assert!(!failed.unwrap().success);
        // (Ran has no Debug on purpose: its output may be a key.)
        let Err(missing) = run("sfpair-no-such-tool", &[], b"", "the tool") else {
            panic!("a missing tool ran");
        };
        assert!(missing.message().contains("install the tool"), "{missing}");
    }
}
