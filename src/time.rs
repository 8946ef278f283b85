//! Monotonic time for every deadline, and the one real clock.
//!
//! [`Instant`] is a point on a monotonic clock, as the time since the clock's origin, so the pure
//! flow can do arithmetic on it and tests can write `Instant::from_secs(5)`. The wall clock is
//! only read for timestamps that leave the device (issued-at, pairing age) and for the clock
//! sanity check; never for a deadline, because a board without a battery-backed clock jumps from
//! 1970 to now when NTP syncs. `FakeClock` lives in `testing.rs`.

use core::ops::Add;
use core::time::Duration;

/// A point on a monotonic clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(Duration::from_millis(ms))
    }

    /// `s` seconds after the origin.
    pub const fn from_secs(s: u64) -> Self {
        Instant(Duration::from_secs(s))
    }

    /// Time since the clock's origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }
}

/// Where the agent gets time from and how it waits. The real one is [`SystemClock`].
pub trait Clock: Send {
    /// Now, on the monotonic clock.
    fn now(&self) -> Instant;
    /// Blocks for `d` (a fake clock just advances).
    fn sleep(&self, d: Duration);
    /// Wall-clock time since the Unix epoch (may be wrong on boards without an RTC).
    fn unix_time(&self) -> Duration;
    /// Sleeps for `d` or until `stop` is set, whichever comes first; `true` when stopped. A
    /// fake clock advances by `d`, then looks at the stop.
    #[cfg(feature = "std")]
    fn sleep_or_stop(&self, d: Duration, stop: &crate::stop::Stop) -> bool {
        self.sleep(d);
        stop.is_stopped()
    }
}

/// `std::time::Instant` (CLOCK_MONOTONIC) and `SystemTime`.
#[cfg(feature = "std")]
pub struct SystemClock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl SystemClock {
    /// The system's clocks.
    pub fn new() -> Self {
        SystemClock {
            origin: std::time::Instant::now(),
        }
    }
}

#[cfg(feature = "std")]
impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

#[cfg(feature = "std")]
impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant(self.origin.elapsed())
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }

    fn sleep_or_stop(&self, d: Duration, stop: &crate::stop::Stop) -> bool {
        stop.sleep(d)
    }

    fn unix_time(&self) -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_add_and_subtract_without_panicking() {
        let t = Instant::from_secs(10) + Duration::from_millis(500);
        assert_eq!(
            t.saturating_since(Instant::from_secs(4)),
            Duration::from_millis(6500)
        );
        assert_eq!(Instant::from_secs(4).saturating_since(t), Duration::ZERO);
        assert_eq!(
            (Instant::from_secs(1) + Duration::MAX).since_origin(),
            Duration::MAX
        );
    }
}

/// `YYYY-MM-DD HH:MM UTC` for Unix seconds.
pub fn format_utc(unix_secs: u64) -> alloc::string::String {
    let (year, month, day, secs) = civil(unix_secs);
    alloc::format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// Year, month, day and seconds of the day for Unix seconds, without a calendar crate
/// (days-to-civil from Howard Hinnant's `chrono`-compatible algorithms, public domain).
fn civil(unix_secs: u64) -> (i64, i64, i64, u64) {
    let days = (unix_secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
        unix_secs % 86_400,
    )
}

/// `2026-12-07T06:24:55Z`: a Salesforce datetime field's value for Unix seconds.
pub fn format_iso8601(unix_secs: u64) -> alloc::string::String {
    let (year, month, day, secs) = civil(unix_secs);
    alloc::format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Unix seconds of a datetime as Salesforce writes them (`2026-12-07T06:24:55.000+0000`,
/// `…Z`, `…+01:00`); `None` for anything else. Fractions of a second are dropped.
pub fn parse_datetime(text: &str) -> Option<u64> {
    let t = text.trim();
    let num = |s: &str| -> Option<i64> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (date, rest) = t.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (year, month, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let time = rest.get(..8)?;
    let mut hms = time.splitn(3, ':');
    let (h, m, sec) = (num(hms.next()?)?, num(hms.next()?)?, num(hms.next()?)?);
    let mut zone = &rest[8..];
    if let Some(frac) = zone.strip_prefix('.') {
        zone = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match zone {
        "Z" | "" => 0,
        z if z.len() >= 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let digits = z[1..].replace(':', "");
            let (zh, zm) = (num(digits.get(..2)?)?, num(digits.get(2..4)?)?);
            let sign = if z.starts_with('-') { -1 } else { 1 };
            sign * (zh * 3600 + zm * 60)
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from civil (the inverse of `civil`).
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + sec - offset).ok()
}

#[cfg(test)]
mod format_tests {
    use super::format_utc;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        // `date -u -d @1477674717` → Fri Oct 28 17:11:57 UTC 2016 (the SalesforcePy sample).
        assert_eq!(format_utc(1_477_674_717), "2016-10-28 17:11 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn salesforce_datetimes_round_trip() {
        use super::{format_iso8601, parse_datetime};
        assert_eq!(format_iso8601(1_477_674_717), "2016-10-28T17:11:57Z");
        assert_eq!(parse_datetime("2016-10-28T17:11:57Z"), Some(1_477_674_717));
        assert_eq!(
            parse_datetime("2016-10-28T17:11:57.000+0000"),
            Some(1_477_674_717)
        );
        assert_eq!(
            parse_datetime("2016-10-28T18:11:57+01:00"),
            Some(1_477_674_717)
        );
        assert_eq!(parse_datetime("2000-02-29T00:00:00Z"), Some(951_782_400));
        for bad in [
            "",
            "2016-10-28",
            "2016-13-28T00:00:00Z",
            "2016-10-28T17:11:57 UTC",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        for t in [0u64, 86_399, 951_782_400, 1_795_000_000] {
            assert_eq!(parse_datetime(&format_iso8601(t)), Some(t));
        }
    }
}

/// A duration as people say it: `less than a minute`, `5 minutes`, `3 hours`, `12 days`
/// (rounded down; one unit is enough to tell how old a pairing is).
pub fn format_age(secs: u64) -> alloc::string::String {
    let (n, unit) = match secs {
        0..60 => return "less than a minute".into(),
        60..3_600 => (secs / 60, "minute"),
        3_600..86_400 => (secs / 3_600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    alloc::format!("{n} {unit}{plural}")
}

#[cfg(test)]
mod age_tests {
    use super::format_age;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(format_age(59), "less than a minute");
        assert_eq!(format_age(60), "1 minute");
        assert_eq!(format_age(3_599), "59 minutes");
        assert_eq!(format_age(7_200), "2 hours");
        assert_eq!(format_age(86_400), "1 day");
        assert_eq!(format_age(40 * 86_400 + 5), "40 days");
    }
}

/// Why a duration could not be read (the caller names the flag or variable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadDuration;

impl core::fmt::Display for BadDuration {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(
            "is not a duration: give whole seconds (3600) or a number with s, m, h or d \
             (90m, 12h, 7d); 0 means off",
        )
    }
}

/// A duration as given on a command line: whole seconds (`3600`) or a whole number with one
/// suffix, `s`, `m`, `h` or `d` (`90m`, `7d`). `0` (with or without a suffix) is zero, which
/// callers read as "off". Nothing else: no fractions, signs, spaces inside or combined units,
/// so a typo is an error rather than a surprise.
pub fn parse_duration(text: &str) -> Result<Duration, BadDuration> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadDuration);
    }
    let n: u64 = digits.parse().map_err(|_| BadDuration)?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(BadDuration),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or(BadDuration)
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn seconds_and_suffixes() {
        let secs = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("3600"), Ok(3600));
        assert_eq!(secs("45s"), Ok(45));
        assert_eq!(secs("90m"), Ok(5400));
        assert_eq!(secs("12h"), Ok(43_200));
        assert_eq!(secs("7d"), Ok(604_800));
        assert_eq!(secs(" 7d "), Ok(604_800));
        assert_eq!(secs("0"), Ok(0));
        assert_eq!(secs("0d"), Ok(0));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            " ",
            "d",
            "7D",
            "7w",
            "1.5h",
            "-1",
            "+1",
            "7 d",
            "1h30m",
            "7dd",
            "ten",
            "99999999999999999999",
            "213503982334602d",
        ] {
            assert_eq!(parse_duration(bad), Err(BadDuration), "{bad:?}");
        }
    }
}
