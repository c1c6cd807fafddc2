//! synmon's integration tests: one binary, one module per area.

mod check;
mod journeys;
mod secrets;
mod support;
