//! Options for the coming `sfpair run` command (pair if not paired, then serve the broker and
//! keep the pairing alive). Options only: there is no `run` command yet, and nothing here runs
//! anything. `config` fills them in ([`crate::config::Settings::run_options`]) so that the
//! command, when it lands, reads no argument or variable itself.

use std::time::Duration;

/// What `run` will need from the settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `--keepalive` / `SFPAIR_KEEPALIVE` (default 7 days): refresh at least this often, even
    /// when no client asks, so an idle-expiry refresh token policy ("expire if not used for
    /// N days"; the 30-day idle limit) never sees the pairing idle. `None`: off (`0`). Schedule
    /// the next refresh with `crate::keepalive::next_due`.
    pub keepalive: Option<Duration>,
}
