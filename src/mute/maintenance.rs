//! Maintenance windows (`maintenance_windows:` in the config): one-off (`start`/`end`) or weekly
//! (days, a local start time, a duration, an IANA time zone). Inside a window, notifications of
//! matching alerts are muted and runs of matching checks are recorded as `maintenance` instead
//! of their outcome, so SLIs (which count `pass` and `fail`) leave them out of the budget. The
//! store keeps the window's name with the run (`runs.maintenance`), so the gate, the report,
//! the run pages and the metrics replay at start read the mark as it was judged when the run
//! happened, whatever the windows say later.
//!
//! A weekly window starts at the local time on each listed day and lasts `duration` of real
//! (elapsed) time, so across a DST change it keeps its length and moves in UTC with the wall
//! clock. A start time that does not exist that day (spring forward) starts when the clock
//! jumps (the first instant after the gap); one that happens twice (fall back) starts at the
//! first.

use std::sync::RwLock;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use crate::notify::dispatch::Muter;
use crate::notify::message::Labels;
use crate::rules::model::Matchers;
use crate::run::RunResult;

/// When a window is open.
#[derive(Debug, Clone)]
pub enum Schedule {
    Once {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    Weekly {
        days: Vec<Weekday>,
        start: NaiveTime,
        duration: Duration,
        tz: Tz,
    },
}

#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    pub name: String,
    /// Alert (and run) labels the window applies to; empty: everything.
    pub matchers: Matchers,
    pub schedule: Schedule,
}

/// The instant a local date and time means in `tz` (see the module doc for gaps and folds).
fn local_to_utc(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        chrono::LocalResult::None => {
            // In a gap: walk forward minute by minute to the first local time that exists.
            (1..=180).find_map(|m| {
                tz.from_local_datetime(&(naive + Duration::minutes(m)))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
            })
        }
    }
}

impl MaintenanceWindow {
    /// Whether the window is open at `t`.
    pub fn open_at(&self, t: DateTime<Utc>) -> bool {
        match &self.schedule {
            Schedule::Once { start, end } => *start <= t && t < *end,
            Schedule::Weekly {
                days,
                start,
                duration,
                tz,
            } => {
                // An occurrence open at t started at most `duration` before it: look at the local
                // dates from (t - duration) to t, one day of margin on each side.
                let local = t.with_timezone(tz).date_naive();
                let back = duration.num_days() + 1;
                (-back..=1).any(|d| {
                    let date = local + Duration::days(d);
                    days.contains(&date.weekday())
                        && local_to_utc(*tz, date, *start)
                            .is_some_and(|s| s <= t && t < s + *duration)
                })
            }
        }
    }

    pub fn applies(&self, labels: &Labels) -> bool {
        self.matchers.matches(labels)
    }
}

/// The maintenance mute stage and run classifier.
#[derive(Debug, Default)]
pub struct Maintenance {
    windows: RwLock<Vec<MaintenanceWindow>>,
}

impl Maintenance {
    pub fn new(windows: Vec<MaintenanceWindow>) -> Maintenance {
        Maintenance {
            windows: RwLock::new(windows),
        }
    }

    pub fn set_windows(&self, windows: Vec<MaintenanceWindow>) {
        *self.windows.write().expect("maintenance lock") = windows;
    }

    /// The name of the window covering `labels` at `t`, if any.
    pub fn window_for(&self, labels: &Labels, t: DateTime<Utc>) -> Option<String> {
        self.windows
            .read()
            .expect("maintenance lock")
            .iter()
            .find(|w| w.applies(labels) && w.open_at(t))
            .map(|w| w.name.clone())
    }

    /// The window a run falls in: judged at its intended start, on its `check`, `location` and
    /// `target` labels.
    pub fn window_for_run(&self, run: &RunResult) -> Option<String> {
        let labels: Labels = [
            ("check", run.check.as_str()),
            ("location", run.location.as_str()),
            ("target", run.target.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        self.window_for(&labels, run.scheduled_at)
    }
}

impl Muter for Maintenance {
    /// Never the watchdog: maintenance of the target is not synmon stopping, and a window
    /// without matchers must not set off the dead man's switch.
    fn muted(&self, labels: &Labels, now: DateTime<Utc>) -> bool {
        labels.get("alertname").map(String::as_str) != Some(super::watchdog::ALERTNAME)
            && self.window_for(labels, now).is_some()
    }
}

impl Maintenance {
    /// Records a finished run into the metrics: inside a window as `maintenance` (see
    /// [`crate::metrics::runs`], which maps the mark), otherwise as `Registry::record_run` does.
    /// Returns the window's name, if the run fell in one.
    pub fn record_run(
        &self,
        registry: &crate::metrics::registry::Registry,
        run: &RunResult,
        at: DateTime<Utc>,
    ) -> Result<Option<String>, crate::metrics::MetricsError> {
        let window = self.window_for_run(run);
        registry
            .record_run_marked(run, window.as_deref(), at)
            .map(|_| window)
    }
}

/// The outcome label a run inside a maintenance window is recorded with.
pub use crate::metrics::runs::MAINTENANCE_OUTCOME;

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly(day: Weekday, h: u32, m: u32, hours: i64, tz: Tz) -> MaintenanceWindow {
        MaintenanceWindow {
            name: "w".into(),
            matchers: Matchers::default(),
            schedule: Schedule::Weekly {
                days: vec![day],
                start: NaiveTime::from_hms_opt(h, m, 0).unwrap(),
                duration: Duration::hours(hours),
                tz,
            },
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn spring_forward_gap_starts_when_the_clock_jumps() {
        // 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST; 02:30 does not exist.
        let w = weekly(Weekday::Sun, 2, 30, 1, chrono_tz::Europe::Berlin);
        assert!(!w.open_at(utc("2026-03-29T00:59:59Z")));
        assert!(w.open_at(utc("2026-03-29T01:00:00Z")), "03:00 CEST");
        assert!(!w.open_at(utc("2026-03-29T02:00:00Z")));
    }

    #[test]
    fn fall_back_fold_starts_at_the_first() {
        // 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
        let w = weekly(Weekday::Sun, 2, 30, 1, chrono_tz::Europe::Berlin);
        assert!(w.open_at(utc("2026-10-25T00:30:00Z")), "02:30 CEST");
        assert!(
            !w.open_at(utc("2026-10-25T01:30:00Z")),
            "not again at 02:30 CET"
        );
    }

    #[test]
    fn a_window_crossing_midnight_and_a_one_off() {
        let w = weekly(Weekday::Sat, 23, 0, 3, chrono_tz::UTC);
        assert!(
            w.open_at(utc("2026-11-29T01:59:00Z")),
            "Sunday 01:59, from Saturday"
        );
        assert!(!w.open_at(utc("2026-11-29T02:00:00Z")));
        let once = MaintenanceWindow {
            name: "o".into(),
            matchers: Matchers::default(),
            schedule: Schedule::Once {
                start: utc("2026-12-01T10:00:00Z"),
                end: utc("2026-12-01T11:00:00Z"),
            },
        };
        assert!(!once.open_at(utc("2026-12-01T09:59:59Z")));
        assert!(once.open_at(utc("2026-12-01T10:00:00Z")));
        assert!(!once.open_at(utc("2026-12-01T11:00:00Z")));
        let m = Maintenance::new(vec![once]);
        let wd = Labels::from([("alertname".into(), super::super::watchdog::ALERTNAME.into())]);
        let other = Labels::from([("alertname".into(), "uptime_low".into())]);
        let t = utc("2026-12-01T10:30:00Z");
        assert!(m.muted(&other, t));
        assert!(
            !m.muted(&wd, t),
            "the watchdog keeps pinging through maintenance"
        );
    }
}
