//! `synmon flags audit [--at DATE] [--json] [--config F]`: the quarterly flag audit. Exit
//! 0 clean, 1 something is due (renew or remove, remove from code), 2 a bad file.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::clock::{Clock, SystemClock};
use crate::flags;

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The audit date (YYYY-MM-DD); default: today (UTC).
    #[arg(long, value_parser = parse_date)]
    pub at: Option<NaiveDate>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value = "synmon.yaml")]
    pub config: PathBuf,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD)"))
}

pub fn audit(a: AuditArgs) -> i32 {
    let cfg = match super::load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let at = a.at.unwrap_or_else(|| SystemClock.now().date_naive());
    let rows = flags::audit(&cfg.flags.registry, at);
    let due = rows.iter().filter(|r| r.due).count();
    if a.json {
        let doc = serde_json::json!({ "at": at, "flags": rows, "due": due });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
        );
    } else {
        print!("{}", flags::audit::render_table(&rows, at));
    }
    if due > 0 { 1 } else { 0 }
}
