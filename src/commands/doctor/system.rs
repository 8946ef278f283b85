//! The doctor's checks of the device itself: the clock (against this build, and whether NTP
//! has synchronised it), free space where the store lives, and a key file's mode. The verdicts
//! are pure functions of what was read, so they are unit-tested without faking the system.

use std::path::Path;
use std::time::Duration;

use super::{Check, Level};
use crate::clock_check::{self, Verdict};
use crate::time::format_utc;

/// Whether the kernel says the clock is synchronised (adjtimex(2): `STA_UNSYNC` clear and no
/// `TIME_ERROR`); `None` when it cannot be asked. This is the flag `timedatectl`'s
/// `NTPSynchronized` reports too (systemd's timedated reads it with adjtimex), so asking the
/// kernel directly gives the same answer without spawning a process (which would cost the binary
/// std's whole process-spawning code) or needing D-Bus.
pub fn ntp_synchronised() -> Option<bool> {
    adjtimex()
}

/// adjtimex(2) with no changes: `STA_UNSYNC` set (or TIME_ERROR) means not synchronised.
fn adjtimex() -> Option<bool> {
    // SAFETY: an all-zero timex with modes 0 only reads the kernel's state.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, writable timex.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return None;
    }
    Some(state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0)
}

/// The clock check: `now` (the wall clock), this build's time, and what NTP says.
pub fn clock(now: Duration, built: u64, ntp: Option<bool>) -> Check {
    let when = format_utc(now.as_secs());
    match (clock_check::check(now, built), ntp) {
        (Verdict::BeforeBuild { .. }, _) => Check::new(
            "clock",
            Level::Failed,
            format!(
                "the clock says {when}, before this sfpair was built ({}): no certificate can \
                 be checked",
                format_utc(built)
            ),
        )
        .fix("set the time, or let NTP sync (check that UDP port 123 or the NTP server is reachable)"),
        (Verdict::Plausible, Some(true)) => {
            Check::new("clock", Level::Ok, format!("{when}; NTP synchronised"))
        }
        (Verdict::Plausible, Some(false)) => Check::new(
            "clock",
            Level::Warning,
            format!("{when}, but NTP has not synchronised the clock"),
        )
        .fix("enable time sync (systemd-timesyncd, chrony or ntpd): a clock that drifts breaks TLS"),
        (Verdict::Plausible, None) => Check::new(
            "clock",
            Level::Ok,
            format!("{when} (whether NTP synchronised it could not be read)"),
        ),
    }
}

/// Free bytes for an unprivileged writer on the file system holding `dir` (statvfs).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` writable.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// A store needs a few KB to write its temporary file and rename it.
pub fn free_space(dir: &Path, free: Option<u64>) -> Check {
    const LOW: u64 = 1 << 20;
    const TOO_LOW: u64 = 64 << 10;
    let name = "store space";
    match free {
        None => Check::new(
            name,
            Level::Warning,
            format!("cannot read the free space of {}", dir.display()),
        ),
        Some(n) if n < TOO_LOW => Check::new(
            name,
            Level::Failed,
            format!(
                "{} has {n} bytes free: a rotated refresh token could not be stored",
                dir.display()
            ),
        )
        .fix("free some space on that file system"),
        Some(n) if n < LOW => Check::new(
            name,
            Level::Warning,
            format!("{} has only {} KB free", dir.display(), n >> 10),
        )
        .fix("free some space on that file system"),
        Some(n) => Check::new(
            name,
            Level::Ok,
            format!("{} has {} MB free", dir.display(), n >> 20),
        ),
    }
}

/// A private key file (JWT bearer): it must exist and be readable by its owner only.
/// `mode` is the file's permission bits, `None` when it cannot be read.
pub fn key_file(path: &Path, mode: Option<u32>) -> Check {
    let name = "key file";
    match mode {
        None => Check::new(
            name,
            Level::Failed,
            format!("{} does not exist or cannot be read", path.display()),
        )
        .fix("put the private key there (PEM), mode 0600"),
        Some(m) if m & 0o077 != 0 => Check::new(
            name,
            Level::Failed,
            format!(
                "{} is mode {:04o}: others can read the private key",
                path.display(),
                m & 0o7777
            ),
        )
        .fix(format!("chmod 600 {}", path.display())),
        Some(_) => Check::new(
            name,
            Level::Ok,
            format!("{} exists, mode 0600 or stricter", path.display()),
        ),
    }
}

/// [`key_file`] for a path on this device.
pub fn key_file_on_disk(path: &Path) -> Check {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok().map(|m| m.permissions().mode());
    key_file(path, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILT: u64 = 1_795_000_000;

    #[test]
    fn a_clock_before_the_build_fails_and_an_unsynchronised_one_warns() {
        let c = clock(Duration::from_secs(12), BUILT, Some(true));
        assert_eq!(c.level, Level::Failed);
        assert!(c.detail.contains("1970-01-01"), "{}", c.detail);
        assert!(c.fix.as_deref().unwrap().contains("NTP"));
        let now = Duration::from_secs(BUILT + 3600);
        assert_eq!(clock(now, BUILT, Some(true)).level, Level::Ok);
        assert_eq!(clock(now, BUILT, Some(false)).level, Level::Warning);
        assert_eq!(clock(now, BUILT, None).level, Level::Ok);
    }

    #[test]
    fn free_space_thresholds() {
        let dir = Path::new("/var/lib/sfpair");
        assert_eq!(free_space(dir, Some(10 << 20)).level, Level::Ok);
        assert_eq!(free_space(dir, Some(512 << 10)).level, Level::Warning);
        assert_eq!(free_space(dir, Some(1024)).level, Level::Failed);
        assert_eq!(free_space(dir, None).level, Level::Warning);
        assert!(free_bytes(Path::new("/")).is_some());
    }

    #[test]
    fn a_key_file_must_exist_and_be_private() {
        let p = Path::new("/etc/sfpair/key.pem");
        assert_eq!(key_file(p, Some(0o100600)).level, Level::Ok);
        assert_eq!(key_file(p, Some(0o100400)).level, Level::Ok);
        let open = key_file(p, Some(0o100644));
        assert_eq!(open.level, Level::Failed);
        assert!(open.fix.as_deref().unwrap().contains("chmod 600"));
        assert_eq!(key_file(p, None).level, Level::Failed);
        assert_eq!(
            key_file_on_disk(Path::new("/nonexistent/key.pem")).level,
            Level::Failed
        );
    }
}
