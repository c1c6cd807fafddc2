//! Inhibition (Alertmanager's `inhibit_rules`): while a *source* alert fires, *target* alerts
//! that share the `equal` labels with it are muted. An uptime page for a target inhibits the
//! latency alerts of the same target, so on-call hears about the outage once.
//!
//! The inhibitor learns which alerts fire at every `sync` of the pipeline ([`Muter::observe`])
//! and answers at flush time, so an inhibited alert comes back at the first flush after its
//! source stopped firing (its group's dedup sees a firing alert the receiver has not heard of).

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

/// The inhibition mute stage: rules from the config, and the alerts firing at the last sync.
#[derive(Debug, Default)]
pub struct Inhibitor {
    rules: RwLock<Vec<InhibitRule>>,
    firing: RwLock<Vec<Labels>>,
}

impl Inhibitor {
    pub fn new(rules: Vec<InhibitRule>) -> Inhibitor {
        Inhibitor {
            rules: RwLock::new(rules),
            firing: RwLock::new(Vec::new()),
        }
    }

    /// A reloaded config's rules (they apply from the next flush).
    pub fn set_rules(&self, rules: Vec<InhibitRule>) {
        *self.rules.write().expect("inhibit rules lock") = rules;
    }

    /// The labels of the firing alert that inhibits `labels`, if any (for the API).
    pub fn inhibited_by(&self, labels: &Labels) -> Option<Labels> {
        let rules = self.rules.read().expect("inhibit rules lock");
        if rules.is_empty() {
            return None;
        }
        let firing = self.firing.read().expect("inhibit firing lock");
        firing
            .iter()
            .find(|src| *src != labels && rules.iter().any(|r| r.inhibits(src, labels)))
            .cloned()
    }
}

impl Muter for Inhibitor {
    fn muted(&self, labels: &Labels, _now: DateTime<Utc>) -> bool {
        self.inhibited_by(labels).is_some()
    }

    fn observe(&self, firing: &[IncomingAlert], _now: DateTime<Utc>) {
        *self.firing.write().expect("inhibit firing lock") =
            firing.iter().map(|a| a.labels.clone()).collect();
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
        };
        let both_a = l(&[("severity", "page"), ("team", "ops"), ("check", "a")]);
        let both_b = l(&[("severity", "page"), ("team", "ops"), ("check", "b")]);
        assert!(!wide.inhibits(&both_a, &both_b));
        let ticket = l(&[("severity", "ticket"), ("team", "ops")]);
        assert!(wide.inhibits(&both_a, &ticket));
    }
}
