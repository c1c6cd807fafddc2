//! Journeys: the scripted user paths synmon drives through a real browser.

pub mod emulation;
pub mod keys;
mod load;
pub mod model;
mod raw;

pub use crate::template::{BUILTIN_VARS, Template, Vars};
pub use load::{LoadContext, STEP_TIMEOUT, journey_files, load_dir, load_file};
pub use model::*;
/// The journey file's raw shape, for its JSON Schema (`crate::schema`).
pub(crate) use raw::RawJourney;
pub mod browser_rt;
pub mod chromedriver;
mod driver;
pub mod program;
pub mod runner;
mod session;
pub mod webdriver;

pub use crate::run::{Artifact, PageMetrics, RunResult, StepResult, Timing};
pub use driver::{Driver, Lease};
pub use runner::{Progress, Runner, RunnerSettings};
pub use webdriver::{Isolation, LocalProtocol, LocalSteps, WebDriverConfig};
