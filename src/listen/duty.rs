//! `--listen-duty ON/EVERY`: a fleet larger than the org's streaming client limit shares it.
//! Each device connects for ON out of every EVERY, in its own slot of the period (an offset
//! from its identity, so a fleet spreads evenly and a device keeps its slot across restarts),
//! catches up from its stored position, and disconnects. docs/listen.md, "Fleets", has the
//! arithmetic.
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

    /// Where `now` (seconds since the epoch) stands for a device with `offset`: `Ok(left)` when
    /// inside its window, with the time left in it; `Err(wait)` when outside, with the time to
    /// the next window.
    pub fn window(&self, now: u64, offset: Duration) -> Result<Duration, Duration> {
        let every = self.every.as_secs().max(1);
        let phase = (now + every - offset.as_secs() % every) % every;
        let on = self.on.as_secs();
        if phase < on {
            Ok(Duration::from_secs(on - phase))
        } else {
            Err(Duration::from_secs(every - phase))
        }
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
    fn each_device_has_its_window_once_per_period() {
        let d = Duty::parse("2m/20m").unwrap();
        let offset = Duration::from_secs(300);
        assert_eq!(d.window(300, offset), Ok(Duration::from_secs(120)));
        assert_eq!(d.window(419, offset), Ok(Duration::from_secs(1)));
        assert_eq!(d.window(420, offset), Err(Duration::from_secs(1080)));
        assert_eq!(d.window(1500, offset), Ok(Duration::from_secs(120)));
        // Over one period, connected exactly ON seconds.
        let on = (0..1200).filter(|t| d.window(*t, offset).is_ok()).count();
        assert_eq!(on, 120);
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
