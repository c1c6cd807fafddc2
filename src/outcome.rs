//! The three outcomes of a run or step, spelled the same everywhere (JSON, API, metric labels).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The target behaved.
    Pass,
    /// The target misbehaved: an element missing, wrong text, 5xx, anything it did not deliver
    /// in time.
    Fail,
    /// The probe itself broke (chromedriver, the browser, the session): never the target's fault.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }

    /// The process exit code of `synmon once`: 0 pass, 1 fail, 2 error.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::Error => 2,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
