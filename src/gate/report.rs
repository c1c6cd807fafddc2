//! `synmon report`: one self-contained HTML file for the pilot reviews — p95 per
//! journey over time, availability, error-budget burn, and the gate's verdict for the same
//! window, and the feature flags still in the code with what the flag policy asks of them.
//! Charts are inline SVG drawn here; no script, stylesheet, font or image is fetched, so the
//! file reads the same offline, attached to a ticket or mailed. Only check names, counts,
//! latencies and the flag registry's own fields go in: never run errors (they may quote the
//! target's responses).

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::GatedCheck;
use super::judge::{Verdict, Verdicts, percentile};
use crate::flags::AuditRow;
use crate::outcome::Outcome;
use crate::run::CheckKind;
use crate::store::RunPoint;

/// Line colours (colour-blind safe, Okabe-Ito), cycled per series.
const COLORS: [&str; 7] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
];

/// Bucket widths the charts pick from: the smallest giving at most ~200 points per line.
const BUCKETS_SECS: [i64; 9] = [
    60,
    300,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fmt(v: f64) -> String {
    crate::rules::eval::fmt_num((v * 100.0).round() / 100.0)
}

/// One line: a name and a value per bucket (`None`: no data, the line breaks).
struct Series {
    name: String,
    points: Vec<Option<f64>>,
}

/// Per journey and bucket: passing latencies, pass and fail counts, and the runs recorded
/// inside a maintenance window (left out of latency, availability and budget).
#[derive(Default, Clone)]
struct Bucket {
    latencies: Vec<f64>,
    pass: u64,
    fail: u64,
    maintenance: u64,
}

/// The report for `points` (runs between `from` and `to`), judged as `verdicts`; `flags`: the
/// flags still in the code as of `to` (`flags::audit::next_expiries`), `None` when the config
/// has no flag registry.
pub fn render(
    points: &[RunPoint],
    checks: &[GatedCheck],
    availability_target_pct: f64,
    verdicts: &Verdicts,
    flags: Option<&[AuditRow]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> String {
    let span = (to - from).num_seconds().max(60);
    let bucket = BUCKETS_SECS
        .iter()
        .copied()
        .find(|b| span / b <= 200)
        .unwrap_or(86400);
    let n = ((span + bucket - 1) / bucket) as usize;
    let journeys: Vec<&GatedCheck> = checks
        .iter()
        .filter(|c| c.kind == CheckKind::Journey)
        .collect();
    let index: HashMap<&str, usize> = journeys
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let mut grid = vec![vec![Bucket::default(); n]; journeys.len()];
    // Retried slots count once, by their last attempt, as the gate judges them.
    let mut last_attempt: HashMap<(&str, &str, DateTime<Utc>), u32> = HashMap::new();
    for p in points.iter().filter(|p| p.attempt > 1 && !p.cancelled) {
        let e = last_attempt
            .entry((&p.check, &p.location, p.scheduled_at))
            .or_insert(0);
        *e = (*e).max(p.attempt);
    }
    for p in points.iter().filter(|p| !p.cancelled) {
        let Some(&j) = index.get(&*p.check) else {
            continue;
        };
        if let Some(&last) = last_attempt.get(&(&*p.check, &*p.location, p.scheduled_at))
            && p.attempt < last
        {
            continue;
        }
        let b = ((p.started_at - from).num_seconds() / bucket).clamp(0, n as i64 - 1) as usize;
        let cell = &mut grid[j][b];
        if p.maintenance {
            cell.maintenance += 1;
            continue;
        }
        match p.outcome {
            Outcome::Pass => {
                cell.pass += 1;
                cell.latencies.push(p.latency_ms);
            }
            Outcome::Fail => cell.fail += 1,
            Outcome::Error => {}
        }
    }

    let budget_ratio = (100.0 - availability_target_pct) / 100.0;
    let mut p95s = Vec::new();
    let mut avail = Vec::new();
    let mut budget = Vec::new();
    for (j, c) in journeys.iter().enumerate() {
        p95s.push(Series {
            name: c.name.clone(),
            points: grid[j]
                .iter()
                .map(|b| percentile(&b.latencies, 0.95))
                .collect(),
        });
        avail.push(Series {
            name: c.name.clone(),
            points: grid[j]
                .iter()
                .map(|b| {
                    let t = b.pass + b.fail;
                    (t > 0).then(|| b.pass as f64 * 100.0 / t as f64)
                })
                .collect(),
        });
        // Budget remaining so far in the period: 1 - failures / (allowed share x runs so far).
        let (mut bad, mut total) = (0u64, 0u64);
        budget.push(Series {
            name: c.name.clone(),
            points: grid[j]
                .iter()
                .map(|b| {
                    bad += b.fail;
                    total += b.pass + b.fail;
                    (total > 0).then(|| {
                        (100.0 * (1.0 - bad as f64 / (budget_ratio * total as f64))).max(-100.0)
                    })
                })
                .collect(),
        });
    }

    let p95_target = journeys
        .iter()
        .map(|c| c.p95_target_ms)
        .fold(f64::NAN, f64::max);
    let max_p95 = p95s
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .copied()
        .fold(0.0f64, f64::max);
    let min_avail = avail
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .copied()
        .fold(100.0f64, f64::min);
    let min_budget = budget
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .copied()
        .fold(0.0f64, f64::min);

    let frame = Frame { from, bucket, n };
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>synmon report {from_d} .. {to_d}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 980px; color: #111; background: #fff; padding: 0 1rem; }}
h1 {{ font-size: 1.5rem; }} h2 {{ font-size: 1.2rem; margin-top: 2rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #767676; padding: .3rem .6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.pass {{ color: #0a6b2c; font-weight: 600; }} .breach {{ color: #a8071a; font-weight: 700; }}
.cannot_judge {{ color: #7a4a00; font-weight: 700; }} .skipped {{ color: #555; }}
svg {{ max-width: 100%; height: auto; }} svg text {{ font-size: 12px; fill: #111; }}
pre {{ background: #f4f4f4; padding: 1rem; overflow-x: auto; }}
</style></head><body>
<h1>synmon report</h1>
<p>Runs from <strong>{from_d}</strong> to <strong>{to_d}</strong> (UTC), {runs} runs, one point per {bucket_txt}.
Latency is each journey's timed steps (passing runs); availability is pass / (pass + fail): probe errors are not the target's fault and are excluded, and runs inside maintenance windows are counted apart, never judged.</p>
"#,
        from_d = from.format("%Y-%m-%d %H:%M"),
        to_d = to.format("%Y-%m-%d %H:%M"),
        runs = points.len(),
        bucket_txt = humantime::format_duration(std::time::Duration::from_secs(bucket as u64)),
    );

    // Verdict summary.
    let _ = write!(
        html,
        "<h2>Release gate over the same window: <span class=\"{cls}\">{v}</span> (exit {code})</h2>\n<table><thead><tr><th>check</th><th>criterion</th><th>value</th><th>target</th><th>verdict</th></tr></thead><tbody>\n",
        cls = verdict_class(verdicts.verdict),
        v = match verdicts.verdict {
            Verdict::Pass | Verdict::Skipped => "pass",
            Verdict::Breach => "SLA breached",
            Verdict::CannotJudge => "cannot judge",
        },
        code = verdicts.exit_code,
    );
    for c in verdicts
        .criteria
        .iter()
        .filter(|c| c.criterion != "probe_errors" || c.verdict != Verdict::Pass)
    {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td class=\"{}\" title=\"{}\">{}</td></tr>",
            esc(&c.check),
            esc(&c.criterion),
            c.value.map(fmt).unwrap_or_else(|| "-".into()),
            esc(&c.op),
            c.target.map(fmt).unwrap_or_default(),
            verdict_class(c.verdict),
            esc(&c.message),
            c.verdict.as_str()
        );
    }
    html.push_str("</tbody></table>\n");

    let _ = write!(
        html,
        "<h2>p95 latency per journey</h2>\n{}",
        frame.chart(
            "p95 latency per journey (ms)",
            &p95s,
            0.0,
            (max_p95.max(p95_target.max(0.0)) * 1.15).max(1.0),
            p95_target
                .is_finite()
                .then(|| (p95_target, format!("target {} ms", fmt(p95_target)))),
            "ms",
        )
    );
    let _ = write!(
        html,
        "<h2>Availability per journey</h2>\n{}",
        frame.chart(
            "availability per journey (%)",
            &avail,
            (min_avail.min(availability_target_pct) - 0.5).max(0.0),
            100.0,
            Some((
                availability_target_pct,
                format!("target {}%", fmt(availability_target_pct))
            )),
            "%",
        )
    );
    let _ = write!(
        html,
        "<h2>Error budget remaining ({}% objective)</h2>\n<p>Share of the window's error budget left, run by run: 100% is untouched, 0% spent, below 0 overspent.</p>\n{}",
        fmt(availability_target_pct),
        frame.chart(
            "error budget remaining (%)",
            &budget,
            min_budget.min(0.0) - 5.0,
            105.0,
            Some((0.0, "budget spent".to_string())),
            "%",
        )
    );

    // The numbers behind the charts, as a table (readable without the pictures).
    html.push_str("<h2>Per journey</h2>\n<table><thead><tr><th>journey</th><th>runs judged</th><th>failed</th><th>p95 ms</th><th>availability %</th><th>budget remaining %</th><th>maintenance runs</th></tr></thead><tbody>\n");
    for (j, c) in journeys.iter().enumerate() {
        let all: Vec<f64> = grid[j]
            .iter()
            .flat_map(|b| b.latencies.iter().copied())
            .collect();
        let fail: u64 = grid[j].iter().map(|b| b.fail).sum();
        let maintenance: u64 = grid[j].iter().map(|b| b.maintenance).sum();
        let total = all.len() as u64 + fail;
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{total}</td><td>{fail}</td><td>{}</td><td>{}</td><td>{}</td><td>{maintenance}</td></tr>",
            esc(&c.name),
            percentile(&all, 0.95)
                .map(fmt)
                .unwrap_or_else(|| "-".into()),
            if total > 0 {
                fmt(100.0 * (total - fail) as f64 / total as f64)
            } else {
                "-".into()
            },
            budget[j]
                .points
                .iter()
                .rev()
                .flatten()
                .next()
                .map(|v| fmt(*v))
                .unwrap_or_else(|| "-".into()),
        );
    }
    html.push_str("</tbody></table>\n");
    if let Some(rows) = flags {
        render_flags(&mut html, rows, to);
    }
    if !verdicts.notes.is_empty() {
        for n in &verdicts.notes {
            let _ = writeln!(html, "<p>Note: {}</p>", esc(n));
        }
    }
    let _ = writeln!(
        html,
        "<p><small>Generated by synmon {} at {} UTC.</small></p>\n</body></html>",
        env!("CARGO_PKG_VERSION"),
        to.format("%Y-%m-%d %H:%M:%S")
    );
    html
}

/// "Feature flags": the flags still in the code, soonest expiry first, with what the flag policy
/// asks of each as of the report's end (the rows of `synmon flags audit --at`).
fn render_flags(html: &mut String, rows: &[AuditRow], to: DateTime<Utc>) {
    let _ = writeln!(
        html,
        "<h2>Feature flags</h2>\n<p>Flags not removed, soonest expiry first, as of {} (<code>synmon flags audit --at {}</code> prints the full audit).</p>",
        to.format("%Y-%m-%d"),
        to.format("%Y-%m-%d")
    );
    if rows.is_empty() {
        html.push_str("<p>Every flag of the registry is removed.</p>\n");
        return;
    }
    html.push_str("<table><thead><tr><th>flag</th><th>owner</th><th>state</th><th>expires</th><th>days to expiry</th><th>policy asks</th></tr></thead><tbody>\n");
    for r in rows {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td></tr>",
            esc(&r.flag),
            esc(&r.owner),
            esc(r.state),
            r.expires
                .map(|e| e.to_string())
                .unwrap_or_else(|| "-".into()),
            r.days_to_expiry
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
            if r.due { " class=\"breach\"" } else { "" },
            if r.due {
                esc(&r.action.describe(r.days_to_expiry))
            } else {
                "nothing yet".to_string()
            },
        );
    }
    html.push_str("</tbody></table>\n");
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Breach => "breach",
        Verdict::CannotJudge => "cannot_judge",
        Verdict::Skipped => "skipped",
    }
}

/// The time axis shared by the charts.
struct Frame {
    from: DateTime<Utc>,
    bucket: i64,
    n: usize,
}

const W: f64 = 900.0;
const H: f64 = 300.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 50.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 60.0;

impl Frame {
    fn x(&self, i: usize) -> f64 {
        let span = (self.n.max(2) - 1) as f64;
        LEFT + (W - LEFT - RIGHT) * i as f64 / span
    }

    /// An inline SVG line chart with a labelled dashed reference line and a legend.
    fn chart(
        &self,
        title: &str,
        series: &[Series],
        y0: f64,
        y1: f64,
        reference: Option<(f64, String)>,
        unit: &str,
    ) -> String {
        let y1 = if y1 > y0 { y1 } else { y0 + 1.0 };
        let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (v.clamp(y0, y1) - y0) / (y1 - y0));
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">\n<title>{}</title>\n",
            esc(title),
            esc(title)
        );
        // Axes and horizontal grid with 5 value labels.
        for k in 0..=4 {
            let v = y0 + (y1 - y0) * f64::from(k) / 4.0;
            let py = y(v);
            let _ = writeln!(
                s,
                "<line x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{}\" y2=\"{py:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}{unit}</text>",
                W - RIGHT,
                LEFT - 6.0,
                py + 4.0,
                // Whole numbers where the axis spans enough for them to differ.
                if y1 - y0 >= 20.0 {
                    format!("{}", v.round())
                } else {
                    fmt(v)
                }
            );
        }
        // Time labels: 6 along the axis.
        for k in 0..=5 {
            let i = (self.n.saturating_sub(1)) * k / 5;
            let t = self.from + chrono::Duration::seconds(self.bucket * i as i64);
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                self.x(i),
                H - BOTTOM + 18.0,
                t.format("%m-%d %H:%M")
            );
        }
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#767676\"/>",
            H - BOTTOM,
            W - RIGHT,
            H - BOTTOM
        );
        if let Some((v, label)) = reference {
            let py = y(v);
            let _ = writeln!(
                s,
                "<line x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{}\" y2=\"{py:.1}\" stroke=\"#a8071a\" stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" style=\"fill:#a8071a\">{}</text>",
                W - RIGHT,
                W - RIGHT,
                py - 4.0,
                esc(&label)
            );
        }
        for (k, ser) in series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            // Break the line where there is no data.
            let mut run: Vec<String> = Vec::new();
            let flush = |run: &mut Vec<String>, s: &mut String| {
                if run.len() == 1 {
                    let (px, py) = run[0].split_once(',').unwrap_or(("0", "0"));
                    let _ = writeln!(
                        s,
                        "<circle cx=\"{px}\" cy=\"{py}\" r=\"2\" fill=\"{color}\"/>"
                    );
                } else if run.len() > 1 {
                    let _ = writeln!(
                        s,
                        "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" points=\"{}\"/>",
                        run.join(" ")
                    );
                }
                run.clear();
            };
            for (i, p) in ser.points.iter().enumerate() {
                match p {
                    Some(v) => run.push(format!("{:.1},{:.1}", self.x(i), y(*v))),
                    None => flush(&mut run, &mut s),
                }
            }
            flush(&mut run, &mut s);
            // Legend entry.
            let lx = LEFT + 10.0 + 200.0 * k as f64;
            let ly = H - 18.0;
            let _ = writeln!(
                s,
                "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{}\" y=\"{}\">{}</text>",
                lx + 20.0,
                lx + 26.0,
                ly + 4.0,
                esc(&ser.name)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::samples::{AlertsReading, GaugeReading, Mode, Samples};
    use crate::gate::{Targets, judge};

    #[test]
    fn the_report_is_self_contained_and_escapes_names() {
        let from = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let to = from + chrono::Duration::hours(2);
        let points: Vec<RunPoint> = (0..120)
            .map(|m| RunPoint {
                check: "a<b".into(),
                kind: CheckKind::Journey,
                location: "local".into(),
                attempt: 1,
                scheduled_at: from + chrono::Duration::minutes(m),
                started_at: from + chrono::Duration::minutes(m),
                outcome: if m == 30 {
                    Outcome::Fail
                } else {
                    Outcome::Pass
                },
                cancelled: false,
                latency_ms: 100.0 + m as f64,
                maintenance: false,
            })
            .collect();
        let checks = vec![GatedCheck {
            name: "a<b".into(),
            kind: CheckKind::Journey,
            p95_target_ms: 400.0,
        }];
        let samples = Samples {
            mode: Mode::Window {
                window: "2h".into(),
            },
            from,
            to,
            checks: crate::gate::samples::from_points(&points),
            feed_push_success_rate: GaugeReading::NotConfigured,
            page_alerts: AlertsReading::Firing { alerts: vec![] },
        };
        let v = judge(&samples, &checks, &Targets::default());
        let html = render(&points, &checks, 99.9, &v, None, from, to);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("<script"), "no scripts");
        assert!(!html.contains("src="), "nothing fetched");
        assert!(!html.contains("href="), "nothing linked");
        assert!(html.contains("a&lt;b") && !html.contains("a<b"));
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(html.contains("<polyline"));
        assert!(html.contains("target 400 ms"));
        // One failure in 120 runs, 99.9% objective: the budget is overspent.
        assert!(html.contains("<td>119</td>") || html.contains("<td>120</td>"));
        assert!(html.contains("SLA breached"));
        assert!(!html.contains("Feature flags"), "no registry, no section");
    }

    #[test]
    fn the_flags_section_lists_rows_escaped_as_of_the_end() {
        let to = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let day = to.date_naive();
        let row = |flag: &str, days: i64| {
            let action = crate::flags::Action::for_days(days);
            AuditRow {
                flag: flag.into(),
                state: "pilot",
                owner: "ux<team>".into(),
                created: day,
                expires: Some(day + chrono::Duration::days(days)),
                days_to_expiry: Some(days),
                action,
                due: action.is_due(),
            }
        };
        let mut html = String::new();
        render_flags(&mut html, &[row("FF_A", 10), row("FF_B", 90)], to);
        assert!(html.contains("<h2>Feature flags</h2>"), "{html}");
        assert!(html.contains(&format!("as of {day}")), "{html}");
        assert!(html.contains("ux&lt;team&gt;") && !html.contains("ux<team>"));
        let a = html.find("<td>FF_A</td>").unwrap();
        let b = html.find("<td>FF_B</td>").unwrap();
        assert!(a < b);
        assert!(
            html.contains(
                "<td>10</td><td class=\"breach\">renew or remove: expires in 10 day(s)</td>"
            ),
            "{html}"
        );
        assert!(html.contains("<td>90</td><td>nothing yet</td>"), "{html}");
    }
}
