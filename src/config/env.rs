//! `${VAR}` / `${VAR:-default}` expansion of config values, and `file:` secret references.
//!
//! Expansion happens on the parsed value tree (never on the raw text), so positions stay exact
//! and an unset variable is reported at the field that uses it.

use std::path::Path;

use yaml_serde::Value;

use super::file::{MAX_INPUT_BYTES, ReadError, read_text};
use super::span::{join_index, join_key};

/// Where environment values come from; tests pass a fixed map.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Expands every `${...}` in one string. `$${` is a literal `${`.
pub fn expand_str(input: &str, env: &dyn Env) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix("${") {
            out.push_str("${");
            rest = stripped;
            continue;
        }
        let Some(body_start) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body_start.find('}') else {
            return Err(format!("unterminated `${{` in {input:?}"));
        };
        let body = &body_start[..end];
        let (name, default) = match body.find(":-") {
            Some(j) => (&body[..j], Some(&body[j + 2..])),
            None => (body, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid environment variable name `{name}`"));
        }
        match (
            env.var(name).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (write ${{{name}:-default}} to give a default)"
                ));
            }
        }
        rest = &body_start[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands every string in a value tree in place; returns `(path, message)` for each failure.
pub fn expand_tree(
    value: &mut Value,
    path: &str,
    env: &dyn Env,
    errors: &mut Vec<(String, String)>,
) {
    match value {
        Value::String(s) => match expand_str(s, env) {
            Ok(v) => *s = v,
            Err(e) => errors.push((path.to_string(), e)),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_tree(item, &join_index(path, i), env, errors);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().unwrap_or("?").to_string();
                expand_tree(v, &join_key(path, &key), env, errors);
            }
        }
        Value::Tagged(t) => expand_tree(&mut t.value, path, env, errors),
        _ => {}
    }
}

/// A secret field's value: `file:PATH` reads the file (relative to the config's folder; a
/// regular file of at most 1 MiB), trimmed of the trailing newline editors add; anything else is
/// the value itself.
pub fn resolve_secret(raw: &str, base_dir: &Path) -> Result<String, String> {
    match raw.strip_prefix("file:") {
        Some(p) => {
            let path = base_dir.join(p.trim());
            match read_text(&path, MAX_INPUT_BYTES) {
                Ok(s) => Ok(s.trim_end_matches(['\n', '\r']).to_string()),
                Err(ReadError::Io(e)) => Err(format!(
                    "cannot read secret file {}: {e}",
                    super::yaml::display_path(&path)
                )),
                // Where the first bad byte sits, and which byte, would tell part of the secret.
                Err(ReadError::NotUtf8 { .. }) => {
                    Err(format!("`{}` is not UTF-8 text", raw.trim()))
                }
                // The reference as written: `file:/dev/zero` is not a regular file.
                Err(e) => Err(format!("`{}` {e}", raw.trim())),
            }
        }
        None => Ok(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<String, String> {
        HashMap::from([
            ("A".to_string(), "alpha".to_string()),
            ("EMPTY".to_string(), String::new()),
        ])
    }

    #[test]
    fn expands_set_default_and_empty_forms() {
        let e = env();
        assert_eq!(expand_str("x-${A}-y", &e).unwrap(), "x-alpha-y");
        assert_eq!(expand_str("${B:-bee}", &e).unwrap(), "bee");
        assert_eq!(expand_str("${B:-}", &e).unwrap(), "");
        assert_eq!(expand_str("${EMPTY:-d}", &e).unwrap(), "d");
        assert_eq!(expand_str("${EMPTY}", &e).unwrap(), "");
        assert_eq!(expand_str("cost $5 $${A}", &e).unwrap(), "cost $5 ${A}");
    }

    #[test]
    fn unset_without_default_is_an_error_naming_it() {
        let err = expand_str("${NOPE}", &env()).unwrap_err();
        assert!(err.contains("NOPE is not set"), "{err}");
    }

    #[test]
    fn bad_syntax_is_an_error() {
        assert!(expand_str("${A", &env()).is_err());
        assert!(expand_str("${A B}", &env()).is_err());
    }

    #[test]
    fn a_secret_file_must_be_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve_secret("file:/dev/zero", dir.path()).unwrap_err(),
            "`file:/dev/zero` is not a regular file (it is a character device)"
        );
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        assert_eq!(resolve_secret("file:pw", dir.path()).unwrap(), "s3cret");
        std::fs::write(dir.path().join("big"), vec![b'x'; (1 << 20) + 1]).unwrap();
        assert_eq!(
            resolve_secret("file:big", dir.path()).unwrap_err(),
            "`file:big` is larger than 1 MiB"
        );
        // Which byte is bad, and where, would tell part of the secret.
        std::fs::write(dir.path().join("latin1"), b"hunter2\xe9abc").unwrap();
        assert_eq!(
            resolve_secret("file:latin1", dir.path()).unwrap_err(),
            "`file:latin1` is not UTF-8 text"
        );
    }
}
