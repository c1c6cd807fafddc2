//! When and how often a check runs: the `interval`, `timeout` and `retry_on_failure` every kind
//! shares, resolved against the section's defaults and validated here once for all of them.

use std::time::Duration;

use serde::Deserialize;

use super::Validator;
use crate::config::duration::{Bound, DAY, HOUR};

/// When and how a check runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub interval: Duration,
    pub timeout: Duration,
    /// Offsets are drawn in [0, max_offset).
    pub max_offset: Duration,
    pub retry: Option<Retry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub count: u32,
    pub delay: Duration,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub count: u32,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub delay: Option<String>,
}

/// The schedule fields one check entry wrote (kinds without `retry_on_failure` give `None`
/// and inherit the section's).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawSchedule<'a> {
    pub interval: Option<&'a str>,
    pub timeout: Option<&'a str>,
    pub retry: Option<&'a RawRetry>,
}

/// The start offset never exceeds this, whatever the interval.
const MAX_OFFSET_CAP: Duration = Duration::from_secs(120);

/// A check runs at least daily: a longer interval is a typo, and a day keeps every run's
/// millisecond arithmetic far from overflow. Its timeout never exceeds its interval (see
/// [`overlap`]).
pub(crate) const INTERVAL: Bound = Bound::positive("interval", DAY);
pub(crate) const TIMEOUT: Bound = Bound::positive("timeout", DAY);
/// Larger than [`MAX_OFFSET_CAP`] is accepted and capped, as before; past a day it is a typo.
const MAX_OFFSET: Bound = Bound::positive("start offset", DAY);
/// A retest waits at most an hour: longer, and the failure it confirms is stale.
const RETRY_DELAY: Bound = Bound::or_zero("retry delay", HOUR);
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(5);

/// The section-wide values a check's own schedule falls back to.
#[derive(Debug, Clone)]
pub(super) struct Defaults {
    interval: Duration,
    timeout: Option<Duration>,
    max_offset: Duration,
    retry: Option<Retry>,
}

impl Defaults {
    /// The `checks.interval`, `checks.timeout`, `checks.max_offset` and
    /// `checks.retry_on_failure` defaults.
    pub(super) fn parse(
        v: &mut Validator<'_>,
        interval: &Option<String>,
        timeout: &Option<String>,
        max_offset: &Option<String>,
        retry: &Option<RawRetry>,
    ) -> Self {
        Defaults {
            interval: v
                .duration("checks.interval", interval.as_deref(), INTERVAL)
                .unwrap_or(Duration::from_secs(60)),
            timeout: v.duration("checks.timeout", timeout.as_deref(), TIMEOUT),
            max_offset: v
                .duration("checks.max_offset", max_offset.as_deref(), MAX_OFFSET)
                .unwrap_or(MAX_OFFSET_CAP),
            retry: retry
                .as_ref()
                .map(|r| Retry::parse(v, "checks.retry_on_failure", r)),
        }
    }

    /// The schedule of the entry at `path`: its own fields, else the defaults. A timeout left
    /// unset stays below the interval, so a run never runs into its next slot.
    pub(super) fn resolve(
        &self,
        v: &mut Validator<'_>,
        path: &str,
        raw: RawSchedule<'_>,
    ) -> Schedule {
        let interval = v
            .duration(&format!("{path}.interval"), raw.interval, INTERVAL)
            .unwrap_or(self.interval);
        let timeout = v
            .duration(&format!("{path}.timeout"), raw.timeout, TIMEOUT)
            .or(self.timeout)
            .unwrap_or_else(|| interval.mul_f64(0.8));
        let retry = match raw.retry {
            Some(r) => Some(Retry::parse(v, &format!("{path}.retry_on_failure"), r)),
            None => self.retry,
        };
        Schedule {
            interval,
            timeout,
            max_offset: self.max_offset.min(interval).min(MAX_OFFSET_CAP),
            retry,
        }
    }
}

impl Retry {
    /// The `retry_on_failure` written at `path`; a bad `delay` is reported, and the default
    /// stands in for it.
    fn parse(v: &mut Validator<'_>, path: &str, raw: &RawRetry) -> Retry {
        Retry {
            count: raw.count,
            delay: v
                .duration(&format!("{path}.delay"), raw.delay.as_deref(), RETRY_DELAY)
                .unwrap_or(DEFAULT_RETRY_DELAY),
        }
    }
}

/// Why a schedule cannot run as written: a check must not overlap itself by design, so its
/// timeout never exceeds its interval.
pub(super) fn overlap(name: &str, s: &Schedule) -> Option<String> {
    (s.timeout > s.interval).then(|| {
        format!(
            "check `{name}`: timeout {} ms is longer than its interval {} ms",
            s.timeout.as_millis(),
            s.interval.as_millis()
        )
    })
}
