//! The shape of `synmon.yaml` as written. Every struct denies unknown fields so a typo is an
//! error, not a silently ignored setting. Values are validated into `super::Config`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub targets: BTreeMap<String, RawTarget>,
    #[serde(default)]
    pub default_target: Option<String>,
    /// The tenant journeys work in (`{tenant}`); optional for an app without tenants.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The synthetic user's login (`{username}`, `{password}`); optional for an app without one.
    #[serde(default)]
    pub credentials: Option<RawCredentials>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub webdriver: RawWebDriver,
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub store: Option<RawStore>,
    #[serde(default)]
    pub database: Option<RawDatabase>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub artifacts: Option<String>,
    #[serde(default)]
    pub journeys: Option<String>,
    #[serde(default)]
    pub alerts: Option<String>,
    #[serde(default)]
    pub dashboards: Option<String>,
    #[serde(default)]
    pub checks: crate::checks::RawChecks,
    #[serde(default)]
    pub server: Option<RawServer>,
    #[serde(default)]
    pub exporters: Option<RawExporters>,
    /// How long runs are kept in the store (default 35d).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub retention: Option<String>,
    /// How often alert rules are evaluated (default 30s).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub evaluation_interval: Option<String>,
    /// Where notifications go: a list of receivers and a routing tree (see `crate::notify`).
    #[serde(default)]
    pub receivers: Vec<crate::notify::config::RawReceiver>,
    #[serde(default)]
    pub route: Option<crate::notify::config::RawRoute>,
    /// The daemon's public URL, for links in notifications (default `http://<listen>`).
    #[serde(default)]
    pub external_url: Option<String>,
    /// The Datadog API, for `synmon dashboards diff|push`.
    #[serde(default)]
    pub datadog: Option<RawDatadog>,
    /// Alerts that mute others while they fire (see `crate::mute::inhibit`).
    #[serde(default)]
    pub inhibit_rules: Vec<crate::mute::config::RawInhibitRule>,
    /// One-off and weekly maintenance windows (see `crate::mute::maintenance`).
    #[serde(default)]
    pub maintenance_windows: Vec<crate::mute::config::RawMaintenanceWindow>,
    /// The always-firing `synmon_watchdog` alert's receiver and ping interval.
    #[serde(default)]
    pub watchdog: Option<crate::mute::config::RawWatchdog>,
    /// The feature-flag registry files (see `crate::flags`).
    #[serde(default)]
    pub flags: Option<crate::flags::RawFlagsConfig>,
    /// This replica's id in a cluster (default: the host name and the process id).
    #[serde(default)]
    pub replica_id: Option<String>,
    /// The leader lease's timing (see `crate::cluster`).
    #[serde(default)]
    pub cluster: Option<RawCluster>,
    /// Where a trace is looked at (`ui_url`; see `crate::trace`).
    #[serde(default)]
    pub tracing: Option<crate::trace::RawTracing>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// How long a leader's lease lasts unless renewed (default 10s).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub lease: Option<String>,
    /// How often a replica renews the lease or tries to take it, and writes its heartbeat
    /// (default 2s).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub renew_every: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDatadog {
    /// Secrets (`${DD_API_KEY}` or `file:...`); empty means "not configured".
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::SecretText>")]
    pub api_key: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::SecretText>")]
    pub app_key: Option<String>,
    /// A Datadog site such as `datadoghq.eu` (API at `https://api.<site>`).
    #[serde(default)]
    pub site: Option<String>,
    /// The API base URL, overriding `site` (tests point it at a local fake).
    #[serde(default)]
    pub api_url: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    #[serde(default)]
    pub listen: Option<String>,
    /// A bearer token the status page, run pages, artifacts and JSON API require (a secret:
    /// `${VAR}` or `file:...`); absent or empty: no authentication.
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::SecretText>")]
    pub auth_token: Option<String>,
    /// Requests per minute per client on `/api/` (default 300).
    #[serde(default)]
    pub api_rate_limit: Option<u32>,
    /// JWT verification for the mutating API (silences).
    #[serde(default)]
    pub auth: Option<crate::mute::config::RawApiAuth>,
    /// How long a client may take to send a request's head (default 10s).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub header_read_timeout: Option<String>,
    /// How long a client may take to send a request's body (default 30s).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub request_body_timeout: Option<String>,
    /// How long a kept-alive connection may wait for its next request (default: the header
    /// read timeout).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub idle_timeout: Option<String>,
    /// How many connections are served at once (default 1024).
    #[serde(default)]
    pub max_connections: Option<u32>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExporters {
    #[serde(default)]
    pub dogstatsd: Option<RawStatsd>,
    /// Every run as a trace over OTLP/HTTP (see `crate::trace`).
    #[serde(default)]
    pub otlp: Option<crate::trace::RawOtlp>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStatsd {
    /// host:port of the DogStatsD agent; empty disables the exporter.
    pub address: String,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub base_url: String,
    /// Origins besides `base_url`'s that may receive trace headers (`https://api.example`).
    #[serde(default)]
    pub trace_origins: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCredentials {
    pub username: String,
    #[schemars(with = "crate::config::schema::SecretText")]
    pub password: String,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWebDriver {
    /// A remote WebDriver endpoint (Selenium Grid, a chromedriver elsewhere). When absent,
    /// synmon starts and supervises a local chromedriver.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub chromedriver: Option<String>,
    #[serde(default)]
    pub browser_binary: Option<String>,
    #[serde(default)]
    pub headless: Option<bool>,
    /// With `headless` (default) and no `browser_binary`: run a local browser on Chromium's
    /// headless shell (`chromium-headless-shell`) when it is installed (default true): the
    /// same engine without browser windows, a quarter to a third less CPU per run. `false`:
    /// Chromium's new headless mode.
    #[serde(default)]
    pub headless_shell: Option<bool>,
    #[serde(default)]
    pub window_size: Option<String>,
    #[serde(default)]
    pub extra_args: Vec<String>,
    #[serde(default)]
    pub sessions: Option<u32>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub startup_timeout: Option<String>,
    /// `context` (default: browsers kept, a fresh user context per run) or `session`.
    #[serde(default)]
    pub isolation: Option<crate::journey::Isolation>,
    /// Runs after which a pooled browser is replaced.
    #[serde(default)]
    pub recycle_after: Option<u32>,
    /// Whether the run tab's requests to the target carry the run's trace headers (default
    /// true). Each such request waits one round trip to synmon: `false` saves that where no
    /// one reads the target's traces.
    #[serde(default)]
    pub trace_requests: Option<bool>,
    /// What a local browser's run contexts, page channel and new-document watches go through:
    /// `devtools` (default: the browser's own DevTools socket; the session asks for no BiDi,
    /// so chromedriver runs no BiDi mapper in the browser) or `bidi` (WebDriver BiDi, as for a
    /// remote end, which always uses it).
    #[serde(default)]
    pub local_protocol: Option<crate::journey::LocalProtocol>,
    /// How a local browser's journey steps are sent: `devtools` (default: over the same
    /// DevTools socket, around chromedriver; a journey with a step only chromedriver sends,
    /// such as `frame`, `switch_to`, `upload`, `hover`, `select`, `set_cookie` or
    /// `clear_cookies`, runs over WebDriver as a whole) or `webdriver` (every step is a
    /// chromedriver command). A remote end's steps are always WebDriver commands.
    #[serde(default)]
    pub local_steps: Option<crate::journey::LocalSteps>,
    /// More capabilities for the new-session request (a Selenium Grid's `se:` options,
    /// `platformName`, `browserVersion`, vendor extensions): merged into synmon's own.
    #[serde(default)]
    pub capabilities: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub step_timeout: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub navigation_timeout: Option<String>,
    #[serde(default)]
    pub slow_request_ms: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    #[schemars(with = "crate::config::schema::SecretText")]
    pub url: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    /// The monitored database, for `sql` steps (a secret: URLs carry passwords).
    #[schemars(with = "crate::config::schema::SecretText")]
    pub url: String,
}
