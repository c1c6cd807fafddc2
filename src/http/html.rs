//! The one HTML-escaping function of the status page. Everything the page shows that did not
//! come from a string literal in this crate (check names, error messages, page text, labels,
//! URLs) goes through [`esc`]: a target controls its error messages, so an error containing
//! `<script>` must render as text.

use std::fmt::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A latency for people: whole milliseconds, or `no data`.
pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.0} ms"),
        _ => "no data".into(),
    }
}

/// A ratio as a percentage with two decimals, or `no data`.
pub fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{:.2} %", v * 100.0),
        _ => "no data".into(),
    }
}

/// A timestamp to the second, UTC.
pub fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A `data-*` attribute holding a number exactly as the JSON API serves it (`null` without
/// data), so scripts and tests compare the page with `/api/v1/checks` without rounding.
pub fn data_num(out: &mut String, name: &str, v: Option<f64>) {
    let v = match v {
        Some(v) => serde_json::Value::from(v).to_string(),
        None => "null".into(),
    };
    let _ = write!(out, " data-{}=\"{}\"", esc(name), esc(&v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(esc("plain"), "plain");
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(ms(Some(123.6)), "124 ms");
        assert_eq!(ms(None), "no data");
        assert_eq!(pct(Some(0.99954)), "99.95 %");
        assert_eq!(pct(Some(f64::NAN)), "no data");
    }
}
