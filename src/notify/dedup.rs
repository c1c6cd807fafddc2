//! Deduplication against the notification log, as Alertmanager's `DedupStage.needsUpdate`:
//! a group is notified again only when something a person would want to know changed.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// What the log says the receiver was last told about the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub firing: BTreeSet<String>,
    pub resolved: BTreeSet<String>,
    pub at: DateTime<Utc>,
}

/// Whether the group with `firing` / `resolved` alerts (fingerprints) must be notified now.
///
/// - never notified: only if something fires (a group that fired and resolved between two
///   flushes was never seen by the receiver, so it hears nothing);
/// - a firing alert the receiver has not heard about: yes;
/// - nothing fires any more: yes if the receiver was last told something was firing
///   (regardless of `send_resolved`, so the log forgets the firing set);
/// - with `send_resolved`, a newly resolved alert: yes;
/// - otherwise only when `repeat_interval` has passed since the last notification.
pub fn needs_update(
    sent: Option<&Sent>,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
    send_resolved: bool,
    repeat: Duration,
    now: DateTime<Utc>,
) -> bool {
    let Some(sent) = sent else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&sent.firing) {
        return true;
    }
    if firing.is_empty() {
        return !sent.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&sent.resolved) {
        return true;
    }
    let repeat = chrono::Duration::from_std(repeat).unwrap_or(chrono::Duration::MAX);
    sent.at + repeat <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    /// Alertmanager's `TestDedupStageNeedsUpdate`, case by case.
    #[test]
    fn needs_update_table() {
        let repeat = Duration::from_secs(600);
        let sent = |f: &[&str], r: &[&str], t: i64| Sent {
            firing: set(f),
            resolved: set(r),
            at: at(t),
        };
        #[allow(clippy::type_complexity)]
        let cases: &[(&str, Option<Sent>, &[&str], &[&str], bool, i64, bool)] = &[
            ("first firing notifies", None, &["a"], &[], true, 0, true),
            (
                "first with only resolved stays quiet",
                None,
                &[],
                &["a"],
                true,
                0,
                false,
            ),
            (
                "same firing set within repeat",
                Some(sent(&["a", "b"], &[], 0)),
                &["a", "b"],
                &[],
                true,
                599,
                false,
            ),
            (
                "same firing set after repeat",
                Some(sent(&["a", "b"], &[], 0)),
                &["a", "b"],
                &[],
                true,
                600,
                true,
            ),
            (
                "firing set grew",
                Some(sent(&["a"], &[], 0)),
                &["a", "b"],
                &[],
                true,
                1,
                true,
            ),
            (
                "firing set shrank, resolved sent",
                Some(sent(&["a", "b"], &[], 0)),
                &["a"],
                &["b"],
                true,
                1,
                true,
            ),
            (
                "firing set shrank, resolved filtered",
                Some(sent(&["a", "b"], &[], 0)),
                &["a"],
                &["b"],
                false,
                1,
                false,
            ),
            (
                "resolved already sent",
                Some(sent(&["a"], &["b"], 0)),
                &["a"],
                &["b"],
                true,
                1,
                false,
            ),
            (
                "all resolved, was firing",
                Some(sent(&["a"], &[], 0)),
                &[],
                &["a"],
                false,
                1,
                true,
            ),
            (
                "all resolved, already told",
                Some(sent(&[], &["a"], 0)),
                &[],
                &["a"],
                true,
                1,
                false,
            ),
        ];
        for (name, s, f, r, send_resolved, t, want) in cases {
            assert_eq!(
                needs_update(s.as_ref(), &set(f), &set(r), *send_resolved, repeat, at(*t)),
                *want,
                "{name}"
            );
        }
    }
}
