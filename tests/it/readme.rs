//! The README's reference cannot drift from the code:
//! - the configuration, journey and alert references list, per section, exactly the keys the
//!   loader accepts. What it accepts is asked of the loader itself, the bad-config fixtures'
//!   way: a key nobody accepts, put in each section, is refused with "expected one of ...";
//! - every journey step key written as a map (`fill`, `http`, `http.expect`, ...) has its own
//!   section listing exactly the keys of the journey schema (`synmon schema journey`, derived
//!   from the loader's raw types), so a key the README promises and the loader refuses (or the
//!   other way round) fails here;
//! - the CLI reference names every subcommand clap knows;
//! - the metrics list names every metric of the catalog.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use synmon::settings::Config;

const PROBE: &str = "zz_readme_probe";

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// One section of the reference and how to put the probe key into it. `{P}` is the probe key;
/// `config` is the synmon.yaml (targets and credentials are added unless it has its own),
/// `journey` a journey file, `alerts` an alerts file.
struct Section {
    name: &'static str,
    config: &'static str,
    journey: &'static str,
    alerts: &'static str,
}

const fn cfg(name: &'static str, config: &'static str) -> Section {
    Section {
        name,
        config,
        journey: "",
        alerts: "",
    }
}

const fn step(name: &'static str, journey: &'static str) -> Section {
    Section {
        name,
        config: "",
        journey,
        alerts: "",
    }
}

const fn alert(name: &'static str, alerts: &'static str) -> Section {
    Section {
        name,
        config: "",
        journey: "",
        alerts,
    }
}

const SECTIONS: &[Section] = &[
    cfg("(top level)", "{P}: 1\n"),
    cfg(
        "targets.NAME",
        "targets: { staging: { base_url: 'http://127.0.0.1:1', {P}: 1 } }\ncredentials: { username: u, password: p }\n",
    ),
    cfg(
        "credentials",
        "targets: { staging: { base_url: 'http://127.0.0.1:1' } }\ncredentials: { username: u, password: p, {P}: 1 }\n",
    ),
    cfg("webdriver", "webdriver: { {P}: 1 }\n"),
    cfg("defaults", "defaults: { {P}: 1 }\n"),
    cfg("store", "store: { url: 'sqlite://x.db', {P}: 1 }\n"),
    cfg("cluster", "cluster: { {P}: 1s }\n"),
    cfg("database", "database: { url: 'sqlite://x.db', {P}: 1 }\n"),
    cfg("server", "server: { {P}: 1 }\n"),
    cfg("exporters", "exporters: { {P}: 1 }\n"),
    cfg(
        "exporters.dogstatsd",
        "exporters: { dogstatsd: { address: '', {P}: 1 } }\n",
    ),
    cfg(
        "exporters.otlp",
        "exporters: { otlp: { endpoint: '', {P}: 1 } }\n",
    ),
    cfg("tracing", "tracing: { {P}: 1 }\n"),
    cfg("datadog", "datadog: { {P}: 1 }\n"),
    cfg("checks", "checks: { {P}: 1 }\n"),
    cfg(
        "checks.retry_on_failure",
        "checks: { retry_on_failure: { count: 1, {P}: 1 } }\n",
    ),
    cfg(
        "checks.journeys[]",
        "checks: { journeys: [ { name: smoke, {P}: 1 } ] }\n",
    ),
    cfg(
        "checks.http[]",
        "checks: { http: [ { name: h, url: /, {P}: 1 } ] }\n",
    ),
    cfg(
        "checks.http[].auth",
        "checks: { http: [ { name: h, url: /, auth: { {P}: 1 } } ] }\n",
    ),
    cfg(
        "checks.http[].auth.login",
        "checks: { http: [ { name: h, url: /, auth: { login: { url: /l, {P}: 1 } } } ] }\n",
    ),
    cfg(
        "checks.http[].expect",
        "checks: { http: [ { name: h, url: /, expect: { {P}: 1 } } ] }\n",
    ),
    cfg(
        "checks.sql[]",
        "database: { url: 'sqlite://x.db' }\nchecks: { sql: [ { name: s, metric: feed_push_queue_depth, query: 'SELECT 1 AS value', {P}: 1 } ] }\n",
    ),
    cfg(
        "checks.tcp[]",
        "checks: { tcp: [ { name: t, address: '127.0.0.1:1', {P}: 1 } ] }\n",
    ),
    cfg(
        "checks.dns[]",
        "checks: { dns: [ { name: d, host: localhost, {P}: 1 } ] }\n",
    ),
    cfg(
        "checks.tls[]",
        "checks: { tls: [ { name: t, address: '127.0.0.1:1', {P}: 1 } ] }\n",
    ),
    cfg(
        "receivers[] type: console",
        "receivers: [ { name: c, type: console, {P}: 1 } ]\n",
    ),
    cfg(
        "receivers[] type: slack",
        "receivers: [ { name: c, type: slack, token: x, channel: '#a', {P}: 1 } ]\n",
    ),
    cfg(
        "receivers[] type: pagerduty",
        "receivers: [ { name: c, type: pagerduty, routing_key: x, {P}: 1 } ]\n",
    ),
    cfg(
        "receivers[] type: webhook",
        "receivers: [ { name: c, type: webhook, url: 'http://127.0.0.1:1/', {P}: 1 } ]\n",
    ),
    cfg("route", "route: { receiver: console, {P}: 1 }\n"),
    cfg("flags", "flags: { {P}: 1 }\n"),
    step("journey", "name: smoke\n{P}: 1\nsteps:\n  - goto: /\n"),
    step("step", "name: smoke\nsteps:\n  - goto: /\n    {P}: 1\n"),
    step(
        "until",
        "name: smoke\nsteps:\n  - click: a\n    until: { selector: b, {P}: 1 }\n",
    ),
    alert(
        "rules[]",
        "rules:\n  - alert: a\n    metric: synmon.check.latency\n    {P}: 1\n",
    ),
    alert(
        "slos[]",
        "slos:\n  - name: s\n    objective: 99\n    {P}: 1\n",
    ),
];

/// The keys the loader accepts in `s`, read from its refusal of the probe key.
fn accepted(s: &Section) -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let journeys = dir.path().join("journeys");
    let alerts = dir.path().join("alerts");
    std::fs::create_dir(&journeys).unwrap();
    std::fs::create_dir(&alerts).unwrap();
    let journey = if s.journey.is_empty() {
        "name: smoke\nsteps:\n  - goto: /\n"
    } else {
        s.journey
    };
    std::fs::write(journeys.join("smoke.yaml"), journey.replace("{P}", PROBE)).unwrap();
    if !s.alerts.is_empty() {
        std::fs::write(alerts.join("probe.yaml"), s.alerts.replace("{P}", PROBE)).unwrap();
    }
    let mut text = String::from("tenant: t\njourneys: journeys\nalerts: alerts\n");
    if !s.config.contains("targets:") {
        text.push_str("targets: { staging: { base_url: 'http://127.0.0.1:1' } }\n");
        text.push_str("credentials: { username: u, password: p }\n");
    }
    text.push_str(&s.config.replace("{P}", PROBE));
    let file = dir.path().join("synmon.yaml");
    std::fs::write(&file, &text).unwrap();
    let errors = match Config::load(&file) {
        Ok(_) => panic!("{}: the probe key was accepted:\n{text}", s.name),
        Err(e) => e.0.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
    };
    let line = errors
        .iter()
        .find(|l| l.contains(&format!("unknown field `{PROBE}`")))
        .unwrap_or_else(|| panic!("{}: no unknown-field error in {errors:#?}", s.name));
    let Some((_, list)) = line.split_once(", expected ") else {
        return BTreeSet::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The keys the README's reference lists per section: a heading line `#### `section`` opens
/// a section, and its table rows start with `| `key``.
fn documented(readme: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        if let Some(h) = line.strip_prefix("#### ") {
            current = h
                .strip_prefix('`')
                .and_then(|h| h.split_once('`'))
                .map(|(name, _)| name.to_string());
            if let Some(c) = &current {
                out.entry(c.clone()).or_default();
            }
            continue;
        }
        if line.starts_with("## ") || line.starts_with("### ") {
            current = None;
            continue;
        }
        if let (Some(c), Some(row)) = (&current, line.strip_prefix("| `")) {
            let key = row.split('`').next().unwrap_or_default();
            out.get_mut(c).unwrap().insert(key.to_string());
        }
    }
    out
}

/// The map schemas (those with `properties`) `schema` stands for: itself, what it `$ref`s, and
/// the alternatives of `anyOf`/`oneOf`/`allOf` (an `Option`, or a key that is a string or a
/// map). A definition already on the path (`poll.step` is a step again) is not entered.
fn objects<'a>(
    defs: &'a serde_json::Value,
    schema: &'a serde_json::Value,
    path: &mut Vec<String>,
    out: &mut Vec<(&'a serde_json::Value, Option<String>)>,
) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/definitions/").to_string();
        let def = &defs[&name];
        if path.contains(&name) {
            return;
        }
        if def["properties"].is_object() {
            out.push((def, Some(name)));
        } else {
            // A string (`Duration`) or a choice of shapes: whatever maps it offers.
            objects(defs, def, path, out);
        }
        return;
    }
    for alt in ["anyOf", "oneOf", "allOf"] {
        for s in schema[alt].as_array().into_iter().flatten() {
            objects(defs, s, path, out);
        }
    }
    if schema["properties"].is_object() {
        out.push((schema, None));
    }
}

/// Every journey or step key whose value is a map, and the maps within it, as the README names
/// their sections (`fill`, `http.expect`), with their keys: from the journey schema. (The
/// journey's and a step's own keys are asked of the loader: `SECTIONS`.)
fn step_maps() -> BTreeMap<String, BTreeSet<String>> {
    let schema = synmon::schema::schema(synmon::schema::FileKind::Journey).to_value();
    let defs = &schema["definitions"];
    let mut out = BTreeMap::new();
    // The journey's own maps (`steps` is a list: its items are the step, walked below).
    walk(defs, &schema, "", &mut Vec::new(), &mut out);
    let mut path = vec!["RawStep".to_string()];
    walk(defs, &defs["RawStep"], "", &mut path, &mut out);
    out
}

fn walk(
    defs: &serde_json::Value,
    object: &serde_json::Value,
    prefix: &str,
    path: &mut Vec<String>,
    out: &mut BTreeMap<String, BTreeSet<String>>,
) {
    let Some(props) = object["properties"].as_object() else {
        return;
    };
    for (key, sub) in props {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let mut found = Vec::new();
        objects(defs, sub, path, &mut found);
        for (o, def) in found {
            let keys = o["properties"].as_object().into_iter().flatten();
            out.entry(name.clone())
                .or_default()
                .extend(keys.map(|(k, _)| k.clone()));
            path.extend(def.clone());
            walk(defs, o, &name, path, out);
            if def.is_some() {
                path.pop();
            }
        }
    }
}

#[test]
fn readme_reference_lists_exactly_the_keys_the_loader_accepts() {
    let docs = documented(&readme());
    let mut problems = Vec::new();
    for s in SECTIONS {
        let want = accepted(s);
        match docs.get(s.name) {
            None => problems.push(format!(
                "README has no `#### `{}`` section; the loader accepts: {}",
                s.name,
                want.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
            Some(have) if *have != want => problems.push(format!(
                "`{}`: missing from the README: {:?}; in the README but not accepted: {:?}",
                s.name,
                want.difference(have).collect::<Vec<_>>(),
                have.difference(&want).collect::<Vec<_>>()
            )),
            Some(_) => {}
        }
    }
    let maps = step_maps();
    for (name, want) in &maps {
        match docs.get(name) {
            None => problems.push(format!(
                "README has no `#### `{name}`` section; the journey schema has: {}",
                want.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
            Some(have) if have != want => problems.push(format!(
                "`{name}`: missing from the README: {:?}; in the README but not in the journey schema: {:?}",
                want.difference(have).collect::<Vec<_>>(),
                have.difference(want).collect::<Vec<_>>()
            )),
            Some(_) => {}
        }
    }
    for name in docs.keys() {
        if !SECTIONS.iter().any(|s| s.name == name) && !maps.contains_key(name) {
            problems.push(format!(
                "README section `{name}` is not checked: add it to SECTIONS"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every subcommand (and sub-subcommand) clap knows, as `synmon a b`.
fn subcommands() -> Vec<String> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    let cli = synmon::cli::Cli::command();
    for c in cli.get_subcommands() {
        let subs: Vec<_> = c.get_subcommands().collect();
        if subs.is_empty() {
            out.push(format!("synmon {}", c.get_name()));
        }
        for s in subs {
            out.push(format!("synmon {} {}", c.get_name(), s.get_name()));
        }
    }
    out
}

#[test]
fn readme_cli_reference_names_every_subcommand() {
    let text = readme();
    let cli = text
        .split_once("## CLI reference")
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or_default())
        .expect("README has a `## CLI reference` section");
    let missing: Vec<String> = subcommands()
        .into_iter()
        .filter(|c| !cli.contains(&format!("`{c}")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the README's CLI reference: {missing:?}"
    );
    assert!(subcommands().contains(&"synmon demo".to_string()));
}

#[test]
fn readme_metrics_list_names_every_catalog_metric() {
    let text = readme();
    let list = text
        .split_once("## Metrics")
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or_default())
        .expect("README has a `## Metrics` section");
    let missing: Vec<String> = synmon::metrics::catalog::CATALOG
        .iter()
        .filter(|m| {
            !list.contains(&format!("`{}`", m.name))
                || !list.contains(&format!("`{}`", m.prom_name))
        })
        .map(|m| {
            format!(
                "| `{}` | `{}` | {:?} | {:?} | {} | {} |",
                m.name,
                m.prom_name,
                m.kind,
                m.unit,
                m.labels.join(", "),
                m.help
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "catalog metrics missing from the README's metrics list:\n{}",
        missing.join("\n")
    );
}
