//! The tracing sections of the config: `exporters.otlp` (where runs are exported), `tracing`
//! (where a person looks at a trace) and each target's `trace_origins` (who else may receive
//! the trace headers). Raw as written, then validated here; every problem goes to `err` with
//! its key path, and a usable value comes back so that loading reports everything at once.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{Secret, env};

/// `exporters.otlp` as written.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOtlp {
    /// The collector's OTLP/HTTP base URL (`http://otel-collector:4318`); runs are posted to
    /// `<endpoint>/v1/traces`. Empty or absent: no export.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Headers sent with every export (API keys): secrets, `${VAR}` or `file:...`.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, crate::config::schema::SecretText>")]
    pub headers: BTreeMap<String, String>,
}

/// `tracing` as written.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    /// A trace's page in the tracing UI, with `{trace_id}` where the id goes
    /// (`https://tempo.example/trace/{trace_id}`).
    #[serde(default)]
    pub ui_url: Option<String>,
}

/// Where runs are exported as traces.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The full URL spans are posted to (ends with `/v1/traces`).
    pub endpoint: reqwest::Url,
    /// Header name (lowercase) and value; the values are secrets.
    pub headers: Vec<(String, Secret)>,
}

impl OtlpConfig {
    /// The header values, for the config's redactor.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.headers.iter().map(|(_, v)| v)
    }
}

/// The `tracing` section, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TracingConfig {
    /// A trace's page, with `{trace_id}` where the id goes; `None`: ids are shown as text.
    pub ui_url: Option<String>,
}

impl TracingConfig {
    /// The page of trace `trace_id` in the tracing UI, when one is configured.
    pub fn trace_url(&self, trace_id: &str) -> Option<String> {
        trace_url(self.ui_url.as_deref(), trace_id)
    }
}

/// What `{trace_id}` in a `tracing.ui_url` is replaced with.
pub const TRACE_ID_PLACEHOLDER: &str = "{trace_id}";

/// `ui_url` with the trace id in place, when there is a `ui_url`.
pub fn trace_url(ui_url: Option<&str>, trace_id: &str) -> Option<String> {
    ui_url.map(|u| u.replace(TRACE_ID_PLACEHOLDER, trace_id))
}

/// The OTLP/HTTP path of traces, appended to an endpoint that does not end with it already.
const TRACES_PATH: &str = "v1/traces";

/// Validates `exporters.otlp`; `None` when it is absent or its endpoint empty (export off).
pub fn validate_otlp(
    raw: Option<&RawOtlp>,
    dir: &std::path::Path,
    err: &mut dyn FnMut(&str, String),
) -> Option<OtlpConfig> {
    let raw = raw?;
    let written = raw.endpoint.as_deref().map(str::trim).unwrap_or_default();
    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        let p = format!("exporters.otlp.headers.{name}");
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            err(&p, format!("`{name}` is not an HTTP header name"));
            continue;
        }
        match env::resolve_secret(value, dir) {
            // The value is a secret: the message never quotes it.
            Ok(v) if http::HeaderValue::from_str(&v).is_err() => err(
                &p,
                "is not a valid header value (control characters or non-ASCII)".into(),
            ),
            Ok(v) => headers.push((name.to_ascii_lowercase(), Secret::new(v))),
            Err(e) => err(&p, e),
        }
    }
    if written.is_empty() {
        if !raw.headers.is_empty() {
            err(
                "exporters.otlp.endpoint",
                "is needed when `headers` are given (or remove the section)".into(),
            );
        }
        return None;
    }
    let endpoint = match reqwest::Url::parse(written) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            err(
                "exporters.otlp.endpoint",
                format!(
                    "`{written}` must be an http(s) URL with a host (the collector's OTLP/HTTP address, e.g. http://otel-collector:4318)"
                ),
            );
            return None;
        }
    };
    if !endpoint.username().is_empty() || endpoint.password().is_some() {
        // The endpoint is logged; credentials belong in `headers`, which are secrets.
        err(
            "exporters.otlp.endpoint",
            "must not carry credentials (`user:password@`): put them in `headers` (e.g. `authorization`), which are kept secret".into(),
        );
        return None;
    }
    if endpoint.query().is_some() || endpoint.fragment().is_some() {
        err(
            "exporters.otlp.endpoint",
            format!("`{written}` must not have a query or a fragment"),
        );
        return None;
    }
    let endpoint = if endpoint.path().trim_end_matches('/').ends_with(TRACES_PATH) {
        endpoint
    } else {
        let base = format!("{}/", endpoint.as_str().trim_end_matches('/'));
        reqwest::Url::parse(&base)
            .and_then(|b| b.join(TRACES_PATH))
            .expect("a valid base URL joins a relative path")
    };
    Some(OtlpConfig { endpoint, headers })
}

/// Validates `tracing`.
pub fn validate_tracing(
    raw: Option<&RawTracing>,
    err: &mut dyn FnMut(&str, String),
) -> TracingConfig {
    let ui_url = raw
        .and_then(|r| r.ui_url.as_deref())
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let Some(u) = ui_url else {
        return TracingConfig::default();
    };
    if !u.contains(TRACE_ID_PLACEHOLDER) {
        err(
            "tracing.ui_url",
            format!(
                "`{u}` must contain `{TRACE_ID_PLACEHOLDER}` where the trace id goes (e.g. https://tempo.example/trace/{TRACE_ID_PLACEHOLDER})"
            ),
        );
        return TracingConfig::default();
    }
    let sample = u.replace(TRACE_ID_PLACEHOLDER, "0af7651916cd43dd8448eb211c80319c");
    match reqwest::Url::parse(&sample) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => TracingConfig {
            ui_url: Some(u.to_string()),
        },
        _ => {
            err(
                "tracing.ui_url",
                format!("`{u}` must be an http(s) URL with a host"),
            );
            TracingConfig::default()
        }
    }
}

/// Validates a target's `trace_origins` (written at `path`): each an origin,
/// `scheme://host[:port]`, nothing after it.
pub fn validate_origins(
    raw: &[String],
    path: &str,
    err: &mut dyn FnMut(&str, String),
) -> Vec<url::Origin> {
    let mut out = Vec::new();
    for (i, o) in raw.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let parsed = reqwest::Url::parse(o.trim()).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.path() == "/"
                && u.query().is_none()
                && u.fragment().is_none()
                && u.username().is_empty()
                && u.password().is_none()
        });
        match parsed {
            Some(u) => {
                let origin = u.origin();
                if !out.contains(&origin) {
                    out.push(origin);
                }
            }
            None => err(
                &p,
                format!(
                    "`{o}` is not an origin: write it as scheme://host[:port] (e.g. https://api.example.com), without a path"
                ),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn otlp(yaml: &str) -> (Option<OtlpConfig>, Vec<String>) {
        let raw: RawOtlp = yaml_serde::from_str(yaml).unwrap();
        let mut errs = Vec::new();
        let c = validate_otlp(Some(&raw), std::path::Path::new("."), &mut |p, m| {
            errs.push(format!("{p}: {m}"))
        });
        (c, errs)
    }

    #[test]
    fn the_endpoint_gets_the_traces_path_once() {
        for (written, want) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otlp.example/prefix",
                "https://otlp.example/prefix/v1/traces",
            ),
            (
                "http://collector:4318/v1/traces",
                "http://collector:4318/v1/traces",
            ),
        ] {
            let (c, errs) = otlp(&format!("{{endpoint: '{written}'}}"));
            assert!(errs.is_empty(), "{errs:?}");
            assert_eq!(c.unwrap().endpoint.as_str(), want, "{written}");
        }
        assert!(otlp("{endpoint: ''}").0.is_none(), "empty: off");
    }

    #[test]
    fn refusals_name_the_key_and_never_quote_a_header_value() {
        let (c, errs) = otlp(
            "{endpoint: 'ftp://x', headers: {'bad name': v, x-token: \"secret\\u0007value\"}}",
        );
        assert!(c.is_none());
        assert_eq!(
            errs,
            [
                "exporters.otlp.headers.bad name: `bad name` is not an HTTP header name",
                "exporters.otlp.headers.x-token: is not a valid header value (control characters or non-ASCII)",
                "exporters.otlp.endpoint: `ftp://x` must be an http(s) URL with a host (the collector's OTLP/HTTP address, e.g. http://otel-collector:4318)",
            ]
        );
        let (c, errs) = otlp("{endpoint: 'https://u:hunter22@collector:4318'}");
        assert!(c.is_none());
        assert!(!errs[0].contains("hunter22"), "{errs:?}");
        assert!(errs[0].contains("must not carry credentials"), "{errs:?}");
        let (_, errs) = otlp("{headers: {api-key: k}}");
        assert_eq!(
            errs,
            ["exporters.otlp.endpoint: is needed when `headers` are given (or remove the section)"]
        );
    }

    #[test]
    fn header_values_are_secrets() {
        let (c, errs) =
            otlp("{endpoint: 'http://c:4318', headers: {Authorization: 'Bearer abcdef'}}");
        assert!(errs.is_empty(), "{errs:?}");
        let c = c.unwrap();
        assert_eq!(c.headers[0].0, "authorization");
        assert_eq!(c.headers[0].1.expose(), "Bearer abcdef");
        assert!(!format!("{c:?}").contains("abcdef"));
    }

    #[test]
    fn ui_url_needs_the_placeholder() {
        let mut errs = Vec::new();
        let ok = validate_tracing(
            Some(&RawTracing {
                ui_url: Some("https://tempo.example/trace/{trace_id}".into()),
            }),
            &mut |p, m| errs.push(format!("{p}: {m}")),
        );
        assert!(errs.is_empty());
        assert_eq!(
            ok.trace_url("abc").as_deref(),
            Some("https://tempo.example/trace/abc")
        );
        let bad = validate_tracing(
            Some(&RawTracing {
                ui_url: Some("https://tempo.example/trace/".into()),
            }),
            &mut |p, m| errs.push(format!("{p}: {m}")),
        );
        assert_eq!(bad, TracingConfig::default());
        assert!(
            errs[0].starts_with(
                "tracing.ui_url: `https://tempo.example/trace/` must contain `{trace_id}`"
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        let mut errs = Vec::new();
        let got = validate_origins(
            &[
                "https://api.rvp.test".into(),
                "http://127.0.0.1:3001/".into(),
                "https://api.rvp.test:443".into(),
                "https://cdn.example/lib".into(),
                "api.rvp.test".into(),
            ],
            "targets.staging.trace_origins",
            &mut |p, m| errs.push(format!("{p}: {m}")),
        );
        assert_eq!(got.len(), 2, "the default port is the same origin");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with(
            "targets.staging.trace_origins[3]: `https://cdn.example/lib` is not an origin"
        ));
        assert!(errs[1].starts_with("targets.staging.trace_origins[4]:"));
    }
}
