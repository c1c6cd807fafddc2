//! `synmon schema KIND` prints the JSON Schema of one file kind; `synmon schema --write DIR`
//! writes all of them (`schemas/` in the repository, which a test keeps up to date).

use std::path::{Path, PathBuf};

use crate::schema::{FileKind, text};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["kind", "write"])))]
pub struct Args {
    /// The file kind whose schema is printed.
    #[arg(value_enum)]
    pub kind: Option<FileKind>,
    /// Write every schema into this folder (config.schema.json, journey.schema.json,
    /// alerts.schema.json, alert-tests.schema.json) instead of printing one.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}

pub fn run(args: Args) -> i32 {
    match (args.kind, args.write) {
        (Some(kind), None) => {
            print!("{}", text(kind));
            0
        }
        (None, Some(dir)) => match write_all(&dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{e}");
                2
            }
        },
        // clap's group allows exactly one of them.
        _ => 2,
    }
}

fn write_all(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for kind in FileKind::ALL {
        let path = dir.join(kind.file_name());
        std::fs::write(&path, text(kind))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
