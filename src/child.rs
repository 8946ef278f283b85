//! Runs another program to its end: the one way sfpair starts a child process (the listener's
//! `--exec`, the desired state's program).
//!
//! What every run gets, whoever asks:
//! - the program started directly (no shell), in its own process group, killed when sfpair
//!   dies (`PR_SET_PDEATHSIG`: a daemon killed -9 and started again by a supervisor that does not
//!   kill the whole group must not find its first child still running beside the second);
//! - an environment of only the caller's variables plus those of sfpair's own that the caller
//!   passes by name: never the rest (it may hold `SFPAIR_CLIENT_SECRET`);
//! - the caller's bytes on standard input, its standard output kept up to a limit (the rest is
//!   read and dropped, so a chatty program never blocks), standard error inherited (the journal)
//!   or kept the same way, all through one `poll(2)` loop on the calling thread;
//! - a time limit: past it the group gets SIGTERM, then SIGKILL a second later; a [`Stop`] ends
//!   it the same way;
//! - the signal mask emptied and SIGPIPE back to its default, as a program expects (Rust
//!   ignores SIGPIPE in its own process).
//!
//! fork, pipes and poll through libc rather than `std::process`: the same work in a fraction
//! of the bytes on armv7 (BENCHMARKS.md, "Bytes for the third wave"), and no thread per pipe.
//! Between fork and exec the child makes only async-signal-safe calls; everything it needs is
//! made before the fork.
//!
//! Must not log what goes in or comes out: a command's payload, a sealer's key.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::stop::Stop;

/// Between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(1);
/// How often a running program's end, its time limit and a stop are looked at while its pipes
/// are quiet.
const TICK: Duration = Duration::from_millis(100);

/// What to run and how.
pub struct Spec<'a> {
    /// The program: a path, or a name looked up in `PATH`.
    pub program: &'a OsStr,
    /// Its arguments (without the program's own name).
    pub args: &'a [&'a OsStr],
    /// Which of sfpair's own variables the program is given, by name.
    pub passes: fn(&[u8]) -> bool,
    /// Variables set for it, besides those.
    pub vars: &'a [(&'a str, &'a str)],
    /// Its standard input, then end of file.
    pub input: &'a [u8],
    /// Bytes of standard output kept (and of standard error, when kept).
    pub keep: usize,
    /// Whether standard error is kept (`true`) or goes where sfpair's goes.
    pub keep_stderr: bool,
    /// Past this the program is ended.
    pub limit: Duration,
    /// Ends the program early, with [`Ended::Stopped`].
    pub stop: Option<&'a Stop>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it (not one of ours).
    Signalled(i32),
    /// It ran past its limit and was ended.
    TimedOut,
    /// The stop ended it.
    Stopped,
}

impl Ended {
    /// Exited with 0.
    pub fn success(self) -> bool {
        self == Ended::Exited(0)
    }

    /// The exit code, 128 + the signal when a signal ended it (as shells say it); none when
    /// we ended it.
    pub fn code(self) -> Option<i32> {
        match self {
            Ended::Exited(c) => Some(c),
            Ended::Signalled(s) => Some(128 + s),
            Ended::TimedOut | Ended::Stopped => None,
        }
    }
}

/// What a finished program left. No Debug: its output may be a key.
pub struct Ran {
    pub ended: Ended,
    /// The first [`Spec::keep`] bytes of standard output; wiped on drop.
    pub stdout: Zeroizing<Vec<u8>>,
    /// The first [`Spec::keep`] bytes of standard error, when kept.
    pub stderr: Vec<u8>,
}

/// A descriptor closed on drop.
struct Fd(libc::c_int);

impl Fd {
    fn close(&mut self) {
        if self.0 >= 0 {
            // SAFETY: a descriptor this owns, closed once.
            unsafe { libc::close(self.0) };
            self.0 = -1;
        }
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        self.close();
    }
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A pipe, (read end, write end), both close-on-exec and at 3 or above, so that putting one
/// on the child's 0, 1 or 2 never overwrites another (when sfpair itself runs with one of
/// those closed).
fn pipe() -> io::Result<(Fd, Fd)> {
    let mut fds = [-1; 2];
    // SAFETY: room for two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    let (mut r, mut w) = (Fd(fds[0]), Fd(fds[1]));
    for end in [&mut r, &mut w] {
        if end.0 < 3 {
            // SAFETY: duplicates a descriptor we own; the low one is closed by the swap.
            let high = Fd(check(unsafe {
                libc::fcntl(end.0, libc::F_DUPFD_CLOEXEC, 3)
            })?);
            *end = high;
        }
    }
    Ok((r, w))
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Runs `spec` to its end. `Err` when it could not start (the program is missing, or is not
/// executable: the error of exec(2)).
pub fn run(spec: &Spec) -> io::Result<Ran> {
    // Everything the child needs, made before the fork: it must not allocate.
    let program = c_string(spec.program.as_bytes())?;
    let mut argv = vec![program.clone()];
    for a in spec.args {
        argv.push(c_string(a.as_bytes())?);
    }
    let mut env = Vec::new();
    for (k, v) in std::env::vars_os() {
        if (spec.passes)(k.as_bytes()) {
            env.push(c_string(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
    }
    for (k, v) in spec.vars {
        env.push(c_string(format!("{k}={v}").as_bytes())?);
    }
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(core::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(core::ptr::null());
    let (in_r, mut in_w) = pipe()?;
    let (mut out_r, out_w) = pipe()?;
    let (mut err_r, err_w) = match spec.keep_stderr {
        true => pipe()?,
        false => (Fd(-1), Fd(-1)),
    };
    // exec's errno comes back through this pipe; a successful exec closes it.
    let (mut failed_r, failed_w) = pipe()?;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child below makes only async-signal-safe calls before exec or _exit.
    let pid = check(unsafe { libc::fork() })?;
    if pid == 0 {
        // SAFETY: the child: descriptors and pointers made before the fork; no allocation.
        unsafe {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            // sfpair died between the fork and the prctl: nobody would end this one.
            if libc::getppid() != parent {
                libc::_exit(127);
            }
            let mut none: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, core::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::dup2(in_r.0, 0);
            libc::dup2(out_w.0, 1);
            if err_w.0 >= 0 {
                libc::dup2(err_w.0, 2);
            }
            libc::execvpe(program.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr());
            let errno = *libc::__errno_location();
            libc::write(failed_w.0, (&errno as *const libc::c_int).cast(), 4);
            libc::_exit(127);
        }
    }
    drop((in_r, out_w, err_w, failed_w));
    let mut errno = [0u8; 4];
    // SAFETY: at most 4 bytes into a 4-byte buffer; returns 0 (EOF) once exec succeeded.
    let got = unsafe { libc::read(failed_r.0, errno.as_mut_ptr().cast(), 4) };
    failed_r.close();
    if got == 4 {
        let mut status = 0;
        // SAFETY: our own child, which exits right after telling its errno.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)));
    }
    // The input is written as the program reads it, never blocking the loop.
    // SAFETY: a descriptor we own.
    unsafe { libc::fcntl(in_w.0, libc::F_SETFL, libc::O_NONBLOCK) };
    if spec.input.is_empty() {
        in_w.close();
    }
    let mut stdout = Zeroizing::new(Vec::new());
    let mut stderr = Vec::new();
    let started = Instant::now();
    let mut written = 0;
    let mut chunk = Zeroizing::new([0u8; 4096]);
    // With every pipe closed nothing wakes the poll but its timeout: look for the exit soon,
    // then less and less often.
    let mut quiet = Duration::from_millis(1);
    // Once the program exited: how, and when. A grandchild outside the group may hold its
    // pipes open, so its output is awaited for GRACE at most.
    let mut exited: Option<(Ended, Instant)> = None;
    // Once we ended the group: why, and when SIGKILL follows.
    let mut ending: Option<(Ended, Instant)> = None;
    let ended = loop {
        if exited.is_none() {
            let mut status = 0;
            // SAFETY: our own child, not reaped yet; WNOHANG does not block.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                let how = match ending {
                    Some((why, _)) => why,
                    None if libc::WIFSIGNALED(status) => Ended::Signalled(libc::WTERMSIG(status)),
                    None => Ended::Exited(libc::WEXITSTATUS(status)),
                };
                exited = Some((how, Instant::now()));
            }
        }
        let now = Instant::now();
        match (exited, ending) {
            // Ended by us: done once the whole group is gone, or at SIGKILL.
            (Some((how, _)), Some((_, kill_at))) => {
                // SAFETY: signal 0 only asks whether the group still has a member.
                if unsafe { libc::kill(-pid, 0) } != 0 {
                    break how;
                }
                if now >= kill_at {
                    // SAFETY: the process group our child led (a group id is not reused while
                    // it has members).
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                    break how;
                }
            }
            (Some((how, at)), None) => {
                if (out_r.0 < 0 && err_r.0 < 0) || now >= at + GRACE {
                    break how;
                }
            }
            (None, Some((_, kill_at))) => {
                if now >= kill_at {
                    end(pid, libc::SIGKILL);
                }
            }
            (None, None) => {
                let why = if spec.stop.is_some_and(Stop::is_stopped) {
                    Some(Ended::Stopped)
                } else if now >= started + spec.limit {
                    Some(Ended::TimedOut)
                } else {
                    None
                };
                if let Some(why) = why {
                    end(pid, libc::SIGTERM);
                    ending = Some((why, now + GRACE));
                }
            }
        }
        let watch = |fd: &Fd, events| libc::pollfd {
            fd: fd.0,
            events,
            revents: 0,
        };
        let mut fds = [
            watch(&in_w, libc::POLLOUT),
            watch(&out_r, libc::POLLIN),
            watch(&err_r, libc::POLLIN),
        ];
        let wait = if fds.iter().all(|p| p.fd < 0) {
            quiet = (quiet * 2).min(TICK);
            quiet
        } else {
            TICK
        };
        // SAFETY: three pollfds; a negative fd is ignored. EINTR is a turn like any other.
        unsafe { libc::poll(fds.as_mut_ptr(), 3, wait.as_millis() as libc::c_int) };
        if fds[0].revents != 0 {
            let rest = &spec.input[written..];
            // SAFETY: writing from a live slice, at most its length.
            let n = unsafe { libc::write(in_w.0, rest.as_ptr().cast(), rest.len()) };
            let error = io::Error::last_os_error().kind();
            written += n.max(0) as usize;
            // All given, or the program closed its input (EPIPE): no more to give.
            if written == spec.input.len() || (n < 0 && error != io::ErrorKind::WouldBlock) {
                in_w.close();
            }
        }
        for (polled, fd, kept) in [
            (fds[1], &mut out_r, &mut *stdout),
            (fds[2], &mut err_r, &mut stderr),
        ] {
            if polled.revents == 0 {
                continue;
            }
            // SAFETY: reading into a buffer, at most its length.
            let n = unsafe { libc::read(fd.0, chunk.as_mut_ptr().cast(), chunk.len()) };
            if n > 0 {
                let n = (n as usize).min(spec.keep.saturating_sub(kept.len()));
                kept.extend_from_slice(&chunk[..n]);
            } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                fd.close();
            }
        }
    };
    Ok(Ran {
        ended,
        stdout,
        stderr,
    })
}

/// Sends `signal` to the child's process group, or to the child alone when it left the group
/// (a program may call setsid(2)): either way the child gets it, so the loop ends. Only while
/// the child is not reaped yet (its pid cannot have been reused).
fn end(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: the group our child leads, or our own unreaped child.
    unsafe {
        if libc::kill(-pid, signal) != 0 {
            libc::kill(pid, signal);
        }
    }
}

#[cfg(test)]
mod tests;
