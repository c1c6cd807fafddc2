//! `synmon replay SCENARIO`: a scenario through the real alerting pipeline on a manual clock;
//! prints the table (or JSON) of pages per incident.

use std::path::Path;

pub fn run(scenario: &Path, config: &Path, json: bool) -> i32 {
    let cfg = match super::load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let sc = match crate::replay::load(scenario, &cfg) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{} error(s) in the scenario", errors.len());
            return 2;
        }
    };
    let report = match crate::replay::replay(&cfg, &sc) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("replay failed: {e}");
            return 2;
        }
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("cannot encode the report: {e}");
                return 2;
            }
        }
    } else {
        print!("{}", crate::replay::render(&report));
    }
    if report.ok { 0 } else { 1 }
}
