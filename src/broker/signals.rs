//! SIGTERM and SIGINT for the broker: a flag and a self-pipe, so the accept loop (blocked in
//! `poll`) wakes up at once, stops accepting, lets the workers finish, and removes the socket.
//! SIGUSR1 asks for a new pairing (`sfpair run`): a second flag, through the same pipe.
//! SIGHUP is ignored: a closed terminal or a stray `kill -HUP` must neither end the broker nor
//! leave its socket behind, and sfpair has no configuration file to reload (docs/run.md,
//! "Signals").
//!
//! The handler only stores to an atomic and writes one byte to a non-blocking pipe, both
//! async-signal-safe. Installed once per process; a second `install` reuses the same pipe.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
/// SIGUSR1: a person asked for a new pairing (`sfpair run --repair prompt`).
static PAIR_ASKED: AtomicBool = AtomicBool::new(false);
static WAKE_WRITE: AtomicI32 = AtomicI32::new(-1);
static WAKE_READ: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    if signal == libc::SIGUSR1 {
        PAIR_ASKED.store(true, Ordering::SeqCst);
    } else {
        REQUESTED.store(true, Ordering::SeqCst);
    }
    let fd = WAKE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the byte lives for the call. A full pipe
        // (EAGAIN) is fine: a wake-up is already pending.
        unsafe {
            libc::write(fd, b"x".as_ptr().cast(), 1);
        }
    }
}

/// Installs the handlers; returns the pipe end that becomes readable on a signal.
pub fn install() -> io::Result<RawFd> {
    let existing = WAKE_READ.load(Ordering::SeqCst);
    if existing >= 0 {
        return Ok(existing);
    }
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    WAKE_READ.store(fds[0], Ordering::SeqCst);
    WAKE_WRITE.store(fds[1], Ordering::SeqCst);
    // SAFETY: setting a standard signal to SIG_IGN has no preconditions.
    if unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler is
        // an extern "C" fn that only does async-signal-safe work.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fds[0])
}

/// Whether SIGUSR1 arrived since the last call (and clears it).
pub fn take_pair_request() -> bool {
    PAIR_ASKED.swap(false, Ordering::SeqCst)
}

/// Whether SIGTERM or SIGINT arrived.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
