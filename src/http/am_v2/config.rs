//! synmon's routing as an Alertmanager configuration, for `config.original` in
//! `/api/v2/status`: Grafana reads it to show the notification policies, `amtool config show`
//! prints it. Receivers appear by name only (their URLs, tokens and keys are secrets and stay
//! out); inhibition lists the config's and the rules' rules (their `hold` has no Alertmanager
//! counterpart and is left out).

use std::time::Duration;

use serde::Serialize;

use crate::notify::route::{GroupBy, Route};
use crate::rules::model::{MatchOp, Matcher, Matchers};
use crate::settings::Config;

#[derive(Serialize)]
struct AmConfig {
    route: AmRoute,
    receivers: Vec<AmReceiver>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    inhibit_rules: Vec<AmInhibit>,
}

#[derive(Serialize)]
struct AmRoute {
    receiver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    matchers: Vec<String>,
    group_by: Vec<String>,
    group_wait: String,
    group_interval: String,
    repeat_interval: String,
    #[serde(rename = "continue", skip_serializing_if = "std::ops::Not::not")]
    continue_matching: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<AmRoute>,
}

#[derive(Serialize)]
struct AmReceiver {
    name: String,
}

#[derive(Serialize)]
struct AmInhibit {
    source_matchers: Vec<String>,
    target_matchers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    equal: Vec<String>,
}

/// One matcher in Alertmanager's syntax: `label="value"`, `label=~"regex"`, the value quoted
/// as a JSON string (the same escapes as Go's for what labels hold).
pub(super) fn matcher_string(m: &Matcher) -> String {
    let op = match m.op {
        MatchOp::Eq => "=",
        MatchOp::Ne => "!=",
        MatchOp::Re => "=~",
        MatchOp::NotRe => "!~",
    };
    let value = serde_json::to_string(&m.value).unwrap_or_else(|_| "\"\"".into());
    format!("{}{op}{value}", m.label)
}

fn matcher_strings(m: &Matchers) -> Vec<String> {
    m.0.iter().map(matcher_string).collect()
}

/// A duration as Prometheus writes one: `30s`, `1m30s`, `4h`, `1d`, `0s`.
fn duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

fn route(r: &Route) -> AmRoute {
    AmRoute {
        receiver: r.receiver.clone(),
        matchers: matcher_strings(&r.matchers),
        group_by: match &r.group_by {
            GroupBy::All => vec!["...".into()],
            GroupBy::Labels(l) => l.clone(),
        },
        group_wait: duration(r.group_wait),
        group_interval: duration(r.group_interval),
        repeat_interval: duration(r.repeat_interval),
        continue_matching: r.continue_matching,
        routes: r.routes.iter().map(route).collect(),
    }
}

/// The config in force as Alertmanager YAML.
pub(super) fn alertmanager_yaml(cfg: &Config) -> String {
    let am = AmConfig {
        route: route(&cfg.notify.route),
        receivers: cfg
            .notify
            .receivers
            .iter()
            .map(|r| AmReceiver {
                name: r.name().to_string(),
            })
            .collect(),
        inhibit_rules: crate::mute::inhibit_rules(&cfg.mute, &cfg.rules)
            .iter()
            .map(|r| AmInhibit {
                source_matchers: matcher_strings(&r.source),
                target_matchers: matcher_strings(&r.target),
                equal: r.equal.clone(),
            })
            .collect(),
    };
    yaml_serde::to_string(&am).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_prometheus_writes_them() {
        let cases = [
            (0, "0s"),
            (30_000, "30s"),
            (90_000, "1m30s"),
            (4 * 3_600_000, "4h"),
            (86_400_000 + 500, "1d500ms"),
        ];
        for (ms, want) in cases {
            assert_eq!(duration(Duration::from_millis(ms)), want);
        }
    }

    #[test]
    fn matchers_in_alertmanager_syntax() {
        let m = |l: &str, raw: &str| matcher_string(&Matcher::parse(l, raw).unwrap());
        assert_eq!(m("route", "page"), r#"route="page""#);
        assert_eq!(m("check", "=~align_.*"), r#"check=~"align_.*""#);
        assert_eq!(m("a", "!=x\"y"), r#"a!="x\"y""#);
        assert_eq!(m("a", "!~b\\d"), r#"a!~"b\\d""#);
    }
}
