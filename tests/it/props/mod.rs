//! Property tests over what synmon reads from outside: the config, journey and rule loaders and
//! the silence API's JSON body. For any input: no panic, and every rejection says where (a
//! `Diagnostic` with a line and column, serde_json's `line N column M`, or the refused field).
//! The promise itself is checked by `synmon::fuzz_entry`, which the `cargo fuzz` targets in
//! `fuzz/` call too.
//!
//! Inputs come from the corpus the fuzz targets share, `fuzz/corpus/<target>/` (seeded from the
//! fixtures by `fuzz/seed.sh`), mutated the way a careless operator or an attacker would: bytes
//! flipped, YAML punctuation, aliases, huge numbers and absurd durations inserted, lines dropped
//! or doubled, the file cut short, one value swapped for a hostile one; and fully generated
//! documents built from the keys the corpus uses.
//!
//! Each property runs [`cases`] cases (128 unless `PROPTEST_CASES` says otherwise). A minimal
//! failing input is saved under `proptest-regressions/` and replayed first on the next run.

mod strategies;
mod survey;

mod api_json;
mod config;
mod journey;
mod rules;
mod schemas;

use std::fmt;
use std::path::Path;

use proptest::test_runner::{Config, FileFailurePersistence};
use synmon::fuzz_entry;

/// How many cases each property runs: `PROPTEST_CASES`, or 128 (about 1 s per property here).
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

/// The runner settings of every property: [`cases`] cases, failures saved to
/// `proptest-regressions/<name>.txt`, shrinking bounded so a failure is reported in seconds.
pub fn runner_config(regressions: &'static str) -> Config {
    Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        max_shrink_iters: 512,
        max_shrink_time: 20_000,
        ..Config::default()
    }
}

/// The files of one fuzz target's corpus with their names, sorted by name.
fn corpus_files(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {} (run fuzz/seed.sh): {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let bytes =
                std::fs::read(f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
            (name, bytes)
        })
        .collect()
}

/// The seeds of one fuzz target, sorted by file name.
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let seeds: Vec<Vec<u8>> = corpus_files(target).into_iter().map(|(_, b)| b).collect();
    assert!(!seeds.is_empty(), "fuzz/corpus/{target} holds no seeds");
    seeds
}

/// One input: bytes, shown as text (invalid UTF-8 replaced) so a failure reads like the file.
#[derive(Clone, PartialEq, Eq)]
pub struct Input(pub Vec<u8>);

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "(not UTF-8) {:?}", String::from_utf8_lossy(&self.0)),
        }
    }
}

/// The corpus itself, unmutated: the fixtures, the shipped files, and the inputs kept because a
/// fuzzer found them (`found--`) or they were reported before (`known--`). Every failing file is
/// listed, not just the first.
#[test]
fn every_corpus_file_is_loaded_or_rejected_with_a_position() {
    type Entry = fn(&[u8]) -> Result<fuzz_entry::Verdict, fuzz_entry::Unplaced>;
    let targets: [(&str, Entry); 4] = [
        ("config", fuzz_entry::config),
        ("journey", fuzz_entry::journey),
        ("rules", fuzz_entry::rules),
        ("api_json", fuzz_entry::api_json),
    ];
    let mut failures = Vec::new();
    for (target, run) in targets {
        for (name, bytes) in corpus_files(target) {
            if let Err(e) = run(&bytes) {
                failures.push(format!("fuzz/corpus/{target}/{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_target_has_a_seeded_corpus() {
    for target in ["config", "journey", "rules", "api_json"] {
        assert!(
            corpus(target).len() >= 10,
            "fuzz/corpus/{target} has fewer than 10 seeds: run fuzz/seed.sh"
        );
    }
}
