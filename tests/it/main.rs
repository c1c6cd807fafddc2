//! synmon's integration tests: one binary, one folder per concern.
//!
//! - `support/`: how a test gets a daemon (`TestDaemon`), the real binary, the sandbox, a
//!   temporary database, and `eventually` for deadline-bounded waiting.
//! - `fakes/`: protocol-checking stand-ins for Slack, PagerDuty, webhooks and Datadog.
//! - `checks/`: journeys in real Chromium, HTTP checks, SQL metric sources, and every check kind
//!   scheduled by the real binary.
//! - `alerting/`: rules evaluated over real runs; silences, inhibition and maintenance windows.
//! - `notify/`: the notification pipeline, each receiver, and delivery through the daemon.
//! - `daemon/`: `synmon run` as a process, the store, the status page, secrets.
//! - `cli/`: the other subcommands (`check`, `gate`, `dashboards`, `demo`).
//! - `props/`: property tests over the loaders and the silence API body (the corpus is `fuzz/`'s).
//! - `server/`: Alertmanager's API v2 driven by the real amtool and checked against its spec.
//! - `readme.rs`: the README's reference against the code.
//! - `schemas.rs`: the JSON Schemas in `schemas/` against the loaders and the fixtures, and in
//!   a real editor engine (yaml-language-server).

mod alerting;
mod checks;
mod cli;
mod cluster;
mod daemon;
mod fakes;
mod notify;
mod props;
mod readme;
mod schemas;
mod server;
mod support;
