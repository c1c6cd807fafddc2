//! `synmon dashboards lint|diff|push|render`: dashboards as code.
//!
//! Exit codes (also in `--help`):
//! - lint: 0 clean, 1 lint errors, 2 configuration errors.
//! - diff: 0 Datadog matches the files, 1 differences (or lint errors), 2 cannot compare
//!   (configuration, missing keys, Datadog unreachable or refusing).
//! - push: 0 every dashboard in sync, 1 lint errors or Datadog refused a dashboard, 2
//!   configuration, missing keys, or Datadog unreachable.
//! - render: 0 written, 1 lint errors or a query with no PromQL rendering, 2 configuration or
//!   the output folder cannot be written.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use crate::dashboards::sync::{self, Action, Applied};
use crate::dashboards::{self, Dashboard, DatadogClient, LintOptions, TokioSleeper, grafana};
use crate::settings::Config;

fn load(config: &Path) -> Result<Config, i32> {
    super::load_config(config)
}

/// Lint the folder; prints every problem. `Err(1)` on lint errors.
fn linted(cfg: &Config) -> Result<(Vec<Dashboard>, LintOptions), i32> {
    let opts = dashboards::lint_options(cfg.statsd.as_ref());
    let (list, errors) = dashboards::load_dir(&cfg.dashboards_dir, &opts);
    if errors.is_empty() {
        Ok((list, opts))
    } else {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!("{} error(s) in dashboards", errors.len());
        Err(1)
    }
}

pub fn lint(config: &Path) -> i32 {
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match linted(&cfg) {
        Ok((list, _)) => {
            println!(
                "{}: ok ({} dashboards: {})",
                crate::config::yaml::display_path(&cfg.dashboards_dir),
                list.len(),
                list.iter()
                    .map(|d| d.title.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            0
        }
        Err(code) => code,
    }
}

fn client(cfg: &Config) -> Result<DatadogClient, i32> {
    DatadogClient::new(
        cfg.datadog.api_url.clone(),
        cfg.datadog.api_key.clone(),
        cfg.datadog.app_key.clone(),
        Arc::new(TokioSleeper),
    )
    .map_err(|e| {
        eprintln!("{e}");
        2
    })
}

/// `diff` and `push`: print the plan first, then (push, not dry run) apply it.
pub async fn sync(config: &Path, push: bool, dry_run: bool) -> i32 {
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (list, _) = match linted(&cfg) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let client = match client(&cfg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let plans = match sync::plan(&client, &list).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return if push && e.is_refusal() { 1 } else { 2 };
        }
    };
    for p in &plans {
        print!("{}", p.render());
    }
    let pending = plans
        .iter()
        .filter(|p| !matches!(p.action, Action::Unchanged { .. }))
        .count();
    if !push {
        return i32::from(pending > 0);
    }
    if dry_run {
        println!("dry run: {pending} dashboard(s) would change; nothing sent");
        return 0;
    }
    let (mut created, mut updated, mut unchanged, mut refused) = (0, 0, 0, 0);
    for (d, p) in list.iter().zip(&plans) {
        match sync::apply(&client, d, p).await {
            Ok(Applied::Created { id }) => {
                created += 1;
                println!("{}: created {id}", d.file);
            }
            Ok(Applied::Updated { id }) => {
                updated += 1;
                println!("{}: updated {id}", d.file);
            }
            Ok(Applied::Unchanged { .. }) => unchanged += 1,
            Err(e) if e.is_refusal() => {
                refused += 1;
                eprintln!("{}: {e}", d.file);
            }
            Err(e) => {
                eprintln!("{}: {e}", d.file);
                return 2;
            }
        }
    }
    println!("{created} created, {updated} updated, {unchanged} unchanged, {refused} refused");
    i32::from(refused > 0)
}

pub fn render(config: &Path, out: &Path) -> i32 {
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (list, opts) = match linted(&cfg) {
        Ok(l) => l,
        Err(code) => return code,
    };
    match write_all(&list, &opts, out) {
        Ok(n) => {
            println!("{n} Grafana dashboard(s) written to {}", out.display());
            0
        }
        Err(RenderFailure::Query(e)) => {
            eprintln!("{e}");
            1
        }
        Err(RenderFailure::Io(e)) => {
            eprintln!("{e:#}");
            2
        }
    }
}

enum RenderFailure {
    Query(grafana::RenderError),
    Io(anyhow::Error),
}

fn write_all(list: &[Dashboard], opts: &LintOptions, out: &Path) -> Result<usize, RenderFailure> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create {}", out.display()))
        .map_err(RenderFailure::Io)?;
    for d in list {
        let stem = Path::new(&d.file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dashboard".into());
        let json =
            grafana::render(d, &grafana::uid_for(&stem), opts).map_err(RenderFailure::Query)?;
        let path = out.join(format!("{stem}.json"));
        let mut text = serde_json::to_string_pretty(&json).expect("JSON values serialise");
        text.push('\n');
        std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(RenderFailure::Io)?;
    }
    Ok(list.len())
}
