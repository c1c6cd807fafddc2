//! `synmon once`: run one journey now, print its steps, exit with its outcome.

use std::path::Path;
use std::sync::Arc;

use crate::clock::SystemClock;
use crate::journey::{Driver, RunResult, Runner};

pub async fn run(
    config: &Path,
    journey: &str,
    target: Option<&str>,
    base_url: Option<&str>,
    json: bool,
) -> i32 {
    let cfg = match super::load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut tgt = match cfg.target(target) {
        Ok(t) => t.clone(),
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    if let Some(u) = base_url {
        match reqwest::Url::parse(u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => tgt.base_url = url,
            _ => {
                eprintln!("--base-url: `{u}` is not an http(s) URL");
                return 2;
            }
        }
    }
    let j = match cfg.journey(journey) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let cfg = Arc::new(cfg);
    let driver = Arc::new(Driver::from_config(&cfg.webdriver));
    let runner = Runner::new(cfg.runner_settings(), driver.clone(), Arc::new(SystemClock));
    let result = runner.run(&j, &tgt).await;
    driver.shutdown().await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).expect("result serializes")
        );
    } else {
        print!("{}", table(&result));
    }
    result.outcome.exit_code()
}

/// The human step table.
pub fn table(r: &RunResult) -> String {
    let mut out = String::new();
    let w = r
        .steps
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "{:<w$}  {:>10}  {:<5}  {:<11}  {:<7}  error\n",
        "step", "latency ms", "timed", "timing", "outcome"
    ));
    for s in &r.steps {
        let timing = match s.timing {
            crate::journey::Timing::InPage => "in-page",
            crate::journey::Timing::InPageNavigation => "in-page+nav",
            crate::journey::Timing::Outside => "outside",
            crate::journey::Timing::Client => "client",
        };
        out.push_str(&format!(
            "{:<w$}  {:>10.1}  {:<5}  {:<11}  {:<7}  {}\n",
            s.name,
            s.latency_ms,
            if s.timed { "yes" } else { "" },
            timing,
            s.outcome,
            s.error.as_deref().unwrap_or("")
        ));
    }
    out.push_str(&format!(
        "\n{} on {} ({}): {}  timed latency {:.1} ms, total {:.1} ms (session {:.1} ms)\n",
        r.check,
        r.target,
        r.location,
        r.outcome,
        r.timed_latency_ms,
        r.total_ms,
        r.session_create_ms
    ));
    if let Some(e) = &r.error {
        out.push_str(&format!("error: {e}\n"));
    }
    for a in &r.artifacts {
        out.push_str(&format!("artifact ({}): {}\n", a.kind, a.path));
    }
    out
}
