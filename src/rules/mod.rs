//! Alert rules and SLOs as code: `alerts/*.yaml` loaded and checked against the metric catalog,
//! a pure evaluator (`evaluate(rules, source, state, now) -> transitions`) with a serializable
//! state, SLO burn rates and budgets, and `promtool test rules`-style unit tests.

pub mod eval;
pub mod export;
mod fasthash;
pub mod load;
pub mod model;
pub mod registry_source;
pub mod slo;
pub mod source;
pub mod unittest;

pub use eval::{
    Alert, Phase, Resolved, State, Transition, evaluate, evaluate_until, evaluate_with, fingerprint,
};
pub use load::{load_dir, load_files};
pub use model::{Labels, Matcher, Matchers, Rule, RuleSet, Slo, Stopped};
pub use slo::{BurnRates, SloStatus, slo_status, slo_status_until, slo_status_with};
pub use source::{Data, Dist, MemorySource, SeriesData, Source};

#[cfg(test)]
mod equivalence;
#[cfg(test)]
mod tests;
