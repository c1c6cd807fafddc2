//! `synmon alerts`: work with the alert rules as code.

use std::path::PathBuf;

use crate::rules::unittest;

/// `synmon alerts test FILE...`: exit 0 all pass, 1 a test failed, 2 an invalid file.
pub fn test(files: &[PathBuf]) -> i32 {
    if files.is_empty() {
        eprintln!("give at least one test file");
        return 2;
    }
    unittest::run_files(files)
}
