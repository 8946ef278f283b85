//! Is the wall clock plausible? TLS needs it; monotonic deadlines do not.
//!
//! A board without a battery-backed clock boots in 1970 (or at its image's build date) until NTP
//! syncs, and TLS then fails with a baffling "certificate not yet valid". A clock earlier than
//! this binary's build time is certainly wrong, so the agent says so in plain words and waits
//! (bounded) for time sync before its first handshake. Pure: the time comes in as an argument.

use core::time::Duration;

/// When this binary was built (Unix seconds), from `build.rs`.
pub const BUILD_UNIX: u64 = parse_u64(env!("SFPAIR_BUILD_UNIX"));

const fn parse_u64(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut n: u64 = 0;
    while i < bytes.len() {
        n = n * 10 + (bytes[i] - b'0') as u64;
        i += 1;
    }
    n
}

/// What the clock check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Plausible,
    /// The wall clock reads earlier than the build: certificates cannot be checked.
    BeforeBuild {
        now: u64,
        built: u64,
    },
}

/// Compares the wall clock (`now`, since the Unix epoch) with the build time. A day of slack
/// covers a build machine whose own clock ran ahead.
pub fn check(now: Duration, built: u64) -> Verdict {
    const SLACK: u64 = 86_400;
    let now = now.as_secs();
    if now + SLACK < built {
        Verdict::BeforeBuild { now, built }
    } else {
        Verdict::Plausible
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_in_1970_is_caught_and_a_current_one_passes() {
        let built = 1_795_000_000; // November 2026
        assert_eq!(
            check(Duration::from_secs(12), built),
            Verdict::BeforeBuild { now: 12, built }
        );
        assert_eq!(
            check(Duration::from_secs(built + 5), built),
            Verdict::Plausible
        );
        assert_eq!(
            check(Duration::from_secs(built - 3600), built),
            Verdict::Plausible,
            "slack"
        );
        assert_eq!(parse_u64("1795000000"), 1_795_000_000);
    }
}
