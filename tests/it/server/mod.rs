//! The HTTP API as other tools speak it: Alertmanager's API v2 driven by the real `amtool`
//! (`amtool.rs`) and its answers validated against Alertmanager's own OpenAPI definitions
//! (`am_v2.rs`).
//!
//! Both use one daemon setup ([`AmDaemon`]): five rules that fire at the first evaluation (no
//! data, `no_data: alert`), four routed to a webhook (the protocol-checking fake) and one to
//! PagerDuty (no routing key: it falls back to the console, nothing leaves the machine), an
//! inhibit rule between two of them, and the admin JWT check of the silence API. The clock is a
//! manual one started at the real time, because amtool stamps silences with the real time.

mod am_v2;
mod amtool;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use synmon::clock::{Clock, ManualClock, SystemClock};

use crate::fakes::webhook::FakeWebhook;
use crate::support::TestDaemon;

pub(crate) const SECRET: &str = "synmon-test-hs256-secret-of-32-bytes!!";
pub(crate) const AUTH_TOKEN: &str = "am-v2-read-token-0123456789";

/// The hook alerts: `hook_noisy` is what tests silence, `hook_source` inhibits `hook_target`,
/// `hook_plain` stays active; `page_down` goes to PagerDuty.
pub(crate) const HOOK_ALERTS: [&str; 4] =
    ["hook_noisy", "hook_plain", "hook_source", "hook_target"];

fn rule(name: &str, route: &str) -> String {
    format!(
        r#"  - alert: {name}
    metric: feed_approval_rate
    aggregate: last
    op: "<"
    threshold: 95
    severity: page
    route: {route}
    no_data: {{ policy: alert }}
    annotations: {{ summary: "{name} has no data" }}
"#
    )
}

pub(crate) struct AmDaemon {
    pub d: TestDaemon,
    pub clock: ManualClock,
    pub hook: FakeWebhook,
    pub dir: tempfile::TempDir,
}

impl AmDaemon {
    /// The daemon, not evaluated yet (see [`AmDaemon::fire`]). `auth_token`: whether reads need
    /// `server.auth_token`.
    pub async fn start(auth_token: bool) -> AmDaemon {
        synmon::tls::install();
        let dir = tempfile::tempdir().unwrap();
        let hook = FakeWebhook::start().await;
        std::fs::create_dir_all(dir.path().join("alerts")).unwrap();
        let mut rules = String::from("rules:\n");
        for name in HOOK_ALERTS {
            rules.push_str(&rule(name, "hook"));
        }
        rules.push_str(&rule("page_down", "page"));
        std::fs::write(dir.path().join("alerts/rules.yaml"), rules).unwrap();
        let token = if auth_token {
            format!("  auth_token: \"{AUTH_TOKEN}\"\n")
        } else {
            String::new()
        };
        let cfg = crate::support::write_config(
            dir.path(),
            "http://127.0.0.1:9",
            "synthetic-demo",
            &format!(
                r#"server:
{token}  auth:
    hs256_secret: "{SECRET}"
store:
  url: sqlite://synmon.db
alerts: alerts
checks:
  journeys: []
receivers:
  - {{ name: hook, type: webhook, url: "{}" }}
  - {{ name: pagerduty, type: pagerduty, routing_key: "" }}
route:
  receiver: console
  group_by: []
  group_wait: 0s
  group_interval: 1s
  routes:
    - {{ matchers: {{ route: page }}, receiver: pagerduty }}
    - {{ matchers: {{ route: hook }}, receiver: hook }}
inhibit_rules:
  - source_matchers: {{ alertname: hook_source }}
    target_matchers: {{ alertname: hook_target }}
"#,
                hook.url()
            ),
        );
        let clock = ManualClock::new(SystemClock.now());
        let d = TestDaemon::spawn_with(
            synmon::settings::Config::load(&cfg).unwrap(),
            TestDaemon::options(),
            Arc::new(clock.clone()),
        )
        .await;
        AmDaemon {
            d,
            clock,
            hook,
            dir,
        }
    }

    /// Evaluates: every rule fires, and the pipeline takes the alerts (inhibition learns its
    /// source; a group is flushed at once, with the silences that apply by then).
    pub async fn fire(&self) {
        self.d.evaluate_now().await;
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// An HS256 token: `sub` alice, `aud` admin, valid for an hour from the daemon's now, with
    /// `extra` claims on top.
    pub fn token(&self, extra: Value) -> String {
        let now = self.now().timestamp();
        let mut c = json!({"sub": "alice", "aud": "admin", "iat": now - 30, "exp": now + 3600});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &c,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    /// A token that may mute PagerDuty routes: stepped up a minute ago.
    pub fn step_up_token(&self) -> String {
        let at = self.now().timestamp() - 60;
        self.token(json!({"amr": ["pwd", "step_up"], "auth_time": at}))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The alert names of a webhook body, sorted.
pub(crate) fn hook_names(body: &Value) -> Vec<String> {
    let mut v: Vec<String> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "firing")
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}
