//! Every kind of broken promise at once. A property stops at its first failure, so one known
//! gap hides the next; this runs each target's inputs without stopping and lists every distinct
//! kind of failure (panics included) with a count and its shortest input. Ignored by default:
//!
//! `SURVEY_CASES=2000 cargo test --test it props::survey -- --ignored --nocapture`

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use synmon::fuzz_entry::{self, Unplaced, Verdict};

use super::strategies::{JSON_TOKENS, YAML_TOKENS, generated, mutated, silence_bodies, swapped};
use super::{Input, corpus};

/// A failure's kind: its message with the temporary folder, numbers and quoted values blanked.
fn kind(msg: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in msg.chars() {
        match c {
            '`' => {
                quoted = !quoted;
                out.push_str(if quoted { "`…" } else { "`" });
            }
            _ if quoted => {}
            '0'..='9' => {
                if !out.ends_with('#') {
                    out.push('#');
                }
            }
            _ => out.push(c),
        }
    }
    let out = match (out.find("/tmp/"), out.find(".yaml")) {
        (Some(s), Some(e)) if s < e => format!("{}<file>{}", &out[..s], &out[e + 5..]),
        _ => out,
    };
    out.chars().take(160).collect()
}

fn survey<S: Strategy<Value = Input>>(
    name: &str,
    strategy: S,
    run: fn(&[u8]) -> Result<Verdict, Unplaced>,
) -> usize {
    let cases: usize = std::env::var("SURVEY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let mut runner = TestRunner::deterministic();
    let mut found: BTreeMap<String, (usize, Input)> = BTreeMap::new();
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..cases {
        let input = strategy
            .new_tree(&mut runner)
            .expect("the strategy makes a value")
            .current();
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&input.0)));
        let failure = match outcome {
            Ok(Ok(Verdict::Accepted)) => {
                accepted += 1;
                continue;
            }
            Ok(Ok(Verdict::Rejected(_))) => {
                rejected += 1;
                continue;
            }
            Ok(Err(e)) => e.0,
            Err(panic) => format!(
                "PANIC: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            ),
        };
        let entry = found.entry(kind(&failure)).or_insert((0, input.clone()));
        entry.0 += 1;
        if input.0.len() < entry.1.0.len() {
            entry.1 = input;
        }
    }
    println!(
        "== {name}: {cases} cases, {accepted} accepted, {rejected} rejected with positions, {} failing",
        cases - accepted - rejected
    );
    for (k, (n, input)) in &found {
        println!("{n:>6}  {k}\n        shortest input: {input:?}");
    }
    found.len()
}

#[test]
#[ignore = "a report, not a gate: run it by name"]
fn survey_lists_every_kind_of_unplaced_rejection() {
    let mut kinds = 0;
    for (target, run) in [
        (
            "config",
            fuzz_entry::config as fn(&[u8]) -> Result<Verdict, Unplaced>,
        ),
        ("journey", fuzz_entry::journey),
        ("rules", fuzz_entry::rules),
    ] {
        let seeds = corpus(target);
        kinds += survey(
            &format!("{target} (mutated)"),
            mutated(seeds.clone(), YAML_TOKENS),
            run,
        );
        kinds += survey(
            &format!("{target} (one value swapped)"),
            swapped(&seeds),
            run,
        );
        kinds += survey(&format!("{target} (generated)"), generated(&seeds), run);
    }
    kinds += survey(
        "api_json (mutated)",
        mutated(corpus("api_json"), JSON_TOKENS),
        fuzz_entry::api_json,
    );
    kinds += survey(
        "api_json (generated)",
        silence_bodies(),
        fuzz_entry::api_json,
    );
    assert_eq!(kinds, 0, "kinds of failure listed above");
}
