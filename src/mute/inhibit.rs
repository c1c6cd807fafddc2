//! Inhibition (Alertmanager's `inhibit_rules`): while a *source* alert fires, *target* alerts
//! that share the `equal` labels with it are muted. An uptime page for a target inhibits the
//! latency alerts of the same target, so on-call hears about the outage once.
//!
//! The inhibitor learns which alerts fire at every `sync` of the pipeline ([`Muter::observe`])
//! and answers at flush time, so an inhibited alert comes back at the first flush after its
//! source stopped firing (its group's dedup sees a firing alert the receiver has not heard of).

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};

use crate::notify::dispatch::{IncomingAlert, Muter};
use crate::notify::message::Labels;

/// One inhibition: an `inhibit_rules` item of the config, or one a rule declares with
/// `inhibits:` ([`crate::rules::RuleSet::inhibit_rules`]).
pub use crate::rules::model::InhibitRule;

impl InhibitRule {
    /// Whether `source` (a firing alert) inhibits `target` under this rule. An alert matching
    /// both sides never inhibits another alert matching both sides (Alertmanager's
    /// `excludeTwoSidedMatch`), so such an alert cannot mute itself or its twins.
    fn inhibits(&self, source: &Labels, target: &Labels) -> bool {
        if !self.target.matches(target) || !self.source.matches(source) {
            return false;
        }
        if self.source.matches(target) && self.target.matches(source) {
            return false;
        }
        self.equal.iter().all(|l| {
            source.get(l).map(String::as_str).unwrap_or("")
                == target.get(l).map(String::as_str).unwrap_or("")
        })
    }
}

/// The inhibition mute stage: rules from the config, the alerts firing at the last sync, and
/// when each source was last seen firing (for rules with a `hold`).
#[derive(Debug, Default)]
pub struct Inhibitor {
    rules: RwLock<Vec<InhibitRule>>,
    firing: RwLock<Vec<Labels>>,
    /// Alerts that fired at an earlier sync, with the last sync they fired at; kept as long as
    /// the longest hold. In memory: a restart forgets them (the next incident is paged).
    seen: RwLock<HashMap<Labels, DateTime<Utc>>>,
}

impl Inhibitor {
    pub fn new(rules: Vec<InhibitRule>) -> Inhibitor {
        Inhibitor {
            rules: RwLock::new(rules),
            ..Inhibitor::default()
        }
    }

    /// A reloaded config's rules (they apply from the next flush).
    pub fn set_rules(&self, rules: Vec<InhibitRule>) {
        *self.rules.write().expect("inhibit rules lock") = rules;
    }

    /// The labels of the alert that inhibits `labels` at `now`, if any (for the API): one
    /// firing now, or one that stopped firing less than its rule's `hold` ago.
    pub fn inhibited_by(&self, labels: &Labels, now: DateTime<Utc>) -> Option<Labels> {
        let rules = self.rules.read().expect("inhibit rules lock");
        if rules.is_empty() {
            return None;
        }
        let firing = self.firing.read().expect("inhibit firing lock");
        if let Some(src) = firing
            .iter()
            .find(|src| *src != labels && rules.iter().any(|r| r.inhibits(src, labels)))
        {
            return Some(src.clone());
        }
        let seen = self.seen.read().expect("inhibit seen lock");
        seen.iter()
            .filter(|(src, _)| *src != labels)
            .find(|(src, at)| {
                rules.iter().any(|r| {
                    !r.hold.is_zero()
                        && now.signed_duration_since(**at).to_std().unwrap_or_default() < r.hold
                        && r.inhibits(src, labels)
                })
            })
            .map(|(src, _)| src.clone())
    }
}

impl Muter for Inhibitor {
    fn muted(&self, labels: &Labels, now: DateTime<Utc>) -> bool {
        self.inhibited_by(labels, now).is_some()
    }

    fn observe(&self, firing: &[IncomingAlert], now: DateTime<Utc>) {
        let longest = self
            .rules
            .read()
            .expect("inhibit rules lock")
            .iter()
            .map(|r| r.hold)
            .max()
            .unwrap_or_default();
        let labels: Vec<Labels> = firing.iter().map(|a| a.labels.clone()).collect();
        {
            let mut seen = self.seen.write().expect("inhibit seen lock");
            seen.retain(|_, at| {
                now.signed_duration_since(*at).to_std().unwrap_or_default() < longest
            });
            if !longest.is_zero() {
                for l in &labels {
                    seen.insert(l.clone(), now);
                }
            }
        }
        *self.firing.write().expect("inhibit firing lock") = labels;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::model::{Matcher, Matchers};

    fn m(pairs: &[(&str, &str)]) -> Matchers {
        Matchers(
            pairs
                .iter()
                .map(|(k, v)| Matcher::parse(k, v).unwrap())
                .collect(),
        )
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equal_labels_and_two_sided_matches() {
        let rule = InhibitRule {
            source: m(&[("alertname", "JobDown")]),
            target: m(&[("alertname", "InstanceDown")]),
            equal: vec!["job".into(), "zone".into()],
            hold: std::time::Duration::ZERO,
        };
        let src = l(&[("alertname", "JobDown"), ("job", "j"), ("zone", "aa")]);
        let same = l(&[("alertname", "InstanceDown"), ("job", "j"), ("zone", "aa")]);
        let other_zone = l(&[("alertname", "InstanceDown"), ("job", "j"), ("zone", "ab")]);
        assert!(rule.inhibits(&src, &same));
        assert!(!rule.inhibits(&src, &other_zone), "equal labels differ");
        assert!(!rule.inhibits(&same, &src), "direction matters");
        // Missing on both sides counts as equal.
        let src2 = l(&[("alertname", "JobDown")]);
        let tgt2 = l(&[("alertname", "InstanceDown")]);
        assert!(rule.inhibits(&src2, &tgt2));
        // A rule whose sides overlap: an alert matching both never mutes its twin.
        let wide = InhibitRule {
            source: m(&[("severity", "page")]),
            target: m(&[("team", "ops")]),
            equal: vec![],
            hold: std::time::Duration::ZERO,
        };
        let both_a = l(&[("severity", "page"), ("team", "ops"), ("check", "a")]);
        let both_b = l(&[("severity", "page"), ("team", "ops"), ("check", "b")]);
        assert!(!wide.inhibits(&both_a, &both_b));
        let ticket = l(&[("severity", "ticket"), ("team", "ops")]);
        assert!(wide.inhibits(&both_a, &ticket));
    }

    fn incoming(labels: Labels) -> IncomingAlert {
        IncomingAlert {
            fingerprint: "src".into(),
            labels,
            annotations: Labels::new(),
            starts_at: DateTime::from_timestamp(0, 0).unwrap(),
            condition: None,
            run: None,
            affected: Vec::new(),
        }
    }

    #[test]
    fn a_hold_mutes_for_that_long_after_the_source_stops_firing() {
        let at = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let held = InhibitRule {
            source: m(&[("alertname", "target_down")]),
            target: m(&[("alertname", "=~.*_burn_rate_page")]),
            equal: vec![],
            hold: std::time::Duration::from_secs(600),
        };
        let plain = InhibitRule {
            source: m(&[("alertname", "target_down")]),
            target: m(&[("alertname", "check_failing")]),
            equal: vec![],
            hold: std::time::Duration::ZERO,
        };
        let inh = Inhibitor::new(vec![held, plain]);
        let down = l(&[("alertname", "target_down")]);
        let burn = l(&[("alertname", "uptime_burn_rate_page")]);
        let check = l(&[("alertname", "check_failing"), ("check", "auth")]);
        inh.observe(&[incoming(down.clone())], at(0));
        assert!(inh.muted(&burn, at(0)));
        assert!(inh.muted(&check, at(0)));
        // The source resolved at the next sync: the plain rule lets go at once, the held one
        // until 10 minutes after the source was last seen firing.
        inh.observe(&[], at(30));
        assert!(!inh.muted(&check, at(30)));
        assert_eq!(inh.inhibited_by(&burn, at(30)), Some(down.clone()));
        assert!(inh.muted(&burn, at(599)));
        assert!(!inh.muted(&burn, at(600)));
        inh.observe(&[], at(601));
        assert!(!inh.muted(&burn, at(601)));
    }

    /// The inhibitor the daemon builds from the rules' `inhibits:` mutes a per-check alert of
    /// the same target while target_down fires, and not another target's.
    #[test]
    fn rule_inhibits_mute_the_per_check_alerts_of_the_same_target() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("rules.yaml");
        std::fs::write(
            &f,
            "rules:
  - alert: target_down
    metric: synmon.check.latency
    by: [target]
    aggregate: ratio
    numerator: { outcome: fail }
    op: \">\"
    threshold: 0.5
    across: { label: check, min_share: 0.5 }
    inhibits:
      - matchers: { alertname: check_failing }
  - alert: check_failing
    metric: synmon.check.latency
    by: [check, target]
    aggregate: ratio
    numerator: { outcome: fail }
    op: \">\"
    threshold: 0.05
",
        )
        .unwrap();
        let (set, errors) = crate::rules::load_files(&[f]);
        assert!(errors.is_empty(), "{errors:?}");
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let inhibitor = Inhibitor::new(set.inhibit_rules());
        inhibitor.observe(
            &[incoming(l(&[
                ("alertname", "target_down"),
                ("target", "staging"),
            ]))],
            at,
        );
        let per_check = |target: &str| {
            l(&[
                ("alertname", "check_failing"),
                ("check", "auth"),
                ("target", target),
            ])
        };
        assert!(inhibitor.muted(&per_check("staging"), at));
        assert!(!inhibitor.muted(&per_check("production"), at));
    }
}
