//! The systemd notify protocol, spoken directly: one datagram per message to the AF_UNIX
//! socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace), no
//! libsystemd. `READY=1`, `STATUS=…` (shown by `systemctl status`), `WATCHDOG=1`,
//! `STOPPING=1`. Without `NOTIFY_SOCKET` every call does nothing.
//!
//! Callers pass only texts they built from non-secret facts: STATUS lines are readable by any
//! user through systemctl.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where notifications go, read once from the environment.
pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
    /// Half of `WATCHDOG_USEC` when the watchdog is on for this process.
    watchdog: Option<Duration>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| s.starts_with('/') || s.starts_with('@'))
            .and_then(|path| UnixDatagram::unbound().ok().map(|s| (s, path)));
        let ours = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && ours)
            .map(|usec| Duration::from_micros(usec / 2));
        Notifier { socket, watchdog }
    }

    /// How often to send `WATCHDOG=1`, when systemd watches this process.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one message (`READY=1`, `STATUS=…`); a failure is logged, never fatal.
    pub fn send(&self, message: &str) {
        let Some((socket, path)) = &self.socket else {
            return;
        };
        let sent = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
            }
            None => socket.send_to(message.as_bytes(), path),
        };
        if let Err(e) = sent {
            log::debug!("notify {path}: {e}");
        }
    }

    pub fn status(&self, text: &str) {
        // One line: systemctl shows STATUS as is.
        let line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.send(&format!("STATUS={line}"));
    }
}
