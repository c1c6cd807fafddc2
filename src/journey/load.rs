//! Journey files -> validated `Journey`s, collecting every error with file, line and field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use yaml_serde::Value;

use super::model::*;
use super::raw::*;
use crate::config::diag::Diagnostic;
use crate::config::duration::{Bound, MINUTE};
use crate::config::span::{join_index, join_key};
use crate::config::yaml::{LoadError, YamlDoc};
use crate::template::{BUILTIN_VARS, Template};

/// What journey validation needs to know about the main config.
#[derive(Debug, Clone)]
pub struct LoadContext {
    pub variables: BTreeSet<String>,
    pub step_timeout: Duration,
    pub navigation_timeout: Duration,
    pub has_database: bool,
    /// The config sets `tenant:` (else `{tenant}` is unknown in journeys).
    pub has_tenant: bool,
    /// The config sets `credentials:` (else `{username}` and `{password}` are unknown).
    pub has_credentials: bool,
}

const ACTIONS: &str = "goto, click, fill, select, press, wait_for, assert_text, assert_url, screenshot, http, sql, poll, use, capture, script, hover, upload, frame, switch_to, set_cookie, set_storage, clear_cookies, assert, wait_for_request";

/// The built-in variables that exist only when the config sets what they come from.
const IDENTITY_VARS: &[(&str, &str)] = &[
    ("tenant", "tenant"),
    ("username", "credentials"),
    ("password", "credentials"),
];
/// A step, or a poll's whole deadline, past 10 minutes is a hung page, not a slow one. The
/// config's `defaults.step_timeout` has the same bound.
pub const STEP_TIMEOUT: Bound = Bound::positive("step timeout", MINUTE.saturating_mul(10));
const POLL_TIMEOUT: Bound = Bound::positive("poll timeout", MINUTE.saturating_mul(10));
/// Polled at most every 10 minutes; `every` must also be shorter than the poll's `timeout`.
const POLL_EVERY: Bound = Bound::positive("poll interval", MINUTE.saturating_mul(10));

/// What a journey file holds, said when one is empty.
const JOURNEY: &str =
    "a journey: a YAML map with `steps:` (and optionally `name:`, `description:`)";
/// What a file pulled in with `use:` holds, said when one is empty.
const SHARED_STEPS: &str = "shared steps for `use:`: a YAML map with `steps:`";

/// The journey files of a folder: every `*.yaml`/`*.yml` in it whose name does not start with
/// `_` (those are shared step files, pulled in with `use:`), sorted by name.
pub fn journey_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (name.ends_with(".yaml") || name.ends_with(".yml")) && !name.starts_with('_')
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every journey file of `dir` (see [`journey_files`]).
pub fn load_dir(dir: &Path, ctx: &LoadContext) -> (Vec<Journey>, Vec<Diagnostic>) {
    let mut journeys = Vec::new();
    let mut errors = Vec::new();
    let files = match journey_files(dir) {
        Ok(f) => f,
        Err(e) => {
            errors.push(Diagnostic {
                file: crate::config::yaml::display_path(dir),
                pos: None,
                path: String::new(),
                message: format!("cannot read journeys folder: {e}"),
            });
            return (journeys, errors);
        }
    };
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for f in files {
        match load_file(&f, ctx) {
            Ok(j) => {
                if let Some(first) = seen.insert(j.name.clone(), j.file.clone()) {
                    let message = format!("journey name `{}` is already used by {first}", j.name);
                    // The file was read fine a moment ago; read it again for the position.
                    errors.push(match YamlDoc::read(&f) {
                        Ok(doc) => doc.diag("name", message),
                        Err(_) => Diagnostic {
                            file: j.file.clone(),
                            pos: None,
                            path: "name".into(),
                            message,
                        },
                    });
                } else {
                    journeys.push(j);
                }
            }
            Err(e) => {
                // A shared file used by several journeys reports its own errors once.
                for d in e {
                    if !errors.contains(&d) {
                        errors.push(d);
                    }
                }
            }
        }
    }
    (journeys, errors)
}

pub fn load_file(path: &Path, ctx: &LoadContext) -> Result<Journey, Vec<Diagnostic>> {
    let doc = YamlDoc::read_expecting(path, JOURNEY).map_err(|d| vec![d])?;
    let raw: RawJourney = doc.deserialize_at(&doc.value, "").map_err(|d| vec![d])?;
    let mut errors = Vec::new();
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("journey")
        .to_string();
    let name = raw.name.clone().unwrap_or(stem);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        errors.push(doc.diag(
            "name",
            format!("journey name `{name}` must be lowercase letters, digits, `_` or `-`"),
        ));
    }
    let mut scope: BTreeSet<String> = BUILTIN_VARS.iter().map(|s| s.to_string()).collect();
    for (var, key) in IDENTITY_VARS {
        let set = if *key == "tenant" {
            ctx.has_tenant
        } else {
            ctx.has_credentials
        };
        if !set {
            scope.remove(*var);
        }
    }
    scope.extend(ctx.variables.iter().cloned());
    let mut steps = Vec::new();
    let mut stack = vec![path.canonicalize().unwrap_or_else(|_| path.to_path_buf())];
    // A first step `use`d with `reuse_session` is loaded apart: its steps are the login.
    let login = raw
        .steps
        .first()
        .and_then(|v| doc.deserialize_at::<RawStep>(v, "steps[0]").ok())
        .and_then(|r| Some((r.use_file?, r.reuse_session?)));
    let split = usize::from(login.is_some());
    steps_of(
        &doc,
        &raw.steps[..split],
        "steps",
        0,
        ctx,
        &mut scope,
        &mut stack,
        &mut steps,
        &mut errors,
    );
    let reuse_session =
        login.and_then(|(file, age)| session_reuse(&doc, &file, &age, &stack, &steps, &mut errors));
    steps_of(
        &doc,
        &raw.steps[split..],
        "steps",
        split,
        ctx,
        &mut scope,
        &mut stack,
        &mut steps,
        &mut errors,
    );
    if raw.steps.is_empty() {
        errors.push(doc.diag("steps", "a journey needs at least one step"));
    }
    if reuse_session
        .as_ref()
        .is_some_and(|r| r.steps == steps.len())
    {
        errors.push(doc.diag(
            "steps[0].reuse_session",
            "no step follows the login: a run that reuses it would run nothing",
        ));
    }
    let emulation = emulation_of(&doc, &raw, &mut errors);
    if emulation.is_some() && !steps.iter().any(|s| s.action.needs_browser()) {
        errors.push(doc.diag(
            "steps",
            "`viewport`, `device` and `network` set up a browser, and no step of this journey uses one",
        ));
    }
    if errors.is_empty() {
        Ok(Journey {
            name,
            file: doc.file.clone(),
            description: raw.description,
            emulation,
            steps,
            reuse_session,
        })
    } else {
        Err(errors)
    }
}

/// How long a captured login may stand in for a journey's login steps, at most.
const SESSION_REUSE: Bound = Bound::positive("reuse_session", MINUTE.saturating_mul(24 * 60));

/// The first step's `reuse_session`, validated against the steps its `use` loaded (`steps`,
/// all of the journey's so far): they must not set a variable, since a run that skips them
/// would not have it, nor count toward the SLO latency, which would then differ between runs
/// that log in and runs that do not.
fn session_reuse(
    doc: &YamlDoc,
    file: &str,
    age: &str,
    stack: &[PathBuf],
    steps: &[Step],
    errors: &mut Vec<Diagnostic>,
) -> Option<SessionReuse> {
    let path = "steps[0].reuse_session";
    let max_age = match SESSION_REUSE.parse(age) {
        Ok(d) => d,
        Err(e) => {
            errors.push(doc.diag(path, e));
            return None;
        }
    };
    if steps.is_empty() {
        // The `use` itself failed to load, and said so.
        return None;
    }
    // A run that skips the login would miss what a step of it sets, and its SLO latency
    // would lack what a timed step of it measures.
    type Refusal = (fn(&Step) -> bool, &'static str);
    let refusals: [Refusal; 2] = [
        (
            |s| s.action.sets_variables(),
            "sets a variable, which a run that reuses the session would not have",
        ),
        (
            |s| s.timed,
            "is timed, which a run that reuses the session would not measure: give it `timed: false`",
        ),
    ];
    for (refused, why) in refusals {
        if let Some(s) = steps.iter().find(|s| refused(s)) {
            errors.push(doc.diag(
                path,
                format!("the login's step `{}` ({}) {why}", s.name, s.origin),
            ));
            return None;
        }
    }
    if !steps.iter().any(|s| s.action.needs_browser()) {
        errors.push(doc.diag(
            path,
            "the login has no browser step: there is no browser session to reuse",
        ));
        return None;
    }
    let target = folder_of(stack).join(file);
    let canon = target.canonicalize().unwrap_or(target);
    Some(SessionReuse {
        steps: steps.len(),
        max_age,
        login: canon.to_string_lossy().into_owned(),
    })
}

/// The journey's `viewport`, `device` and `network`, validated; `None` when it sets none.
fn emulation_of(
    doc: &YamlDoc,
    raw: &RawJourney,
    errors: &mut Vec<Diagnostic>,
) -> Option<crate::run::Emulation> {
    use super::emulation as em;
    let mut out = crate::run::Emulation::default();
    let mut any = false;
    // A viewport beside a device resizes the device (a phone held sideways).
    let viewport = raw.viewport.as_ref().map(|v| {
        any = true;
        em::parse_viewport(v).map_err(|e| errors.push(doc.diag("viewport", e)))
    });
    if let Some(d) = &raw.device {
        any = true;
        match em::device(d) {
            Ok(dev) => out = em::of_device(dev),
            Err(e) => errors.push(doc.diag("device", e)),
        }
    }
    if let Some(Ok(wh)) = viewport {
        out.viewport = Some(wh);
    }
    if let Some(n) = &raw.network {
        any = true;
        let mut net = match &n.throttle {
            None => crate::run::NetworkConditions::default(),
            Some(OrString::Short(name)) => match em::throttle(name) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(doc.diag("network.throttle", e));
                    crate::run::NetworkConditions::default()
                }
            },
            Some(OrString::Full(t)) => {
                if t.down_kbps == 0 || t.up_kbps == 0 {
                    errors.push(doc.diag(
                        "network.throttle",
                        "`down_kbps` and `up_kbps` must be above 0 (leave `throttle` out for an unlimited network)",
                    ));
                }
                if t.latency_ms > 60_000 {
                    errors.push(doc.diag("network.throttle.latency_ms", "at most 60000 ms"));
                }
                crate::run::NetworkConditions {
                    preset: None,
                    offline: false,
                    latency_ms: t.latency_ms,
                    down_kbps: t.down_kbps,
                    up_kbps: t.up_kbps,
                }
            }
        };
        net.offline = n.offline.unwrap_or(false);
        if n.throttle.is_none() && !net.offline {
            errors.push(doc.diag(
                "network",
                "give `throttle` or `offline: true` (or leave `network` out)",
            ));
        }
        out.network = Some(net);
    }
    any.then_some(out)
}

/// The folder of the file being read (the last of `stack`): where its `use`s and `upload`s
/// are found.
fn folder_of(stack: &[PathBuf]) -> PathBuf {
    stack
        .last()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn steps_of(
    doc: &YamlDoc,
    items: &[Value],
    base: &str,
    first: usize,
    ctx: &LoadContext,
    scope: &mut BTreeSet<String>,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<Step>,
    errors: &mut Vec<Diagnostic>,
) {
    for (i, item) in items.iter().enumerate() {
        let path = join_index(base, first + i);
        let raw: RawStep = match doc.deserialize_at(item, &path) {
            Ok(r) => r,
            Err(d) => {
                errors.push(d);
                continue;
            }
        };
        if let Some(file) = &raw.use_file {
            include(doc, &raw, file, &path, ctx, scope, stack, out, errors);
            continue;
        }
        let dir = folder_of(stack);
        if let Some(step) = step_of(doc, raw, &path, ctx, &dir, scope, errors) {
            out.push(step);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn include(
    doc: &YamlDoc,
    raw: &RawStep,
    file: &str,
    path: &str,
    ctx: &LoadContext,
    scope: &mut BTreeSet<String>,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<Step>,
    errors: &mut Vec<Diagnostic>,
) {
    let upath = join_key(path, "use");
    if raw.name.is_some()
        || raw.timed.is_some()
        || raw.timeout.is_some()
        || raw.until.is_some()
        || action_keys(raw).len() > 1
    {
        errors.push(doc.diag(&upath, "`use` stands alone in its step (no other keys)"));
        return;
    }
    if raw.reuse_session.is_some() && (path != "steps[0]" || stack.len() != 1) {
        errors.push(doc.diag(
            &join_key(path, "reuse_session"),
            "`reuse_session` goes on a journey's first step, beside the `use` of its login",
        ));
        return;
    }
    let dir = folder_of(stack);
    let target = dir.join(file);
    let canon = match target.canonicalize() {
        Ok(c) => c,
        Err(_) => {
            errors.push(doc.diag(&upath, format!("included file `{file}` does not exist")));
            return;
        }
    };
    if stack.contains(&canon) {
        let chain: Vec<String> = stack
            .iter()
            .chain([&canon])
            .map(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        errors.push(doc.diag(
            &upath,
            format!(
                "`{file}` includes itself (a `use` cycle: {})",
                chain.join(" -> ")
            ),
        ));
        return;
    }
    let inc = match YamlDoc::load(&canon, SHARED_STEPS) {
        Ok(d) => d,
        // Not readable as a file (`use: /dev/zero`, a folder, too large): said where it is named.
        Err(LoadError::File(e)) => {
            errors.push(doc.diag(&upath, format!("`{file}` {e}")));
            return;
        }
        Err(LoadError::Content(d)) => {
            errors.push(d);
            return;
        }
    };
    let rawj: RawJourney = match inc.deserialize_at(&inc.value, "") {
        Ok(r) => r,
        Err(d) => {
            errors.push(d);
            return;
        }
    };
    stack.push(canon);
    steps_of(
        &inc,
        &rawj.steps,
        "steps",
        0,
        ctx,
        scope,
        stack,
        out,
        errors,
    );
    stack.pop();
}

fn action_keys(r: &RawStep) -> Vec<&'static str> {
    let mut v = Vec::new();
    macro_rules! has {
        ($($f:ident => $n:literal),*) => { $( if r.$f.is_some() { v.push($n); } )* };
    }
    has!(goto => "goto", click => "click", fill => "fill", select => "select", press => "press",
         wait_for => "wait_for", assert_text => "assert_text", assert_url => "assert_url",
         screenshot => "screenshot", http => "http", sql => "sql", poll => "poll",
         use_file => "use", capture => "capture", script => "script", hover => "hover",
         upload => "upload", frame => "frame", switch_to => "switch_to",
         set_cookie => "set_cookie", set_storage => "set_storage",
         clear_cookies => "clear_cookies", assert => "assert",
         wait_for_request => "wait_for_request");
    v
}

struct Ctx<'a> {
    doc: &'a YamlDoc,
    scope: &'a BTreeSet<String>,
    errors: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(&mut self, path: &str, msg: impl Into<String>) {
        self.errors.push(self.doc.diag(path, msg));
    }

    /// A template that must not be empty and may only use names in scope.
    fn tpl(&mut self, path: &str, raw: &str) -> Option<Template> {
        if raw.trim().is_empty() {
            self.err(path, "must not be empty");
            return None;
        }
        self.tpl_any(path, raw)
    }

    fn tpl_any(&mut self, path: &str, raw: &str) -> Option<Template> {
        match Template::parse(raw) {
            Ok(t) => {
                let unknown: Vec<String> = t
                    .vars()
                    .filter(|v| !self.scope.contains(*v))
                    .map(|v| format!("{{{v}}}"))
                    .collect();
                // `{tenant}`, `{username}`, `{password}` exist only when the config sets them.
                let missing: Vec<String> = t
                    .vars()
                    .filter(|v| !self.scope.contains(*v))
                    .filter_map(|v| IDENTITY_VARS.iter().find(|(n, _)| *n == v))
                    .map(|(n, key)| format!("`{{{n}}}` needs `{key}:` in the config"))
                    .collect();
                if unknown.is_empty() {
                    Some(t)
                } else if !missing.is_empty() {
                    let message = format!(
                        "{} (this config has none; write the value here or add it to the config)",
                        missing.join(", ")
                    );
                    self.err(path, message);
                    None
                } else {
                    self.err(
                        path,
                        format!(
                            "unknown template variable {} (known here: {})",
                            unknown.join(", "),
                            self.scope.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                    None
                }
            }
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }

    fn wait(&mut self, path: &str, w: &RawWait) -> Option<WaitCond> {
        let selector = self.tpl(&join_key(path, "selector"), &w.selector);
        let text = match &w.text {
            Some(t) => Some(self.tpl(&join_key(path, "text"), t)?),
            None => None,
        };
        if w.gone == Some(true) && w.text.is_some() {
            self.err(
                &join_key(path, "gone"),
                "`gone: true` cannot be combined with `text`",
            );
            return None;
        }
        Some(WaitCond {
            selector: selector?,
            text,
            visible: w.visible.unwrap_or(true),
            gone: w.gone.unwrap_or(false),
        })
    }

    /// An optional template: `Some(None)` when absent, `None` when written and refused.
    fn tpl_opt(&mut self, path: &str, raw: Option<&str>) -> Option<Option<Template>> {
        match raw {
            Some(r) => self.tpl(path, r).map(Some),
            None => Some(None),
        }
    }

    fn pattern(&mut self, path: &str, raw: &str) -> Option<Pattern> {
        match Pattern::new(raw) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }

    /// `equals` (may be empty), `contains` (a template, not empty) or `matches` (a regular
    /// expression), exactly one; `what` names them in the message.
    fn text_match(
        &mut self,
        path: &str,
        equals: Option<&String>,
        contains: Option<&String>,
        matches: Option<&String>,
    ) -> Option<TextMatch> {
        match (equals, contains, matches) {
            (Some(t), None, None) => self
                .tpl_any(&join_key(path, "equals"), t)
                .map(TextMatch::Equals),
            (None, Some(t), None) => self
                .tpl(&join_key(path, "contains"), t)
                .map(TextMatch::Contains),
            (None, None, Some(p)) => self
                .pattern(&join_key(path, "matches"), p)
                .map(TextMatch::Matches),
            _ => {
                self.err(
                    path,
                    "give exactly one of `equals`, `contains` or `matches`",
                );
                None
            }
        }
    }

    /// Every string inside a JSON value is a template: its variables must be in scope.
    fn json_templates(&mut self, path: &str, v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => self.tpl_any(path, s).is_some(),
            serde_json::Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, x)| self.json_templates(&join_index(path, i), x))
                .fold(true, |a, b| a & b),
            serde_json::Value::Object(o) => o
                .iter()
                .map(|(k, x)| self.json_templates(&join_key(path, k), x))
                .fold(true, |a, b| a & b),
            _ => true,
        }
    }

    fn duration(&mut self, path: &str, raw: &str, bound: Bound) -> Option<Duration> {
        match bound.parse(raw) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }
}

fn step_of(
    doc: &YamlDoc,
    raw: RawStep,
    path: &str,
    ctx: &LoadContext,
    dir: &Path,
    scope: &mut BTreeSet<String>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Step> {
    if raw.reuse_session.is_some() {
        errors.push(doc.diag(
            &join_key(path, "reuse_session"),
            "`reuse_session` goes beside a `use` (the journey's first step, its login)",
        ));
        return None;
    }
    let keys = action_keys(&raw);
    if keys.is_empty() {
        errors.push(doc.diag(
            path,
            format!("step has no action; expected one of: {ACTIONS}"),
        ));
        return None;
    }
    if keys.len() > 1 {
        errors.push(doc.diag(
            path,
            format!(
                "step has more than one action ({}); split it into steps",
                keys.join(", ")
            ),
        ));
        return None;
    }
    let kind = keys[0];
    let mut raw = raw;
    let name = raw.name.take();
    let timed = raw.timed;
    let mut poll_deadline: Option<Duration> = None;
    let apath = join_key(path, kind);
    let before = errors.len();
    let mut captures: Vec<String> = Vec::new();
    let scope_now = scope.clone();
    let mut c = Ctx {
        doc,
        scope: &scope_now,
        errors,
    };

    let timeout = match &raw.timeout {
        Some(t) => c.duration(&join_key(path, "timeout"), t, STEP_TIMEOUT),
        None if kind == "goto" => Some(ctx.navigation_timeout),
        None => Some(ctx.step_timeout),
    };
    let until = match &raw.until {
        Some(Some(u)) => c.wait(&join_key(path, "until"), u),
        Some(None) => {
            c.err(
                &join_key(path, "until"),
                "`until: null` waits for nothing: give a condition (`until: {selector: ...}`) or leave `until` out",
            );
            None
        }
        None => None,
    };

    let action = match raw {
        RawStep { goto: Some(u), .. } => c.tpl(&apath, &u).map(|url| Action::Goto { url }),
        RawStep { click: Some(s), .. } => {
            c.tpl(&apath, &s).map(|selector| Action::Click { selector })
        }
        RawStep { fill: Some(f), .. } => {
            let selector = c.tpl(&join_key(&apath, "selector"), &f.selector);
            let value = c.tpl_any(&join_key(&apath, "value"), &f.value);
            Some(Action::Fill {
                selector: selector?,
                value: value?,
                submit: f.submit.unwrap_or(false),
            })
        }
        RawStep {
            select: Some(s), ..
        } => {
            let selector = c.tpl(&join_key(&apath, "selector"), &s.selector);
            let by = match (&s.value, &s.label) {
                (Some(v), None) => c.tpl(&join_key(&apath, "value"), v).map(SelectBy::Value),
                (None, Some(l)) => c.tpl(&join_key(&apath, "label"), l).map(SelectBy::Label),
                _ => {
                    c.err(&apath, "give exactly one of `value` or `label`");
                    None
                }
            };
            Some(Action::Select {
                selector: selector?,
                by: by?,
            })
        }
        RawStep { press: Some(p), .. } => {
            if super::keys::key_code(&p.key).is_none() {
                c.err(
                    &join_key(&apath, "key"),
                    format!(
                        "unknown key `{}`; use one character or one of: {}",
                        p.key,
                        super::keys::KEY_NAMES.join(", ")
                    ),
                );
            }
            let selector = match &p.selector {
                Some(s) => Some(c.tpl(&join_key(&apath, "selector"), s)?),
                None => None,
            };
            super::keys::key_code(&p.key).map(|_| Action::Press {
                key: p.key.clone(),
                selector,
            })
        }
        RawStep {
            wait_for: Some(w), ..
        } => c.wait(&apath, &w).map(Action::WaitFor),
        RawStep {
            assert_text: Some(a),
            ..
        } => {
            let selector = c.tpl(&join_key(&apath, "selector"), &a.selector);
            let expect = c.text_match(
                &apath,
                a.equals.as_ref(),
                a.contains.as_ref(),
                a.matches.as_ref(),
            );
            Some(Action::AssertText {
                selector: selector?,
                expect: expect?,
            })
        }
        RawStep {
            assert_url: Some(a),
            ..
        } => match &a {
            OrString::Short(t) => c.tpl(&apath, t).map(TextMatch::Contains),
            OrString::Full(m) => c.text_match(
                &apath,
                m.equals.as_ref(),
                m.contains.as_ref(),
                m.matches.as_ref(),
            ),
        }
        .map(|expect| Action::AssertUrl { expect }),
        RawStep {
            screenshot: Some(n),
            ..
        } => {
            if n.is_empty()
                || !n
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                c.err(
                    &apath,
                    "screenshot name must be letters, digits, `_` or `-`",
                );
                None
            } else {
                Some(Action::Screenshot { name: n })
            }
        }
        RawStep { http: Some(h), .. } => {
            let step = http_step(&mut c, &apath, h);
            if let Some(s) = &step {
                captures.extend(s.capture.keys().cloned());
            }
            step.map(Action::Http)
        }
        RawStep { sql: Some(s), .. } => {
            if !ctx.has_database {
                c.err(
                    &apath,
                    "a `sql` step needs the monitored database: set `database.url` in the config",
                );
            }
            if s.query.trim().is_empty() {
                c.err(&join_key(&apath, "query"), "must not be empty");
            }
            let params: Vec<Option<Template>> = s
                .params
                .iter()
                .enumerate()
                .map(|(i, p)| c.tpl_any(&join_index(&join_key(&apath, "params"), i), p))
                .collect();
            let expect_value = match s.expect.as_ref().and_then(|e| e.value.as_ref()) {
                Some(v) => Some(c.tpl_any(&join_key(&join_key(&apath, "expect"), "value"), v)?),
                None => None,
            };
            for name in s.capture.keys() {
                check_capture_name(&mut c, &join_key(&join_key(&apath, "capture"), name), name);
            }
            captures.extend(s.capture.keys().cloned());
            let params: Option<Vec<Template>> = params.into_iter().collect();
            Some(Action::Sql(SqlStep {
                query: s.query,
                params: params?,
                expect_value,
                min_rows: s.expect.as_ref().and_then(|e| e.min_rows),
                capture: s.capture,
            }))
        }
        RawStep { poll: Some(p), .. } => match doc.deserialize_at::<RawPoll>(&p, &apath) {
            Err(d) => {
                c.errors.push(d);
                None
            }
            Ok(rp) => {
                let every = c.duration(&join_key(&apath, "every"), &rp.every, POLL_EVERY);
                poll_deadline = c.duration(&join_key(&apath, "timeout"), &rp.timeout, POLL_TIMEOUT);
                if let (Some(e), Some(d)) = (every, poll_deadline)
                    && e >= d
                {
                    c.err(&join_key(&apath, "every"), "must be shorter than `timeout`");
                }
                let spath = join_key(&apath, "step");
                match doc.deserialize_at::<RawStep>(&rp.step, &spath) {
                    Err(d) => {
                        c.errors.push(d);
                        None
                    }
                    Ok(inner) if inner.use_file.is_some() || inner.poll.is_some() => {
                        c.err(&spath, "a polled step cannot be `use` or `poll`");
                        None
                    }
                    Ok(inner) => {
                        let mut inner_scope = scope_now.clone();
                        let s = step_of(doc, inner, &spath, ctx, dir, &mut inner_scope, c.errors);
                        captures.extend(inner_scope.difference(&scope_now).cloned());
                        match (s, every) {
                            (Some(s), Some(every)) => Some(Action::Poll {
                                step: Box::new(s),
                                every,
                            }),
                            _ => None,
                        }
                    }
                }
            }
        },
        RawStep {
            capture: Some(cap), ..
        } => {
            check_capture_name(&mut c, &join_key(&apath, "name"), &cap.name);
            captures.push(cap.name.clone());
            c.tpl(&join_key(&apath, "selector"), &cap.selector)
                .map(|selector| Action::Capture {
                    name: cap.name,
                    selector,
                    attribute: cap.attribute,
                })
        }
        RawStep {
            script: Some(sc), ..
        } => {
            let step = script_step(&mut c, &apath, sc);
            if let Some(name) = step.as_ref().and_then(|s| s.capture.clone()) {
                captures.push(name);
            }
            step.map(Action::Script)
        }
        RawStep { hover: Some(h), .. } => {
            c.tpl(&apath, &h).map(|selector| Action::Hover { selector })
        }
        RawStep {
            upload: Some(u), ..
        } => {
            let selector = c.tpl(&join_key(&apath, "selector"), &u.selector);
            let fpath = join_key(&apath, "file");
            let file = if u.file.trim().is_empty() {
                c.err(&fpath, "must not be empty");
                None
            } else {
                let f = dir.join(&u.file);
                if f.is_file() {
                    Some(f.canonicalize().unwrap_or(f))
                } else {
                    c.err(
                        &fpath,
                        format!(
                            "`{}` is not a file (paths are relative to the journey file's folder)",
                            u.file
                        ),
                    );
                    None
                }
            };
            Some(Action::Upload {
                selector: selector?,
                file: file?,
            })
        }
        RawStep { frame: Some(f), .. } => match f.as_str() {
            "parent" => Some(Action::Frame(FrameTarget::Parent)),
            "top" => Some(Action::Frame(FrameTarget::Top)),
            sel => c
                .tpl(&apath, sel)
                .map(|t| Action::Frame(FrameTarget::Element(t))),
        },
        RawStep {
            switch_to: Some(w), ..
        } => match w {
            RawSwitchTo::Named(n) if n == "new_window" => Some(Action::SwitchTo(WindowTarget::New)),
            RawSwitchTo::Named(n) => {
                c.err(
                    &apath,
                    format!(
                        "unknown window `{n}`; use `new_window`, a window index (0: the run's first tab) or `{{ title: ... }}`"
                    ),
                );
                None
            }
            RawSwitchTo::Index(i) => Some(Action::SwitchTo(WindowTarget::Index(i))),
            RawSwitchTo::Title(t) => c
                .tpl(&join_key(&apath, "title"), &t.title)
                .map(|t| Action::SwitchTo(WindowTarget::Title(t))),
        },
        RawStep {
            set_cookie: Some(k),
            ..
        } => {
            let name = c.tpl(&join_key(&apath, "name"), &k.name);
            let value = c.tpl_any(&join_key(&apath, "value"), &k.value);
            let cpath = c.tpl_opt(&join_key(&apath, "path"), k.path.as_deref());
            let domain = c.tpl_opt(&join_key(&apath, "domain"), k.domain.as_deref());
            Some(Action::SetCookie {
                name: name?,
                value: value?,
                path: cpath?,
                domain: domain?,
                secure: k.secure.unwrap_or(false),
                http_only: k.http_only.unwrap_or(false),
            })
        }
        RawStep {
            set_storage: Some(st),
            ..
        } => {
            let key = c.tpl(&join_key(&apath, "key"), &st.key);
            let value = c.tpl_any(&join_key(&apath, "value"), &st.value);
            let session = match st.area.as_deref() {
                None | Some("local") => Some(false),
                Some("session") => Some(true),
                Some(other) => {
                    c.err(
                        &join_key(&apath, "area"),
                        format!("unknown storage area `{other}`; use `local` or `session`"),
                    );
                    None
                }
            };
            Some(Action::SetStorage {
                key: key?,
                value: value?,
                session: session?,
            })
        }
        RawStep {
            clear_cookies: Some(b),
            ..
        } => {
            if b {
                Some(Action::ClearCookies)
            } else {
                c.err(
                    &apath,
                    "`clear_cookies: false` does nothing: write `clear_cookies: true` or leave the step out",
                );
                None
            }
        }
        RawStep {
            assert: Some(a), ..
        } => {
            let selector = c.tpl(&join_key(&apath, "selector"), &a.selector);
            let check = element_check(&mut c, &apath, a);
            Some(Action::Assert {
                selector: selector?,
                check: check?,
            })
        }
        RawStep {
            wait_for_request: Some(w),
            ..
        } => {
            let url = c.pattern(&join_key(&apath, "url_matches"), &w.url_matches);
            if let Some(s) = w.status
                && !(100..=599).contains(&s)
            {
                c.err(
                    &join_key(&apath, "status"),
                    format!("{s} is not an HTTP status (100-599)"),
                );
            }
            Some(Action::WaitForRequest {
                url: url?,
                status: w.status,
            })
        }
        _ => None,
    };

    // A poll's own timeout is its deadline.
    let timeout = poll_deadline.or(timeout);

    if let (Some(_), Some(a)) = (&until, &action)
        && !a.is_user_action()
        && !matches!(a, Action::Goto { .. })
    {
        c.err(
            &join_key(path, "until"),
            format!(
                "`until` belongs to a user action (click, fill, press, select, hover, upload) or a goto, not `{}`",
                a.kind()
            ),
        );
    }
    let failed = c.errors.len() > before;
    let action = action?;
    if failed {
        return None;
    }
    scope.extend(captures);
    let name = name.unwrap_or_else(|| default_name(&action));
    let line = doc.map.locate(path).map(|p| p.line).unwrap_or(0);
    Some(Step {
        timed: timed.unwrap_or(until.is_some()),
        name,
        action,
        timeout: timeout?,
        until,
        origin: format!("{}:{}", doc.file, line),
    })
}

fn script_step(c: &mut Ctx<'_>, apath: &str, sc: RawScript) -> Option<ScriptStep> {
    let mut ok = true;
    if sc.js.trim().is_empty() {
        c.err(&join_key(apath, "js"), "must not be empty");
        ok = false;
    }
    let is_async = sc.is_async.unwrap_or(false);
    if is_async && !sc.js.contains("done") {
        c.err(
            &join_key(apath, "js"),
            "an `async: true` script ends by calling `done(value)`, and this one never names `done`",
        );
        ok = false;
    }
    let args_path = join_key(apath, "args");
    for (i, a) in sc.args.iter().enumerate() {
        ok &= c.json_templates(&join_index(&args_path, i), a);
    }
    if let Some(name) = &sc.capture {
        let before = c.errors.len();
        check_capture_name(c, &join_key(apath, "capture"), name);
        ok &= c.errors.len() == before;
    }
    let expect = match sc.expect {
        None => None,
        Some(e) => {
            let epath = join_key(apath, "expect");
            let pointer = e.pointer.unwrap_or_default();
            if !pointer.is_empty() && !pointer.starts_with('/') {
                c.err(
                    &join_key(&epath, "pointer"),
                    format!(
                        "`{pointer}` is not a JSON pointer (write it like `/total` or `/items/0`)"
                    ),
                );
                ok = false;
            }
            let check = match (e.equals, e.matches) {
                (Some(v), None) => c
                    .json_templates(&join_key(&epath, "equals"), &v)
                    .then_some(JsonCheck::Equals(v)),
                (None, Some(p)) => c
                    .pattern(&join_key(&epath, "matches"), &p)
                    .map(JsonCheck::Matches),
                _ => {
                    c.err(&epath, "give exactly one of `equals` or `matches`");
                    None
                }
            };
            Some(JsonExpect {
                pointer,
                check: check?,
            })
        }
    };
    ok.then_some(ScriptStep {
        js: sc.js,
        args: sc.args,
        is_async,
        capture: sc.capture,
        expect,
    })
}

fn element_check(c: &mut Ctx<'_>, apath: &str, a: RawAssert) -> Option<ElementCheck> {
    let mut given: Vec<ElementCheck> = Vec::new();
    let mut bad = false;
    if let Some(n) = a.count {
        given.push(ElementCheck::Count(n));
    }
    if let Some(at) = a.attribute {
        let ap = join_key(apath, "attribute");
        if at.name.trim().is_empty() {
            c.err(&join_key(&ap, "name"), "must not be empty");
            bad = true;
        }
        let expect = match (&at.equals, &at.contains, &at.matches) {
            (None, None, None) => None,
            _ => match c.text_match(
                &ap,
                at.equals.as_ref(),
                at.contains.as_ref(),
                at.matches.as_ref(),
            ) {
                Some(m) => Some(m),
                None => {
                    bad = true;
                    None
                }
            },
        };
        given.push(ElementCheck::Attribute {
            name: at.name,
            expect,
        });
    }
    if let Some(b) = a.enabled {
        given.push(ElementCheck::Enabled(b));
    }
    if let Some(b) = a.checked {
        given.push(ElementCheck::Checked(b));
    }
    if let Some(b) = a.visible {
        given.push(ElementCheck::Visible(b));
    }
    if given.len() != 1 {
        c.err(
            apath,
            "give exactly one of `count`, `attribute`, `enabled`, `checked` or `visible` (one check per step)",
        );
        return None;
    }
    if bad { None } else { given.pop() }
}

fn check_capture_name(c: &mut Ctx<'_>, path: &str, name: &str) {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !name.starts_with(|ch: char| ch.is_ascii_digit());
    if !ok {
        c.err(
            path,
            format!("capture name `{name}` must be an identifier (letters, digits, `_`)"),
        );
    } else if BUILTIN_VARS.contains(&name) {
        c.err(
            path,
            format!("capture name `{name}` would shadow a built-in variable"),
        );
    }
}

fn http_step(c: &mut Ctx<'_>, apath: &str, h: RawHttp) -> Option<HttpStep> {
    let method = match crate::config::parse_method(h.method.as_deref()) {
        Ok(m) => Some(m),
        Err(e) => {
            c.err(&join_key(apath, "method"), e);
            None
        }
    };
    let url = c.tpl(&join_key(apath, "url"), &h.url);
    let mut headers = BTreeMap::new();
    for (k, v) in &h.headers {
        if let Some(t) = c.tpl_any(&join_key(&join_key(apath, "headers"), k), v) {
            headers.insert(k.clone(), t);
        }
    }
    let expect = h.expect.unwrap_or(RawHttpExpect {
        status: None,
        json: BTreeMap::new(),
    });
    if let Some(s) = expect.status
        && !(100..=599).contains(&s)
    {
        c.err(
            &join_key(&join_key(apath, "expect"), "status"),
            format!("{s} is not an HTTP status (100-599)"),
        );
    }
    for p in expect.json.keys() {
        if !p.is_empty() && !p.starts_with('/') {
            c.err(
                &join_key(&join_key(&join_key(apath, "expect"), "json"), p),
                format!("`{p}` is not a JSON pointer (write it like `/status` or `/items/0/id`)"),
            );
        }
    }
    for (name, p) in &h.capture {
        let cpath = join_key(&join_key(apath, "capture"), name);
        check_capture_name(c, &cpath, name);
        if !p.is_empty() && !p.starts_with('/') {
            c.err(
                &cpath,
                format!("`{p}` is not a JSON pointer (write it like `/id`)"),
            );
        }
    }
    Some(HttpStep {
        method: method?,
        url: url?,
        headers,
        json: h.json,
        browser_cookies: h.browser_cookies.unwrap_or(true),
        expect_status: expect.status,
        expect_json: expect.json,
        capture: h.capture,
    })
}

fn default_name(action: &Action) -> String {
    match action {
        Action::Goto { url } => format!("goto {url}"),
        Action::Click { selector } => format!("click {selector}"),
        Action::Fill { selector, .. } => format!("fill {selector}"),
        Action::Select { selector, .. } => format!("select {selector}"),
        Action::Press { key, .. } => format!("press {key}"),
        Action::WaitFor(w) => format!("wait_for {}", w.selector),
        Action::AssertText { selector, .. } => format!("assert_text {selector}"),
        Action::AssertUrl { expect } => format!("assert_url {}", expect.describe()),
        Action::Screenshot { name } => format!("screenshot {name}"),
        Action::Http(h) => format!("http {} {}", h.method, h.url),
        Action::Sql(_) => "sql".to_string(),
        Action::Poll { step, .. } => format!("poll {}", step.name),
        Action::Capture { name, .. } => format!("capture {name}"),
        Action::Script(s) => match &s.capture {
            Some(name) => format!("script capturing {name}"),
            None => "script".to_string(),
        },
        Action::Hover { selector } => format!("hover {selector}"),
        Action::Upload { selector, .. } => format!("upload {selector}"),
        Action::Frame(FrameTarget::Element(s)) => format!("frame {s}"),
        Action::Frame(FrameTarget::Parent) => "frame parent".to_string(),
        Action::Frame(FrameTarget::Top) => "frame top".to_string(),
        Action::SwitchTo(WindowTarget::New) => "switch_to new_window".to_string(),
        Action::SwitchTo(WindowTarget::Index(i)) => format!("switch_to window {i}"),
        Action::SwitchTo(WindowTarget::Title(t)) => format!("switch_to title {t}"),
        Action::SetCookie { name, .. } => format!("set_cookie {name}"),
        Action::SetStorage { key, .. } => format!("set_storage {key}"),
        Action::ClearCookies => "clear_cookies".to_string(),
        Action::Assert { selector, check } => format!("assert {selector} {check}"),
        Action::WaitForRequest { url, .. } => format!("wait_for_request {:?}", url.source()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> LoadContext {
        LoadContext {
            variables: BTreeSet::new(),
            step_timeout: Duration::from_secs(5),
            navigation_timeout: Duration::from_secs(10),
            has_database: false,
            has_tenant: true,
            has_credentials: true,
        }
    }

    #[test]
    fn a_reusable_login_is_the_first_steps_use_and_sets_no_variable() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("_login.yaml"),
            "steps:\n  - goto: /login\n  - click: \"#go\"\n",
        )
        .unwrap();
        std::fs::write(
            d.join("_capturing.yaml"),
            "steps:\n  - goto: /login\n  - capture: { name: token, selector: \"#t\" }\n",
        )
        .unwrap();
        std::fs::write(
            d.join("_nested.yaml"),
            "steps:\n  - use: _login.yaml\n    reuse_session: 5m\n",
        )
        .unwrap();
        let load = |name: &str, text: &str| {
            let j = d.join(name);
            std::fs::write(&j, text).unwrap();
            load_file(&j, &ctx())
        };
        let j = load(
            "ok.yaml",
            "steps:\n  - use: _login.yaml\n    reuse_session: 10m\n  - goto: /home\n",
        )
        .unwrap();
        let reuse = j.reuse_session.expect("reusable");
        assert_eq!(reuse.steps, 2);
        assert_eq!(reuse.max_age, Duration::from_secs(600));
        assert!(reuse.login.ends_with("_login.yaml"), "{}", reuse.login);
        assert_eq!(j.steps.len(), 3);
        assert!(
            load("plain.yaml", "steps:\n  - use: _login.yaml\n")
                .unwrap()
                .reuse_session
                .is_none()
        );

        let err = |name: &str, text: &str| {
            let e = load(name, text).unwrap_err();
            assert_eq!(e.len(), 1, "{e:?}");
            (
                e[0].path.clone(),
                e[0].pos.map(|p| p.line),
                e[0].message.clone(),
            )
        };
        let (path, line, msg) = err(
            "second.yaml",
            "steps:\n  - goto: /\n  - use: _login.yaml\n    reuse_session: 10m\n",
        );
        assert_eq!((path.as_str(), line), ("steps[1].reuse_session", Some(4)));
        assert!(msg.contains("first step"), "{msg}");
        let (path, _, msg) = err(
            "alone.yaml",
            "steps:\n  - goto: /\n    reuse_session: 10m\n",
        );
        assert_eq!(path, "steps[0].reuse_session");
        assert!(msg.contains("beside a `use`"), "{msg}");
        let (path, _, msg) = err("nested.yaml", "steps:\n  - use: _nested.yaml\n");
        assert_eq!(path, "steps[0].reuse_session");
        assert!(msg.contains("first step"), "{msg}");
        let (path, _, msg) = err(
            "capturing.yaml",
            "steps:\n  - use: _capturing.yaml\n    reuse_session: 10m\n  - goto: /\n",
        );
        assert_eq!(path, "steps[0].reuse_session");
        assert!(msg.contains("sets a variable"), "{msg}");
        std::fs::write(
            d.join("_timed.yaml"),
            "steps:\n  - goto: /login\n  - click: \"#go\"\n    until: { selector: \"#home\" }\n",
        )
        .unwrap();
        let (path, _, msg) = err(
            "timed.yaml",
            "steps:\n  - use: _timed.yaml\n    reuse_session: 10m\n  - goto: /\n",
        );
        assert_eq!(path, "steps[0].reuse_session");
        assert!(
            msg.contains("is timed") && msg.contains("timed: false"),
            "{msg}"
        );
        let (path, _, msg) = err(
            "only.yaml",
            "steps:\n  - use: _login.yaml\n    reuse_session: 10m\n",
        );
        assert_eq!(path, "steps[0].reuse_session");
        assert!(msg.contains("no step follows"), "{msg}");
        let (path, line, msg) = err(
            "age.yaml",
            "steps:\n  - use: _login.yaml\n    reuse_session: 2d\n",
        );
        assert_eq!((path.as_str(), line), ("steps[0].reuse_session", Some(3)));
        assert!(msg.contains("reuse_session"), "{msg}");
    }

    #[test]
    fn an_oversized_included_file_is_reported_where_it_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let mut big = b"steps:\n".to_vec();
        while big.len() as u64 <= crate::config::file::MAX_INPUT_BYTES {
            big.extend_from_slice(b"  - goto: /a-long-enough-path-to-fill-a-file-quickly\n");
        }
        std::fs::write(dir.path().join("_big.yaml"), &big).unwrap();
        let j = dir.path().join("smoke.yaml");
        std::fs::write(&j, "steps:\n  - goto: /\n  - use: _big.yaml\n").unwrap();
        let errs = load_file(&j, &ctx()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "steps[1].use");
        assert_eq!(errs[0].pos.map(|p| p.line), Some(3));
        assert_eq!(errs[0].message, "`_big.yaml` is larger than 1 MiB");
    }

    #[test]
    fn an_oversized_journey_is_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("big.yaml");
        let mut big = b"steps:\n".to_vec();
        big.resize(crate::config::file::MAX_INPUT_BYTES as usize + 1, b'\n');
        std::fs::write(&j, &big).unwrap();
        let errs = load_file(&j, &ctx()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].message, "the file is larger than 1 MiB");
    }

    #[test]
    fn until_null_is_refused_and_absent_until_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("smoke.yaml");
        std::fs::write(
            &j,
            "steps:\n  - click: \"#a\"\n    until: null\n  - click: \"#b\"\n    until:\n",
        )
        .unwrap();
        let errs = load_file(&j, &ctx()).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["steps[0].until", "steps[1].until"]);
        std::fs::write(&j, "steps:\n  - click: \"#a\"\n").unwrap();
        assert!(load_file(&j, &ctx()).is_ok());
    }
}
