//! The `checks:` section: what runs on a schedule (journeys, HTTP checks, SQL metrics, TCP and
//! DNS probes), how often, with which timeout and retries.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::diag::Diagnostic;
use super::duration::parse_duration;
use super::yaml::YamlDoc;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChecks {
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    /// Upper bound of the start offset drawn per check (never above the interval or 2 m).
    #[serde(default)]
    pub max_offset: Option<String>,
    #[serde(default)]
    pub retry_on_failure: Option<RawRetry>,
    /// Keep HTTP connections open between checks (default true); false opens a new connection
    /// per request, as blackbox_exporter does.
    #[serde(default)]
    pub http_keep_alive: Option<bool>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTlsCheck {
    pub name: String,
    /// host:port
    pub address: String,
    /// The name the certificate must be valid for (default: the host of `address`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM file of the CA to trust instead of the web roots (relative to the config's folder).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Fail when the certificate expires in fewer days (default 14).
    #[serde(default)]
    pub min_days: Option<f64>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub count: u32,
    #[serde(default)]
    pub delay: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJourneyCheck {
    pub name: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retry_on_failure: Option<RawRetry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpCheck {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub method: Option<String>,
    /// The RVP service it probes (auth, inventory, ...), the `service` label of error counts.
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    #[serde(default)]
    pub auth: Option<RawHttpAuth>,
    #[serde(default)]
    pub expect: Option<RawHttpCheckExpect>,
    /// A catalogued latency metric this check's latency also feeds (e.g. `swis_preview_p95_ms`).
    #[serde(default)]
    pub metric: Option<String>,
    /// Catalogued gauges read from the JSON response: metric name -> JSON pointer.
    #[serde(default)]
    pub gauges: BTreeMap<String, String>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retry_on_failure: Option<RawRetry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpAuth {
    /// A fixed bearer token (a secret: `${VAR}` or `file:`).
    #[serde(default)]
    pub bearer: Option<String>,
    /// Log in first and use the token from the response (never a token that expires).
    #[serde(default)]
    pub login: Option<RawLogin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogin {
    pub url: String,
    /// JSON pointer of the token in the login response.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpCheckExpect {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub max_latency: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSqlMetric {
    pub name: String,
    /// The catalogued gauge the query produces.
    pub metric: String,
    /// One query, or one per dialect (`postgres:`, `sqlite:`) so a config works on both.
    pub query: RawQuery,
    #[serde(default)]
    pub value_column: Option<String>,
    #[serde(default)]
    pub label_columns: Vec<String>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawQuery {
    One(String),
    PerDialect {
        #[serde(default)]
        postgres: Option<String>,
        #[serde(default)]
        sqlite: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcpCheck {
    pub name: String,
    /// host:port
    pub address: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDnsCheck {
    pub name: String,
    pub host: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
}

/// When and how a check runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub interval: Duration,
    pub timeout: Duration,
    /// Offsets are drawn in [0, max_offset).
    pub max_offset: Duration,
    pub retry: Option<Retry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub count: u32,
    pub delay: Duration,
}

#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub name: String,
    pub method: reqwest::Method,
    pub url: String,
    pub service: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub json: Option<serde_json::Value>,
    pub bearer: Option<super::Secret>,
    pub login: Option<Login>,
    pub expect_status: Option<u16>,
    pub expect_json: BTreeMap<String, serde_json::Value>,
    pub expect_headers: BTreeMap<String, String>,
    pub max_latency: Option<Duration>,
    pub metric: Option<String>,
    pub gauges: BTreeMap<String, String>,
    pub schedule: Schedule,
}

#[derive(Debug, Clone)]
pub struct Login {
    pub url: String,
    pub token_pointer: String,
}

#[derive(Debug, Clone)]
pub struct SqlMetric {
    pub name: String,
    pub metric: String,
    /// The query for each dialect the config provides (`postgres`, `sqlite`).
    pub queries: BTreeMap<&'static str, String>,
    pub value_column: Option<String>,
    pub label_columns: Vec<String>,
    pub schedule: Schedule,
}

#[derive(Debug, Clone)]
pub struct TcpCheck {
    pub name: String,
    pub address: String,
    pub schedule: Schedule,
}

#[derive(Debug, Clone)]
pub struct TlsCheck {
    pub name: String,
    pub address: String,
    pub server_name: Option<String>,
    pub ca_file: Option<std::path::PathBuf>,
    pub min_days: f64,
    pub schedule: Schedule,
}

#[derive(Debug, Clone)]
pub struct DnsCheck {
    pub name: String,
    pub host: String,
    pub schedule: Schedule,
}

#[derive(Debug, Clone)]
pub struct Checks {
    /// The schedule of a journey not listed in `checks.journeys`.
    pub defaults: Schedule,
    pub http_keep_alive: bool,
    /// Journey name -> schedule. Empty `journeys:` list means none; absent means all.
    pub journeys: BTreeMap<String, Schedule>,
    pub http: Vec<HttpCheck>,
    pub sql: Vec<SqlMetric>,
    pub tcp: Vec<TcpCheck>,
    pub dns: Vec<DnsCheck>,
    pub tls: Vec<TlsCheck>,
}

const MAX_OFFSET_CAP: Duration = Duration::from_secs(120);

/// Validates the checks section. `journey_names` are the loaded journeys (checked later, once
/// they are loaded, by the caller through `unknown_journeys`).
pub fn validate(
    doc: &YamlDoc,
    raw: RawChecks,
    dir: &std::path::Path,
    errors: &mut Vec<Diagnostic>,
) -> (Checks, Option<Vec<(String, String)>>) {
    let errs = std::cell::RefCell::new(Vec::new());
    let err = |p: &str, m: String| errs.borrow_mut().push(doc.diag(p, m));
    let dur = |p: &str, raw: &Option<String>| -> Option<Duration> {
        raw.as_ref().and_then(|s| match parse_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                err(p, e);
                None
            }
        })
    };
    let interval = dur("checks.interval", &raw.interval).unwrap_or(Duration::from_secs(60));
    let default_timeout = dur("checks.timeout", &raw.timeout);
    let max_offset = dur("checks.max_offset", &raw.max_offset).unwrap_or(MAX_OFFSET_CAP);
    let default_retry = raw.retry_on_failure.clone();

    let sched = |path: &str,
                 iv: &Option<String>,
                 to: &Option<String>,
                 retry: &Option<RawRetry>|
     -> Schedule {
        let interval = dur(&format!("{path}.interval"), iv).unwrap_or(interval);
        let timeout = dur(&format!("{path}.timeout"), to)
            .or(default_timeout)
            // Below the interval by default, so a run never runs into its next slot.
            .unwrap_or_else(|| interval.mul_f64(0.8));
        let retry = retry.as_ref().or(default_retry.as_ref()).map(|r| Retry {
            count: r.count,
            delay: r
                .delay
                .as_deref()
                .and_then(|d| parse_duration(d).ok())
                .unwrap_or(Duration::from_secs(5)),
        });
        Schedule {
            interval,
            timeout,
            max_offset: max_offset.min(interval).min(MAX_OFFSET_CAP),
            retry,
        }
    };

    let mut checks = Checks {
        defaults: sched("checks", &None, &None, &None),
        http_keep_alive: raw.http_keep_alive.unwrap_or(true),
        journeys: BTreeMap::new(),
        http: Vec::new(),
        sql: Vec::new(),
        tcp: Vec::new(),
        dns: Vec::new(),
        tls: Vec::new(),
    };
    let mut journey_refs = None;
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = |kind_path: String, name: &str, errs: &mut Vec<(String, String)>| {
        if let Some(first) = names.insert(name.to_string(), kind_path.clone()) {
            errs.push((
                format!("{kind_path}.name"),
                format!("check name `{name}` is already used at {first}"),
            ));
        }
    };
    let mut dup_errors = Vec::new();
    if let Some(js) = &raw.journeys {
        let mut refs = Vec::new();
        for (i, j) in js.iter().enumerate() {
            let p = format!("checks.journeys[{i}]");
            seen(p.clone(), &j.name, &mut dup_errors);
            let s = sched(&p, &j.interval, &j.timeout, &j.retry_on_failure);
            refs.push((format!("{p}.name"), j.name.clone()));
            checks.journeys.insert(j.name.clone(), s);
        }
        journey_refs = Some(refs);
    }
    for (i, h) in raw.http.iter().enumerate() {
        let p = format!("checks.http[{i}]");
        seen(p.clone(), &h.name, &mut dup_errors);
        let schedule = sched(&p, &h.interval, &h.timeout, &h.retry_on_failure);
        let method = super::parse_method(h.method.as_deref()).unwrap_or_else(|e| {
            err(&format!("{p}.method"), e);
            reqwest::Method::GET
        });
        if h.url.trim().is_empty() {
            err(&format!("{p}.url"), "must not be empty".into());
        }
        let expect = h.expect.as_ref();
        let mut bearer = None;
        let mut login = None;
        if let Some(a) = &h.auth {
            match (&a.bearer, &a.login) {
                (Some(b), None) => match super::env::resolve_secret(b, dir) {
                    Ok(v) if !v.is_empty() => bearer = Some(super::Secret::new(v)),
                    Ok(_) => {}
                    Err(e) => err(&format!("{p}.auth.bearer"), e),
                },
                (None, Some(l)) => {
                    login = Some(Login {
                        url: l.url.clone(),
                        token_pointer: l.token.clone().unwrap_or_else(|| "/token".into()),
                    })
                }
                _ => err(
                    &format!("{p}.auth"),
                    "give exactly one of `bearer` or `login`".into(),
                ),
            }
        }
        if let Some(m) = &h.metric
            && !catalog_has(m)
        {
            err(
                &format!("{p}.metric"),
                format!("`{m}` is not in synmon's metric catalog"),
            );
        }
        for (g, ptr) in &h.gauges {
            let gp = format!("{p}.gauges.{g}");
            if !catalog_has(g) {
                err(&gp, format!("`{g}` is not in synmon's metric catalog"));
            }
            if !ptr.starts_with('/') {
                err(
                    &gp,
                    format!("`{ptr}` is not a JSON pointer (write it like `/value`)"),
                );
            }
        }
        checks.http.push(HttpCheck {
            name: h.name.clone(),
            method,
            url: h.url.clone(),
            service: h.service.clone(),
            headers: h.headers.clone(),
            json: h.json.clone(),
            bearer,
            login,
            expect_status: expect.and_then(|e| e.status),
            expect_json: expect.map(|e| e.json.clone()).unwrap_or_default(),
            expect_headers: expect.map(|e| e.headers.clone()).unwrap_or_default(),
            max_latency: expect
                .and_then(|e| dur(&format!("{p}.expect.max_latency"), &e.max_latency)),
            metric: h.metric.clone(),
            gauges: h.gauges.clone(),
            schedule,
        });
    }
    for (i, s) in raw.sql.iter().enumerate() {
        let p = format!("checks.sql[{i}]");
        seen(p.clone(), &s.name, &mut dup_errors);
        let schedule = sched(&p, &s.interval, &s.timeout, &None);
        let mut queries = BTreeMap::new();
        match &s.query {
            RawQuery::One(q) => {
                queries.insert("postgres", q.clone());
                queries.insert("sqlite", q.clone());
            }
            RawQuery::PerDialect { postgres, sqlite } => {
                if let Some(q) = postgres {
                    queries.insert("postgres", q.clone());
                }
                if let Some(q) = sqlite {
                    queries.insert("sqlite", q.clone());
                }
            }
        }
        if queries.is_empty() || queries.values().any(|q| q.trim().is_empty()) {
            err(&format!("{p}.query"), "must not be empty".into());
        }
        if !catalog_has(&s.metric) {
            err(
                &format!("{p}.metric"),
                format!("`{}` is not in synmon's metric catalog", s.metric),
            );
        }
        checks.sql.push(SqlMetric {
            name: s.name.clone(),
            metric: s.metric.clone(),
            queries,
            value_column: s.value_column.clone(),
            label_columns: s.label_columns.clone(),
            schedule,
        });
    }
    for (i, t) in raw.tcp.iter().enumerate() {
        let p = format!("checks.tcp[{i}]");
        seen(p.clone(), &t.name, &mut dup_errors);
        if t.address
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .is_none()
        {
            err(
                &format!("{p}.address"),
                format!("`{}` is not host:port", t.address),
            );
        }
        checks.tcp.push(TcpCheck {
            name: t.name.clone(),
            address: t.address.clone(),
            schedule: sched(&p, &t.interval, &t.timeout, &None),
        });
    }
    for (i, d) in raw.dns.iter().enumerate() {
        let p = format!("checks.dns[{i}]");
        seen(p.clone(), &d.name, &mut dup_errors);
        if d.host.trim().is_empty() {
            err(&format!("{p}.host"), "must not be empty".into());
        }
        checks.dns.push(DnsCheck {
            name: d.name.clone(),
            host: d.host.clone(),
            schedule: sched(&p, &d.interval, &d.timeout, &None),
        });
    }
    for (i, t) in raw.tls.iter().enumerate() {
        let p = format!("checks.tls[{i}]");
        seen(p.clone(), &t.name, &mut dup_errors);
        if t.address
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .is_none()
        {
            err(
                &format!("{p}.address"),
                format!("`{}` is not host:port", t.address),
            );
        }
        let ca_file = t.ca_file.as_ref().map(|f| dir.join(f));
        if let Some(f) = &ca_file
            && !f.is_file()
        {
            err(
                &format!("{p}.ca_file"),
                format!("file {} does not exist", super::yaml::display_path(f)),
            );
        }
        let min_days = t.min_days.unwrap_or(14.0);
        if !(0.0..=3650.0).contains(&min_days) {
            err(
                &format!("{p}.min_days"),
                format!("{min_days} is out of range (0-3650)"),
            );
        }
        checks.tls.push(TlsCheck {
            name: t.name.clone(),
            address: t.address.clone(),
            server_name: t.server_name.clone(),
            ca_file,
            min_days,
            schedule: sched(&p, &t.interval, &t.timeout, &None),
        });
    }
    errors.append(&mut errs.into_inner());
    for (p, m) in dup_errors {
        errors.push(doc.diag(&p, m));
    }
    // Timeouts never exceed the interval: a check must not overlap itself by design.
    let all: Vec<(String, &Schedule)> = checks
        .journeys
        .iter()
        .map(|(n, s)| (n.clone(), s))
        .chain(checks.http.iter().map(|c| (c.name.clone(), &c.schedule)))
        .chain(checks.sql.iter().map(|c| (c.name.clone(), &c.schedule)))
        .collect();
    for (name, s) in all {
        if s.timeout > s.interval {
            errors.push(doc.diag(
                "checks",
                format!(
                    "check `{name}`: timeout {} ms is longer than its interval {} ms",
                    s.timeout.as_millis(),
                    s.interval.as_millis()
                ),
            ));
        }
    }
    (checks, journey_refs)
}

/// Whether the metric catalog knows `name`.
fn catalog_has(name: &str) -> bool {
    crate::metrics::catalog::lookup(name).is_some()
}
