//! The assembled configuration: `synmon.yaml` plus the files it points at, loaded once,
//! validated completely.
//!
//! `Config::load` is the one loader: `synmon check` runs it and reports, `run` and `once` run it
//! and refuse to start on any error. Raw serde structs (`raw.rs`) are validated into the types
//! below; every problem is collected with its file, line and field path.
//!
//! This module sits above the components: each owns its section's types (journeys and the
//! WebDriver section in `journey`, receivers and routes in `notify`, rules in `rules`, ...) and
//! the primitives they share (secrets, durations, env expansion, spans, diagnostics) are the
//! ground floor in `crate::config`. Nothing below this module names `Config`.

mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::checks;
use crate::config::duration::{Bound, DAY, HOUR, MINUTE};
use crate::config::yaml::YamlDoc;
use crate::config::{
    ConfigErrors, Credentials, Diagnostic, Env, Identity, ProcessEnv, Redactor, Secret, Target,
    env, yaml,
};
use crate::dashboards::client::{DEFAULT_DATADOG_API, DatadogConfig};
use crate::journey::{self, Journey, WebDriverConfig};
use crate::metrics::statsd::StatsdConfig;
pub(crate) use raw::RawConfig;

#[derive(Debug, Clone)]
pub struct Config {
    /// The config file and its folder (relative paths inside resolve against the folder).
    pub file: PathBuf,
    pub dir: PathBuf,
    pub targets: BTreeMap<String, Target>,
    pub default_target: String,
    /// `tenant:`, when the config sets one.
    pub tenant: Option<String>,
    /// `credentials:`, when the config sets them.
    pub credentials: Option<Credentials>,
    pub location: String,
    pub webdriver: WebDriverConfig,
    pub step_timeout: Duration,
    pub navigation_timeout: Duration,
    /// A network request slower than this is listed in a failed run's evidence.
    pub slow_request_ms: u64,
    pub store_url: Secret,
    pub database_url: Option<Secret>,
    pub variables: BTreeMap<String, String>,
    pub artifacts_dir: PathBuf,
    pub journeys_dir: PathBuf,
    pub alerts_dir: PathBuf,
    pub dashboards_dir: PathBuf,
    pub journeys: Vec<Journey>,
    /// What runs on a schedule (`synmon run`).
    pub checks: checks::Checks,
    /// The daemon's HTTP server (default 127.0.0.1:3005, the platform's observability port).
    pub listen: std::net::SocketAddr,
    /// The HTTP server's timeouts and connection cap (`server.*`).
    pub server_limits: ServerLimits,
    pub statsd: Option<StatsdConfig>,
    /// How long runs are kept in the store.
    pub retention: Duration,
    /// Alert rules and SLOs from `alerts_dir` (empty when the folder does not exist).
    pub rules: crate::rules::RuleSet,
    /// How often alert rules and SLOs are evaluated (default 30 s).
    pub evaluation_interval: Duration,
    /// Receivers and the routing tree.
    pub notify: crate::notify::NotifyConfig,
    /// The daemon's public base URL, for links in notifications (no trailing slash); `None`:
    /// `http://` + the address the daemon listens on.
    pub external_url: Option<String>,
    /// The Datadog API for `synmon dashboards diff|push` (keys may be empty: those refuse).
    pub datadog: DatadogConfig,
    /// `server.auth_token`: what the status page, run pages, artifacts and JSON API require
    /// (screenshots and page dumps can hold customer data); `None`: open.
    pub auth_token: Option<Secret>,
    /// Inhibition, maintenance windows, the watchdog and the API's limits and auth.
    pub mute: crate::mute::MuteConfig,
    /// The feature-flag registry files and their flags (`flags:`; default none).
    pub flags: crate::flags::FlagsConfig,
    /// This replica's id (`replica_id:`; default `<host name>-<pid>`).
    pub replica_id: String,
    /// The leader lease's timing.
    pub cluster: crate::cluster::ClusterConfig,
    /// Where runs are exported as traces (`exporters.otlp`); `None`: not exported.
    pub otlp: Option<crate::trace::OtlpConfig>,
    /// Where a trace is looked at (`tracing.ui_url`).
    pub tracing: crate::trace::TracingConfig,
}

/// The platform's observability port: synmon is its observability service.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3005";
/// Runs a pooled browser serves before it is replaced (`webdriver.recycle_after`): a long-lived
/// Chromium gathers memory; replacing it every 100 runs costs one browser start per 100 runs.
pub const DEFAULT_RECYCLE_AFTER: u32 = 100;

// How long each top-level duration may be (listed in the README's key tables; the step timeout
// is the journeys' own bound, `journey::STEP_TIMEOUT`). A step or page
// load past 10 minutes is a hung browser; rules are evaluated at least hourly so an alert is
// never a day late; runs older than 400 days outlive any SLO period or release comparison; a
// lease past 10 minutes leaves a dead leader unreplaced for that long.
const NAVIGATION_TIMEOUT: Bound = Bound::positive("navigation timeout", MINUTE.saturating_mul(10));
const STARTUP_TIMEOUT: Bound = Bound::positive("startup timeout", MINUTE.saturating_mul(10));
const RETENTION: Bound = Bound::positive("retention", DAY.saturating_mul(400));
const EVALUATION_INTERVAL: Bound = Bound::new("evaluation interval", Duration::from_secs(1), HOUR);
const LEASE: Bound = Bound::new(
    "lease",
    Duration::from_millis(100),
    MINUTE.saturating_mul(10),
);
const RENEW_EVERY: Bound = Bound::new(
    "renewal interval",
    Duration::from_millis(100),
    MINUTE.saturating_mul(5),
);

/// What the HTTP server grants a client before it closes the connection: slow or silent
/// clients must not hold connections (and memory) forever, and enough of them must not lock
/// out the probes (see `crate::http::serve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a request's head may take, counted from when the connection is ready for it
    /// (accepted, or the previous response sent): hyper's header read timeout.
    pub header_read_timeout: Duration,
    /// How long a request's body may take once its head arrived.
    pub request_body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request. At most
    /// `header_read_timeout`: hyper's header timer also runs during that wait.
    pub idle_timeout: Duration,
    /// Connections served at once; beyond them a small reserve answers only the probes.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

// A client slower than these is not a client; a minute is already generous for a header.
const HEADER_READ_TIMEOUT: Bound = Bound::positive("header read timeout", MINUTE);
const REQUEST_BODY_TIMEOUT: Bound =
    Bound::positive("request body timeout", MINUTE.saturating_mul(10));
const IDLE_TIMEOUT: Bound = Bound::positive("idle timeout", MINUTE);

/// The most `server.max_connections` may be: each connection is a file descriptor, and an
/// absurd cap is no cap.
pub const MAX_MAX_CONNECTIONS: u32 = 65_536;

/// An optional duration key checked against its bound: absent is `default`; a refusal is
/// reported at `path` and `default` stands in, so loading goes on and reports every error.
fn duration_key(
    err: &mut dyn FnMut(&str, String),
    path: &str,
    raw: &Option<String>,
    bound: Bound,
    default: Duration,
) -> Duration {
    match raw {
        None => default,
        Some(s) => bound.parse(s).unwrap_or_else(|e| {
            err(path, e);
            default
        }),
    }
}

/// `server.header_read_timeout`, `request_body_timeout`, `idle_timeout` and `max_connections`,
/// with their defaults; the durations are parsed here and nowhere else.
fn validate_server_limits(
    raw: Option<&raw::RawServer>,
    err: &mut dyn FnMut(&str, String),
) -> ServerLimits {
    let d = ServerLimits::default();
    let Some(raw) = raw else {
        return d;
    };
    let header_read_timeout = duration_key(
        err,
        "server.header_read_timeout",
        &raw.header_read_timeout,
        HEADER_READ_TIMEOUT,
        d.header_read_timeout,
    );
    let request_body_timeout = duration_key(
        err,
        "server.request_body_timeout",
        &raw.request_body_timeout,
        REQUEST_BODY_TIMEOUT,
        d.request_body_timeout,
    );
    let idle_timeout = duration_key(
        err,
        "server.idle_timeout",
        &raw.idle_timeout,
        IDLE_TIMEOUT,
        header_read_timeout.min(d.idle_timeout),
    );
    let idle_timeout = if idle_timeout > header_read_timeout {
        err(
            "server.idle_timeout",
            format!(
                "must be at most `server.header_read_timeout` ({} ms; the header timer also runs while a connection waits for its next request); it is {} ms",
                header_read_timeout.as_millis(),
                idle_timeout.as_millis()
            ),
        );
        header_read_timeout
    } else {
        idle_timeout
    };
    let max_connections = match raw.max_connections {
        None => d.max_connections,
        Some(n) if (1..=MAX_MAX_CONNECTIONS).contains(&n) => n as usize,
        Some(n) => {
            err(
                "server.max_connections",
                format!("must be between 1 and {MAX_MAX_CONNECTIONS}; it is {n}"),
            );
            d.max_connections
        }
    };
    ServerLimits {
        header_read_timeout,
        request_body_timeout,
        idle_timeout,
        max_connections,
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::load_with_env(path, &ProcessEnv)
    }

    pub fn load_with_env(path: &Path, env: &dyn Env) -> Result<Config, ConfigErrors> {
        let mut doc = YamlDoc::read_expecting(
            path,
            "synmon's settings: a YAML map with at least `targets`",
        )
        .map_err(|d| ConfigErrors(vec![d]))?;
        let mut env_errors = Vec::new();
        env::expand_tree(&mut doc.value, "", env, &mut env_errors);
        let mut errors: Vec<Diagnostic> = env_errors
            .into_iter()
            .map(|(p, m)| doc.diag(&p, m))
            .collect();
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let raw: RawConfig = doc
            .deserialize_at(&doc.value, "")
            .map_err(|d| ConfigErrors(vec![d]))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let (mut cfg, journey_refs) = validate(&doc, raw, path, &dir, &mut errors);
        // Report in the order of the file, not the order the checks happen to run in.
        errors.sort_by_key(|d| d.pos.map(|p| (p.line, p.col)));
        // Journeys are checked even when the main file has errors: report everything at once.
        // A refused folder (`journeys: /etc`) is not read: its errors would bury the one above.
        if cfg.journeys_dir.is_dir() && system_folder(&cfg.journeys_dir).is_none() {
            let ctx = journey::LoadContext {
                variables: cfg.variables.keys().cloned().collect::<BTreeSet<_>>(),
                step_timeout: cfg.step_timeout,
                navigation_timeout: cfg.navigation_timeout,
                has_database: cfg.database_url.is_some(),
                has_tenant: cfg.tenant.is_some(),
                has_credentials: cfg.credentials.is_some(),
            };
            let (journeys, mut jerrs) = journey::load_dir(&cfg.journeys_dir, &ctx);
            errors.append(&mut jerrs);
            cfg.journeys = journeys;
            match journey_refs {
                // No list: every journey runs with the default schedule.
                None => {
                    for j in &cfg.journeys {
                        cfg.checks
                            .journeys
                            .insert(j.name.clone(), cfg.checks.defaults.clone());
                    }
                }
                Some(refs) => {
                    for (p, name) in refs {
                        if !cfg.journeys.iter().any(|j| j.name == name.as_str()) {
                            errors.push(doc.diag(
                                &p,
                                format!(
                                    "no journey `{name}` in {}",
                                    yaml::display_path(&cfg.journeys_dir)
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if cfg.alerts_dir.is_dir() && system_folder(&cfg.alerts_dir).is_none() {
            let (rules, mut rerrs) = crate::rules::load_dir(&cfg.alerts_dir);
            errors.append(&mut rerrs);
            cfg.rules = rules;
        }
        cfg.rules.interval = cfg.evaluation_interval;
        // "In the future" (a `removed` flag's expiry) is judged at the day the config loads.
        let today = crate::clock::Clock::now(&crate::clock::SystemClock).date_naive();
        let (registry, mut ferrs) = crate::flags::load_files(&cfg.flags.files, today);
        errors.append(&mut ferrs);
        cfg.flags.registry = registry;
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The target named on the command line, or the default one.
    pub fn target(&self, name: Option<&str>) -> Result<&Target, String> {
        let name = name.unwrap_or(&self.default_target);
        self.targets.get(name).ok_or_else(|| {
            format!(
                "unknown target `{name}` (configured: {})",
                self.targets.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// A journey by name, or by the path of its file.
    pub fn journey(&self, name_or_path: &str) -> Result<Journey, String> {
        if let Some(j) = self.journeys.iter().find(|j| j.name == name_or_path) {
            return Ok(j.clone());
        }
        let p = Path::new(name_or_path);
        if p.is_file() {
            let ctx = journey::LoadContext {
                variables: self.variables.keys().cloned().collect(),
                step_timeout: self.step_timeout,
                navigation_timeout: self.navigation_timeout,
                has_database: self.database_url.is_some(),
                has_tenant: self.tenant.is_some(),
                has_credentials: self.credentials.is_some(),
            };
            return journey::load_file(p, &ctx).map_err(|errs| ConfigErrors(errs).to_string());
        }
        Err(format!(
            "no journey `{name_or_path}` (known: {})",
            self.journeys
                .iter()
                .map(|j| j.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// The daemon's public base URL: `external_url`, else `http://` + the address it listens on.
    pub fn public_url(&self, listening: std::net::SocketAddr) -> String {
        self.external_url
            .clone()
            .unwrap_or_else(|| format!("http://{listening}"))
    }

    /// Every secret this config holds, for scrubbing free text.
    /// Who runs and from where: what every run's template variables start from.
    pub fn identity(&self) -> Identity {
        Identity {
            tenant: self.tenant.clone(),
            credentials: self.credentials.clone(),
            location: self.location.clone(),
            variables: self.variables.clone(),
        }
    }

    /// What the journey runner takes from this config.
    pub fn runner_settings(&self) -> std::sync::Arc<journey::RunnerSettings> {
        std::sync::Arc::new(journey::RunnerSettings {
            identity: self.identity(),
            webdriver: self.webdriver.clone(),
            navigation_timeout: self.navigation_timeout,
            slow_request_ms: self.slow_request_ms,
            artifacts_dir: self.artifacts_dir.clone(),
            redactor: self.redactor(),
            database_url: self.database_url.clone(),
        })
    }

    /// The definition of the check `name` of `kind` this config can run now (see
    /// [`checks::find`]).
    pub fn find_check(&self, kind: crate::run::CheckKind, name: &str) -> Option<checks::CheckDef> {
        checks::find(&self.checks, &self.journeys, kind, name)
    }

    pub fn redactor(&self) -> Redactor {
        let mut r = Redactor::default();
        if let Some(c) = &self.credentials {
            r.add(&c.password);
        }
        r.add(&self.store_url);
        if let Some(d) = &self.database_url {
            r.add(d);
        }
        for rc in &self.notify.receivers {
            for s in rc.secrets() {
                r.add(&s);
            }
        }
        r.add(&self.datadog.api_key);
        r.add(&self.datadog.app_key);
        if let Some(t) = &self.auth_token {
            r.add(t);
        }
        if let Some(s) = &self.mute.auth_secret {
            r.add(s);
        }
        for s in self.otlp.iter().flat_map(|o| o.secrets()) {
            r.add(s);
        }
        r
    }
}

fn validate(
    doc: &YamlDoc,
    raw: RawConfig,
    path: &Path,
    dir: &Path,
    errors: &mut Vec<Diagnostic>,
) -> (Config, Option<Vec<(String, String)>>) {
    let (checks, journey_refs) = checks::validate(doc, raw.checks, dir, errors);
    let mut err = |p: &str, m: String| errors.push(doc.diag(p, m));

    let mut targets = BTreeMap::new();
    if raw.targets.is_empty() {
        err(
            "targets",
            "at least one target (e.g. `staging: {base_url: ...}`) is needed".into(),
        );
    }
    for (name, t) in &raw.targets {
        let p = format!("targets.{name}.base_url");
        let trace_origins = crate::trace::config::validate_origins(
            &t.trace_origins,
            &format!("targets.{name}.trace_origins"),
            &mut err,
        );
        match reqwest::Url::parse(&t.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                targets.insert(
                    name.clone(),
                    Target {
                        name: name.clone(),
                        base_url: u,
                        trace_origins,
                    },
                );
            }
            Ok(_) => err(
                &p,
                format!("`{}` must be an http(s) URL with a host", t.base_url),
            ),
            Err(e) => err(&p, format!("`{}` is not a URL: {e}", t.base_url)),
        }
    }
    let default_target = match &raw.default_target {
        Some(d) if !raw.targets.contains_key(d) => {
            err(
                "default_target",
                format!(
                    "unknown target `{d}` (configured: {})",
                    raw.targets.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
            d.clone()
        }
        Some(d) => d.clone(),
        None => raw.targets.keys().next().cloned().unwrap_or_default(),
    };
    if raw.tenant.as_ref().is_some_and(|t| t.trim().is_empty()) {
        err("tenant", "must not be empty".into());
    }
    let credentials = raw.credentials.map(|c| {
        if c.username.trim().is_empty() {
            err("credentials.username", "must not be empty".into());
        }
        let password = resolve_password(&c.password, dir, &mut err);
        Credentials {
            username: c.username,
            password,
        }
    });
    // An HTTP check that logs in posts the synthetic user's credentials: it needs them.
    if credentials.is_none() {
        for (i, c) in checks.http.iter().enumerate() {
            if c.login.is_some() {
                err(
                    &format!("checks.http[{i}].auth.login"),
                    "logging in needs `credentials:` in the config (this config has none)".into(),
                );
            }
        }
    }

    let location = raw.location.unwrap_or_else(|| "local".to_string());
    if location.is_empty()
        || !location
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        err(
            "location",
            format!("`{location}` must be letters, digits, `-` or `_`"),
        );
    }

    let step_timeout = duration_key(
        &mut err,
        "defaults.step_timeout",
        &raw.defaults.step_timeout,
        journey::STEP_TIMEOUT,
        Duration::from_secs(5),
    );
    let navigation_timeout = duration_key(
        &mut err,
        "defaults.navigation_timeout",
        &raw.defaults.navigation_timeout,
        NAVIGATION_TIMEOUT,
        Duration::from_secs(10),
    );
    let startup_timeout = duration_key(
        &mut err,
        "webdriver.startup_timeout",
        &raw.webdriver.startup_timeout,
        STARTUP_TIMEOUT,
        Duration::from_secs(20),
    );

    let wd = &raw.webdriver;
    let remote_url = match &wd.url {
        None => None,
        Some(u) if u.is_empty() => None,
        Some(u) => match reqwest::Url::parse(u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                err("webdriver.url", format!("`{u}` is not an http(s) URL"));
                None
            }
        },
    };
    let window_raw = wd.window_size.as_deref().unwrap_or("1280x800");
    let window = match window_raw.split_once('x') {
        Some((w, h)) => match (w.parse::<u32>(), h.parse::<u32>()) {
            (Ok(w), Ok(h)) if (200..=8000).contains(&w) && (200..=8000).contains(&h) => (w, h),
            (Ok(_), Ok(_)) => {
                err(
                    "webdriver.window_size",
                    format!("`{window_raw}` is out of range (width and height: 200-8000)"),
                );
                (1280, 800)
            }
            _ => {
                err(
                    "webdriver.window_size",
                    "write it as WIDTHxHEIGHT, e.g. 1280x800".into(),
                );
                (1280, 800)
            }
        },
        None => {
            err(
                "webdriver.window_size",
                "write it as WIDTHxHEIGHT, e.g. 1280x800".into(),
            );
            (1280, 800)
        }
    };
    let sessions = wd.sessions.unwrap_or(2);
    if !(1..=64).contains(&sessions) {
        err(
            "webdriver.sessions",
            format!("{sessions} is out of range (1-64)"),
        );
    }
    let mut capabilities = serde_json::Map::new();
    for (key, value) in &wd.capabilities {
        match crate::journey::webdriver::check_capability(key) {
            Some(why) => err(&format!("webdriver.capabilities.{key}"), why),
            None => {
                capabilities.insert(key.clone(), value.clone());
            }
        }
    }
    let recycle_after = wd.recycle_after.unwrap_or(DEFAULT_RECYCLE_AFTER);
    if !(1..=100_000).contains(&recycle_after) {
        err(
            "webdriver.recycle_after",
            format!("{recycle_after} is out of range (1-100000 runs)"),
        );
    }

    let store_raw = raw
        .store
        .as_ref()
        .map(|s| s.url.clone())
        .unwrap_or_else(|| "sqlite://synmon.db".to_string());
    let store_url = match store_raw.split_once("://") {
        Some(("sqlite", p)) => {
            let p = Path::new(p);
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            };
            Secret::new(format!("sqlite://{}", abs.display()))
        }
        Some(("postgres" | "postgresql", _)) => Secret::new(store_raw.clone()),
        _ => {
            err(
                "store.url",
                "must start with sqlite:// or postgres://".into(),
            );
            Secret::default()
        }
    };
    let database_url = match &raw.database {
        Some(d) if d.url.is_empty() => None,
        Some(d) => match env::resolve_secret(&d.url, dir) {
            Ok(u)
                if u.starts_with("postgres://")
                    || u.starts_with("postgresql://")
                    || u.starts_with("sqlite:") =>
            {
                Some(Secret::new(u))
            }
            Ok(_) => {
                err(
                    "database.url",
                    "must start with postgres:// or sqlite:".into(),
                );
                None
            }
            Err(e) => {
                err("database.url", e);
                None
            }
        },
        None => None,
    };
    for k in raw.variables.keys() {
        if journey::BUILTIN_VARS.contains(&k.as_str()) {
            err(
                &format!("variables.{k}"),
                format!("`{k}` is a built-in variable"),
            );
        }
    }

    let folder = |raw: &Option<String>, default: &str| dir.join(raw.as_deref().unwrap_or(default));
    let journeys_dir = folder(&raw.journeys, "journeys");
    let alerts_dir = folder(&raw.alerts, "alerts");
    let dashboards_dir = folder(&raw.dashboards, "dashboards");
    let artifacts_dir = folder(&raw.artifacts, "artifacts");
    for (key, written, path, holds) in [
        ("journeys", &raw.journeys, &journeys_dir, Holds::Journeys),
        ("alerts", &raw.alerts, &alerts_dir, Holds::Rules),
        (
            "dashboards",
            &raw.dashboards,
            &dashboards_dir,
            Holds::Dashboards,
        ),
        ("artifacts", &raw.artifacts, &artifacts_dir, Holds::Anything),
    ] {
        if let Some(m) = check_folder(key, written.as_deref(), path, holds) {
            err(key, m);
        }
    }

    let listen_raw = raw
        .server
        .as_ref()
        .and_then(|s| s.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen = listen_raw.parse().unwrap_or_else(|_| {
        err(
            "server.listen",
            format!("`{listen_raw}` is not an address like 127.0.0.1:3005"),
        );
        DEFAULT_LISTEN.parse().expect("default address")
    });
    let server_limits = validate_server_limits(raw.server.as_ref(), &mut err);
    let statsd = match raw.exporters.as_ref().and_then(|e| e.dogstatsd.as_ref()) {
        Some(d) if d.address.trim().is_empty() => None,
        Some(d) => match std::net::ToSocketAddrs::to_socket_addrs(d.address.as_str())
            .ok()
            .and_then(|mut a| a.next())
        {
            Some(address) => Some(StatsdConfig {
                address,
                prefix: d.prefix.clone().filter(|p| !p.is_empty()),
                tags: d.tags.clone(),
            }),
            None => {
                err(
                    "exporters.dogstatsd.address",
                    format!("`{}` is not a host:port that resolves", d.address),
                );
                None
            }
        },
        None => None,
    };
    let otlp = crate::trace::config::validate_otlp(
        raw.exporters.as_ref().and_then(|e| e.otlp.as_ref()),
        dir,
        &mut err,
    );
    let tracing = crate::trace::config::validate_tracing(raw.tracing.as_ref(), &mut err);
    let retention = duration_key(
        &mut err,
        "retention",
        &raw.retention,
        RETENTION,
        Duration::from_secs(35 * 86_400),
    );

    let evaluation_interval = duration_key(
        &mut err,
        "evaluation_interval",
        &raw.evaluation_interval,
        EVALUATION_INTERVAL,
        Duration::from_secs(30),
    );

    let replica_id = match raw.replica_id {
        Some(id) => {
            if id.is_empty()
                || id.len() > 253
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                err(
                    "replica_id",
                    format!("`{id}` must be 1 to 253 letters, digits, `-`, `_` or `.`"),
                );
            }
            id
        }
        None => crate::cluster::default_replica_id(),
    };
    let cluster = {
        let raw = raw.cluster.unwrap_or_default();
        let d = crate::cluster::ClusterConfig::default();
        let lease = duration_key(&mut err, "cluster.lease", &raw.lease, LEASE, d.lease);
        let renew_every = duration_key(
            &mut err,
            "cluster.renew_every",
            &raw.renew_every,
            RENEW_EVERY,
            d.renew_every,
        );
        if raw.lease.is_some() || raw.renew_every.is_some() {
            // Two renewals must fit in a lease, or one slow round trip loses the leadership.
            if renew_every.saturating_mul(2) > lease {
                err(
                    "cluster.renew_every",
                    format!(
                        "must be at most half of `cluster.lease` ({} ms); it is {} ms",
                        lease.as_millis(),
                        renew_every.as_millis()
                    ),
                );
            }
        }
        crate::cluster::ClusterConfig { lease, renew_every }
    };

    let mut notify = crate::notify::config::validate(raw.receivers, raw.route, dir, &mut err);
    let (rate_limit, auth, auth_token_raw) = match raw.server {
        Some(s) => (s.api_rate_limit, s.auth, s.auth_token),
        None => (None, None, None),
    };
    let mute = crate::mute::config::validate(
        raw.inhibit_rules,
        raw.maintenance_windows,
        raw.watchdog,
        rate_limit,
        auth,
        &mut notify,
        dir,
        &mut err,
    );
    let external_url = match raw.external_url.as_deref().filter(|u| !u.is_empty()) {
        None => None,
        Some(u) => match reqwest::Url::parse(u) {
            Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {
                Some(u.trim_end_matches('/').to_string())
            }
            _ => {
                err(
                    "external_url",
                    format!("`{u}` must be an http(s) URL with a host"),
                );
                None
            }
        },
    };
    let datadog = validate_datadog(raw.datadog.as_ref(), dir, &mut err);
    let flags = crate::flags::validate(raw.flags, dir, &mut err);
    let auth_token = match auth_token_raw.as_deref() {
        None | Some("") => None,
        Some(v) => match env::resolve_secret(v, dir) {
            Ok(t) if t.is_empty() => None,
            // A short token is guessable, and the redactor ignores values under 4 characters.
            Ok(t) if t.len() < 16 => {
                err(
                    "server.auth_token",
                    "must be at least 16 characters (or empty to turn authentication off)".into(),
                );
                None
            }
            Ok(t) => Some(Secret::new(t)),
            Err(e) => {
                err("server.auth_token", e);
                None
            }
        },
    };

    let config = Config {
        file: path.to_path_buf(),
        dir: dir.to_path_buf(),
        targets,
        default_target,
        tenant: raw.tenant,
        credentials,
        location,
        webdriver: WebDriverConfig {
            remote_url,
            chromedriver: wd
                .chromedriver
                .clone()
                .unwrap_or_else(|| "chromedriver".into()),
            browser_binary: wd.browser_binary.clone(),
            headless: wd.headless.unwrap_or(true),
            headless_shell: wd.headless_shell.unwrap_or(true),
            window,
            extra_args: wd.extra_args.clone(),
            sessions,
            startup_timeout,
            isolation: wd.isolation.unwrap_or_default(),
            recycle_after,
            trace_requests: wd.trace_requests.unwrap_or(true),
            capabilities,
            local_protocol: wd.local_protocol.unwrap_or_default(),
            local_steps: wd.local_steps.unwrap_or_default(),
        },
        step_timeout,
        navigation_timeout,
        slow_request_ms: raw.defaults.slow_request_ms.unwrap_or(1000),
        store_url,
        database_url,
        variables: raw.variables,
        artifacts_dir,
        journeys_dir,
        alerts_dir,
        dashboards_dir,
        journeys: Vec::new(),
        checks,
        listen,
        server_limits,
        statsd,
        retention,
        rules: crate::rules::RuleSet::default(),
        evaluation_interval,
        notify,
        external_url,
        datadog,
        auth_token,
        mute,
        flags,
        replica_id,
        cluster,
        otlp,
        tracing,
    };
    (config, journey_refs)
}

/// What a folder key's folder must hold.
#[derive(Clone, Copy)]
enum Holds {
    Journeys,
    Rules,
    Dashboards,
    /// Written to, not read (`artifacts`): may be absent or empty.
    Anything,
}

/// Folders of the operating system. None is a sensible value for any folder key: reading
/// journeys from `/etc` or writing artifacts into `/` is a slip, not a layout. Their
/// sub-folders stay legal (`/etc/synmon/journeys`, `/var/lib/synmon/artifacts`).
const SYSTEM_FOLDERS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/usr/bin",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/local",
    "/usr/sbin",
    "/usr/share",
    "/var",
    "/var/lib",
    "/var/log",
    "/var/run",
];

/// The system folder `path` is, if it is one: compared as written (made absolute, `.` and `..`
/// resolved) and, when it exists, with symbolic links resolved (`/lib` -> `/usr/lib`).
fn system_folder(path: &Path) -> Option<&'static str> {
    let lexical = std::path::absolute(path).ok().map(|abs| {
        let mut out = PathBuf::new();
        for c in abs.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                c => out.push(c),
            }
        }
        out
    });
    let real = path.canonicalize().ok();
    SYSTEM_FOLDERS.iter().copied().find(|root| {
        [&lexical, &real]
            .into_iter()
            .flatten()
            .any(|p| p == Path::new(root))
    })
}

/// What is wrong with a folder key's folder, if anything: a system folder; a missing folder
/// (journeys always, alerts and dashboards when named); a file; a folder with nothing of its
/// kind when it is named or holds other files (an empty default folder is a placeholder).
fn check_folder(key: &str, written: Option<&str>, path: &Path, holds: Holds) -> Option<String> {
    let shown = yaml::display_path(path);
    if let Some(root) = system_folder(path) {
        let example = match key {
            "artifacts" => "/var/lib/synmon/artifacts".to_string(),
            k => format!("/etc/synmon/{k}"),
        };
        let what = match written {
            Some(w) if Path::new(w) != Path::new(root) => {
                format!("`{w}` is the system folder {root}")
            }
            _ => format!("`{root}` is a system folder"),
        };
        return Some(format!(
            "{what}; give synmon a folder of its own (e.g. {example})"
        ));
    }
    if path.exists() && !path.is_dir() {
        return Some(format!("{shown} is a file, not a folder"));
    }
    if !path.is_dir() {
        let required = matches!(holds, Holds::Journeys) || written.is_some();
        return (required && !matches!(holds, Holds::Anything))
            .then(|| format!("folder {shown} does not exist"));
    }
    let (found, kind) = match holds {
        Holds::Anything => return None,
        Holds::Journeys => (
            journey::journey_files(path).map(|f| f.len()),
            "no journey (a `*.yaml` or `*.yml` file whose name does not start with `_`)",
        ),
        Holds::Rules => (
            crate::rules::load::rule_files(path)
                .map(|f| f.len())
                .map_err(|d| std::io::Error::other(d.message)),
            "no rule file (a `*.yaml` or `*.yml` file directly inside)",
        ),
        Holds::Dashboards => (
            crate::dashboards::files(path)
                .map(|f| f.len())
                .map_err(|e| std::io::Error::other(e.message)),
            "no dashboard (a `*.json` file directly inside)",
        ),
    };
    // An unreadable folder is reported by the loader that reads it.
    let found = found.ok()?;
    // Hidden entries do not count: a `.gitkeep`, or the `..data` links of a mounted ConfigMap.
    let has_entries = std::fs::read_dir(path).is_ok_and(|d| {
        d.filter_map(Result::ok)
            .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
    });
    (found == 0 && (written.is_some() || has_entries))
        .then(|| format!("folder {shown} holds {kind}"))
}

fn validate_datadog(
    raw: Option<&raw::RawDatadog>,
    dir: &Path,
    err: &mut dyn FnMut(&str, String),
) -> DatadogConfig {
    let default_url = || reqwest::Url::parse(DEFAULT_DATADOG_API).expect("a valid URL");
    let Some(raw) = raw else {
        return DatadogConfig {
            api_key: Secret::default(),
            app_key: Secret::default(),
            api_url: default_url(),
        };
    };
    let mut secret = |p: &str, v: &Option<String>| match v.as_deref() {
        None | Some("") => Secret::default(),
        Some(v) => match env::resolve_secret(v, dir) {
            Ok(s) => Secret::new(s),
            Err(e) => {
                err(p, e);
                Secret::default()
            }
        },
    };
    let api_key = secret("datadog.api_key", &raw.api_key);
    let app_key = secret("datadog.app_key", &raw.app_key);
    let site = raw.site.as_deref().filter(|s| !s.trim().is_empty());
    let api = raw.api_url.as_deref().filter(|s| !s.trim().is_empty());
    let (p, text) = match (site, api) {
        (Some(_), Some(_)) => {
            err(
                "datadog.site",
                "set either `site` or `api_url`, not both".into(),
            );
            return DatadogConfig {
                api_key,
                app_key,
                api_url: default_url(),
            };
        }
        (Some(s), None) => (
            "datadog.site",
            crate::dashboards::client::site_url(s.trim()),
        ),
        (None, Some(u)) => ("datadog.api_url", u.trim().to_string()),
        (None, None) => ("datadog.api_url", DEFAULT_DATADOG_API.to_string()),
    };
    // A base URL without a trailing slash would lose its last path segment on `join`.
    let with_slash = if text.ends_with('/') {
        text.clone()
    } else {
        format!("{text}/")
    };
    let api_url = match reqwest::Url::parse(&with_slash) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            err(p, format!("`{text}` is not an http(s) URL with a host"));
            default_url()
        }
    };
    DatadogConfig {
        api_key,
        app_key,
        api_url,
    }
}

/// `credentials.password`: a secret (`file:`, `env:` or the value), at least 4 characters.
fn resolve_password(raw: &str, dir: &Path, err: &mut impl FnMut(&str, String)) -> Secret {
    match env::resolve_secret(raw, dir) {
        Ok(p) if p.is_empty() => {
            err("credentials.password", "must not be empty".into());
            Secret::default()
        }
        Ok(p) if p.len() < 4 => {
            err(
                "credentials.password",
                "is shorter than 4 characters".into(),
            );
            Secret::default()
        }
        Ok(p) => Secret::new(p),
        Err(e) => {
            err("credentials.password", e);
            Secret::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(yaml: &str) -> (ServerLimits, Vec<String>) {
        let raw: raw::RawServer = yaml_serde::from_str(yaml).unwrap();
        let mut errs = Vec::new();
        let l = validate_server_limits(Some(&raw), &mut |p, m| errs.push(format!("{p}: {m}")));
        (l, errs)
    }

    #[test]
    fn server_limits_defaults_and_refusals() {
        assert_eq!(limits("{}"), (ServerLimits::default(), vec![]));
        let (l, errs) = limits(
            "{header_read_timeout: 2s, request_body_timeout: 3s, idle_timeout: 1s, max_connections: 300}",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            l,
            ServerLimits {
                header_read_timeout: Duration::from_secs(2),
                request_body_timeout: Duration::from_secs(3),
                idle_timeout: Duration::from_secs(1),
                max_connections: 300,
            }
        );
        // A shorter header timeout brings the default idle timeout down with it.
        assert_eq!(
            limits("{header_read_timeout: 3s}").0.idle_timeout,
            Duration::from_secs(3)
        );
        let (_, errs) = limits(
            "{header_read_timeout: 2s, request_body_timeout: soon, idle_timeout: 5s, max_connections: 0}",
        );
        assert_eq!(
            errs,
            [
                "server.request_body_timeout: `soon` is not a duration (expected number at 0); write it like `500ms`, `5s` or `2m`",
                "server.idle_timeout: must be at most `server.header_read_timeout` (2000 ms; the header timer also runs while a connection waits for its next request); it is 5000 ms",
                "server.max_connections: must be between 1 and 65536; it is 0",
            ]
        );
    }

    #[test]
    fn system_folders_are_found_however_they_are_written() {
        assert_eq!(system_folder(Path::new("/")), Some("/"));
        assert_eq!(system_folder(Path::new("/etc/")), Some("/etc"));
        assert_eq!(
            system_folder(Path::new("/etc/synmon/../../usr")),
            Some("/usr")
        );
        assert_eq!(system_folder(Path::new("/var/lib/synmon/artifacts")), None);
        assert_eq!(system_folder(Path::new("/etc/synmon/journeys")), None);
        // A relative path that climbs to the root is the root.
        let up = "../".repeat(std::env::current_dir().unwrap().components().count());
        assert_eq!(system_folder(Path::new(&up)), Some("/"));
    }

    #[test]
    fn a_symbolic_link_to_a_system_folder_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("journeys");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        assert_eq!(system_folder(&link), Some("/etc"));
    }

    #[test]
    fn an_empty_default_folder_is_a_placeholder_but_a_named_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let alerts = dir.path().join("alerts");
        std::fs::create_dir(&alerts).unwrap();
        assert_eq!(check_folder("alerts", None, &alerts, Holds::Rules), None);
        std::fs::write(alerts.join(".gitkeep"), "").unwrap();
        assert_eq!(check_folder("alerts", None, &alerts, Holds::Rules), None);
        let named = check_folder("alerts", Some("alerts"), &alerts, Holds::Rules).unwrap();
        assert!(
            named.ends_with("holds no rule file (a `*.yaml` or `*.yml` file directly inside)"),
            "{named}"
        );
        // A default folder holding other files is a mistake too (rules written as `.json`?).
        std::fs::write(alerts.join("rules.json"), "{}").unwrap();
        assert!(check_folder("alerts", None, &alerts, Holds::Rules).is_some());
        std::fs::write(alerts.join("rules.yaml"), "rules: []\n").unwrap();
        assert_eq!(
            check_folder("alerts", Some("alerts"), &alerts, Holds::Rules),
            None
        );
    }

    #[test]
    fn absent_defaults_keep_their_rules() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nothing-here");
        // Journeys are required; alerts, dashboards and artifacts may be absent.
        assert!(check_folder("journeys", None, &missing, Holds::Journeys).is_some());
        assert_eq!(check_folder("alerts", None, &missing, Holds::Rules), None);
        assert_eq!(
            check_folder("dashboards", None, &missing, Holds::Dashboards),
            None
        );
        assert_eq!(
            check_folder("artifacts", None, &missing, Holds::Anything),
            None
        );
        assert_eq!(
            check_folder("artifacts", Some("x"), &missing, Holds::Anything),
            None
        );
        assert!(check_folder("alerts", Some("x"), &missing, Holds::Rules).is_some());
    }
}
