//! The JSON Schemas are never stricter than the loaders: any input a loader accepts (the
//! corpus, mutated and generated as the other properties do), the schema of its file kind
//! accepts too, so an editor never flags a file `synmon check` takes.

use std::sync::LazyLock;

use proptest::prelude::*;
use synmon::fuzz_entry::{self, Verdict};
use synmon::schema::{FileKind, schema};

use super::strategies::{YAML_TOKENS, generated, mutated, swapped};
use super::{Input, corpus, runner_config};

fn inputs(target: &str) -> impl Strategy<Value = Input> + use<> {
    let seeds = corpus(target);
    prop_oneof![
        2 => mutated(seeds.clone(), YAML_TOKENS),
        1 => swapped(&seeds),
        1 => generated(&seeds),
    ]
}

fn validator(kind: FileKind) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&schema(kind).to_value())
        .expect("a usable schema")
}

static CONFIG: LazyLock<jsonschema::Validator> = LazyLock::new(|| validator(FileKind::Config));
static JOURNEY: LazyLock<jsonschema::Validator> = LazyLock::new(|| validator(FileKind::Journey));
static ALERTS: LazyLock<jsonschema::Validator> = LazyLock::new(|| validator(FileKind::Alerts));

/// The schema's verdict on an input the loader accepted, read as the loader reads it (UTF-8,
/// a byte-order mark skipped, one YAML document).
fn schema_accepts(v: &jsonschema::Validator, input: &[u8]) -> Result<(), TestCaseError> {
    let text = std::str::from_utf8(input)
        .map_err(|e| TestCaseError::fail(format!("accepted, but not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: serde_json::Value = yaml_serde::from_str(text)
        .map_err(|e| TestCaseError::fail(format!("accepted, but not a JSON document: {e}")))?;
    let complaints: Vec<String> = v
        .iter_errors(&value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if complaints.is_empty() {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "the loader accepts it, the schema refuses: {complaints:?}"
        )))
    }
}

proptest! {
    #![proptest_config(runner_config("proptest-regressions/schemas.txt"))]

    #[test]
    fn a_config_the_loader_accepts_its_schema_accepts(input in inputs("config")) {
        if fuzz_entry::config(&input.0) == Ok(Verdict::Accepted) {
            schema_accepts(&CONFIG, &input.0)?;
        }
    }

    #[test]
    fn a_journey_the_loader_accepts_its_schema_accepts(input in inputs("journey")) {
        if fuzz_entry::journey(&input.0) == Ok(Verdict::Accepted) {
            schema_accepts(&JOURNEY, &input.0)?;
        }
    }

    #[test]
    fn a_rule_file_the_loader_accepts_its_schema_accepts(input in inputs("rules")) {
        if fuzz_entry::rules(&input.0) == Ok(Verdict::Accepted) {
            schema_accepts(&ALERTS, &input.0)?;
        }
    }
}
