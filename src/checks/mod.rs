//! What runs on a schedule, one file per kind: journeys, HTTP checks, SQL metrics and the TCP,
//! DNS and TLS probes. Each kind owns its config entry (raw and validated), the validation only
//! it needs, how one attempt runs and the metrics only it writes, behind the [`Check`] trait.
//!
//! [`CheckDef`] is the one list of kinds and its `match` the one place that dispatches to them:
//! the daemon schedules, indexes and runs checks through it, and the gate's fresh runs do too.
//! A new kind is a new file, an arm of [`CheckDef`] and a field of [`Checks`] (and
//! [`RawChecks`]); the compiler then names every other place that must handle it.
//!
//! The schedule every kind shares (`interval`, `timeout`, `retry_on_failure`) is resolved and
//! validated here, once, for all kinds.

/// The accessors of [`Check`] that every kind writes alike, for its `impl Check` block:
/// `name` and `schedule` read the check's fields of those names; `raw_name` and
/// `raw_schedule` read the entry's `name`, `interval` and `timeout`, and its
/// `retry_on_failure` when the kind has one (`check_accessors!(retry_on_failure)`; without
/// it the entry inherits the section's retry).
macro_rules! check_accessors {
    (@retry $raw:ident) => {
        None
    };
    (@retry $raw:ident retry_on_failure) => {
        $raw.retry_on_failure.as_ref()
    };
    ($($retry:ident)?) => {
        fn name(&self) -> &str {
            &self.name
        }

        fn schedule(&self) -> &$crate::checks::Schedule {
            &self.schedule
        }

        fn raw_name(raw: &Self::Raw) -> &str {
            &raw.name
        }

        fn raw_schedule(raw: &Self::Raw) -> $crate::checks::RawSchedule<'_> {
            $crate::checks::RawSchedule {
                interval: raw.interval.as_deref(),
                timeout: raw.timeout.as_deref(),
                retry: check_accessors!(@retry raw $($retry)?),
            }
        }
    };
}

pub mod dns;
pub mod http;
pub mod journey;
mod schedule;
pub mod sql;
pub mod tcp;
pub mod tls;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::clock::Clock;
use crate::config::duration::Bound;
use crate::config::yaml::YamlDoc;
use crate::config::{Diagnostic, Target};
use crate::journey::{Journey, Runner, Vars};
use crate::metrics::registry::Registry;
use crate::run::{CheckKind, RunResult};

pub use dns::{DnsCheck, RawDnsCheck};
pub use http::{
    HttpCheck, HttpProber, HttpStats, Login, RawHttpAuth, RawHttpCheck, RawHttpCheckExpect,
    RawLogin,
};
pub use journey::{JourneyCheck, RawJourneyCheck, SessionPool, Sessions};
pub use schedule::{RawRetry, RawSchedule, Retry, Schedule};
pub use sql::{RawQuery, RawSqlMetric, SqlMetric, SqlSource};
pub use tcp::{RawTcpCheck, TcpCheck};
pub use tls::{RawTlsCheck, TlsCheck};

/// One kind of check: what it is called, when it runs, how its entry is validated and how one
/// attempt runs. A kind's `name`, `schedule`, `raw_name` and `raw_schedule` are the same
/// field reads for every kind: its impl writes them with `check_accessors!`.
pub trait Check: Clone + Into<CheckDef> + Sized {
    /// The kind its runs are labelled with.
    const KIND: CheckKind;
    /// Its list under `checks:` in the config (`http`, `tcp`, ...).
    const KEY: &'static str;
    /// The entry as written in the config.
    type Raw;

    fn name(&self) -> &str;
    fn schedule(&self) -> &Schedule;

    /// The name an entry claims (checked for duplicates across every kind).
    fn raw_name(raw: &Self::Raw) -> &str;
    /// The schedule fields an entry wrote.
    fn raw_schedule(raw: &Self::Raw) -> RawSchedule<'_>;
    /// Validates one entry at `path` (`checks.http[2]`), whose schedule is already resolved;
    /// every problem goes to `v`, and a usable value comes back anyway so that validation goes
    /// on and reports everything at once.
    fn validate(raw: &Self::Raw, path: &str, schedule: Schedule, v: &mut Validator<'_>) -> Self;

    /// Runs one attempt against `cx.target`, the probe itself given `timeout`, and writes the
    /// metrics only this kind has to `cx.registry` when there is one. Target and probe
    /// failures are outcomes, never panics.
    fn run(&self, cx: &Context<'_>, timeout: Duration) -> impl Future<Output = RunResult> + Send;
}

/// Declares [`CheckDef`] and, for each arm, the `From` of its kind into it: an arm is all a
/// kind's file needs here.
macro_rules! check_def {
    ($(#[$meta:meta])* pub enum CheckDef { $($arm:ident($kind:ty),)* }) => {
        $(#[$meta])*
        pub enum CheckDef {
            $($arm($kind),)*
        }

        $(
            impl From<$kind> for CheckDef {
                fn from(c: $kind) -> Self {
                    CheckDef::$arm(c)
                }
            }
        )*
    };
}

check_def! {
    /// A validated check of any kind.
    #[derive(Debug, Clone)]
    #[expect(
        clippy::large_enum_variant,
        reason = "built once per config load, one per check: boxing would only add an indirection to every run"
    )]
    pub enum CheckDef {
        Journey(JourneyCheck),
        Http(HttpCheck),
        Sql(SqlMetric),
        Tcp(TcpCheck),
        Dns(DnsCheck),
        Tls(TlsCheck),
    }
}

/// Applies `$body` to the check inside any [`CheckDef`], bound as `$c`: the one match over
/// the kinds.
macro_rules! each_kind {
    ($def:expr, $c:ident => $body:expr) => {
        match $def {
            CheckDef::Journey($c) => $body,
            CheckDef::Http($c) => $body,
            CheckDef::Sql($c) => $body,
            CheckDef::Tcp($c) => $body,
            CheckDef::Dns($c) => $body,
            CheckDef::Tls($c) => $body,
        }
    };
}

fn kind_of<K: Check>(_: &K) -> CheckKind {
    K::KIND
}

impl CheckDef {
    pub fn kind(&self) -> CheckKind {
        each_kind!(self, c => kind_of(c))
    }

    pub fn name(&self) -> &str {
        each_kind!(self, c => c.name())
    }

    pub fn schedule(&self) -> &Schedule {
        each_kind!(self, c => c.schedule())
    }

    /// Runs one attempt of this check (see [`Check::run`]).
    ///
    /// A journey's run is boxed apart. Its future holds the whole browser conversation's state
    /// (55 KB); inline, every HTTP, SQL, TCP, DNS and TLS run's future had that size too, since
    /// a `match`'s future is as large as its largest arm. The daemon boxes each run's future,
    /// so each probe in flight cost 55 KB instead of 3: a stall that left 1,000 probes due at
    /// once took 55 MB more RSS, which glibc then kept (issue 19).
    pub async fn run(&self, cx: &Context<'_>, timeout: Duration) -> RunResult {
        // Not `each_kind!`: it would put the journey's future inline again.
        match self {
            CheckDef::Journey(c) => Box::pin(c.run(cx, timeout)).await,
            CheckDef::Http(c) => c.run(cx, timeout).await,
            CheckDef::Sql(c) => c.run(cx, timeout).await,
            CheckDef::Tcp(c) => c.run(cx, timeout).await,
            CheckDef::Dns(c) => c.run(cx, timeout).await,
            CheckDef::Tls(c) => c.run(cx, timeout).await,
        }
    }
}

/// What a check borrows to run one attempt: where it runs from, its target, the loaded journeys,
/// and the clients a daemon (or the gate) keeps between runs.
pub struct Context<'a> {
    /// The location label of every run (`location:`).
    pub location: &'a str,
    /// The loaded journeys a journey check runs.
    pub journeys: &'a [Journey],
    pub target: &'a Target,
    /// The template variables of `target` ([`Vars::for_target`]).
    pub vars: &'a Vars,
    pub clock: &'a dyn Clock,
    /// The browser runner of journeys.
    pub runner: &'a Runner,
    /// The browser session pool a journey waits for (the wait is measured apart from the
    /// target's latency); `None`: no pool, runs never overlap.
    pub sessions: Option<Sessions<'a>>,
    pub http: &'a HttpProber,
    /// The monitored database; `None` when it is not configured or not reachable.
    pub sql: Option<&'a SqlSource>,
    /// Where probe-specific metrics go (rate-limit hits, gauges, certificate days left);
    /// `None`: nowhere (the gate's fresh runs judge runs only).
    pub registry: Option<&'a Registry>,
}

impl<'a> Context<'a> {
    /// A context for runs judged on their own: no session pool (runs never overlap), no
    /// monitored database, no registry. The gate's fresh runs take it.
    pub fn standalone(
        location: &'a str,
        journeys: &'a [Journey],
        target: &'a Target,
        vars: &'a Vars,
        clock: &'a dyn Clock,
        runner: &'a Runner,
        http: &'a HttpProber,
    ) -> Self {
        Context {
            location,
            journeys,
            target,
            vars,
            clock,
            runner,
            sessions: None,
            http,
            sql: None,
            registry: None,
        }
    }

    /// A run of `check` starting now, for a probe to fill in.
    pub fn begin(&self, check: &str, kind: CheckKind) -> RunResult {
        RunResult::begin(
            check,
            kind,
            &self.target.name,
            self.location,
            self.clock.now(),
        )
    }
}

/// The `checks:` section as written.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChecks {
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub interval: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub timeout: Option<String>,
    /// Upper bound of the start offset drawn per check (never above the interval or 2 m).
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub max_offset: Option<String>,
    #[serde(default)]
    pub retry_on_failure: Option<RawRetry>,
    /// Keep HTTP connections open between checks (default true); false opens a new connection
    /// per request, as blackbox_exporter does.
    #[serde(default)]
    pub http_keep_alive: Option<bool>,
    /// At most this many HTTP, SQL, TCP, DNS and TLS runs at once (default 256, 1-100000;
    /// journeys are bounded by `webdriver.sessions` instead); a run due while the cap is reached
    /// waits for a free place, and the wait counts as its lateness.
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// Which journeys run on the schedule (default: every journey in the folder).
    #[serde(default)]
    pub journeys: Option<Vec<RawJourneyCheck>>,
    #[serde(default)]
    pub http: Vec<RawHttpCheck>,
    #[serde(default)]
    pub sql: Vec<RawSqlMetric>,
    #[serde(default)]
    pub tcp: Vec<RawTcpCheck>,
    #[serde(default)]
    pub dns: Vec<RawDnsCheck>,
    #[serde(default)]
    pub tls: Vec<RawTlsCheck>,
}

/// The validated `checks:` section, one list per kind (the shape of the config file).
#[derive(Debug, Clone)]
pub struct Checks {
    /// The schedule of a journey not listed in `checks.journeys`.
    pub defaults: Schedule,
    pub http_keep_alive: bool,
    /// At most this many probe attempts run at once (see `scheduler::InFlight`).
    pub max_in_flight: usize,
    /// Journey name -> schedule. Empty `journeys:` list means none; absent means all.
    pub journeys: BTreeMap<String, Schedule>,
    pub http: Vec<HttpCheck>,
    pub sql: Vec<SqlMetric>,
    pub tcp: Vec<TcpCheck>,
    pub dns: Vec<DnsCheck>,
    pub tls: Vec<TlsCheck>,
}

impl Checks {
    /// Every scheduled check, journeys first, then the lists in the order of [`CheckDef`].
    pub fn defs(&self) -> Vec<CheckDef> {
        // Destructured without `..`: a new list is a compile error here until it is scheduled.
        let Checks {
            defaults: _,
            http_keep_alive: _,
            max_in_flight: _,
            journeys,
            http,
            sql,
            tcp,
            dns,
            tls,
        } = self;
        let mut out = Vec::with_capacity(
            journeys.len() + http.len() + sql.len() + tcp.len() + dns.len() + tls.len(),
        );
        out.extend(journeys.iter().map(|(name, schedule)| {
            CheckDef::Journey(JourneyCheck {
                name: name.clone(),
                schedule: schedule.clone(),
            })
        }));
        out.extend(http.iter().cloned().map(CheckDef::from));
        out.extend(sql.iter().cloned().map(CheckDef::from));
        out.extend(tcp.iter().cloned().map(CheckDef::from));
        out.extend(dns.iter().cloned().map(CheckDef::from));
        out.extend(tls.iter().cloned().map(CheckDef::from));
        out
    }
}

/// The definition of the check `name` of `kind` that can run now: one of `journeys` (scheduled
/// or not, with its schedule in `checks` or the default one), or a check of the other lists.
pub fn find(
    checks: &Checks,
    journeys: &[Journey],
    kind: CheckKind,
    name: &str,
) -> Option<CheckDef> {
    match kind {
        CheckKind::Journey => journeys.iter().any(|j| j.name == name).then(|| {
            CheckDef::Journey(JourneyCheck {
                name: name.to_string(),
                schedule: checks
                    .journeys
                    .get(name)
                    .unwrap_or(&checks.defaults)
                    .clone(),
            })
        }),
        _ => checks
            .defs()
            .into_iter()
            .find(|d| d.kind() == kind && d.name() == name),
    }
}

/// Collects the problems of the `checks:` section, each with its place in the file.
pub struct Validator<'a> {
    doc: &'a YamlDoc,
    /// The config's folder (relative files in entries resolve against it).
    pub dir: &'a Path,
    errors: Vec<Diagnostic>,
}

impl Validator<'_> {
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(self.doc.diag(path, message));
    }

    /// Reports `address`, written at `path`, unless it is host:port.
    pub fn host_port(&mut self, path: &str, address: &str) {
        let valid = address
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .is_some();
        if !valid {
            self.error(path, format!("`{address}` is not host:port"));
        }
    }

    /// Reports the metric `name`, written at `path`, unless synmon's metric catalog has it.
    pub fn catalogued(&mut self, path: &str, name: &str) {
        if crate::metrics::catalog::lookup(name).is_none() {
            self.error(path, format!("`{name}` is not in synmon's metric catalog"));
        }
    }

    /// The duration written at `path`, if any; a malformed or out-of-`bound` one is reported
    /// and gives `None`.
    pub fn duration(&mut self, path: &str, raw: Option<&str>, bound: Bound) -> Option<Duration> {
        match bound.parse(raw?) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(path, e);
                None
            }
        }
    }
}

/// Check names, unique across every kind.
#[derive(Default)]
struct Names {
    first: BTreeMap<String, String>,
    /// Reported after every other problem of the section.
    duplicates: Vec<(String, String)>,
}

impl Names {
    fn claim(&mut self, path: &str, name: &str) {
        if let Some(first) = self.first.insert(name.to_string(), path.to_string()) {
            self.duplicates.push((
                format!("{path}.name"),
                format!("check name `{name}` is already used at {first}"),
            ));
        }
    }
}

/// `checks.max_in_flight` when unset: far above what a replica runs at once in ordinary
/// operation (1,000 HTTP checks at 1 s have a handful in flight), low enough that a stall's
/// burst of due slots does not open a connection per check at once.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 256;

/// The highest `checks.max_in_flight` accepted: higher is no cap at all.
const MAX_IN_FLIGHT_LIMIT: u32 = 100_000;

/// `checks.max_in_flight`, validated (out of range is reported and the default used).
fn max_in_flight(raw: Option<u32>, v: &mut Validator<'_>) -> usize {
    let n = raw.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
    if !(1..=MAX_IN_FLIGHT_LIMIT).contains(&n) {
        v.error(
            "checks.max_in_flight",
            format!("must be between 1 and {MAX_IN_FLIGHT_LIMIT}; it is {n}"),
        );
        return DEFAULT_MAX_IN_FLIGHT as usize;
    }
    n as usize
}

/// Validates the entries of one kind's list: names, schedules, then the kind's own fields.
fn list<K: Check>(
    raws: &[K::Raw],
    defaults: &schedule::Defaults,
    names: &mut Names,
    v: &mut Validator<'_>,
) -> Vec<K> {
    raws.iter()
        .enumerate()
        .map(|(i, raw)| {
            let path = format!("checks.{}[{i}]", K::KEY);
            names.claim(&path, K::raw_name(raw));
            let schedule = defaults.resolve(v, &path, K::raw_schedule(raw));
            K::validate(raw, &path, schedule, v)
        })
        .collect()
}

/// Validates the checks section. Journeys listed in `checks.journeys` come back as
/// `(path, name)` to be checked once the journeys are loaded; `None`: no list, every journey
/// runs with the default schedule.
pub fn validate(
    doc: &YamlDoc,
    raw: RawChecks,
    dir: &Path,
    errors: &mut Vec<Diagnostic>,
) -> (Checks, Option<Vec<(String, String)>>) {
    let mut v = Validator {
        doc,
        dir,
        errors: Vec::new(),
    };
    let defaults = schedule::Defaults::parse(
        &mut v,
        &raw.interval,
        &raw.timeout,
        &raw.max_offset,
        &raw.retry_on_failure,
    );
    let mut names = Names::default();
    let journeys: Option<Vec<JourneyCheck>> = raw
        .journeys
        .as_ref()
        .map(|js| list(js, &defaults, &mut names, &mut v));
    let journey_refs = journeys.as_ref().map(|js| {
        js.iter()
            .enumerate()
            .map(|(i, j)| (format!("checks.journeys[{i}].name"), j.name.clone()))
            .collect()
    });
    let checks = Checks {
        defaults: defaults.resolve(&mut v, "checks", RawSchedule::default()),
        http_keep_alive: raw.http_keep_alive.unwrap_or(true),
        max_in_flight: max_in_flight(raw.max_in_flight, &mut v),
        journeys: journeys
            .into_iter()
            .flatten()
            .map(|j| (j.name, j.schedule))
            .collect(),
        http: list(&raw.http, &defaults, &mut names, &mut v),
        sql: list(&raw.sql, &defaults, &mut names, &mut v),
        tcp: list(&raw.tcp, &defaults, &mut names, &mut v),
        dns: list(&raw.dns, &defaults, &mut names, &mut v),
        tls: list(&raw.tls, &defaults, &mut names, &mut v),
    };
    errors.append(&mut v.errors);
    for (p, m) in names.duplicates {
        errors.push(doc.diag(&p, m));
    }
    for d in checks.defs() {
        if let Some(m) = schedule::overlap(d.name(), d.schedule()) {
            errors.push(doc.diag("checks", m));
        }
    }
    (checks, journey_refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Validates the `checks:` section written in `yaml`; returns the checks and the messages.
    fn checks(yaml: &str) -> (Checks, Vec<String>) {
        let text = format!("checks:\n{yaml}");
        let doc = YamlDoc::parse("synmon.yaml".into(), &text).expect("valid YAML");
        let raw: RawChecks = doc
            .deserialize_at(&doc.value["checks"], "checks")
            .expect("a checks section");
        let mut errors = Vec::new();
        let (checks, _) = validate(&doc, raw, Path::new("."), &mut errors);
        (checks, errors.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn a_timeout_longer_than_the_interval_is_refused_for_every_kind() {
        let cases = [
            (
                "tcp",
                "  tcp:\n    - {name: port, address: 'db:5432', interval: 10s, timeout: 11s}\n",
                "check `port`: timeout 11000 ms is longer than its interval 10000 ms",
            ),
            (
                "dns",
                "  dns:\n    - {name: resolve, host: localhost, interval: 5s, timeout: 6s}\n",
                "check `resolve`: timeout 6000 ms is longer than its interval 5000 ms",
            ),
            (
                "tls",
                "  tls:\n    - {name: cert, address: 'rvp:443', interval: 1s, timeout: 2s}\n",
                "check `cert`: timeout 2000 ms is longer than its interval 1000 ms",
            ),
            (
                "inherited default timeout",
                "  timeout: 30s\n  tcp:\n    - {name: port, address: 'db:5432', interval: 10s}\n",
                "check `port`: timeout 30000 ms is longer than its interval 10000 ms",
            ),
            (
                "http",
                "  http:\n    - {name: api, url: /health, interval: 1s, timeout: 3s}\n",
                "check `api`: timeout 3000 ms is longer than its interval 1000 ms",
            ),
        ];
        for (case, yaml, want) in cases {
            let (_, errors) = checks(yaml);
            assert_eq!(errors, [want.to_string()], "{case}");
        }
    }

    #[test]
    fn max_in_flight_defaults_to_256_and_refuses_zero_and_more_than_100000() {
        assert_eq!(checks("  http: []\n").0.max_in_flight, 256);
        let (c, errors) = checks("  max_in_flight: 3\n");
        assert_eq!((c.max_in_flight, errors), (3, vec![]));
        for n in [0, 100_001] {
            let (c, errors) = checks(&format!("  max_in_flight: {n}\n"));
            assert_eq!(
                errors,
                [format!("must be between 1 and 100000; it is {n}")],
                "{n}"
            );
            assert_eq!(c.max_in_flight, 256, "{n}");
        }
    }

    #[test]
    fn a_timeout_equal_to_the_interval_or_left_unset_is_accepted() {
        let (c, errors) = checks(
            "  tcp:\n    - {name: port, address: 'db:5432', interval: 10s, timeout: 10s}\n  \
             dns:\n    - {name: resolve, host: localhost, interval: 5s}\n",
        );
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(c.dns[0].schedule.timeout, Duration::from_secs(4));
    }

    #[test]
    fn every_kind_is_scheduled_once_in_the_order_of_the_lists() {
        let (c, errors) = checks(
            "  journeys: [{name: login}]\n  \
             http: [{name: api, url: /health}]\n  \
             sql: [{name: feed, metric: feed_push_success_rate, query: 'SELECT 1'}]\n  \
             tcp: [{name: port, address: 'db:5432'}]\n  \
             dns: [{name: resolve, host: localhost}]\n  \
             tls: [{name: cert, address: 'rvp:443'}]\n",
        );
        assert_eq!(errors, Vec::<String>::new());
        let defs: Vec<(CheckKind, String)> = c
            .defs()
            .iter()
            .map(|d| (d.kind(), d.name().to_string()))
            .collect();
        assert_eq!(
            defs,
            [
                (CheckKind::Journey, "login".to_string()),
                (CheckKind::Http, "api".into()),
                (CheckKind::Sql, "feed".into()),
                (CheckKind::Tcp, "port".into()),
                (CheckKind::Dns, "resolve".into()),
                (CheckKind::Tls, "cert".into()),
            ]
        );
    }

    #[test]
    fn a_name_is_unique_across_kinds() {
        let (_, errors) = checks(
            "  tcp: [{name: edge, address: 'rvp:443'}]\n  tls: [{name: edge, address: 'rvp:443'}]\n",
        );
        assert_eq!(
            errors,
            ["check name `edge` is already used at checks.tcp[0]".to_string()]
        );
    }
}
