//! Process-wide hardening that must happen before any secret is in memory.
//!
//! A core dump of sfpair holds the refresh token (SIGQUIT to `serve` with
//! `ulimit -c unlimited` wrote it five times), and a process that is "dumpable" can also be
//! read by other processes of the same user through ptrace and /proc/PID/mem. Clearing the
//! dumpable flag (prctl(2) PR_SET_DUMPABLE) stops both: no core file, no ptrace attach without
//! CAP_SYS_PTRACE, and /proc/PID files owned by root. It does not stop root.
//!
//! This file must not do anything else: it is called first thing in `main`.

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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_is_no_longer_dumpable() {
        assert!(super::harden_process());
        // SAFETY: PR_GET_DUMPABLE takes no argument.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 0);
    }
}
