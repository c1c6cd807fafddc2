//! What would change on Datadog, as a list of JSON paths a reviewer can read:
//!
//! ```text
//! ~ $.widgets[0].definition.title: "Old" -> "New"
//! + $.widgets[4]: {"definition":{...}}
//! - $.description: "gone"
//! ```
//!
//! Both sides are normalised first: Datadog adds fields of its own to what it stores (ids,
//! authors, timestamps, URLs, defaults such as an empty `template_variables`); those are not
//! differences the file can or should express.

use serde_json::{Map, Value};

/// Fields Datadog manages on a dashboard.
const SERVER_FIELDS: &[&str] = &[
    "id",
    "author_handle",
    "author_name",
    "created_at",
    "modified_at",
    "url",
    "is_read_only",
    "restricted_roles",
];

/// One difference.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added {
        path: String,
        new: Value,
    },
    Removed {
        path: String,
        old: Value,
    },
    Changed {
        path: String,
        old: Value,
        new: Value,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Added { path, new } => write!(f, "+ {path}: {}", short(new)),
            Change::Removed { path, old } => write!(f, "- {path}: {}", short(old)),
            Change::Changed { path, old, new } => {
                write!(f, "~ {path}: {} -> {}", short(old), short(new))
            }
        }
    }
}

/// Compact JSON, cut to a readable length.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        let cut: String = s.chars().take(157).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// The body to send: the file without the fields the API owns.
pub fn body_of(local: &Value) -> Value {
    let mut v = local.clone();
    if let Value::Object(m) = &mut v {
        for k in SERVER_FIELDS {
            m.remove(*k);
        }
    }
    v
}

/// A remote dashboard reduced to what a file says: server fields, widget ids and nulls gone.
pub fn normalise_remote(remote: &Value) -> Value {
    let mut v = body_of(remote);
    strip(&mut v, true);
    v
}

fn strip(v: &mut Value, top: bool) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            if !top && m.contains_key("definition") {
                m.remove("id");
            }
            for x in m.values_mut() {
                strip(x, false);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip(x, false)),
        _ => {}
    }
}

/// A value Datadog fills in when the file says nothing.
fn is_default(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Number(_) => false,
        Value::Bool(true) => false,
    }
}

/// Differences from `remote` (as Datadog has it, already normalised) to `local` (the file).
pub fn diff(remote: &Value, local: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk("$", remote, &body_of(local), &mut out);
    out
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => objects(path, o, n, out),
        (Value::Array(o), Value::Array(n)) => {
            for i in 0..o.len().max(n.len()) {
                let p = format!("{path}[{i}]");
                match (o.get(i), n.get(i)) {
                    (Some(a), Some(b)) => walk(&p, a, b, out),
                    (Some(a), None) => out.push(Change::Removed {
                        path: p,
                        old: a.clone(),
                    }),
                    (None, Some(b)) => out.push(Change::Added {
                        path: p,
                        new: b.clone(),
                    }),
                    (None, None) => {}
                }
            }
        }
        (a, b) if a == b || numbers_equal(a, b) => {}
        (a, b) => out.push(Change::Changed {
            path: path.to_string(),
            old: a.clone(),
            new: b.clone(),
        }),
    }
}

fn objects(path: &str, o: &Map<String, Value>, n: &Map<String, Value>, out: &mut Vec<Change>) {
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let p = format!("{path}.{k}");
        match (o.get(k), n.get(k)) {
            (Some(a), Some(b)) => walk(&p, a, b, out),
            (Some(a), None) if !is_default(a) => out.push(Change::Removed {
                path: p,
                old: a.clone(),
            }),
            (None, Some(b)) => out.push(Change::Added {
                path: p,
                new: b.clone(),
            }),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_fields_and_defaults_are_not_differences() {
        let local = json!({"title": "T", "layout_type": "ordered", "widgets": [
            {"definition": {"type": "note", "content": "a"}}
        ]});
        let remote = normalise_remote(&json!({
            "id": "abc-123", "url": "/dashboard/abc-123", "author_handle": "x@y",
            "created_at": "2026-11-27T00:00:00Z", "modified_at": "2026-11-27T00:00:00Z",
            "title": "T", "layout_type": "ordered", "description": null,
            "template_variables": [], "notify_list": [], "is_read_only": false,
            "widgets": [{"id": 4711, "definition": {"type": "note", "content": "a"}}]
        }));
        assert_eq!(diff(&remote, &local), vec![]);
    }

    #[test]
    fn changes_are_listed_by_path() {
        let remote = json!({"title": "T", "description": "old", "widgets": [
            {"definition": {"type": "note", "content": "a"}}
        ]});
        let local = json!({"title": "T", "widgets": [
            {"definition": {"type": "note", "content": "b"}},
            {"definition": {"type": "note", "content": "c"}}
        ]});
        let lines: Vec<String> = diff(&remote, &local)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            lines,
            vec![
                "- $.description: \"old\"",
                "~ $.widgets[0].definition.content: \"a\" -> \"b\"",
                "+ $.widgets[1]: {\"definition\":{\"content\":\"c\",\"type\":\"note\"}}",
            ]
        );
    }
}
