//! synmon: synthetic monitoring and SLO alerting.

pub mod checks;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod dashboards;
pub mod flags;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod gate;
pub mod http;
pub mod http_util;
pub mod journey;
pub mod malloc;
pub mod metrics;
pub mod mute;
pub mod notify;
pub mod outcome;
pub mod probes;
pub mod replay;
pub mod rules;
pub mod run;
pub mod scheduler;
pub mod schema;
pub mod settings;
pub mod store;
pub mod template;
pub mod tls;
pub mod trace;
pub mod view;

#[cfg(test)]
mod layout;

pub use outcome::Outcome;
