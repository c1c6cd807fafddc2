//! A journey on the schedule: its entry in `checks.journeys` names a journey of the journeys
//! folder and gives it a schedule; a run drives a browser session through its steps.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::{Check, Context, RawRetry, Schedule, Validator};
use crate::outcome::Outcome;
use crate::run::{CheckKind, RunResult};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJourneyCheck {
    pub name: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retry_on_failure: Option<RawRetry>,
}

/// A scheduled journey. The journey itself is loaded apart (from the journeys folder) and
/// found by name when it runs.
#[derive(Debug, Clone)]
pub struct JourneyCheck {
    pub name: String,
    pub schedule: Schedule,
}

impl Check for JourneyCheck {
    const KIND: CheckKind = CheckKind::Journey;
    const KEY: &'static str = "journeys";
    type Raw = RawJourneyCheck;

    check_accessors!(retry_on_failure);

    /// Whether the journey exists is checked once the journeys are loaded.
    fn validate(raw: &RawJourneyCheck, _: &str, schedule: Schedule, _: &mut Validator<'_>) -> Self {
        JourneyCheck {
            name: raw.name.clone(),
            schedule,
        }
    }

    /// Steps carry their own timeouts; the scheduler's timeout bounds the whole run.
    async fn run(&self, cx: &Context<'_>, _: Duration) -> RunResult {
        let Some(j) = cx.journeys.iter().find(|j| j.name == self.name) else {
            let mut r = cx.begin(&self.name, Self::KIND);
            r.outcome = Outcome::Error;
            r.error = Some(format!("journey `{}` is not loaded", self.name));
            return r;
        };
        let Some(sessions) = cx.sessions else {
            return cx.runner.run(j, cx.target).await;
        };
        // Waiting for a browser session is not the target's latency: measured apart.
        let waited = Instant::now();
        let _permit = sessions.acquire().await.expect("session pool open");
        let wait_ms = waited.elapsed().as_secs_f64() * 1000.0;
        let mut r = cx.runner.run(j, cx.target).await;
        r.session_wait_ms = wait_ms;
        r
    }
}
