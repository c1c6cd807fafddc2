//! Sampling under failure: the daemon against the sandbox answering 503 everywhere, with real
//! Chromium. Every failed first attempt is retested `delay` after it ended (give or take a
//! second), HTTP checks and journeys alike, and no slot is skipped: a failing target is sampled
//! as often as a healthy one.
//!
//! The journeys outnumber the browser sessions (three journeys, two sessions) and the retest
//! delay is shorter than a failing journey, so a retest that had to queue for a session behind
//! another journey's first attempt would start late.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use synmon::Outcome;
use synmon::run::CheckKind;
use synmon::settings::Config;
use synmon::store::RunSummary;

use crate::support::*;

const PASSWORD: &str = "synthetic-demo";
const INTERVAL: Duration = Duration::from_secs(15);
const DELAY: Duration = Duration::from_secs(1);
/// How late a retest may start after `delay`.
const SLACK: Duration = Duration::from_secs(1);

const CHECKS: &str = r#"
webdriver:
  sessions: 2
defaults:
  step_timeout: 2s
store:
  url: sqlite://synmon.db
checks:
  interval: 15s
  max_offset: 1s
  retry_on_failure: { count: 1, delay: 1s }
  http:
    - { name: auth_health, service: auth, url: /svc/auth/healthz, expect: { status: 200, json: { /status: ok } } }
    - { name: inventory_health, service: inventory, url: /svc/inventory/healthz, expect: { status: 200 } }
    - name: swis_preview
      service: inventory
      url: /api/t/{tenant}/swis/preview
      auth: { login: { url: /api/login, token: /token } }
      expect: { status: 200 }
"#;

const CHECK_NAMES: [&str; 6] = [
    "align_category",
    "save_profile",
    "feed_push",
    "auth_health",
    "inventory_health",
    "swis_preview",
];

fn ended(r: &RunSummary) -> DateTime<Utc> {
    r.started_at + chrono::Duration::microseconds((r.total_ms * 1000.0) as i64)
}

fn ms(d: chrono::Duration) -> i64 {
    d.num_milliseconds()
}

/// The stored attempts of `check` by slot (scheduled time), in attempt order.
fn slots(runs: &[RunSummary], check: &str) -> BTreeMap<DateTime<Utc>, Vec<RunSummary>> {
    let mut out: BTreeMap<DateTime<Utc>, Vec<RunSummary>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.check == check && !r.cancelled) {
        out.entry(r.scheduled_at).or_default().push(r.clone());
    }
    for v in out.values_mut() {
        v.sort_by_key(|r| r.attempt);
    }
    out
}

/// Both attempts of the first two slots of every check are stored.
fn two_retested_slots(runs: &[RunSummary]) -> bool {
    CHECK_NAMES.iter().all(|c| {
        let s = slots(runs, c);
        s.len() >= 2 && s.values().take(2).all(|a| a.len() >= 2)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_an_outage_every_retest_starts_on_time_and_no_slot_is_skipped() {
    let _b = BROWSER.lock().await;
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    set_faults(
        &sbx.base_url(),
        json!({"kind": "error", "route": "*", "rate": 1.0, "status": 503}),
    )
    .await;
    let cfg = write_config(dir.path(), &sbx.base_url(), PASSWORD, CHECKS);
    let config = Config::load(&cfg).expect("the test config is valid");
    assert_eq!(config.checks.defaults.interval, INTERVAL);
    let d = TestDaemon::spawn(config).await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);

    let runs = eventually(
        "two retested slots of every check in the store",
        Duration::from_secs(50),
        async || {
            let runs = d.store().runs_since(since).await.ok()?;
            two_retested_slots(&runs).then_some(runs)
        },
    )
    .await;
    d.stop().await;
    sbx.shutdown().await;

    // What was stored, for a failure to be read.
    for r in &runs {
        eprintln!(
            "{:<16} attempt {} scheduled {} started {} took {:>6.0} ms {} {}",
            r.check,
            r.attempt,
            r.scheduled_at.format("%M:%S%.3f"),
            r.started_at.format("%M:%S%.3f"),
            r.total_ms,
            r.outcome,
            r.error.as_deref().unwrap_or("")
        );
    }
    let mut report = Vec::new();
    let mut late = Vec::new();
    let mut skipped = Vec::new();
    for check in CHECK_NAMES {
        let s = slots(&runs, check);
        let scheduled: Vec<&DateTime<Utc>> = s.keys().collect();
        // Consecutive slots, none skipped by an overrun.
        if ms(*scheduled[1] - *scheduled[0]) != INTERVAL.as_millis() as i64 {
            skipped.push(format!("{check}: slots {scheduled:?}"));
        }
        for attempts in s.values().take(2) {
            let (first, retest) = (&attempts[0], &attempts[1]);
            assert_eq!((first.attempt, retest.attempt), (1, 2), "{check}");
            assert_ne!(first.outcome, Outcome::Pass, "{check}: {first:?}");
            let gap = retest.started_at - ended(first);
            report.push(format!(
                "{check} ({}): failed run {} + {:.0} ms, retest {} ms after its end",
                first.kind.as_str(),
                first.started_at.format("%H:%M:%S%.3f"),
                first.total_ms,
                ms(gap)
            ));
            let within = ms(gap) >= DELAY.as_millis() as i64 - 50
                && ms(gap) <= (DELAY + SLACK).as_millis() as i64;
            if !within {
                late.push(format!("{check}: {} ms", ms(gap)));
            }
        }
    }
    let report = report.join("\n");
    eprintln!("{report}");
    assert!(
        late.is_empty() && skipped.is_empty(),
        "retests outside delay {} ms + {} ms: {late:?}\nslots skipped by an overrun: {skipped:?}\n{report}",
        DELAY.as_millis(),
        SLACK.as_millis()
    );
    // Both kinds were judged.
    for kind in [CheckKind::Journey, CheckKind::Http] {
        assert!(
            runs.iter().any(|r| r.kind == kind && r.attempt == 2),
            "{kind:?}"
        );
    }
}
