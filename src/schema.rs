//! JSON Schemas of the files synmon reads, for editors: `synmon.yaml`, journey files (and the
//! shared step files they `use:`), alert rule files and alert unit-test files.
//!
//! The schemas are derived (`schemars`) from the raw serde types the loaders deserialize, so a
//! key the loader accepts is in its schema by construction and a renamed field cannot leave the
//! schema behind. What serde's derive does not tell (a duration is a string such as `5m`, a
//! secret may be `${VAR}` or `file:PATH`, a journey step holds exactly one action) is said by
//! the ground floor's pieces in `crate::config::schema`, named by the raw types. A schema describes shape (keys, types, required keys, one action per step); what
//! only validation can judge (a metric in the catalog, a duration's bounds, a selector that is
//! not empty) stays with `synmon check`, so a file the schema accepts may still be refused, but
//! never the other way round.
//!
//! The schemas are draft-07: the version editors' YAML support (yaml-language-server) speaks.
//! They are shipped in `schemas/` (written by `synmon schema --write schemas`) and a test keeps
//! those files equal to what this module generates.

use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;

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
        .with_transform(RecursiveTransform(null_is_empty))
        .into_generator();
    let mut schema = match kind {
        FileKind::Config => generator.root_schema_for::<crate::settings::RawConfig>(),
        FileKind::Journey => generator.root_schema_for::<crate::journey::RawJourney>(),
        FileKind::Alerts => crate::rules::load::alerts_file_schema(&mut generator),
        FileKind::AlertTests => crate::rules::unittest::test_file_schema(&mut generator),
    };
    // A file is a map: an empty one ("only comments") is refused by every loader.
    schema.insert("type".into(), "object".into());
    schema.insert("title".into(), kind.title().into());
    schema
}

/// YAML's `key:` with nothing after it is `null`, which the loaders' YAML reader takes for an
/// empty list or map (`receivers:` with its items commented out is no receivers): a list, or a
/// map whose keys are all optional, may be `null`. A map with a required key may not (its key
/// is missing either way).
fn null_is_empty(schema: &mut Schema) {
    let kind = schema
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_string);
    let required = schema
        .get("required")
        .and_then(|r| r.as_array())
        .is_some_and(|r| !r.is_empty());
    match kind.as_deref() {
        Some("array") => {
            schema.insert("type".into(), serde_json::json!(["array", "null"]));
        }
        Some("object") if !required => {
            schema.insert("type".into(), serde_json::json!(["object", "null"]));
        }
        _ => {}
    }
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
