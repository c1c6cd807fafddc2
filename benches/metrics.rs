//! Metrics benchmarks (harness = false): prints figures for BENCHMARKS.md.
//!
//! `cargo bench --bench metrics`
//!
//! 1. HDR record rate on one core (goal >= 10 M values/s).
//! 2. `/metrics` render time for 1,000 checks with 5 steps each (goal <= 20 ms).
//! 3. Memory of an hour of per-minute slices for 1,000 series recording 1 value/s each
//!    (encoded bytes, heap bytes, and VmRSS before/after).

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use synmon::Outcome;
use synmon::metrics::{Registry, Window, WindowedHistogram, catalog, prometheus};
use synmon::run::{CheckKind, RunResult, StepResult, Timing};

/// Midnight UTC of an arbitrary day: time is synthetic, never read from the clock.
fn t(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_699_920_000 + seconds, 0).unwrap()
}

/// Deterministic latencies with a realistic spread: mostly 80..400 ms, a tail to ~5 s.
struct Latencies(u64);
impl Latencies {
    fn next_ms(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let u = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        if u < 0.95 {
            80.0 + 320.0 * u / 0.95
        } else {
            400.0 + 4600.0 * (u - 0.95) / 0.05
        }
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn record_rate() {
    const N: usize = 20_000_000;
    let mut lat = Latencies(1);
    let values: Vec<f64> = (0..1 << 16).map(|_| lat.next_ms()).collect();
    let mask = values.len() - 1;

    // Baseline: hdrhistogram itself.
    let mut h =
        hdrhistogram::Histogram::<u32>::new_with_bounds(1, 3_600_000_000, 2).expect("bounds");
    let start = Instant::now();
    for i in 0..N {
        h.saturating_record((values[i & mask] * 1000.0) as u64);
    }
    let raw = start.elapsed();
    black_box(&h);

    // WindowedHistogram::record, one minute per 1 M values (rotations included).
    let mut w = WindowedHistogram::new();
    let start = Instant::now();
    for chunk in 0..N / 1_000_000 {
        let at = t(chunk as i64 * 60);
        for i in 0..1_000_000 {
            w.record(values[(chunk * 1_000_000 + i) & mask], at);
        }
    }
    let windowed = start.elapsed();
    black_box(&w);

    // Registry::record (name lookup, labels check, series lock) for comparison.
    let reg = Registry::new();
    let labels = [("check", "align"), ("location", "eu")];
    const M: usize = 2_000_000;
    let start = Instant::now();
    for i in 0..M {
        reg.record(
            catalog::SCHEDULE_LATENESS.name,
            &labels,
            values[i & mask],
            t(0),
        )
        .unwrap();
    }
    let registry = start.elapsed();

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64() / 1e6;
    println!("\n== HDR record rate (one core, {N} values) ==");
    println!(
        "hdrhistogram Histogram<u32>::saturating_record: {:>7.1} M values/s ({:.2} ns/value)",
        rate(N, raw),
        raw.as_nanos() as f64 / N as f64
    );
    println!(
        "WindowedHistogram::record:                      {:>7.1} M values/s ({:.2} ns/value)  goal >= 10 M/s",
        rate(N, windowed),
        windowed.as_nanos() as f64 / N as f64
    );
    println!(
        "Registry::record (lookup + labels + lock):      {:>7.1} M values/s ({:.0} ns/value)",
        rate(M, registry),
        registry.as_nanos() as f64 / M as f64
    );
    println!(
        "  check: p95 over the windowed data {:.1} ms",
        w.quantile(Window::D30, 0.95, t(N as i64 / 1_000_000 * 60))
            .unwrap()
    );
}

fn journey_run(check: &str, steps: &[&str], lat: &mut Latencies, attempt: u32) -> RunResult {
    let steps: Vec<StepResult> = steps
        .iter()
        .enumerate()
        .map(|(i, name)| StepResult {
            name: (*name).to_string(),
            action: "click".into(),
            latency_ms: lat.next_ms(),
            timed: i > 0,
            timing: Timing::InPage,
            navigation: None,
            outcome: Outcome::Pass,
            error: None,
        })
        .collect();
    RunResult {
        run_id: "bench".into(),
        check: check.into(),
        kind: CheckKind::Journey,
        attempt,
        scheduled_at: t(0),
        cancelled: false,
        target: "production".into(),
        location: "eu-west".into(),
        outcome: Outcome::Pass,
        started_at: t(0),
        timed_latency_ms: steps.iter().filter(|s| s.timed).map(|s| s.latency_ms).sum(),
        total_ms: steps.iter().map(|s| s.latency_ms).sum(),
        session_wait_ms: 0.0,
        session_create_ms: 0.0,
        browser_reused: None,
        session_reused: None,
        emulation: None,
        steps,
        error: None,
        failed_step: None,
        artifacts: vec![],
        page: None,
        trace_id: None,
    }
}

/// What the daemon's registry holds after an hour of the probe benchmark's load
/// (`scripts/bench-peers.sh`: 1,000 HTTP checks at 1 s): every run through the recorder's one
/// mapping (`Registry::record_run`: check latency, step latency, runs counter, probe health)
/// plus the scheduler's lateness sample, an hour of them on an injected clock. The heap figure
/// is what "keeping an hour of histograms" costs on top of a just-started daemon.
fn daemon_hour() {
    const CHECKS: usize = 1_000;
    const SECONDS: i64 = 3_600;
    let rss_before = rss_kib();
    let reg = Registry::new();
    let mut lat = Latencies(5);
    let mut runs: Vec<RunResult> = (0..CHECKS)
        .map(|i| {
            let mut run = journey_run(&format!("api-{i:04}"), &["GET /health"], &mut lat, 1);
            run.kind = CheckKind::Http;
            run.steps[0].action = "http".into();
            run.steps[0].timed = true;
            run.steps[0].timing = Timing::Outside;
            run
        })
        .collect();
    let start = Instant::now();
    let mut sampled = Vec::new();
    for s in 0..SECONDS {
        let at = t(s);
        for run in runs.iter_mut() {
            let ms = 0.2 + lat.next_ms() / 400.0;
            run.steps[0].latency_ms = ms;
            run.timed_latency_ms = ms;
            run.total_ms = ms;
            reg.record_run(run, at).unwrap();
            reg.record(
                catalog::SCHEDULE_LATENESS.name,
                &[("check", &run.check), ("location", "eu-west")],
                (lat.next_ms() / 80.0).fract(),
                at,
            )
            .unwrap();
        }
        if s % 600 == 599 {
            reg.maintain(t(s + 1));
            sampled.push((s + 1, reg.histogram_memory().heap_bytes, rss_kib()));
        }
    }
    let m = reg.histogram_memory();
    println!(
        "\n== the daemon's registry: {CHECKS} HTTP checks x 1 run/s x 1 h (recorded in {:.1} s) ==",
        start.elapsed().as_secs_f64()
    );
    println!(
        "latency series {} ({} following their check's); encoded {:.2} MiB; heap held by the histograms {:.2} MiB",
        m.series,
        m.following,
        mib(m.encoded_bytes),
        mib(m.heap_bytes)
    );
    for (s, heap, rss) in sampled {
        println!(
            "after {:>4} s: histogram heap {:.2} MiB, VmRSS +{:.1} MiB",
            s,
            mib(heap),
            rss.saturating_sub(rss_before) as f64 / 1024.0
        );
    }
}

fn render_time() {
    const CHECKS: usize = 1_000;
    let steps = ["login", "open", "search", "select", "save"];
    let reg = Registry::new();
    let mut lat = Latencies(2);
    // 10 runs per check in the last 5 minutes (every 30 s), as the daemon would have.
    for k in 0..10 {
        for c in 0..CHECKS {
            let run = journey_run(&format!("check-{c:04}"), &steps, &mut lat, 1);
            reg.record_run(&run, t(k * 30)).unwrap();
        }
    }
    for c in 0..CHECKS {
        reg.record(
            catalog::SCHEDULE_LATENESS.name,
            &[("check", &format!("check-{c:04}")), ("location", "eu-west")],
            lat.next_ms() / 100.0,
            t(290),
        )
        .unwrap();
    }
    let now = t(300);
    let mut out = String::new();
    let mut times = Vec::new();
    for _ in 0..30 {
        out.clear();
        let start = Instant::now();
        prometheus::render_into(&reg, now, &mut out);
        times.push(start.elapsed());
    }
    times.sort();
    let lines = out.lines().filter(|l| !l.starts_with('#')).count();
    println!(
        "\n== /metrics render: {CHECKS} checks x {} steps ==",
        steps.len()
    );
    println!(
        "render: min {:.2} ms, median {:.2} ms, max {:.2} ms (30 renders)  goal <= 20 ms",
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
    println!(
        "output: {} samples, {:.2} MiB; latency series: {}",
        lines,
        mib(out.len()),
        reg.histogram_memory().series
    );

    let start = Instant::now();
    let snap = reg.snapshot(now);
    let all = start.elapsed();
    let start = Instant::now();
    let snap_short = reg.snapshot_windows(now, &[Window::M5, Window::H1]);
    let short = start.elapsed();
    println!(
        "snapshot (rules input): all 5 windows {:.2} ms; 5m+1h only {:.2} ms ({} series)",
        all.as_secs_f64() * 1e3,
        short.as_secs_f64() * 1e3,
        snap.series.len().max(snap_short.series.len())
    );
}

fn memory() {
    const SERIES: usize = 1_000;
    const SECONDS: i64 = 3_600;
    let rss_before = rss_kib();
    let reg = Registry::new();
    let names: Vec<String> = (0..SERIES).map(|i| format!("check-{i:04}")).collect();
    let mut lat = Latencies(3);
    let start = Instant::now();
    for s in 0..SECONDS {
        let at = t(s);
        for name in &names {
            reg.record(
                catalog::SCHEDULE_LATENESS.name,
                &[("check", name), ("location", "eu-west")],
                lat.next_ms(),
                at,
            )
            .unwrap();
        }
    }
    // Freeze the last minute too, so the figure is an hour of frozen minute slices.
    reg.maintain(t(SECONDS));
    let took = start.elapsed();
    let m = reg.histogram_memory();
    let rss_after = rss_kib();
    let values = SERIES as i64 * SECONDS;
    println!(
        "== memory: {SERIES} series x 1 value/s x 1 h ({values} values, recorded in {:.2} s) ==",
        took.as_secs_f64()
    );
    println!(
        "encoded minute slices: {:.2} MiB ({:.0} bytes per series-minute, {:.2} bytes per value)",
        mib(m.encoded_bytes),
        m.encoded_bytes as f64 / (SERIES as f64 * 60.0),
        m.encoded_bytes as f64 / values as f64
    );
    println!(
        "heap held by the histograms (slices + bookkeeping + live buffers): {:.2} MiB",
        mib(m.heap_bytes)
    );
    println!(
        "VmRSS before {:.1} MiB, after {:.1} MiB: +{:.1} MiB (includes registry maps, label keys, allocator slack)",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0
    );
    println!(
        "for comparison: one live Histogram<u32> (1 us..1 h, 2 digits) = {} bytes; x {SERIES} x 60 minutes = {:.0} MiB",
        3328 * 4,
        mib(3328 * 4 * SERIES * 60)
    );
}

/// Steady state over 30 days for one series, projected to 1,000: the roll-ups' size depends on
/// the rate (how many buckets a day fills), so two rates are shown.
fn thirty_days() {
    println!("\n== 30 days of roll-ups, one series (x 1,000 = projection) ==");
    for (label, every_s) in [("1 value/s", 1i64), ("1 value/30 s", 30)] {
        let mut w = WindowedHistogram::new();
        let mut lat = Latencies(4);
        let start = Instant::now();
        let end = 31 * 86_400;
        let mut s = 0;
        while s < end {
            w.record(lat.next_ms(), t(s));
            s += every_s;
        }
        w.advance(t(end));
        let (m, h, d) = w.slice_counts();
        println!(
            "{label:>13}: {m} minute + {h} hour + {d} day slices = {} encoded bytes, {} heap bytes; x 1,000 series = {:.1} MiB heap (built in {:.2} s)",
            w.encoded_bytes(),
            w.heap_bytes(),
            mib(w.heap_bytes() * 1000),
            start.elapsed().as_secs_f64()
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it too: keep that quick.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        println!("metrics bench: run with `cargo bench --bench metrics`");
        return;
    }
    // `METRICS_BENCH=daemon-hour`: only the daemon's hour (its VmRSS figure wants a process of
    // its own).
    if std::env::var("METRICS_BENCH").as_deref() == Ok("daemon-hour") {
        daemon_hour();
        return;
    }
    // Memory first, so VmRSS is not flattered by memory freed from earlier sections.
    memory();
    thirty_days();
    record_rate();
    render_time();
}
