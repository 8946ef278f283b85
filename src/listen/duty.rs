//! `--listen-duty ON/EVERY`: a fleet larger than the org's streaming client limit shares it.
//! Each device connects for ON out of every EVERY, in its own slot of the period (an offset
//! from its identity, so a fleet spreads evenly and a device keeps its slot across restarts),
//! catches up from its stored position, and disconnects. A turn the org's limit refused is
//! owed: the device keeps trying until it has been connected for ON in that period, so a
//! crowded slot delays a command by the wait, never by a whole period. docs/listen.md,
//! "Fleets", has the arithmetic.
//!
//! Pure: the caller gives the wall-clock time and sleeps.

use core::time::Duration;

use crate::error::Error;

/// A duty cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duty {
    /// How long to stay connected in each period.
    pub on: Duration,
    /// The period.
    pub every: Duration,
}

impl Duty {
    /// `2m/20m`: ON, then EVERY, each a duration (`crate::time::parse_duration`).
    pub fn parse(text: &str) -> Result<Duty, Error> {
        let bad = |why: &str| {
            Error::config(format!(
                "--listen-duty '{text}' {why}: give ON/EVERY, for example 2m/20m"
            ))
        };
        let (on, every) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("has no '/'"))?;
        let on = crate::time::parse_duration(on).map_err(|_| bad("has no ON duration"))?;
        let every = crate::time::parse_duration(every).map_err(|_| bad("has no EVERY duration"))?;
        if on.is_zero() || every < on {
            return Err(bad("needs 0 < ON <= EVERY"));
        }
        if every.as_secs() > 3 * 86_400 {
            return Err(bad(
                "has EVERY longer than the 72 hours the org keeps events",
            ));
        }
        Ok(Duty { on, every })
    }

    /// This device's offset in the period, from a stable identity (the inbox's id).
    pub fn offset(&self, identity: &str) -> Duration {
        // FNV-1a: stable across builds and platforms, spread enough for slots.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in identity.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Duration::from_secs(h % self.every.as_secs().max(1))
    }
}

/// One device's turns: when it is connected, and which period's turn it has had.
#[derive(Clone, Copy, Debug)]
pub struct Turns {
    duty: Duty,
    offset: Duration,
    /// The period whose turn began last (see [`Turns::period`]).
    served: Option<u64>,
    /// The end of the turn under way (seconds since the epoch).
    until: Option<u64>,
}

impl Turns {
    /// A device's turns at `offset` in each period ([`Duty::offset`]), starting at `now`:
    /// inside its slot's first ON it connects at once, otherwise at its next slot. (A fleet
    /// powered up together must not all connect at once; nothing is lost by waiting, as a
    /// device subscribes from its stored position, or from all that is retained.)
    pub fn new(duty: Duty, offset: Duration, now: u64) -> Turns {
        let mut turns = Turns {
            duty,
            offset,
            served: None,
            until: None,
        };
        let every = turns.every();
        let phase = (now + every - offset.as_secs() % every) % every;
        if phase >= duty.on.as_secs() {
            turns.served = Some(turns.period(now));
        }
        turns
    }

    /// The duty cycle.
    pub fn duty(&self) -> Duty {
        self.duty
    }

    /// `Ok(())` when the device should be connected at `now`: inside a turn under way, or
    /// owed this period's (its slot began and it has not been connected since);
    /// `Err(wait)` when its turn was had, with the time until the next slot.
    pub fn check(&self, now: u64) -> Result<(), Duration> {
        if self.until.is_some_and(|until| now < until) {
            return Ok(());
        }
        let period = self.period(now);
        if self.served != Some(period) {
            return Ok(());
        }
        let every = self.every();
        let next = (period + 1) * every + self.offset.as_secs() % every;
        // `period` counts from one period before the epoch (see `period`).
        Err(Duration::from_secs(
            (next - every).saturating_sub(now).max(1),
        ))
    }

    /// The device has subscribed at `now`: unless a turn is under way, one begins, ON long,
    /// and this period's is had.
    pub fn connected(&mut self, now: u64) {
        if self.until.is_some_and(|until| now < until) {
            return;
        }
        self.until = Some(now + self.duty.on.as_secs());
        self.served = Some(self.period(now));
    }

    /// Which period `now` falls in, periods starting at the device's slot; counted from one
    /// period before the epoch, so that no subtraction goes below zero.
    fn period(&self, now: u64) -> u64 {
        let every = self.every();
        (now + every - self.offset.as_secs() % every) / every
    }

    fn every(&self) -> u64 {
        self.duty.every.as_secs().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_on_and_every_and_refuses_nonsense() {
        let d = Duty::parse("2m/20m").unwrap();
        assert_eq!((d.on.as_secs(), d.every.as_secs()), (120, 1200));
        for bad in ["", "2m", "20m/2m", "0/10m", "2m/5d", "x/10m"] {
            assert!(Duty::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_limits_are_inclusive_at_their_edges() {
        // ON may be the whole period (always connected), and EVERY exactly the 72 hours the
        // org keeps events; one second more is refused.
        let d = Duty::parse("2m/2m").unwrap();
        assert_eq!((d.on.as_secs(), d.every.as_secs()), (120, 120));
        assert_eq!(Duty::parse("1m/72h").unwrap().every.as_secs(), 259_200);
        let e = Duty::parse("1m/259201s").unwrap_err();
        assert!(e.message().contains("72 hours"), "{e}");
    }

    #[test]
    fn a_turn_lasts_on_from_the_connection_and_comes_once_per_period() {
        let d = Duty::parse("2m/20m").unwrap();
        // Started before its slot: it waits for it.
        let mut t = Turns::new(d, Duration::from_secs(300), 100);
        assert_eq!(t.check(100), Err(Duration::from_secs(200)));
        assert_eq!(t.check(299), Err(Duration::from_secs(1)));
        // Its slot: connected at once, for ON.
        assert_eq!(t.check(300), Ok(()));
        t.connected(300);
        t.connected(350);
        assert_eq!(t.check(419), Ok(()));
        assert_eq!(t.check(420), Err(Duration::from_secs(1080)));
        assert_eq!(t.check(1499), Err(Duration::from_secs(1)));
        assert_eq!(t.check(1500), Ok(()));
    }

    #[test]
    fn a_turn_the_limit_refused_is_owed_until_it_is_had() {
        let d = Duty::parse("2m/20m").unwrap();
        let mut t = Turns::new(d, Duration::from_secs(300), 310);
        assert_eq!(t.check(310), Ok(()), "started inside its slot");
        t.connected(310);
        assert_eq!(t.check(429), Ok(()));
        assert_eq!(t.check(430), Err(Duration::from_secs(1070)));
        // The next slot (1500) is crowded: refused until 1700, past its nominal window.
        for now in [1500, 1620, 1699] {
            assert_eq!(t.check(now), Ok(()), "{now}");
        }
        t.connected(1700);
        assert_eq!(t.check(1819), Ok(()));
        assert_eq!(t.check(1820), Err(Duration::from_secs(880)));
        assert_eq!(t.check(2700), Ok(()));
    }

    #[test]
    fn a_connection_at_the_end_of_a_turn_begins_the_next_periods_turn() {
        let d = Duty::parse("2m/20m").unwrap();
        let mut t = Turns::new(d, Duration::from_secs(300), 310);
        // Refused for its whole slot period; it gets on late, and its turn runs past 1500,
        // where the next period begins.
        t.connected(1440);
        assert_eq!(t.check(1559), Ok(()));
        // The turn ends at 1560 and the new period's is owed: a connection at that very second
        // is that turn, ON long, and then the device waits for its slot at 2700.
        assert_eq!(t.check(1560), Ok(()));
        t.connected(1560);
        assert_eq!(t.check(1679), Ok(()));
        assert_eq!(t.check(1680), Err(Duration::from_secs(1020)));
    }

    #[test]
    fn a_fleet_spreads_over_the_period() {
        let d = Duty::parse("2m/20m").unwrap();
        let mut slots = [0usize; 10];
        for n in 0..10_000 {
            let o = d.offset(&format!("device-{n:016x}"));
            slots[(o.as_secs() / 120) as usize] += 1;
        }
        for s in slots {
            assert!((800..=1200).contains(&s), "{slots:?}");
        }
    }
}
