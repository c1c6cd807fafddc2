//! a journey file, loaded beside a shared step file it may `use:`: loaded, or rejected with a position for every error.

use proptest::prelude::*;
use synmon::fuzz_entry;

use super::strategies::{YAML_TOKENS, generated, mutated, swapped};
use super::{Input, corpus, runner_config};

fn inputs() -> impl Strategy<Value = Input> {
    let seeds = corpus("journey");
    prop_oneof![
        2 => mutated(seeds.clone(), YAML_TOKENS),
        1 => swapped(&seeds),
        1 => generated(&seeds),
    ]
}

proptest! {
    #![proptest_config(runner_config("proptest-regressions/journey.txt"))]

    #[test]
    fn journey_is_loaded_or_rejected_with_a_position(input in inputs()) {
        if let Err(e) = fuzz_entry::journey(&input.0) {
            return Err(TestCaseError::fail(e.to_string()));
        }
    }
}
