//! The systemd notify protocol (sd_notify(3)) without libsystemd: one datagram per message
//! (`READY=1`, `STATUS=...`, `WATCHDOG=1`, `STOPPING=1`) to the AF_UNIX SOCK_DGRAM socket named
//! by `NOTIFY_SOCKET`, a path (`/run/systemd/notify`) or an abstract name (`@name`).
//! `WATCHDOG_USEC` (for this process, when `WATCHDOG_PID` says so) gives the watchdog timeout;
//! ping at half of it ([`Notifier::watchdog_interval`]).
//!
//! Without `NOTIFY_SOCKET`, or with one this code cannot use, every call is a no-op (one debug
//! line says why): sfpair runs the same under systemd, another supervisor or a shell.
//!
//! `STATUS=` is shown by `systemctl status` to anyone who asks, so it must never carry a token
//! or a secret. [`StatusLine`] can only be made by the formatting functions below
//! ([`status_waiting`], [`status_paired`], [`status_repair_needed`]), whose inputs are a user
//! code (shown on screen anyway), an org id, an age and a [`Cause`]; callers cannot pass free
//! text. This file sends; it decides nothing about when (that is the coming `sfpair run`).

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use log::debug;

use crate::refusal::Cause;
use crate::time::Instant;

/// Where the datagrams go.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Path(PathBuf),
    /// The abstract name without its leading `@` (a NUL on the wire).
    Abstract(Vec<u8>),
}

/// The notify socket of this process, if it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

/// `sun_path` holds 108 bytes on Linux, a terminating NUL included for paths.
const SUN_PATH: usize = 108;

/// A `STATUS=` line that is safe to show: only the functions below make one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine(String);

impl StatusLine {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn new(text: String) -> StatusLine {
        // A newline would start a new assignment in the datagram.
        StatusLine(text.replace(['\n', '\r'], " "))
    }
}

/// `waiting for approval: code WXYZ-1234, 9 min left`.
pub fn status_waiting(user_code: &str, minutes_left: u64) -> StatusLine {
    StatusLine::new(format!(
        "waiting for approval: code {user_code}, {minutes_left} min left"
    ))
}

/// `paired with org 00D…, last refresh 2 hours ago` (or without the refresh, before the first).
pub fn status_paired(org_id: &str, last_refresh_age: Option<Duration>) -> StatusLine {
    match last_refresh_age {
        Some(age) => StatusLine::new(format!(
            "paired with org {org_id}, last refresh {} ago",
            crate::time::format_age(age.as_secs())
        )),
        None => StatusLine::new(format!("paired with org {org_id}")),
    }
}

/// `not paired`.
pub fn status_not_paired() -> StatusLine {
    StatusLine::new("not paired".into())
}

/// `pairing: asking for a code`, before the code is there.
pub fn status_asking_for_code() -> StatusLine {
    StatusLine::new("pairing: asking for a code".into())
}

/// `re-pair needed: the refresh token was revoked or expired`.
pub fn status_repair_needed(cause: Cause) -> StatusLine {
    StatusLine::new(format!("re-pair needed: {}", cause.short()))
}

impl Notifier {
    /// From this process's environment.
    pub fn from_env() -> Notifier {
        let var = |k| std::env::var(k).ok();
        Notifier::from_vars(
            var("NOTIFY_SOCKET").as_deref(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
    }

    /// From the variables' values (`None`: unset) and this process's id.
    pub fn from_vars(
        socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        pid: u32,
    ) -> Notifier {
        let target = match socket {
            None => {
                debug!("NOTIFY_SOCKET is not set: no systemd notifications");
                None
            }
            Some(s) if s.len() > 1 && s.len() < SUN_PATH && s.starts_with('@') => {
                Some(Target::Abstract(s.as_bytes()[1..].to_vec()))
            }
            Some(s) if s.len() > 1 && s.len() < SUN_PATH && s.starts_with('/') => {
                Some(Target::Path(PathBuf::from(s)))
            }
            Some(s) => {
                debug!("NOTIFY_SOCKET='{s}' is not a socket path or @name: not notifying");
                None
            }
        };
        let for_us = watchdog_pid.is_none_or(|p| p.trim().parse() == Ok(pid));
        let watchdog = match watchdog_usec.map(|u| u.trim().parse::<u64>()) {
            _ if !for_us => {
                debug!("WATCHDOG_PID names another process: no watchdog pings");
                None
            }
            None => None,
            Some(Ok(usec)) if usec > 0 => Some(Duration::from_micros(usec)),
            Some(_) => {
                debug!("WATCHDOG_USEC is not a positive number of microseconds: ignored");
                None
            }
        };
        Notifier { target, watchdog }
    }

    /// Whether messages go anywhere.
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// How often to send `WATCHDOG=1`: half the watchdog timeout, as sd_watchdog_enabled(3)
    /// advises; `None` without a watchdog (or without a socket to ping).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref()?;
        self.watchdog.map(|t| t / 2)
    }

    /// Sends `WATCHDOG=1` if one is due: none sent yet (`last` is `None`), or the interval has
    /// passed since `last`, which is then set to `now`. The one home of the ping rule, for the
    /// supervisor and for the presenter that rides along with a pairing.
    pub fn ping_if_due(&self, last: &mut Option<Instant>, now: Instant) {
        let Some(every) = self.watchdog_interval() else {
            return;
        };
        if last.is_none_or(|at| now.saturating_since(at) >= every) {
            let _ = self.watchdog();
            *last = Some(now);
        }
    }

    /// When the next `WATCHDOG=1` is due (`now` if none was sent yet); `None` without a
    /// watchdog.
    pub fn next_ping(&self, last: Option<Instant>, now: Instant) -> Option<Instant> {
        let every = self.watchdog_interval()?;
        Some(last.map_or(now, |at| at + every))
    }

    /// `READY=1`: the service is up: the broker answers, with a pairing or while waiting for one.
    pub fn ready(&self) -> io::Result<()> {
        self.send("READY=1")
    }

    /// `STATUS=...`, from a [`StatusLine`] helper only.
    pub fn status(&self, status: &StatusLine) -> io::Result<()> {
        self.send(&format!("STATUS={}", status.as_str()))
    }

    /// `WATCHDOG=1`: still alive.
    pub fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    /// `STOPPING=1`: shutting down.
    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1")
    }

    /// One datagram; nothing without a target. A failure is returned (callers log it at debug:
    /// a supervisor that stopped listening must not stop the service).
    fn send(&self, message: &str) -> io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        // SAFETY: an all-zero sockaddr_un is a valid value of the type.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let (bytes, lead): (&[u8], usize) = match target {
            Target::Path(p) => (p.as_os_str().as_bytes(), 0),
            Target::Abstract(name) => (name, 1),
        };
        // from_vars bounds the length; a path also needs its terminating NUL (zeroed above).
        if lead + bytes.len() >= SUN_PATH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "socket name too long",
            ));
        }
        for (i, b) in bytes.iter().enumerate() {
            addr.sun_path[lead + i] = *b as libc::c_char;
        }
        let family = std::mem::size_of::<libc::sa_family_t>();
        let len = match target {
            Target::Path(_) => family + bytes.len() + 1,
            Target::Abstract(_) => family + 1 + bytes.len(),
        } as libc::socklen_t;
        // SAFETY: plain socket(2); the descriptor is closed below on every path.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `message` outlives the call; `addr` is a valid sockaddr_un of `len` bytes.
        let sent = unsafe {
            libc::sendto(
                fd,
                message.as_ptr().cast(),
                message.len(),
                libc::MSG_NOSIGNAL,
                (&raw const addr).cast(),
                len,
            )
        };
        let result = if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        };
        // SAFETY: `fd` is ours and closed once.
        unsafe { libc::close(fd) };
        if let Err(e) = &result {
            debug!("could not notify systemd: {e}");
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    fn received(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a datagram");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn datagrams_reach_a_socket_in_the_file_system() {
        let dir = std::env::temp_dir().join(format!("sfpair-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::from_vars(path.to_str(), Some("30000000"), None, 1);
        assert!(n.is_active());
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(15)));
        n.ready().unwrap();
        assert_eq!(received(&listener), "READY=1");
        n.status(&status_waiting("WXYZ-1234", 9)).unwrap();
        assert_eq!(
            received(&listener),
            "STATUS=waiting for approval: code WXYZ-1234, 9 min left"
        );
        n.watchdog().unwrap();
        assert_eq!(received(&listener), "WATCHDOG=1");
        n.stopping().unwrap();
        assert_eq!(received(&listener), "STOPPING=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn datagrams_reach_an_abstract_socket() {
        let name = format!("sfpair-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::from_vars(Some(&format!("@{name}")), None, None, 1);
        n.status(&status_repair_needed(Cause::RevokedOrExpired))
            .unwrap();
        assert_eq!(
            received(&listener),
            "STATUS=re-pair needed: the refresh token was revoked or expired"
        );
        assert_eq!(n.watchdog_interval(), None);
    }

    #[test]
    fn without_a_usable_socket_everything_is_a_no_op() {
        for socket in [
            None,
            Some(""),
            Some("@"),
            Some("relative/path"),
            Some("vsock:2:1"),
        ] {
            let n = Notifier::from_vars(socket, Some("1000000"), None, 1);
            assert!(!n.is_active(), "{socket:?}");
            assert_eq!(n.watchdog_interval(), None);
            n.ready().unwrap();
        }
        let long = format!("/{}", "x".repeat(SUN_PATH));
        assert!(!Notifier::from_vars(Some(&long), None, None, 1).is_active());
    }

    #[test]
    fn the_watchdog_is_only_for_the_process_it_names() {
        let s = Some("/run/systemd/notify");
        let ping = |usec, pid| Notifier::from_vars(s, usec, pid, 42).watchdog_interval();
        assert_eq!(
            ping(Some("2000000"), Some("42")),
            Some(Duration::from_secs(1))
        );
        assert_eq!(ping(Some("2000000"), Some("7")), None);
        assert_eq!(ping(Some("soon"), None), None);
        assert_eq!(ping(Some("0"), None), None);
        assert_eq!(ping(None, None), None);
    }

    #[test]
    fn status_lines_are_one_line_and_say_what_people_need() {
        assert_eq!(
            status_paired("00D000000000001", Some(Duration::from_secs(7200))).as_str(),
            "paired with org 00D000000000001, last refresh 2 hours ago"
        );
        assert_eq!(
            status_waiting("AB\nCD", 1).as_str(),
            "waiting for approval: code AB CD, 1 min left"
        );
    }

    #[test]
    fn a_listener_that_is_gone_is_an_error_not_a_panic() {
        let n = Notifier::from_vars(Some("/nonexistent/sfpair/notify"), None, None, 1);
        assert!(n.ready().is_err());
    }
}
