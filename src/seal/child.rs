//! Running a sealer's tool (`systemd-creds`, tpm2-tools): the data key goes in through the
//! child's standard input and comes back on its standard output, both pipes, never in an
//! argument, the environment or a file.
//!
//! The child gets a small environment, not ours (which may hold `SFPAIR_CLIENT_SECRET`):
//! `PATH` and the variables the tools themselves read (`SYSTEMD_*`, `TPM2TOOLS_*`, `TSS2_*`).
//! Every run is bounded: a time limit (then the child is killed) and at most 64 KiB of
//! output; and a child never outlives sfpair (it is killed when sfpair dies, so a `kill -9`
//! of sfpair does not leave a tool half way through a TPM operation). Standard output is wiped when dropped; standard error is for messages and must not
//! be logged whole (a tool may echo what it was given).

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::Error;

/// Output beyond this is not a sealer's answer.
const MAX_OUTPUT: u64 = 64 * 1024;
/// What one tool may take: a real TPM makes a primary key in well under a second; a busy one,
/// or a software TPM on a loaded machine, in a few.
pub const LIMIT: Duration = Duration::from_secs(30);

/// What a finished child left.
pub struct Ran {
    pub status: ExitStatus,
    /// Wiped on drop: it may be a data key.
    pub stdout: Zeroizing<Vec<u8>>,
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
fn passed_on(name: &str) -> bool {
    name == "PATH"
        || ["SYSTEMD_", "TPM2TOOLS_", "TSS2_"]
            .iter()
            .any(|p| name.starts_with(p))
}

/// Runs `program args`, writing `input` to its standard input. `package` names what to
/// install when the program is missing (a usage error, exit 2).
pub fn run(program: &str, args: &[&OsStr], input: &[u8], package: &str) -> Result<Ran, Error> {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| k.to_str().is_some_and(passed_on)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL the child when
    // the thread that made it (which waits for it below) goes away.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::config(format!(
                "{program} is not installed: install {package} (docs/sealing.md)"
            ))
        } else {
            Error::config(format!("cannot run {program}: {e}"))
        }
    })?;
    let pid = child.id();
    if let Some(mut stdin) = child.stdin.take() {
        // A few hundred bytes at most: less than a pipe holds, so this never blocks. A child
        // that exits without reading is judged by its status below.
        let _ = stdin.write_all(input);
    }
    let mut err = child.stderr.take();
    let stderr = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(err) = err.as_mut() {
            let _ = err.take(MAX_OUTPUT).read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    let mut out = child.stdout.take();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = Zeroizing::new(Vec::with_capacity(4096));
        if let Some(out) = out.as_mut() {
            let _ = out.take(MAX_OUTPUT).read_to_end(&mut stdout);
        }
        let _ = done.send((child.wait(), stdout));
    });
    let (status, stdout) = match finished.recv_timeout(LIMIT) {
        Ok(result) => result,
        Err(_) => {
            // SAFETY: kill(2) on our own child, not reaped yet (its waiter still waits).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = finished.recv_timeout(Duration::from_secs(5));
            return Err(Error::config(format!(
                "{program} did not finish within {} s; it was stopped",
                LIMIT.as_secs()
            )));
        }
    };
    let status = status.map_err(|e| Error::config(format!("cannot wait for {program}: {e}")))?;
    Ok(Ran {
        status,
        stdout,
        stderr: stderr.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_goes_through_a_pipe_and_the_environment_is_not_passed_on() {
        let ran = run(
            "sh",
            &[OsStr::new("-c"), OsStr::new("cat; echo; env")],
            b"data key",
            "a shell",
        )
        .unwrap();
        assert!(ran.status.success());
        let out = String::from_utf8(ran.stdout.to_vec()).unwrap();
        let (key, env) = out.split_once('\n').unwrap();
        assert_eq!(key, "data key");
        // Only what the tools read, and what the shell sets itself.
        for line in env.lines() {
            let name = line.split('=').next().unwrap();
            assert!(
                passed_on(name) || ["PWD", "SHLVL", "_", "OLDPWD"].contains(&name),
                "{name} was passed on"
            );
        }
        // (Ran has no Debug on purpose: its output may be a key.)
        let Err(missing) = run("sfpair-no-such-tool", &[], b"", "the tool") else {
            panic!("a missing tool ran");
        };
        assert!(missing.message().contains("install the tool"), "{missing}");
    }
}
