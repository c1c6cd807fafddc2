//! One outage, one page, in real time: the daemon with the shipped `alerts/` folder and the
//! receivers and routes of `synmon.example.yaml` (copied into a temporary folder, pointed at
//! the test's sandbox, a temporary SQLite store and the PagerDuty and Slack fakes), real
//! Chromium for the journeys, the shipped schedule (every check every 30 s). Once every check
//! has passed, every route of the sandbox answers 503 for 3 minutes; then the fault clears.
//! PagerDuty must see one incident (one `dedup_key`) whose trigger names the affected checks,
//! resolved within 2 minutes of the fault clearing, and no other incident.
//!
//! An incident is a `dedup_key`: a trigger that repeats a key updates the incident it opened,
//! so the number of trigger events for the key is printed, not judged.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use synmon::Outcome;
use synmon::clock::SystemClock;
use synmon::daemon::Options;
use synmon::run::CheckKind;
use synmon::settings::Config;
use tokio::time::Instant;

use crate::fakes::pagerduty::{FakePagerDuty, TEST_ROUTING_KEY};
use crate::fakes::slack::FakeSlack;
use crate::support::*;

const PASSWORD: &str = "synthetic-demo";
const OUTAGE: Duration = Duration::from_secs(180);
/// How soon after the fault clears the incident must be resolved.
const RESOLVE_WITHIN: Duration = Duration::from_secs(120);
/// A delivery that was due at the bound is received shortly after it.
const DELIVERY_GRACE: Duration = Duration::from_secs(5);

/// Copies what the example config names (journeys, alerts, flags, dashboards) beside a copy of
/// it in `dir`; returns the copied config's path.
fn copy_example(dir: &Path) -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["journeys", "alerts", "flags", "dashboards"] {
        copy_dir(&repo.join(folder), &dir.join(folder));
    }
    let file = dir.join("synmon.yaml");
    std::fs::copy(repo.join("synmon.example.yaml"), &file).unwrap();
    file
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Seconds since `t0`, signed, for the printed timeline.
fn since(t0: Instant, at: Instant) -> f64 {
    if at >= t0 {
        at.duration_since(t0).as_secs_f64()
    } else {
        -t0.duration_since(at).as_secs_f64()
    }
}

/// The alert names an event carries (its grouped alerts' `alertname` labels).
fn alertnames(ev: &Value) -> Vec<String> {
    ev["payload"]["custom_details"]["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["labels"]["alertname"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_minute_outage_opens_one_pagerduty_incident_resolved_within_two_minutes() {
    let _b = BROWSER.lock().await;
    synmon::tls::install();
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let pd = FakePagerDuty::start().await;
    let slack = FakeSlack::start().await;
    let file = copy_example(dir.path());
    let env: HashMap<String, String> = [
        ("RVP_STAGING_URL", sbx.base_url()),
        (
            "RVP_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("rvp.db").display()),
        ),
        ("SYNMON_STORE_URL", "sqlite://synmon.db".to_string()),
        ("SYNMON_LISTEN", "127.0.0.1:0".to_string()),
        ("SLACK_API_URL", slack.api_url()),
        ("SLACK_BOT_TOKEN", slack.token().to_string()),
        ("PAGERDUTY_EVENTS_URL", pd.url()),
        ("PAGERDUTY_ROUTING_KEY", TEST_ROUTING_KEY.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = Config::load_with_env(&file, &env).expect("the copied example config is valid");
    assert_eq!(config.checks.defaults.interval, Duration::from_secs(30));
    // The checks the outage breaks: every journey and API check (SQL metrics read the
    // database directly).
    let affected: Vec<String> = config
        .checks
        .defs()
        .iter()
        .filter(|d| matches!(d.kind(), CheckKind::Journey | CheckKind::Http))
        .map(|d| d.name().to_string())
        .collect();
    let all: Vec<String> = config
        .checks
        .defs()
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    // The daemon's own schedule, offsets and evaluation loop, as `synmon run` has them.
    let d = TestDaemon::spawn_with(config, Options::default(), Arc::new(SystemClock)).await;
    let started = Instant::now();

    // Healthy first: every check has passed once (start offsets are below 25 s).
    eventually("every check passing", Duration::from_secs(60), async || {
        let last = d.last_runs();
        all.iter()
            .all(|c| last.get(c).is_some_and(|r| r.outcome == Outcome::Pass))
            .then_some(())
    })
    .await;

    let fault_on = Instant::now();
    set_faults(
        &sbx.base_url(),
        json!({"kind": "error", "route": "*", "rate": 1.0, "status": 503}),
    )
    .await;
    // Events are timed as they arrive.
    let mut arrivals: Vec<(Instant, Value)> = Vec::new();
    let watch = async |until: Instant, arrivals: &mut Vec<(Instant, Value)>| {
        while Instant::now() < until {
            for ev in pd.events().into_iter().skip(arrivals.len()) {
                arrivals.push((Instant::now(), ev));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for ev in pd.events().into_iter().skip(arrivals.len()) {
            arrivals.push((Instant::now(), ev));
        }
    };
    watch(fault_on + OUTAGE, &mut arrivals).await;
    clear_faults(&sbx.base_url()).await;
    let fault_off = Instant::now();
    watch(fault_off + RESOLVE_WITHIN + DELIVERY_GRACE, &mut arrivals).await;
    d.stop().await;
    sbx.shutdown().await;

    // What PagerDuty received, for a failure to be read.
    eprintln!(
        "PagerDuty events (seconds from the fault switched on; it was switched off at {:.0} s; \
         the daemon started at {:.0} s):",
        since(fault_on, fault_off),
        since(fault_on, started)
    );
    for (at, ev) in &arrivals {
        eprintln!(
            "  {:>6.1} s {:<8} key {} alerts {:?} summary {:?}",
            since(fault_on, *at),
            ev["event_action"].as_str().unwrap_or("?"),
            ev["dedup_key"].as_str().unwrap_or("-"),
            alertnames(ev),
            ev["payload"]["summary"].as_str().unwrap_or("")
        );
    }
    let mut by_key: BTreeMap<String, Vec<(Instant, &Value)>> = BTreeMap::new();
    for (at, ev) in &arrivals {
        let key = ev["dedup_key"].as_str().unwrap_or("").to_string();
        by_key.entry(key).or_default().push((*at, ev));
    }
    for (key, evs) in &by_key {
        let triggers = evs
            .iter()
            .filter(|(_, e)| e["event_action"] == "trigger")
            .count();
        let resolved = evs
            .iter()
            .find(|(_, e)| e["event_action"] == "resolve")
            .map(|(at, _)| format!("{:.0} s after the fault cleared", since(fault_off, *at)))
            .unwrap_or_else(|| "never".into());
        eprintln!("  incident {key}: {triggers} trigger event(s), resolved {resolved}");
    }
    eprintln!("Slack messages: {}", slack.messages().len());

    assert!(
        arrivals.iter().all(|(at, _)| *at >= fault_on),
        "PagerDuty heard from synmon before the outage"
    );
    assert_eq!(
        by_key.len(),
        1,
        "one outage must open exactly one PagerDuty incident; keys: {:?}",
        by_key.keys().collect::<Vec<_>>()
    );
    let (key, evs) = by_key.iter().next().unwrap();
    let triggers: Vec<&Value> = evs
        .iter()
        .filter(|(_, e)| e["event_action"] == "trigger")
        .map(|(_, e)| *e)
        .collect();
    assert!(!triggers.is_empty(), "incident {key} was never triggered");
    let named = triggers
        .iter()
        .map(|t| t["payload"].to_string())
        .collect::<String>();
    let missing: Vec<&String> = affected
        .iter()
        .filter(|c| !named.contains(c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the page does not name {missing:?}: {:#}",
        triggers[0]
    );
    let resolves: Vec<Instant> = evs
        .iter()
        .filter(|(_, e)| e["event_action"] == "resolve")
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(resolves.len(), 1, "one resolve of incident {key}");
    assert!(
        resolves[0] >= fault_off && resolves[0] <= fault_off + RESOLVE_WITHIN + DELIVERY_GRACE,
        "incident {key} resolved {:.0} s after the fault cleared (bound {} s)",
        since(fault_off, resolves[0]),
        RESOLVE_WITHIN.as_secs()
    );
}
