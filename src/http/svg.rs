//! Server-rendered inline SVG charts: no script, no CDN, readable at a glance and by a screen
//! reader (each chart is one `role="img"` with a label that states what it shows).

use std::fmt::Write;

use super::html::esc;

/// Colours with at least 4.5:1 contrast on white (text and bars alike).
const INK: &str = "#1a1a1a";
const LINE: &str = "#1a56db";
const TARGET: &str = "#b00020";
const GRID: &str = "#767676";

/// A bar of the step breakdown.
pub struct Bar<'a> {
    pub name: &'a str,
    pub ms: f64,
    /// `pass`, `fail`, `error`.
    pub outcome: &'a str,
    pub timed: bool,
}

fn bar_colour(outcome: &str, timed: bool) -> &'static str {
    match (outcome, timed) {
        ("fail", _) => "#b00020",
        ("error", _) => "#8a4b00",
        (_, true) => LINE,
        (_, false) => "#4a5f86",
    }
}

/// A rounded-up axis maximum (1, 2 or 5 times a power of ten).
fn nice_max(v: f64) -> f64 {
    let v = v.max(1.0);
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// p95 per hour over the last 24 h (`points`, oldest first, `None` for hours without passing
/// runs) against the latency target.
pub fn p95_chart(label: &str, points: &[Option<f64>], target: Option<f64>) -> String {
    let (w, h) = (640.0, 180.0);
    let (left, right, top, bottom) = (64.0, 16.0, 14.0, 30.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let highest = points
        .iter()
        .flatten()
        .copied()
        .chain(target)
        .fold(0.0, f64::max);
    let ymax = nice_max(highest * 1.1);
    let n = points.len().max(2);
    let x = |i: usize| left + pw * i as f64 / (n - 1) as f64;
    let y = |v: f64| top + ph - ph * (v / ymax).min(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(label)
    );
    for (v, text) in [
        (0.0, "0".to_string()),
        (ymax / 2.0, format!("{:.0}", ymax / 2.0)),
        (ymax, format!("{ymax:.0} ms")),
    ] {
        let _ = write!(
            s,
            r#"<line x1="{left}" y1="{yy:.1}" x2="{x2}" y2="{yy:.1}" stroke="{GRID}" stroke-width="0.5"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="11" fill="{INK}">{t}</text>"#,
            yy = y(v),
            x2 = w - right,
            tx = left - 6.0,
            ty = y(v) + 4.0,
            t = esc(&text)
        );
    }
    for (i, text) in [(0, "24 h ago"), (n / 2, "12 h ago"), (n - 1, "now")] {
        let anchor = if i == 0 {
            "start"
        } else if i == n - 1 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="{anchor}" font-size="11" fill="{INK}">{text}</text>"#,
            x(i),
            h - 8.0
        );
    }
    if let Some(t) = target {
        let _ = write!(
            s,
            r#"<line x1="{left}" y1="{yy:.1}" x2="{x2}" y2="{yy:.1}" stroke="{TARGET}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{x2}" y="{ty:.1}" text-anchor="end" font-size="11" fill="{TARGET}">target {t:.0} ms</text>"#,
            yy = y(t),
            x2 = w - right,
            ty = y(t) - 4.0,
        );
    }
    // One polyline per run of consecutive hours with data: a gap is no data, not zero.
    let mut seg: Vec<String> = Vec::new();
    let flush = |seg: &mut Vec<String>, s: &mut String| {
        if seg.len() > 1 {
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{LINE}" stroke-width="2" points="{}"/>"#,
                seg.join(" ")
            );
        }
        seg.clear();
    };
    for (i, p) in points.iter().enumerate() {
        match p {
            Some(v) => seg.push(format!("{:.1},{:.1}", x(i), y(*v))),
            None => flush(&mut seg, &mut s),
        }
    }
    flush(&mut seg, &mut s);
    for (i, p) in points.iter().enumerate() {
        if let Some(v) = p {
            let over = target.is_some_and(|t| *v > t);
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                x(i),
                y(*v),
                if over { TARGET } else { LINE }
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The steps of one run as horizontal bars (latency), coloured by outcome.
pub fn step_bars(label: &str, bars: &[Bar<'_>]) -> String {
    let row = 24.0;
    let (w, left, right) = (640.0, 240.0, 90.0);
    let h = row * bars.len().max(1) as f64 + 8.0;
    let max = bars.iter().map(|b| b.ms).fold(0.0, f64::max).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(label)
    );
    for (i, b) in bars.iter().enumerate() {
        let top = 4.0 + row * i as f64;
        let len = ((w - left - right) * b.ms / max).max(1.0);
        let name: String = if b.name.chars().count() > 34 {
            b.name.chars().take(33).chain(['…']).collect()
        } else {
            b.name.to_string()
        };
        let _ = write!(
            s,
            r#"<text x="{tx}" y="{ty}" text-anchor="end" font-size="12" fill="{INK}">{name}</text><rect x="{left}" y="{ry}" width="{len:.1}" height="{rh}" fill="{c}"/><text x="{vx:.1}" y="{ty}" font-size="12" fill="{INK}">{v:.0} ms{flag}</text>"#,
            tx = left - 8.0,
            ty = top + 15.0,
            name = esc(&name),
            ry = top + 3.0,
            rh = row - 8.0,
            c = bar_colour(b.outcome, b.timed),
            vx = left + len + 6.0,
            v = b.ms,
            flag = match b.outcome {
                "fail" => " failed",
                "error" => " probe error",
                _ => "",
            }
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(370.0), 500.0);
        assert_eq!(nice_max(440.0), 500.0);
        assert_eq!(nice_max(1200.0), 2000.0);
    }

    #[test]
    fn gaps_split_the_line_and_text_is_escaped() {
        let pts = [Some(100.0), Some(120.0), None, Some(500.0), Some(90.0)];
        let svg = p95_chart("p95 of <b>", &pts, Some(400.0));
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 4);
        // The point above the target is drawn in the target's colour.
        assert_eq!(svg.matches(&format!("fill=\"{TARGET}\"/>")).count(), 1);
        assert!(svg.contains("aria-label=\"p95 of &lt;b&gt;\""));
        let bars = step_bars(
            "steps",
            &[Bar {
                name: "<img src=x>",
                ms: 12.0,
                outcome: "fail",
                timed: true,
            }],
        );
        assert!(
            bars.contains("&lt;img src=x&gt;") && !bars.contains("<img"),
            "{bars}"
        );
        assert!(bars.contains("12 ms failed"));
    }
}
