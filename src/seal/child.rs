//! Running a sealer's tool (`systemd-creds`, tpm2-tools): the data key goes in through the
//! child's standard input and comes back on its standard output, both pipes, never in an
//! argument, the environment or a file.
//!
//! The child gets a small environment, not ours (which may hold `SFPAIR_CLIENT_SECRET`):
//! `PATH` and the variables the tools themselves read (`SYSTEMD_*`, `TPM2TOOLS_*`, `TSS2_*`).
//! Every run is bounded: a time limit (then the child is killed) and at most 64 KiB of
//! output; and a child never outlives sfpair (it is killed when sfpair dies, so a `kill -9`
//! of sfpair does not leave a tool half way through a TPM operation). Standard output is
//! wiped when dropped; standard error is for messages and must not be logged whole (a tool
//! may echo what it was given).
//!
//! fork, pipes and poll through libc rather than `std::process`: the same work in a fraction
//! of the bytes on armv7 (std's `Command` cost the first shell-out sealer about 22 KB;
//! BENCHMARKS.md, "Sealing"). Between fork and exec the child only makes async-signal-safe
//! calls; everything it needs is made before the fork.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::error::Error;

/// Output beyond this is not a sealer's answer.
const MAX_OUTPUT: usize = 64 * 1024;
/// What one tool may take: a real TPM makes a primary key in well under a second; a busy one,
/// or a software TPM on a loaded machine, in a few.
pub const LIMIT: Duration = Duration::from_secs(30);

/// What a finished child left.
pub struct Ran {
    /// It exited with status 0.
    pub success: bool,
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
fn passed_on(name: &[u8]) -> bool {
    name == b"PATH"
        || [&b"SYSTEMD_"[..], b"TPM2TOOLS_", b"TSS2_"]
            .iter()
            .any(|p| name.starts_with(p))
}

fn c_string(bytes: &[u8]) -> Result<CString, Error> {
    CString::new(bytes).map_err(|_| Error::config("an argument for a sealer's tool has a NUL byte"))
}

/// The file descriptors of one pipe, closed on drop.
struct Pipe([libc::c_int; 2]);

impl Pipe {
    fn new() -> Result<Pipe, Error> {
        let mut fds = [-1; 2];
        // SAFETY: room for two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Error::config(format!(
                "cannot make a pipe for a sealer's tool: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(Pipe(fds))
    }

    fn close(&mut self, end: usize) {
        if self.0[end] >= 0 {
            // SAFETY: a descriptor this pipe owns, closed once.
            unsafe { libc::close(self.0[end]) };
            self.0[end] = -1;
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.close(0);
        self.close(1);
    }
}

/// Runs `program args`, writing `input` to its standard input. `package` names what to
/// install when the program is missing (a usage error, exit 2).
pub fn run(program: &str, args: &[&OsStr], input: &[u8], package: &str) -> Result<Ran, Error> {
    let path = c_string(program.as_bytes())?;
    let argv: Vec<CString> = core::iter::once(Ok(path.clone()))
        .chain(args.iter().map(|a| c_string(a.as_bytes())))
        .collect::<Result<_, _>>()?;
    let env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| passed_on(k.as_bytes()))
        .map(|(k, v)| c_string(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(core::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(core::ptr::null());
    let (mut stdin, mut stdout, mut stderr, mut failed) =
        (Pipe::new()?, Pipe::new()?, Pipe::new()?, Pipe::new()?);
    // SAFETY: the child below makes only async-signal-safe calls before exec or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::config(format!(
            "cannot start {program}: {}",
            std::io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        // SAFETY: the child: descriptors and pointers made before the fork; no allocation.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::dup2(stdin.0[0], 0);
            libc::dup2(stdout.0[1], 1);
            libc::dup2(stderr.0[1], 2);
            libc::execvpe(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr());
            // exec failed: its errno to the parent, through the pipe exec would have closed.
            let errno = *libc::__errno_location();
            libc::write(failed.0[1], (&errno as *const libc::c_int).cast(), 4);
            libc::_exit(127);
        }
    }
    for (pipe, end) in [
        (&mut stdin, 0),
        (&mut stdout, 1),
        (&mut stderr, 1),
        (&mut failed, 1),
    ] {
        pipe.close(end);
    }
    let mut errno = [0u8; 4];
    // SAFETY: reading at most 4 bytes into a 4-byte buffer.
    let got = unsafe { libc::read(failed.0[0], errno.as_mut_ptr().cast(), 4) };
    if got == 4 {
        reap(pid, true);
        let e = std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno));
        return Err(if e.kind() == std::io::ErrorKind::NotFound {
            Error::config(format!(
                "{program} is not installed: install {package} (docs/sealing.md)"
            ))
        } else {
            Error::config(format!("cannot run {program}: {e}"))
        });
    }
    // A few hundred bytes at most: less than a pipe holds, so this never blocks. A child that
    // exits without reading is judged by its status (SIGPIPE is ignored in Rust programs).
    // SAFETY: writing `input`'s bytes.
    unsafe { libc::write(stdin.0[1], input.as_ptr().cast(), input.len()) };
    stdin.close(1);
    let deadline = Instant::now() + LIMIT;
    let (out, err, in_time) = collect(&stdout, &stderr, deadline);
    let status = if in_time {
        reap_by(pid, deadline)
    } else {
        None
    };
    let Some(status) = status else {
        reap(pid, true);
        return Err(Error::config(format!(
            "{program} did not finish within {} s; it was stopped",
            LIMIT.as_secs()
        )));
    };
    Ok(Ran {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout: out,
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

/// Reads standard output and error until both end or the deadline passes (`false`).
fn collect(stdout: &Pipe, stderr: &Pipe, deadline: Instant) -> (Zeroizing<Vec<u8>>, Vec<u8>, bool) {
    let mut out = Zeroizing::new(Vec::with_capacity(4096));
    let mut err = Vec::new();
    let mut open = [stdout.0[0], stderr.0[0]];
    let mut chunk = Zeroizing::new([0u8; 4096]);
    while open.iter().any(|&fd| fd >= 0) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, err, false);
        }
        let mut polled = open.map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        let ms = left.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: two pollfds; a negative fd is ignored by poll.
        if unsafe { libc::poll(polled.as_mut_ptr(), 2, ms) } < 0 {
            continue; // EINTR
        }
        for (i, p) in polled.iter().enumerate() {
            if p.fd < 0 || p.revents == 0 {
                continue;
            }
            // SAFETY: reading into a buffer of its size.
            let n = unsafe { libc::read(p.fd, chunk.as_mut_ptr().cast(), chunk.len()) };
            let sink: &mut Vec<u8> = if i == 0 { &mut out } else { &mut err };
            if n <= 0 || sink.len() >= MAX_OUTPUT {
                open[i] = -1;
            } else {
                let n = (n as usize).min(MAX_OUTPUT - sink.len());
                sink.extend_from_slice(&chunk[..n]);
            }
        }
    }
    (out, err, true)
}

/// The child's wait status once it exits, waiting until `deadline` at most.
fn reap_by(pid: libc::pid_t, deadline: Instant) -> Option<libc::c_int> {
    loop {
        let mut status = 0;
        // SAFETY: our own child; WNOHANG does not block.
        match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
            p if p == pid => return Some(status),
            0 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => return None,
        }
    }
}

/// Waits for the child, killing it first when `kill`.
fn reap(pid: libc::pid_t, kill: bool) {
    let mut status = 0;
    // SAFETY: our own child, not reaped yet.
    unsafe {
        if kill {
            libc::kill(pid, libc::SIGKILL);
        }
        libc::waitpid(pid, &mut status, 0);
    }
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
