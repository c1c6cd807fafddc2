//! The body of `POST /api/v1/silences`: accepted, rejected by the JSON parse with serde_json's
//! line and column, or refused by validation with the field named.

use proptest::prelude::*;
use synmon::fuzz_entry;

use super::strategies::{JSON_TOKENS, mutated, silence_bodies};
use super::{Input, corpus, runner_config};

fn inputs() -> impl Strategy<Value = Input> {
    prop_oneof![
        1 => mutated(corpus("api_json"), JSON_TOKENS),
        1 => silence_bodies(),
    ]
}

proptest! {
    #![proptest_config(runner_config("proptest-regressions/api_json.txt"))]

    #[test]
    fn silence_body_is_accepted_or_rejected_with_a_position(input in inputs()) {
        if let Err(e) = fuzz_entry::api_json(&input.0) {
            return Err(TestCaseError::fail(e.to_string()));
        }
    }
}
