//! The `filter` query parameter of `/api/v2/alerts`, `/api/v2/alerts/groups` and
//! `/api/v2/silences`: Alertmanager's matcher syntax (`labels.ParseMatchers`). One value holds
//! one matcher (`alertname="down"`, `check=~"align_.*"`, `route!=page`) or several in braces
//! (`{alertname="down",severity="page"}`); values may be quoted (with `\"`, `\\`, `\n`, `\t`
//! escapes) or bare. Regexes are anchored at both ends, as everywhere in synmon.

use crate::mute::silence::written;
use crate::rules::model::{MatchOp, Matcher};

/// Every matcher of one `filter` value, or why it is not one.
pub(super) fn parse(raw: &str) -> Result<Vec<Matcher>, String> {
    let s = raw.trim();
    let inner = match s.strip_prefix('{') {
        Some(rest) => rest
            .strip_suffix('}')
            .ok_or_else(|| format!("bad matcher `{raw}`: `{{` without its `}}`"))?,
        None => s,
    };
    split(inner)
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| one(item).map_err(|why| format!("bad matcher `{item}`: {why}")))
        .collect()
}

/// The items of a brace list: split at commas outside quotes.
fn split(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn one(item: &str) -> Result<Matcher, String> {
    let at = item.find(['=', '!']).ok_or("no operator (=, !=, =~, !~)")?;
    let label = item[..at].trim();
    let rest = &item[at..];
    let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
        (MatchOp::Re, v)
    } else if let Some(v) = rest.strip_prefix("!~") {
        (MatchOp::NotRe, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        (MatchOp::Ne, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (MatchOp::Eq, v)
    } else {
        return Err("no operator (=, !=, =~, !~)".into());
    };
    let mut chars = label.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !valid {
        return Err(format!("`{label}` is not a label name"));
    }
    let value = unquote(value.trim())?;
    Matcher::parse(label, &written(op, &value))
}

/// A quoted value without its quotes and escapes; a bare value as it is.
fn unquote(v: &str) -> Result<String, String> {
    let Some(body) = v.strip_prefix('"') else {
        return Ok(v.to_string());
    };
    let body = body
        .strip_suffix('"')
        .ok_or("a quoted value must end with `\"`")?;
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(e @ ('"' | '\\')) => out.push(e),
            // Other escapes belong to the regex (`\d`, `\.`): kept as written.
            Some(e) => {
                out.push('\\');
                out.push(e);
            }
            None => return Err("a quoted value ends in `\\`".into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(raw: &str) -> Result<Vec<String>, String> {
        parse(raw).map(|v| v.iter().map(|m| m.to_string()).collect())
    }

    #[test]
    fn matchers_as_amtool_and_grafana_send_them() {
        let cases: [(&str, Result<Vec<&str>, &str>); 10] = [
            ("alertname=down", Ok(vec![r#"alertname="down""#])),
            (r#"alertname="down""#, Ok(vec![r#"alertname="down""#])),
            (r#"check=~"align_.*""#, Ok(vec![r#"check=~"align_.*""#])),
            ("route!=page", Ok(vec![r#"route!="page""#])),
            (r#" check !~ "feed_\d+" "#, Ok(vec![r#"check!~"feed_\d+""#])),
            (
                r#"{alertname="a,b",severity="page"}"#,
                Ok(vec![r#"alertname="a,b""#, r#"severity="page""#]),
            ),
            (r#"a="say \"hi\"""#, Ok(vec![r#"a="say "hi"""#])),
            (
                "nolabel",
                Err("bad matcher `nolabel`: no operator (=, !=, =~, !~)"),
            ),
            ("1a=x", Err("bad matcher `1a=x`: `1a` is not a label name")),
            (
                r#"a=~"(""#,
                Err("bad matcher `a=~\"(\"`: `(` is not a regular expression: unclosed group"),
            ),
        ];
        for (raw, want) in cases {
            let want = want
                .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
                .map_err(String::from);
            assert_eq!(shown(raw), want, "{raw}");
        }
    }

    #[test]
    fn an_equality_keeps_a_value_that_looks_like_an_operator() {
        let m = &parse(r#"a="=~x""#).unwrap()[0];
        assert_eq!((m.op, m.value.as_str()), (MatchOp::Eq, "=~x"));
    }
}
