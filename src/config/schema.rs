//! JSON Schema pieces for the ground floor's value kinds, which serde's derive cannot describe:
//! a duration is a string such as `5m`, a secret may be `${VAR}` or `file:PATH`, and a map
//! may have to hold exactly one of its keys. The raw types of every component name them in
//! `#[schemars(...)]` attributes; `crate::schema` assembles the file schemas.

use std::borrow::Cow;

use schemars::transform::Transform;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// What humantime (through `crate::config::duration::Bound`) accepts, loosely: numbers (with
/// an optional fraction) each followed by a unit, or a bare `0`. In `synmon.yaml` any string
/// may also be `${VAR}`, expanded before the value is read. Looser than the parser, never
/// stricter: an editor must not flag a value the loader takes; the bounds are the loader's.
pub const DURATION_PATTERN: &str = r"^\s*(0|([0-9][0-9.\s]*[a-zA-Zµ]+\s*)+)\s*$|\$\{";

/// A duration written as text: `500ms`, `30s`, `5m`, `1h 30m`, `35d`.
pub struct Duration;

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration: a number and a unit (`ms`, `s`, `m`, `h`, `d`), e.g. `500ms`, `30s`, `5m`, `1h 30m`; each key has its own bounds (see the README).",
            "examples": ["500ms", "30s", "5m", "1h"]
        })
    }
}

/// A secret: the value itself, `${VAR}` / `${VAR:-default}` from the environment, or
/// `file:PATH` (relative to the config's folder). It never prints.
pub struct SecretText;

impl JsonSchema for SecretText {
    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A secret: best written `${VAR}` (from the environment, `${VAR:-default}` with a default) or `file:PATH` (a file relative to the config's folder, trailing newline trimmed). Secrets never print.",
            "examples": ["${SECRET_FROM_ENV}", "file:secrets/name"]
        })
    }
}

/// A transform for a map that holds exactly one of its keys (a journey step's action, an SLO's
/// `sli`), beside any of `besides`; a key of `alone` stands alone (a step's `use`) but for the
/// keys of `alone_with` (a `use`'s `reuse_session`). A key written `null` is absent to the
/// loaders, so it counts for neither.
pub struct ExactlyOneKey {
    pub besides: &'static [&'static str],
    pub alone: &'static [&'static str],
    pub alone_with: &'static [&'static str],
}

impl Transform for ExactlyOneKey {
    fn transform(&mut self, schema: &mut Schema) {
        let keys: Vec<String> = schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let not_null = serde_json::json!({ "not": { "type": "null" } });
        let one_of: Vec<serde_json::Value> = keys
            .iter()
            .filter(|k| !self.besides.contains(&k.as_str()))
            .map(|key| {
                let mut props = serde_json::Map::new();
                props.insert(key.clone(), not_null.clone());
                if self.alone.contains(&key.as_str()) {
                    for other in keys
                        .iter()
                        .filter(|k| *k != key && !self.alone_with.contains(&k.as_str()))
                    {
                        props.insert(other.clone(), serde_json::json!({ "type": "null" }));
                    }
                }
                serde_json::json!({ "required": [key], "properties": props })
            })
            .collect();
        // What an editor shows on hover, and the hint behind its "matches multiple schemas".
        if schema.get("description").is_none() {
            let choices: Vec<String> = keys
                .iter()
                .filter(|k| !self.besides.contains(&k.as_str()))
                .map(|k| format!("`{k}`"))
                .collect();
            let mut text = format!("Exactly one of {}", choices.join(", "));
            if !self.besides.is_empty() {
                let besides: Vec<String> = self.besides.iter().map(|k| format!("`{k}`")).collect();
                text.push_str(&format!("; besides it: {}", besides.join(", ")));
            }
            if !self.alone.is_empty() {
                let alone: Vec<String> = self.alone.iter().map(|k| format!("`{k}`")).collect();
                text.push_str(&format!("; {} stands alone", alone.join(", ")));
                if !self.alone_with.is_empty() {
                    let with: Vec<String> =
                        self.alone_with.iter().map(|k| format!("`{k}`")).collect();
                    text.push_str(&format!(" (but for {})", with.join(", ")));
                }
            }
            text.push('.');
            schema.insert("description".into(), text.into());
        }
        schema.insert("oneOf".into(), one_of.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string humantime reads as a duration matches the pattern (the loader's parser
    /// decides, the pattern may only be looser), and obvious non-durations do not.
    #[test]
    fn the_duration_pattern_takes_every_duration_the_parser_takes() {
        let re = regex_automata::meta::Regex::new(DURATION_PATTERN).unwrap();
        let parsed = [
            "0",
            " 0 ",
            "0s",
            "500ms",
            "30s",
            "5m",
            "1h",
            "35d",
            "1h 30m",
            "1h30m",
            "1.5h",
            "2 minutes",
            "10 sec",
            " 5m ",
            "3µs",
            "1w",
        ];
        for d in parsed {
            assert!(humantime::parse_duration(d.trim()).is_ok(), "{d:?} parses");
            assert!(re.is_match(d), "{d:?} should match {DURATION_PATTERN}");
        }
        for d in ["soon", "5", "m5", "", "-1s"] {
            assert!(
                humantime::parse_duration(d).is_err(),
                "{d:?} does not parse"
            );
            assert!(!re.is_match(d), "{d:?} should not match");
        }
        assert!(
            re.is_match("${CHECK_INTERVAL:-1m}"),
            "env references expand first"
        );
    }

    proptest::proptest! {
        /// Whatever humantime reads as a duration (the loader trims first) matches the pattern:
        /// numbers, fractions, units and spaces in any mix.
        #[test]
        fn any_text_the_parser_reads_matches_the_pattern(
            s in r"( ?[0-9]{1,3}(\.[0-9]{1,2})? ?[a-zA-Zµ]{0,7}){1,3} ?|[0-9 .a-zµ]{1,10}"
        ) {
            let re = regex_automata::meta::Regex::new(DURATION_PATTERN).unwrap();
            if humantime::parse_duration(s.trim()).is_ok() {
                proptest::prop_assert!(re.is_match(&s), "{:?} parses but does not match", s);
            }
        }
    }
}
