//! Process-wide hardening that must happen before any secret is in memory.
//!
//! A core dump of sfpair holds the refresh token (SIGQUIT to `serve` with
//! `ulimit -c unlimited` wrote it five times), and a process that is "dumpable" can also be
//! read by other processes of the same user through ptrace and /proc/PID/mem. Clearing the
//! dumpable flag (prctl(2) PR_SET_DUMPABLE) stops both: no core file, no ptrace attach without
//! CAP_SYS_PTRACE, and /proc/PID files owned by root. It does not stop root.
//!
//! The binary also ignores SIGXFSZ ([`ignore_file_size_signal`]): under a file size limit
//! (`ulimit -f`, `LimitFSIZE=`), a write past it then fails with EFBIG, which the outbox and the
//! store report as a storage error (exit 8) with the limit named, instead of the kernel killing
//! the process in the middle of a write.
//!
//! This file must not do anything else: it is called first thing in `main`. The library never
//! changes a signal's disposition by itself; a firmware that links it decides for its process.

/// Makes this process not dumpable (Linux; elsewhere a no-op). Returns whether it worked; a
/// failure is logged by the caller at most, sfpair still runs.
pub fn harden_process() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_DUMPABLE takes one integer argument; the rest are ignored.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Ignores SIGXFSZ, so that a write past the file size limit fails with EFBIG (an error sfpair
/// reports, exit 8) rather than killing the process. Returns whether it worked.
pub fn ignore_file_size_signal() -> bool {
    // SAFETY: setting a standard signal to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) != libc::SIG_ERR }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_is_no_longer_dumpable() {
        assert!(super::harden_process());
        // SAFETY: PR_GET_DUMPABLE takes no argument.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 0);
    }
}
