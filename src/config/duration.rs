//! Durations written like `500ms`, `5s`, `2m`, `1h 30m` (humantime syntax), each checked
//! against the bound of the key it is written at.
//!
//! humantime's own arithmetic is checked, but what it accepts can still be absurd:
//! `99999999999999d` is a valid `Duration` of 274 billion years, and the millisecond
//! arithmetic done with it later (`as_millis()` as `u64`, `Instant + d`, chrono) wraps or
//! panics. So every key that takes a duration names a [`Bound`], and [`Bound::parse`] is the
//! one place that parses and checks; its message always names the value and the bound. The
//! bounds are listed in the README's key tables.

use std::time::Duration;

/// One minute.
pub const MINUTE: Duration = Duration::from_secs(60);
/// One hour.
pub const HOUR: Duration = Duration::from_secs(3600);
/// One day.
pub const DAY: Duration = Duration::from_secs(86_400);

/// The shortest and longest duration a key accepts, and what the key is (for the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    what: &'static str,
    min: Duration,
    max: Duration,
}

impl Bound {
    /// A duration of at least `min` and at most `max`; `min` zero lets `0s` (or a bare `0`)
    /// through. `what` names the key in messages: "the longest allowed `what`".
    pub const fn new(what: &'static str, min: Duration, max: Duration) -> Self {
        Bound { what, min, max }
    }

    /// Longer than zero, at most `max`.
    pub const fn positive(what: &'static str, max: Duration) -> Self {
        Bound::new(what, Duration::from_nanos(1), max)
    }

    /// Zero ("no wait") or longer, at most `max`.
    pub const fn or_zero(what: &'static str, max: Duration) -> Self {
        Bound::new(what, Duration::ZERO, max)
    }

    pub const fn min(&self) -> Duration {
        self.min
    }

    pub const fn max(&self) -> Duration {
        self.max
    }

    /// Parses `raw` and checks it against the bound; the message names `raw` and the bound.
    pub fn parse(&self, raw: &str) -> Result<Duration, String> {
        let d = humantime::parse_duration(raw.trim()).map_err(|e| match e {
            // Past u64 seconds (or below 1 ns): far outside every bound.
            humantime::DurationError::NumberOverflow => format!(
                "`{raw}` is too large to be a duration; the longest allowed {} is {}",
                self.what,
                short(self.max)
            ),
            e => format!("`{raw}` is not a duration ({e}); write it like `500ms`, `5s` or `2m`"),
        })?;
        if d.is_zero() && !self.min.is_zero() {
            return Err(format!("`{raw}` must be longer than zero"));
        }
        if d < self.min {
            return Err(format!(
                "`{raw}` is shorter than the shortest allowed {} ({})",
                self.what,
                short(self.min)
            ));
        }
        if d > self.max {
            return Err(format!(
                "`{raw}` is longer than the longest allowed {} ({})",
                self.what,
                short(self.max)
            ));
        }
        Ok(d)
    }

    /// [`Bound::parse`] for a clap `value_parser`: the flag keeps the text as written (it is
    /// echoed in reports and passed on in URLs), and a bad value is a usage error.
    pub fn check_arg(&self, raw: &str) -> Result<String, String> {
        self.parse(raw).map(|_| raw.to_string())
    }
}

/// `d` in the largest unit that writes it exactly: `1d`, `90s`, `100ms`.
pub fn short(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        let s = d.as_secs();
        match s {
            0 => "0s".into(),
            s if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
            s if s.is_multiple_of(3600) => format!("{}h", s / 3600),
            s if s.is_multiple_of(60) => format!("{}m", s / 60),
            s => format!("{s}s"),
        }
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        humantime::format_duration(d).to_string().replace(' ', "")
    }
}

/// Whole milliseconds in `d`, saturating instead of wrapping past `u64::MAX`.
pub fn millis_u64(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whole microseconds in `d`, saturating instead of wrapping past `i64::MAX` (the stores keep
/// microseconds in a signed 64-bit column).
pub fn micros_i64(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Bound = Bound::positive("interval", DAY);
    const WAIT: Bound = Bound::or_zero("group wait", HOUR);
    const EVALUATION: Bound = Bound::new("evaluation interval", Duration::from_secs(1), HOUR);

    #[test]
    fn parses_common_forms() {
        assert_eq!(INTERVAL.parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(INTERVAL.parse("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(
            INTERVAL.parse(" 1h 30m ").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(INTERVAL.parse("1d").unwrap(), DAY);
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert_eq!(
            INTERVAL.parse("5").unwrap_err(),
            "`5` is not a duration (time unit needed, for example 5sec or 5ms); write it like `500ms`, `5s` or `2m`"
        );
        assert!(INTERVAL.parse("soon").is_err());
        assert!(INTERVAL.parse("").is_err());
    }

    #[test]
    fn zero_is_refused_unless_the_bound_starts_at_zero() {
        assert_eq!(
            INTERVAL.parse("0s").unwrap_err(),
            "`0s` must be longer than zero"
        );
        assert_eq!(
            INTERVAL.parse("0").unwrap_err(),
            "`0` must be longer than zero"
        );
        assert_eq!(WAIT.parse("0s").unwrap(), Duration::ZERO);
        assert_eq!(WAIT.parse("0").unwrap(), Duration::ZERO);
        assert_eq!(WAIT.parse("0m").unwrap(), Duration::ZERO);
    }

    #[test]
    fn the_bounds_are_inclusive_and_named_in_the_message() {
        assert_eq!(EVALUATION.parse("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(EVALUATION.parse("1h").unwrap(), HOUR);
        assert_eq!(
            EVALUATION.parse("999ms").unwrap_err(),
            "`999ms` is shorter than the shortest allowed evaluation interval (1s)"
        );
        assert_eq!(
            EVALUATION.parse("1h 1s").unwrap_err(),
            "`1h 1s` is longer than the longest allowed evaluation interval (1h)"
        );
    }

    #[test]
    fn an_absurd_duration_that_fits_in_a_duration_is_over_the_bound() {
        // 99999999999999 days fit in u64 seconds; their milliseconds do not fit in a u64.
        assert_eq!(
            INTERVAL.parse("99999999999999d").unwrap_err(),
            "`99999999999999d` is longer than the longest allowed interval (1d)"
        );
    }

    #[test]
    fn a_duration_past_u64_seconds_is_an_error_not_a_wrap() {
        for raw in [
            "99999999999999999999d",
            "18446744073709551615s 1s",
            "999999999999999999y",
        ] {
            assert_eq!(
                INTERVAL.parse(raw).unwrap_err(),
                format!(
                    "`{raw}` is too large to be a duration; the longest allowed interval is 1d"
                ),
                "{raw}"
            );
        }
    }

    #[test]
    fn a_flag_keeps_its_text() {
        assert_eq!(
            INTERVAL.check_arg("7d").unwrap_err(),
            "`7d` is longer than the longest allowed interval (1d)"
        );
        assert_eq!(INTERVAL.check_arg("2h").unwrap(), "2h");
    }

    #[test]
    fn short_writes_the_largest_exact_unit() {
        assert_eq!(short(DAY * 400), "400d");
        assert_eq!(short(HOUR), "1h");
        assert_eq!(short(Duration::from_secs(90)), "90s");
        assert_eq!(short(Duration::from_secs(120)), "2m");
        assert_eq!(short(Duration::from_millis(100)), "100ms");
        assert_eq!(short(Duration::from_millis(1500)), "1500ms");
        assert_eq!(short(Duration::ZERO), "0s");
    }

    #[test]
    fn conversions_saturate_instead_of_wrapping() {
        let absurd = Duration::from_secs(99_999_999_999_999 * 86_400);
        assert_eq!(millis_u64(absurd), u64::MAX);
        assert_eq!(micros_i64(absurd), i64::MAX);
        assert_eq!(millis_u64(Duration::from_secs(2)), 2000);
        assert_eq!(micros_i64(Duration::from_millis(3)), 3000);
    }
}
