//! JSON Schemas of the files synmon reads, for editors: `synmon.yaml`, journey files (and the
//! shared step files they `use:`), alert rule files and alert unit-test files.
//!
//! The schemas are derived (`schemars`) from the raw serde types the loaders deserialize, so a
//! key the loader accepts is in its schema by construction and a renamed field cannot leave the
//! schema behind. What serde's derive does not tell is said here, once: a duration is a string
//! such as `5m`, a secret may be `${VAR}` or `file:PATH`, a journey step holds exactly one
//! action. A schema describes shape (keys, types, required keys, one action per step); what
//! only validation can judge (a metric in the catalog, a duration's bounds, a selector that is
//! not empty) stays with `synmon check`, so a file the schema accepts may still be refused, but
//! never the other way round.
//!
//! The schemas are draft-07: the version editors' YAML support (yaml-language-server) speaks.
//! They are shipped in `schemas/` (written by `synmon schema --write schemas`) and a test keeps
//! those files equal to what this module generates.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// One file kind with a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileKind {
    /// `synmon.yaml`.
    Config,
    /// A journey file, or a shared step file pulled in with `use:`.
    Journey,
    /// An alert rule file (`alerts/*.yaml`: `rules:` and `slos:`).
    Alerts,
    /// An alert unit-test file (`alerts/tests/*.yaml`, `synmon alerts test`).
    AlertTests,
}

impl FileKind {
    pub const ALL: [FileKind; 4] = [
        FileKind::Config,
        FileKind::Journey,
        FileKind::Alerts,
        FileKind::AlertTests,
    ];

    /// The schema's file name in `schemas/`.
    pub fn file_name(self) -> &'static str {
        match self {
            FileKind::Config => "config.schema.json",
            FileKind::Journey => "journey.schema.json",
            FileKind::Alerts => "alerts.schema.json",
            FileKind::AlertTests => "alert-tests.schema.json",
        }
    }

    fn title(self) -> &'static str {
        match self {
            FileKind::Config => "synmon configuration (synmon.yaml)",
            FileKind::Journey => "synmon journey (journeys/*.yaml)",
            FileKind::Alerts => "synmon alert rules and SLOs (alerts/*.yaml)",
            FileKind::AlertTests => "synmon alert rule unit tests (alerts/tests/*.yaml)",
        }
    }
}

/// The schema of `kind`'s files.
pub fn schema(kind: FileKind) -> Schema {
    let mut generator = SchemaSettings::draft07()
        .with_transform(RecursiveTransform(drop_null_default))
        .into_generator();
    let mut schema = match kind {
        FileKind::Config => generator.root_schema_for::<crate::settings::RawConfig>(),
        FileKind::Journey => generator.root_schema_for::<crate::journey::RawJourney>(),
        FileKind::Alerts => crate::rules::load::alerts_file_schema(&mut generator),
        FileKind::AlertTests => crate::rules::unittest::test_file_schema(&mut generator),
    };
    schema.insert("title".into(), kind.title().into());
    schema
}

/// `#[serde(default)]` on an `Option` says `"default": null`: true, but editors would offer to
/// write `key: null`. Absent says the same.
fn drop_null_default(schema: &mut Schema) {
    if schema
        .get("default")
        .is_some_and(serde_json::Value::is_null)
    {
        schema.remove("default");
    }
}

/// The schema of `kind`'s files as the text shipped in `schemas/` (pretty JSON, a final
/// newline).
pub fn text(kind: FileKind) -> String {
    let mut s = serde_json::to_string_pretty(&schema(kind)).expect("a schema is JSON");
    s.push('\n');
    s
}

/// What humantime (through `crate::config::duration::Bound`) accepts, loosely: numbers (with
/// an optional fraction) each followed by a unit, or a bare `0`. In `synmon.yaml` any string
/// may also be `${VAR}`, expanded before the value is read. Looser than the parser, never
/// stricter: an editor must not flag a value the loader takes; the bounds are the loader's.
pub const DURATION_PATTERN: &str = r"^\s*(0|([0-9][0-9.\s]*[a-zA-Zµ]+\s*)+)$|\$\{";

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

/// The keys a journey step may carry beside its one action. Every other key of the step is an
/// action (so a new action field in `RawStep` is one by itself); a test compares the actions
/// with the loader's own list.
pub const STEP_COMMON_KEYS: &[&str] = &["name", "timed", "timeout", "until"];

/// `RawStep`'s schema transform: exactly one action per step, and `use` stands alone (the
/// loader refuses a step with two actions, none, or `use` beside other keys). A key written
/// `null` is absent to the loader, so it counts for neither.
pub fn one_action(schema: &mut Schema) {
    let keys: Vec<String> = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let not_null = serde_json::json!({ "not": { "type": "null" } });
    let one_of: Vec<serde_json::Value> = keys
        .iter()
        .filter(|k| !STEP_COMMON_KEYS.contains(&k.as_str()))
        .map(|action| {
            let mut props = serde_json::Map::new();
            props.insert(action.clone(), not_null.clone());
            if action == "use" {
                for other in keys.iter().filter(|k| *k != action) {
                    props.insert(other.clone(), serde_json::json!({ "type": "null" }));
                }
            }
            serde_json::json!({ "required": [action], "properties": props })
        })
        .collect();
    schema.insert("oneOf".into(), one_of.into());
}

/// A transform for a map of which exactly one key must be written (an SLO's `sli`).
pub fn exactly_one_key(schema: &mut Schema) {
    let keys: Vec<serde_json::Value> = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| {
            p.keys()
                .map(|k| {
                    serde_json::json!({
                        "required": [k],
                        "properties": { k.clone(): { "not": { "type": "null" } } }
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    schema.insert("oneOf".into(), keys.into());
}

/// The action keys of a journey step, as the journey schema lists them (for tests and the
/// README's drift test).
pub fn step_actions() -> Vec<String> {
    let s = schema(FileKind::Journey);
    s.pointer("/definitions/RawStep/oneOf")
        .and_then(|v| v.as_array())
        .map(|alts| {
            alts.iter()
                .filter_map(|a| a.pointer("/required/0").and_then(|k| k.as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
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
}
