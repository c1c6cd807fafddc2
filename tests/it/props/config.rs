//! `synmon.yaml`, loaded with a valid journey, rule file and secret beside it: loaded, or rejected with a position for every error.

use proptest::prelude::*;
use synmon::fuzz_entry;

use super::strategies::{YAML_TOKENS, generated, mutated, swapped};
use super::{Input, corpus, runner_config};

fn inputs() -> impl Strategy<Value = Input> {
    let seeds = corpus("config");
    prop_oneof![
        2 => mutated(seeds.clone(), YAML_TOKENS),
        1 => swapped(&seeds),
        1 => generated(&seeds),
    ]
}

proptest! {
    #![proptest_config(runner_config("proptest-regressions/config.txt"))]

    #[test]
    fn config_is_loaded_or_rejected_with_a_position(input in inputs()) {
        if let Err(e) = fuzz_entry::config(&input.0) {
            return Err(TestCaseError::fail(e.to_string()));
        }
    }
}
