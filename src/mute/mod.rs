//! Control of the noise without losing the signal: inhibition, silences and maintenance windows,
//! the three stages of the pipeline's mute slot (`notify::dispatch::Muter`); the watchdog alert;
//! and the JWT checks of the API that creates silences.
//!
//! Above `notify/`: the stages implement the traits the pipeline defines (`Muter`, `Refresh`)
//! and plug into it ([`Mute::attach`]); `notify/` never names this module.
//!
//! A muted alert is only left out of notifications: the evaluator keeps it, the API shows it
//! with why it is muted ([`MuteState`]).

pub mod auth;
pub mod config;
pub mod inhibit;
pub mod maintenance;
pub mod silence;
pub mod watchdog;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::notify::message::Labels;
use crate::notify::pipeline::Notifier;
use crate::rules::RuleSet;
use crate::store::{Store, StoreError};

pub use config::MuteConfig;
pub use inhibit::{InhibitRule, Inhibitor};
pub use maintenance::Maintenance;
pub use silence::Silences;

/// Every inhibition the daemon applies: the config's `inhibit_rules`, then the rules'
/// `inhibits:`. One list, so the two never disagree about what mutes what.
pub fn inhibit_rules(cfg: &MuteConfig, rules: &RuleSet) -> Vec<InhibitRule> {
    let mut out = cfg.inhibit_rules.clone();
    out.extend(rules.inhibit_rules());
    out
}

/// Why an alert is muted, as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MuteState {
    pub silenced: bool,
    /// Ids of the active silences muting it.
    pub silenced_by: Vec<String>,
    pub inhibited: bool,
    /// The labels of the firing alert inhibiting it.
    pub inhibited_by: Option<Labels>,
    /// The maintenance window it is in.
    pub maintenance: Option<String>,
}

/// The three mute stages, shared by the pipeline and the API.
#[derive(Debug)]
pub struct Mute {
    pub silences: Arc<Silences>,
    pub inhibitor: Arc<Inhibitor>,
    pub maintenance: Arc<Maintenance>,
}

impl Mute {
    /// Loads the stored silences and sets up inhibition (the config's `inhibit_rules` and what
    /// the rules declare with `inhibits:`) and maintenance from the config.
    pub async fn new(store: Store, cfg: &MuteConfig, rules: &RuleSet) -> Result<Mute, StoreError> {
        Ok(Mute {
            silences: Arc::new(Silences::load(store).await?),
            inhibitor: Arc::new(Inhibitor::new(inhibit_rules(cfg, rules))),
            maintenance: Arc::new(Maintenance::new(cfg.maintenance_windows.clone())),
        })
    }

    /// Plugs the stages into the pipeline's mute slot (inhibit, then silence, then maintenance),
    /// and has the pipeline re-read the silences other replicas wrote before its flushes.
    pub async fn attach(&self, notifier: &Notifier) {
        notifier.add_muter(self.inhibitor.clone()).await;
        notifier.add_muter(self.silences.clone()).await;
        notifier.add_muter(self.maintenance.clone()).await;
        notifier.add_refresh(self.silences.clone());
    }

    /// A reloaded config's inhibit rules (its own and its rules') and windows (silences are not
    /// config).
    pub fn reconfigure(&self, cfg: &MuteConfig, rules: &RuleSet) {
        self.inhibitor.set_rules(inhibit_rules(cfg, rules));
        self.maintenance
            .set_windows(cfg.maintenance_windows.clone());
    }

    /// Why (and whether) an alert with `labels` is muted at `now`.
    pub fn state(&self, labels: &Labels, now: DateTime<Utc>) -> MuteState {
        let silenced_by = self.silences.silenced_by(labels, now);
        let inhibited_by = self.inhibitor.inhibited_by(labels, now);
        MuteState {
            silenced: !silenced_by.is_empty(),
            silenced_by,
            inhibited: inhibited_by.is_some(),
            inhibited_by,
            maintenance: self.maintenance.window_for(labels, now),
        }
    }
}
