//! synmon's integration tests: one binary, one module per area.

mod alerting;
mod check;
mod daemon;
mod fake_slack;
mod journeys;
mod notify_slack;
mod probes;
mod secrets;
mod store;
mod support;
