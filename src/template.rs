//! `{name}` placeholders in journey steps and HTTP checks: the tenant, credentials, config
//! variables and values captured by earlier steps. Unknown names are caught at load time, not
//! mid-run. Below both journeys and probes, which render with it.

use std::collections::HashMap;

use crate::config::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `{name}` placeholders; `{{` and `}}` are literal braces.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => name.push(ch),
                            None => return Err(format!("unclosed `{{` in {raw:?}")),
                        }
                    }
                    if name.is_empty()
                        || !name
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.')
                    {
                        return Err(format!("invalid template variable `{{{name}}}`"));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(name));
                }
                _ => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Self {
            raw: raw.to_string(),
            parts,
        })
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }

    pub fn render(&self, vars: &Vars) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Var(v) => match vars.get(v) {
                    Some(value) => out.push_str(value),
                    None => return Err(format!("template variable `{{{v}}}` has no value")),
                },
            }
        }
        Ok(out)
    }

    /// Whether rendering this template puts a secret into the result.
    pub fn uses_secret(&self, vars: &Vars) -> bool {
        self.vars().any(|v| vars.is_secret(v))
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

/// The values templates render from during one run.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    plain: HashMap<String, String>,
    secret: HashMap<String, Secret>,
}

impl Vars {
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.secret.remove(&name);
        self.plain.insert(name, value.into());
    }

    pub fn set_secret(&mut self, name: impl Into<String>, value: Secret) {
        let name = name.into();
        self.plain.remove(&name);
        self.secret.insert(name, value);
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.plain
            .get(name)
            .map(String::as_str)
            .or_else(|| self.secret.get(name).map(Secret::expose))
    }

    pub fn is_secret(&self, name: &str) -> bool {
        self.secret.contains_key(name)
    }

    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.secret.values()
    }

    /// The built-in variables of a run against `target` (all of [`BUILTIN_VARS`] but `run_id`,
    /// which only a journey run has) and the config's `variables:`. The one place they are
    /// set, so a journey, an HTTP check and the gate's fresh runs render the same values.
    pub fn for_target(id: &crate::config::Identity, target: &crate::config::Target) -> Self {
        let mut v = Vars::default();
        if let Some(t) = &id.tenant {
            v.set("tenant", t);
        }
        if let Some(c) = &id.credentials {
            v.set("username", &c.username);
            v.set_secret("password", c.password.clone());
        }
        v.set("base_url", target.base_url.as_str().trim_end_matches('/'));
        v.set("target", &target.name);
        v.set("location", &id.location);
        for (k, val) in &id.variables {
            v.set(k, val);
        }
        v
    }
}

/// Renders every string inside a JSON value as a template (request bodies, expected values).
pub fn render_json(v: &serde_json::Value, vars: &Vars) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match v {
        Value::String(s) => Value::String(Template::parse(s)?.render(vars)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_json(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), render_json(x, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The names every journey may use without capturing them first.
pub const BUILTIN_VARS: &[&str] = &[
    "tenant", "base_url", "username", "password", "target", "location", "run_id",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_vars_and_literal_braces() {
        let t = Template::parse("/t/{tenant}/x?{{a}}").unwrap();
        let mut v = Vars::default();
        v.set("tenant", "synthetic");
        assert_eq!(t.render(&v).unwrap(), "/t/synthetic/x?{a}");
        assert_eq!(t.vars().collect::<Vec<_>>(), vec!["tenant"]);
    }

    #[test]
    fn rejects_bad_placeholders() {
        assert!(Template::parse("{a").is_err());
        assert!(Template::parse("{}").is_err());
        assert!(Template::parse("{a b}").is_err());
    }

    #[test]
    fn secret_vars_are_marked() {
        let t = Template::parse("{password}").unwrap();
        let mut v = Vars::default();
        v.set_secret("password", Secret::new("pw-1234"));
        assert!(t.uses_secret(&v));
        assert_eq!(t.render(&v).unwrap(), "pw-1234");
    }
}
