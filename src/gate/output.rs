//! The gate's outputs: the table a person reads, `--json`, `--junit` (one testcase per check and
//! criterion; failures carry the numbers) and the day's `ops/reports/perf-YYYYMMDD.json`
//! (the platform's performance-report folder), in which the gate owns the `gate` key and keeps whatever other writers put there.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::judge::{Verdict, Verdicts};
use super::samples::Mode;

fn num(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(v) => format!(
            "{}{unit}",
            crate::rules::eval::fmt_num((v * 10.0).round() / 10.0)
        ),
        None => "-".into(),
    }
}

/// The human table, then the other criteria, then the overall verdict line.
pub fn table(v: &Verdicts) -> String {
    let mut out = String::new();
    let what = match &v.mode {
        Mode::Window { window } => format!(
            "window {window} ({} .. {})",
            v.from.format("%Y-%m-%d %H:%M"),
            v.to.format("%Y-%m-%d %H:%M UTC")
        ),
        Mode::Runs { runs } => format!("{runs} fresh runs per check"),
    };
    let _ = writeln!(out, "synmon gate: {what}");
    let w = v
        .checks
        .iter()
        .map(|c| c.check.chars().count())
        .chain(["check".len(), "feed_push_jobs".len()])
        .max()
        .unwrap_or(5);
    let _ = writeln!(
        out,
        "{:<w$}  {:>7}  {:>6}  {:<22}  {:<22}  verdict",
        "check", "samples", "errors", "p95 vs target", "availability vs target"
    );
    for c in &v.checks {
        let _ = writeln!(
            out,
            "{:<w$}  {:>7}  {:>6}  {:<22}  {:<22}  {}",
            c.check,
            c.samples,
            c.probe_errors,
            format!(
                "{} / < {}",
                num(c.p95_ms, " ms"),
                num(Some(c.p95_target_ms), " ms")
            ),
            format!(
                "{} / >= {}",
                num(c.availability_pct, "%"),
                num(Some(c.availability_target_pct), "%")
            ),
            c.verdict.as_str()
        );
    }
    for c in v
        .criteria
        .iter()
        .filter(|c| matches!(c.check.as_str(), "overall" | "feed_push_jobs" | "alerts"))
    {
        let _ = writeln!(
            out,
            "{:<w$}  {}: {} ({})",
            c.check,
            c.criterion,
            c.verdict.as_str(),
            c.message
        );
    }
    let problems: Vec<_> = v
        .criteria
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Breach | Verdict::CannotJudge))
        .filter(|c| !matches!(c.check.as_str(), "overall" | "feed_push_jobs" | "alerts"))
        // A p95 or availability left unjudged because of the samples or probe errors: the
        // cause is listed already.
        .filter(|c| !c.message.starts_with("not judged:"))
        .collect();
    if !problems.is_empty() {
        out.push('\n');
        for c in problems {
            let _ = writeln!(
                out,
                "{} {}: {} ({})",
                c.check,
                c.criterion,
                c.verdict.as_str(),
                c.message
            );
        }
    }
    for n in &v.notes {
        let _ = writeln!(out, "\nnote: {n}");
    }
    let _ = writeln!(
        out,
        "\nverdict: {} (exit {})",
        match v.verdict {
            Verdict::Pass | Verdict::Skipped => "PASS",
            Verdict::Breach => "SLA BREACHED",
            Verdict::CannotJudge => "CANNOT JUDGE",
        },
        v.exit_code
    );
    out
}

/// The `--json` document.
pub fn json(v: &Verdicts) -> String {
    serde_json::to_string_pretty(v).expect("verdicts serialize") + "\n"
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one `<testcase>` per check and criterion (`classname` the check, `name` the
/// criterion); a breach is a `<failure>`, cannot-judge an `<error>`, not-applicable `<skipped>`.
pub fn junit(v: &Verdicts) -> String {
    let count = |verdict: Verdict| v.criteria.iter().filter(|c| c.verdict == verdict).count();
    let (tests, failures, errors, skipped) = (
        v.criteria.len(),
        count(Verdict::Breach),
        count(Verdict::CannotJudge),
        count(Verdict::Skipped),
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"synmon gate\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"synmon gate\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" timestamp=\"{}\">",
        v.to.format("%Y-%m-%dT%H:%M:%S")
    );
    let _ = writeln!(out, "    <properties>");
    let mode = match &v.mode {
        Mode::Window { window } => format!("window {window}"),
        Mode::Runs { runs } => format!("runs {runs}"),
    };
    let _ = writeln!(
        out,
        "      <property name=\"mode\" value=\"{}\"/>",
        xml_escape(&mode)
    );
    let _ = writeln!(
        out,
        "      <property name=\"exit_code\" value=\"{}\"/>",
        v.exit_code
    );
    let _ = writeln!(out, "    </properties>");
    for c in &v.criteria {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
            xml_escape(&c.check),
            xml_escape(&c.criterion)
        );
        let detail = format!(
            "value: {}\ntarget: {} {}\n{}",
            c.value.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
            c.op,
            c.target
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into()),
            c.message
        );
        match c.verdict {
            Verdict::Pass => out.push_str("/>\n"),
            Verdict::Breach => {
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"breach\" message=\"{}\">{}</failure>\n    </testcase>",
                    xml_escape(&c.message),
                    xml_escape(&detail)
                );
            }
            Verdict::CannotJudge => {
                let _ = writeln!(
                    out,
                    ">\n      <error type=\"cannot_judge\" message=\"{}\">{}</error>\n    </testcase>",
                    xml_escape(&c.message),
                    xml_escape(&detail)
                );
            }
            Verdict::Skipped => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml_escape(&c.message)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Writes the verdicts under the `gate` key of `dir/perf-YYYYMMDD.json` (the date of the
/// judgement), keeping the other keys (benchmarks write theirs). Returns the file written.
pub fn write_perf_report(dir: &Path, v: &Verdicts) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join(format!("perf-{}.json", v.to.format("%Y%m%d")));
    let mut doc = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    doc["gate"] = serde_json::to_value(v).map_err(std::io::Error::other)?;
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)? + "\n";
    std::fs::write(&file, text)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;?"
        );
    }
}
