//! synmon's integration tests: one binary, one module per area.

mod alerting;
mod check;
mod check_kinds;
mod daemon;
mod dashboards;
mod demo;
mod fake_controls;
mod fake_datadog;
mod fake_pagerduty;
mod fake_slack;
mod fake_webhook;
mod gate;
mod journeys;
mod mute;
mod notify_cli;
mod notify_daemon;
mod notify_e2e;
mod notify_pipeline;
mod notify_receivers;
mod notify_slack;
mod probes;
mod readme;
mod secrets;
mod status_page;
mod store;
mod support;
