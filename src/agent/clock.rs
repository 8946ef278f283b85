//! Waiting out an implausible wall clock (a board without a battery boots in 1970): TLS would
//! fail with a confusing "certificate not yet valid", so the agent waits, bounded, and says why.

use std::time::Duration;

use log::{info, warn};

use super::{Agent, TICK};
use crate::clock_check;
use crate::error::Error;

impl Agent {
    /// Waits (at most `limit`) until the wall clock is plausible, i.e. not earlier than this
    /// binary's build. Call before the first TLS handshake: with a clock in 1970 every
    /// certificate is "not yet valid", and the person deserves the real reason.
    pub fn wait_for_clock(&mut self, limit: Duration) -> Result<(), Error> {
        let started = self.clock.now();
        let mut warned = false;
        loop {
            let clock_check::Verdict::BeforeBuild { now, built } =
                clock_check::check(self.clock.unix_time(), clock_check::BUILD_UNIX)
            else {
                if warned {
                    info!("the system clock is set now; going on");
                }
                return Ok(());
            };
            let waited = self.clock.now().saturating_since(started);
            if waited >= limit {
                return Err(Error::network(format!(
                    "the system clock says {} but this sfpair was built on {}: the clock is \
                     not set, so no server certificate can be checked. Set the time or let NTP \
                     sync (waited {} s; --wait-for-clock sets how long)",
                    crate::time::format_utc(now),
                    crate::time::format_utc(built),
                    waited.as_secs()
                )));
            }
            if !warned {
                warn!(
                    "the system clock says {}, before this sfpair was built ({}); waiting up to \
                     {} s for time sync (NTP) before connecting",
                    crate::time::format_utc(now),
                    crate::time::format_utc(built),
                    limit.as_secs()
                );
                warned = true;
            }
            self.pause(TICK.min(limit - waited), "waiting for the clock")?;
        }
    }
}
