//! synmon's integration tests: one binary, one module per area.

mod alerting;
mod check;
mod daemon;
mod dashboards;
mod fake_datadog;
mod journeys;
mod probes;
mod secrets;
mod store;
mod support;
