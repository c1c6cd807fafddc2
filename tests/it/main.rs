//! synmon's integration tests: one binary, one module per area.

mod alerting;
mod check;
mod daemon;
mod gate;
mod journeys;
mod probes;
mod secrets;
mod store;
mod support;
