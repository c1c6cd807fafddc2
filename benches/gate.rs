//! Release gate and report over 30 days of runs (issue 8): 3 journeys x 3 locations x 1 run a
//! minute for 30 days (388,800 runs) in a SQLite store, then
//! - `gate --window 30d` in-process (store open, the narrow run query, judging, table, JSON and
//!   JUnit), median of GATE_BENCH_REPEAT (default 5) rounds, goal <= 1 s;
//! - the real `synmon gate --window 30d` binary end to end (process start and config load
//!   included), 3 rounds;
//! - `synmon report` generation (query + HTML render) for 30 days and for 7 days.
//!
//! Run: `cargo bench --bench gate`. `GATE_BENCH_DAYS=N` for a quicker smoke run. Prints a
//! readable block and one JSON line, which also goes under the `gate_bench` key of
//! `ops/reports/perf-YYYYMMDD.json`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synmon::Outcome;
use synmon::clock::{Clock, SystemClock};
use synmon::config::Secret;
use synmon::gate::{self, Samples, Targets};
use synmon::run::{CheckKind, RunResult};
use synmon::settings::Config;
use synmon::store::Store;

const JOURNEYS: [&str; 3] = ["align_category", "save_profile", "feed_push"];
const LOCATIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];

/// A small deterministic generator (xorshift64*), so every run of the bench stores the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// Fills the store: one run per journey, location and minute; ~0.05% failures (each retried
/// once, passing), ~0.1% probe errors; latencies ~ 90-250 ms with a slow tail.
async fn fill(store: &Store, days: i64, now: chrono::DateTime<chrono::Utc>) -> usize {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = now - chrono::Duration::days(days);
    let minutes = days * 1440;
    let mut batch = Vec::with_capacity(6000);
    let mut total = 0;
    for m in 0..minutes {
        let slot = start + chrono::Duration::minutes(m);
        for j in JOURNEYS {
            for l in LOCATIONS {
                let mut r = RunResult::begin(j, CheckKind::Journey, "production", l, slot);
                let u = rng.next();
                let latency = 90.0 + 160.0 * rng.next() + if u < 0.02 { 200.0 } else { 0.0 };
                r.timed_latency_ms = latency;
                r.total_ms = latency + 1400.0;
                r.outcome = if u < 0.0005 {
                    Outcome::Fail
                } else if u < 0.0015 {
                    Outcome::Error
                } else {
                    Outcome::Pass
                };
                if r.outcome == Outcome::Fail {
                    let mut retry = r.clone();
                    retry.run_id = uuid::Uuid::new_v4().to_string();
                    retry.attempt = 2;
                    retry.started_at = slot + chrono::Duration::seconds(5);
                    retry.outcome = Outcome::Pass;
                    batch.push(retry);
                }
                batch.push(r);
            }
        }
        if batch.len() >= 5000 {
            total += batch.len();
            store.insert_runs(&batch).await.expect("insert");
            batch.clear();
        }
    }
    total += batch.len();
    store.insert_runs(&batch).await.expect("insert");
    total
}

fn write_config(dir: &Path, store_url: &str) -> std::path::PathBuf {
    let file = dir.join("synmon.yaml");
    let journeys = Path::new(env!("CARGO_MANIFEST_DIR")).join("journeys");
    std::fs::write(
        &file,
        format!(
            "targets:\n  production:\n    base_url: http://127.0.0.1:9\ndefault_target: production\ntenant: synthetic\ncredentials:\n  username: synthetic@rvp.test\n  password: bench\njourneys: \"{}\"\nartifacts: artifacts\nstore:\n  url: \"{store_url}\"\n",
            journeys.display()
        ),
    )
    .unwrap();
    file
}

/// One in-process `gate --window 30d`: what the CLI does after loading the config.
async fn gate_once(cfg: &Config, days: i64) -> (Duration, i32, usize) {
    let t = Instant::now();
    let store = Store::connect(&cfg.store_url).await.unwrap();
    let now = SystemClock.now();
    let window = Duration::from_secs(days as u64 * 86400);
    let samples = gate::samples::from_store(&store, cfg, &format!("{days}d"), window, now)
        .await
        .unwrap();
    store.close().await;
    let targets = Targets::default();
    let v = gate::judge(&samples, &gate::gated_checks(cfg, &targets), &targets);
    let out = gate::output::table(&v) + &gate::output::json(&v) + &gate::output::junit(&v);
    let n = samples
        .checks
        .values()
        .map(|c| (c.judged() + c.error) as usize)
        .sum();
    std::hint::black_box(out);
    (t.elapsed(), v.exit_code, n)
}

/// One report generation over `days`: the query, the verdict and the HTML.
async fn report_once(cfg: &Config, days: i64) -> (Duration, usize) {
    let t = Instant::now();
    let store = Store::connect(&cfg.store_url).await.unwrap();
    let to = SystemClock.now();
    let from = to - chrono::Duration::days(days);
    let points = store.run_points_since(from).await.unwrap();
    store.close().await;
    let targets = Targets::default();
    let checks = gate::gated_checks(cfg, &targets);
    let samples = Samples {
        mode: gate::Mode::Window {
            window: format!("{days}d"),
        },
        from,
        to,
        checks: gate::samples::from_points(&points),
        feed_push_success_rate: gate::GaugeReading::NotConfigured,
        page_alerts: gate::AlertsReading::Firing { alerts: vec![] },
    };
    let v = gate::judge(&samples, &checks, &targets);
    let html = gate::report::render(
        &points,
        &checks,
        targets.availability_pct,
        &v,
        None,
        from,
        to,
    );
    (t.elapsed(), html.len())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    synmon::tls::install();
    let days: i64 = std::env::var("GATE_BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let repeat: usize = std::env::var("GATE_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("synmon.db").display());
    let cfg_file = write_config(dir.path(), &url);
    let cfg = Config::load(&cfg_file).map_err(|e| e.to_string())?;
    let now = SystemClock.now();

    let t = Instant::now();
    let stored = rt.block_on(async {
        let store = Store::connect(&Secret::new(url.clone())).await.unwrap();
        let n = fill(&store, days, now).await;
        store.close().await;
        n
    });
    let fill_s = t.elapsed().as_secs_f64();
    let db_mib = std::fs::metadata(dir.path().join("synmon.db"))
        .map(|m| m.len() as f64 / 1048576.0)
        .unwrap_or(0.0);

    // Warm-up (page cache), then the measured rounds.
    let cfg = Arc::new(cfg);
    rt.block_on(gate_once(&cfg, days));
    let mut gate_ms = Vec::new();
    let mut judged = 0;
    let mut exit = -1;
    for _ in 0..repeat {
        let (d, code, n) = rt.block_on(gate_once(&cfg, days));
        gate_ms.push(ms(d));
        judged = n;
        exit = code;
    }
    let mut bin_ms = Vec::new();
    let mut bin_exit = None;
    for _ in 0..3 {
        let t = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_synmon"))
            .args(["gate", "--window", &format!("{days}d"), "--config"])
            .arg(&cfg_file)
            .arg("--reports-dir")
            .arg(dir.path().join("reports"))
            .arg("--junit")
            .arg(dir.path().join("gate.xml"))
            .env_remove("RUST_LOG")
            .output()?;
        bin_ms.push(ms(t.elapsed()));
        bin_exit = out.status.code();
    }
    let mut report30 = Vec::new();
    let mut report7 = Vec::new();
    let mut html_kib = 0.0;
    for _ in 0..repeat.min(3) {
        let (d, len) = rt.block_on(report_once(&cfg, days));
        report30.push(ms(d));
        html_kib = len as f64 / 1024.0;
        let (d, _) = rt.block_on(report_once(&cfg, days.min(7)));
        report7.push(ms(d));
    }

    let g = median(gate_ms.clone());
    let report = json!({
        "date": now.format("%Y-%m-%d").to_string(),
        "days": days,
        "runs_stored": stored,
        "runs_judged": judged,
        "store_mib": (db_mib * 10.0).round() / 10.0,
        "fill_s": (fill_s * 10.0).round() / 10.0,
        "gate_window_in_process_ms": {"median": g, "all": gate_ms, "exit_code": exit},
        "gate_window_binary_ms": {"median": median(bin_ms.clone()), "all": bin_ms, "exit_code": bin_exit},
        "report_ms": {"days": days, "median": median(report30.clone()), "all": report30, "html_kib": (html_kib * 10.0_f64).round() / 10.0},
        "report_7d_ms": {"median": median(report7.clone()), "all": report7},
        "goals": {"gate_window_30d_ms": {"goal": 1000.0, "actual": g, "met": g <= 1000.0}},
    });
    println!("gate bench: {days} days x 3 journeys x 3 locations x 1/min");
    println!("  runs stored            {stored} (store {db_mib:.1} MiB, filled in {fill_s:.1} s)");
    println!("  runs judged            {judged}");
    println!(
        "  gate --window {days}d     {g:.1} ms median in-process (goal <= 1000 ms), exit {exit}"
    );
    println!(
        "  synmon gate binary     {:.1} ms median, exit {bin_exit:?}",
        report["gate_window_binary_ms"]["median"]
            .as_f64()
            .unwrap_or(0.0)
    );
    println!(
        "  report {days}d            {:.1} ms median ({html_kib:.1} KiB HTML)",
        report["report_ms"]["median"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  report 7d              {:.1} ms median",
        report["report_7d_ms"]["median"].as_f64().unwrap_or(0.0)
    );
    println!("{}", serde_json::to_string(&report)?);

    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/reports");
    std::fs::create_dir_all(&reports)?;
    let file = reports.join(format!("perf-{}.json", now.format("%Y%m%d")));
    // One file per day for every perf bench: this bench owns its `gate_bench` key.
    let mut doc = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    doc["gate_bench"] = report;
    std::fs::write(&file, format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
    eprintln!("gate bench: wrote {}", file.display());
    Ok(())
}
