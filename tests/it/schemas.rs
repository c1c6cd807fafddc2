//! The JSON Schemas in `schemas/` (for editors, through the `# yaml-language-server: $schema=`
//! line of the example files) against the loaders they describe:
//! - the files are what `synmon schema --write schemas` writes today;
//! - they accept every file the loader accepts: the examples, the good fixtures, the fuzz
//!   corpus' good and shipped entries, and each file of a bad fixture that none of its expected
//!   errors names;
//! - they reject exactly the bad fixtures whose mistake is one of shape (listed below), and the
//!   loader rejects those too;
//! - a journey step's actions in the schema are the loader's.
//!
//! YAML is read into JSON with the parser the loaders use (`yaml_serde`); validation is the
//! `jsonschema` crate's, draft 7 like the schemas.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use synmon::schema::{FileKind, schema, text};
use synmon::settings::Config;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validator(kind: FileKind) -> jsonschema::Validator {
    let s = schema(kind).to_value();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&s)
        .unwrap_or_else(|e| panic!("{kind:?}: not a usable schema: {e}"))
}

/// The schema's complaints about `file` (empty: valid), as `path: message`.
fn complaints(v: &jsonschema::Validator, file: &Path) -> Vec<String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        // Not text (the UTF-8 fixture): no document for a schema to judge either.
        Err(e) => return vec![format!("not YAML: {e}")],
    };
    let value: serde_json::Value = match yaml_serde::from_str(&text) {
        Ok(v) => v,
        // Not YAML (the syntax-error fixtures): no document for a schema to judge.
        Err(e) => return vec![format!("not YAML: {e}")],
    };
    v.iter_errors(&value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// What kind of file `path` (relative to a config's folder) is, by the folder it sits in;
/// `None` for files no schema describes (flag registries, secrets, expectations).
fn kind_of(rel: &Path) -> Option<FileKind> {
    let name = rel.file_name()?.to_str()?;
    if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
        return None;
    }
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    match parts.as_slice() {
        ["synmon.yaml"] => Some(FileKind::Config),
        ["journeys", _] => Some(FileKind::Journey),
        ["alerts", "tests", _] => Some(FileKind::AlertTests),
        ["alerts", _] => Some(FileKind::Alerts),
        _ => None,
    }
}

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.is_file() {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn bad_fixtures() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The files of a bad fixture that one of its expected errors names.
fn named_in_expected(dir: &Path) -> BTreeSet<PathBuf> {
    let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap_or_default();
    let prefix = dir.strip_prefix(repo()).unwrap();
    files_under(dir)
        .into_iter()
        .filter(|rel| {
            let shown = format!("{}:", prefix.join(rel).display());
            expected.lines().any(|l| l.starts_with(&shown))
        })
        .collect()
}

#[test]
fn shipped_schemas_are_what_synmon_schema_writes() {
    let mut stale = Vec::new();
    for kind in FileKind::ALL {
        let path = repo().join("schemas").join(kind.file_name());
        let shipped = std::fs::read_to_string(&path).unwrap_or_default();
        if shipped != text(kind) {
            stale.push(path.strip_prefix(repo()).unwrap().display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; regenerate with `cargo run -- schema --write schemas`"
    );
}

#[test]
fn the_schemas_are_valid_draft7_schemas() {
    for kind in FileKind::ALL {
        let s = schema(kind).to_value();
        assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
        if let Err(e) = jsonschema::draft7::meta::validate(&s) {
            panic!("{kind:?}: {e}");
        }
    }
}

/// The shipped example files: the config, its journeys, alert rules and alert tests.
fn example_files() -> Vec<(FileKind, PathBuf)> {
    let mut out = vec![(FileKind::Config, repo().join("synmon.example.yaml"))];
    for folder in ["journeys", "alerts"] {
        for rel in files_under(&repo().join(folder)) {
            let rel = Path::new(folder).join(rel);
            if let Some(kind) = kind_of(&rel) {
                out.push((kind, repo().join(rel)));
            }
        }
    }
    out
}

/// Files the loader accepts as they are: the examples, the good fixture, and the corpus'
/// copies of both.
fn good_files() -> Vec<(FileKind, PathBuf)> {
    let mut out = example_files();
    let good = repo().join("tests/fixtures/good");
    for rel in files_under(&good) {
        if let Some(kind) = kind_of(&rel) {
            out.push((kind, good.join(rel)));
        }
    }
    for (target, kind) in [
        ("config", FileKind::Config),
        ("journey", FileKind::Journey),
        ("rules", FileKind::Alerts),
    ] {
        let dir = repo().join("fuzz/corpus").join(target);
        for rel in files_under(&dir) {
            let name = rel.to_string_lossy();
            if name.starts_with("good--") || name.starts_with("shipped--") {
                out.push((kind, dir.join(rel)));
            }
        }
    }
    out
}

#[test]
fn the_schemas_accept_every_file_the_loader_accepts() {
    // The loader's word on the examples and the good fixture (and, through them, their journeys
    // and rule files); the corpus holds copies of these.
    for config in ["synmon.example.yaml", "tests/fixtures/good/synmon.yaml"] {
        if let Err(e) = Config::load(&repo().join(config)) {
            panic!("{config} must load:\n{e}");
        }
    }
    let tests: Vec<PathBuf> = files_under(&repo().join("alerts/tests"))
        .into_iter()
        .map(|rel| repo().join("alerts/tests").join(rel))
        .collect();
    for t in &tests {
        if let Err(e) = synmon::rules::unittest::run_file(t) {
            panic!("{} must load: {e:?}", t.display());
        }
    }

    let validators: Vec<(FileKind, jsonschema::Validator)> =
        FileKind::ALL.iter().map(|k| (*k, validator(*k))).collect();
    let of = |kind: FileKind| &validators.iter().find(|(k, _)| *k == kind).unwrap().1;
    let mut checked = 0;
    let mut refused = Vec::new();
    let mut judge = |kind: FileKind, file: &Path| {
        checked += 1;
        let c = complaints(of(kind), file);
        if !c.is_empty() {
            refused.push(format!(
                "{} ({kind:?}):\n    {}",
                file.display(),
                c.join("\n    ")
            ));
        }
    };
    for (kind, file) in good_files() {
        judge(kind, &file);
    }
    // In a bad fixture, a file that no expected error names was accepted by the loader.
    for dir in bad_fixtures() {
        let named = named_in_expected(&dir);
        for rel in files_under(&dir) {
            if let Some(kind) = kind_of(&rel)
                && !named.contains(&rel)
            {
                judge(kind, &dir.join(&rel));
            }
        }
    }
    assert!(checked > 100, "only {checked} files were checked");
    assert!(
        refused.is_empty(),
        "the schemas refuse files the loader accepts:\n{}",
        refused.join("\n")
    );
}

/// The bad fixtures whose mistake (or one of whose mistakes) is one of shape, which the schemas
/// catch in the editor, and the file it is in.
const SHAPE_MISTAKES: &[(&str, &str)] = &[
    // An unknown key.
    ("03-unknown-field-config", "synmon.yaml"),
    ("04-unknown-field-webdriver", "synmon.yaml"),
    ("05-unknown-field-step", "journeys/smoke.yaml"),
    ("06-unknown-field-until", "journeys/smoke.yaml"),
    ("07-unknown-field-http-expect", "journeys/api.yaml"),
    ("55-bad-poll", "journeys/api.yaml"),
    ("67-alert-unknown-field", "alerts/rules.yaml"),
    // A missing required key, or a file that holds nothing.
    ("09-missing-password", "synmon.yaml"),
    ("10-missing-targets", "synmon.yaml"),
    ("12-missing-steps", "journeys/smoke.yaml"),
    ("14-missing-fill-value", "journeys/smoke.yaml"),
    ("104-empty-journey-file", "journeys/checkout.yaml"),
    ("111-empty-config", "synmon.yaml"),
    // A wrong type: text for a number, a string for a map, a number for a duration, `null` for
    // a condition, lists nested where text belongs.
    ("15-wrong-type-config", "synmon.yaml"),
    ("16-wrong-type-step", "journeys/smoke.yaml"),
    ("58-duration-without-unit", "synmon.yaml"),
    ("65-alert-threshold-not-a-number", "alerts/rules.yaml"),
    ("72-slo-latency-of-counter", "alerts/slo.yaml"),
    ("110-until-null", "journeys/smoke.yaml"),
    ("116-nesting-too-deep", "synmon.yaml"),
    ("131-alert-min-coverage-out-of-range", "alerts/rules.yaml"),
    // A step with no action, two actions, or `use` beside other keys.
    ("35-step-without-action", "journeys/smoke.yaml"),
    ("36-step-with-two-actions", "journeys/smoke.yaml"),
    ("39-use-with-extra-keys", "journeys/smoke.yaml"),
    // A duration that is no duration (`soon`, `ten seconds`, `20`).
    ("23-bad-default-durations", "synmon.yaml"),
    ("24-bad-step-timeout", "journeys/smoke.yaml"),
    ("50-several-errors-one-file", "synmon.yaml"),
    // The journey language's newer keys, each fixture holding several mistakes of which at
    // least one is of shape: two matchers in one `assert_url`, a missing `js`, `file` or
    // `selector`, an unknown key in `script`/`assert`/`set_cookie`/`set_storage`, a `frame` or
    // `switch_to` of the wrong type, `hover` as a map.
    ("151-assert-url-two-matchers", "journeys/smoke.yaml"),
    ("154-script-errors", "journeys/smoke.yaml"),
    ("155-upload-errors", "journeys/smoke.yaml"),
    ("156-frame-errors", "journeys/smoke.yaml"),
    ("157-switch-to-errors", "journeys/smoke.yaml"),
    ("158-cookie-and-storage-errors", "journeys/smoke.yaml"),
    ("159-assert-errors", "journeys/smoke.yaml"),
    ("160-wait-for-request-errors", "journeys/smoke.yaml"),
    ("161-hover-errors", "journeys/smoke.yaml"),
];

#[test]
fn the_schemas_reject_exactly_the_bad_fixtures_with_a_mistake_of_shape() {
    let validators: Vec<(FileKind, jsonschema::Validator)> =
        FileKind::ALL.iter().map(|k| (*k, validator(*k))).collect();
    let mut rejected = BTreeSet::new();
    for dir in bad_fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for rel in files_under(&dir) {
            let Some(kind) = kind_of(&rel) else { continue };
            let v = &validators.iter().find(|(k, _)| *k == kind).unwrap().1;
            let c = complaints(v, &dir.join(&rel));
            // A file that is not YAML has no shape to judge (the syntax-error fixtures).
            if !c.is_empty() && !c[0].starts_with("not YAML") {
                rejected.insert((name.clone(), rel.display().to_string()));
            }
        }
    }
    let listed: BTreeSet<(String, String)> = SHAPE_MISTAKES
        .iter()
        .map(|(d, f)| (d.to_string(), f.to_string()))
        .collect();
    assert_eq!(
        rejected, listed,
        "the schemas should refuse exactly the listed fixtures (left: refused, right: listed)"
    );
    // The loader refuses each of them too, naming the file the schema refuses.
    for (fixture, file) in SHAPE_MISTAKES {
        let dir = repo().join("tests/fixtures/bad").join(fixture);
        let errors = match Config::load(&dir.join("synmon.yaml")) {
            Ok(_) => panic!("{fixture}: the loader accepted it"),
            Err(e) => e.0,
        };
        let shown = format!(
            "{}:",
            dir.join(file).strip_prefix(repo()).unwrap().display()
        );
        let cwd_relative = |d: &synmon::config::Diagnostic| {
            let s = d.to_string();
            s.starts_with(&shown) || s.contains(&format!("/{shown}"))
        };
        assert!(
            errors.iter().any(cwd_relative),
            "{fixture}: no loader error names {file}: {errors:#?}"
        );
    }
}

/// The schema's actions of a journey step are the loader's: the loader lists them when a step
/// has none.
#[test]
fn a_steps_actions_in_the_schema_are_the_loaders() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("j.yaml");
    std::fs::write(&file, "steps:\n  - name: nothing\n").unwrap();
    let ctx = synmon::journey::LoadContext {
        variables: BTreeSet::new(),
        step_timeout: std::time::Duration::from_secs(10),
        navigation_timeout: std::time::Duration::from_secs(10),
        has_database: false,
        has_tenant: true,
        has_credentials: true,
    };
    let errors = synmon::journey::load_file(&file, &ctx).expect_err("a step without an action");
    let message = errors
        .iter()
        .find_map(|d| {
            d.message
                .strip_prefix("step has no action; expected one of: ")
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no `step has no action` error in {errors:#?}"));
    let loader: BTreeSet<String> = message.split(", ").map(str::to_string).collect();
    let schema: BTreeSet<String> = synmon::schema::step_actions().into_iter().collect();
    assert_eq!(
        schema, loader,
        "schema (left) vs loader (right): a key of RawStep that is not an action belongs in the \
         `besides` of its `ExactlyOneKey` schema transform"
    );
}

/// `synmon schema KIND` prints what the library generates; `--write DIR` writes all four files;
/// neither (or both) is a usage error.
#[test]
fn synmon_schema_prints_and_writes_the_schemas() {
    let synmon = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_synmon"))
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .expect("run synmon")
    };
    for (arg, kind) in [
        ("config", FileKind::Config),
        ("journey", FileKind::Journey),
        ("alerts", FileKind::Alerts),
        ("alert-tests", FileKind::AlertTests),
    ] {
        let out = synmon(&["schema", arg]);
        assert_eq!(out.status.code(), Some(0), "{arg}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), text(kind), "{arg}");
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("schemas");
    let out = synmon(&["schema", "--write", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    for kind in FileKind::ALL {
        let written = std::fs::read_to_string(target.join(kind.file_name())).unwrap();
        assert_eq!(written, text(kind), "{kind:?}");
    }
    assert_eq!(synmon(&["schema"]).status.code(), Some(2));
    assert_eq!(
        synmon(&["schema", "config", "--write", target.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    // A folder that cannot be created: a file stands in its way.
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "").unwrap();
    let out = synmon(&["schema", "--write", blocked.join("x").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot create"));
}

/// Each shipped example file names its kind's schema on its first line, by a path that leads
/// from the file's folder to the file in `schemas/` (yaml-language-server resolves it so).
#[test]
fn every_example_file_names_its_schema_on_its_first_line() {
    let files = example_files();
    assert!(files.len() >= 10, "{files:?}");
    for (kind, file) in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let Some(target) = first.strip_prefix("# yaml-language-server: $schema=") else {
            panic!("{}: the first line is {first:?}", file.display());
        };
        let resolved = file.parent().unwrap().join(target).canonicalize();
        let want = repo()
            .join("schemas")
            .join(kind.file_name())
            .canonicalize()
            .unwrap();
        assert_eq!(
            resolved.ok(),
            Some(want),
            "{}: `{target}` is not its schema",
            file.display()
        );
    }
}

/// An editor's view, through the real yaml-language-server (the engine of VS Code's YAML
/// extension and others; npm, pinned in `.ci/node`), speaking LSP over stdio: it follows each
/// file's `$schema` line and publishes the schema's complaints as diagnostics.
struct Editor {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    messages: std::sync::mpsc::Receiver<serde_json::Value>,
    next_id: u64,
}

impl Editor {
    fn start(root: &Path) -> Editor {
        use std::io::{BufRead, Read};
        let server =
            repo().join(".ci/node/node_modules/yaml-language-server/bin/yaml-language-server");
        assert!(
            server.is_file(),
            "yaml-language-server not found at {}: run `npm ci --prefix .ci/node` (scripts/test.sh does)",
            server.display()
        );
        let mut child = std::process::Command::new("node")
            .arg(&server)
            .arg("--stdio")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, messages) = std::sync::mpsc::channel();
        // LSP framing: headers, a blank line, `Content-Length` bytes of JSON.
        std::thread::spawn(move || {
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        length = v.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("a Content-Length header")];
                if stdout.read_exact(&mut body).is_err() {
                    return;
                }
                if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                    return;
                }
            }
        });
        let mut editor = Editor {
            child,
            stdin,
            messages,
            next_id: 1,
        };
        editor.request(
            "initialize",
            serde_json::json!({
                "processId": null,
                "rootUri": format!("file://{}", root.display()),
                "capabilities": { "workspace": { "configuration": true } }
            }),
        );
        editor.notify("initialized", serde_json::json!({}));
        editor.notify(
            "workspace/didChangeConfiguration",
            serde_json::json!({ "settings": { "yaml": { "validate": true } } }),
        );
        editor
    }

    fn send(&mut self, message: serde_json::Value) {
        use std::io::Write;
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: serde_json::Value) {
        self.send(serde_json::json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and waits for its answer, serving the server's own requests meanwhile.
    fn request(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(
            serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }),
        );
        self.until(|m| (m["id"] == id && m.get("method").is_none()).then(|| m["result"].clone()))
    }

    /// The next message `pick` takes; the server's requests (its settings) are answered on
    /// the way. Waits at most 60 s for it.
    fn until<T>(&mut self, mut pick: impl FnMut(&serde_json::Value) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let m = self
                .messages
                .recv_timeout(left)
                .expect("yaml-language-server answers within 60 s");
            if let (Some(id), Some(method)) = (m.get("id"), m["method"].as_str()) {
                let result = match method {
                    "workspace/configuration" => {
                        let n = m["params"]["items"].as_array().map_or(1, Vec::len);
                        serde_json::Value::Array(vec![serde_json::json!({ "validate": true }); n])
                    }
                    _ => serde_json::Value::Null,
                };
                let answer = serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": result });
                self.send(answer);
                continue;
            }
            if let Some(t) = pick(&m) {
                return t;
            }
        }
    }

    /// Opens `file` and returns the diagnostics the server publishes for it, as
    /// `(0-based line, message)`.
    fn diagnostics(&mut self, file: &Path) -> Vec<(u64, String)> {
        let uri = format!("file://{}", file.display());
        let text = std::fs::read_to_string(file).unwrap();
        self.notify(
            "textDocument/didOpen",
            serde_json::json!({
                "textDocument": { "uri": uri, "languageId": "yaml", "version": 1, "text": text }
            }),
        );
        self.until(|m| {
            (m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri).then(
                || {
                    m["params"]["diagnostics"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|d| {
                            let line = d["range"]["start"]["line"].as_u64().unwrap_or(0);
                            (line, d["message"].as_str().unwrap_or("").to_string())
                        })
                        .collect()
                },
            )
        })
    }
}

impl Editor {
    /// The labels the server offers to complete at `line`:`character` (0-based) of `file`,
    /// which must be open.
    fn completions(&mut self, file: &Path, line: u64, character: u64) -> BTreeSet<String> {
        let result = self.request(
            "textDocument/completion",
            serde_json::json!({
                "textDocument": { "uri": format!("file://{}", file.display()) },
                "position": { "line": line, "character": character }
            }),
        );
        let items = result
            .get("items")
            .and_then(|i| i.as_array())
            .or_else(|| result.as_array())
            .cloned()
            .unwrap_or_default();
        items
            .iter()
            .filter_map(|i| i["label"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Editor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_editor_follows_the_schema_line_flags_mistakes_and_completes_steps() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let mut editor = Editor::start(&root);

    // The examples as they are in the repo: nothing to flag.
    for (_, file) in example_files() {
        let d = editor.diagnostics(&file);
        assert!(d.is_empty(), "{}: {d:?}", file.display());
    }

    // Mistakes, in files laid out like the repo's and headed by the examples' own lines.
    let first_line = |example: &str| {
        let text = std::fs::read_to_string(repo().join(example)).unwrap();
        text.lines().next().unwrap().to_string()
    };
    std::fs::create_dir_all(root.join("journeys")).unwrap();
    std::fs::create_dir_all(root.join("schemas")).unwrap();
    for kind in FileKind::ALL {
        std::fs::copy(
            repo().join("schemas").join(kind.file_name()),
            root.join("schemas").join(kind.file_name()),
        )
        .unwrap();
    }
    let journey = root.join("journeys/bad.yaml");
    std::fs::write(
        &journey,
        format!(
            "{}\nname: bad\nsteps:\n  - goto: /\n    click: a\n  - fill: {{ selector: a, valu: b }}\n",
            first_line("journeys/align_category.yaml")
        ),
    )
    .unwrap();
    let d = editor.diagnostics(&journey);
    let at = |line: u64, needle: &str| d.iter().any(|(l, m)| *l == line && m.contains(needle));
    assert!(
        at(3, "only one must validate"),
        "two actions in one step: {d:?}"
    );
    assert!(at(5, "valu is not allowed"), "an unknown key: {d:?}");
    assert!(at(5, "Missing property \"value\""), "a missing key: {d:?}");

    // Completion: a new step is offered every action; the loader's list is the schema's.
    let fresh = root.join("journeys/new.yaml");
    std::fs::write(
        &fresh,
        format!(
            "{}\nsteps:\n  - \n",
            first_line("journeys/align_category.yaml")
        ),
    )
    .unwrap();
    editor.diagnostics(&fresh);
    let offered = editor.completions(&fresh, 2, 4);
    for action in synmon::schema::step_actions() {
        assert!(
            offered.contains(&action),
            "`{action}` not offered: {offered:?}"
        );
    }

    let config = root.join("synmon.yaml");
    std::fs::write(
        &config,
        format!(
            "{}\ntargets: {{ staging: {{ base_url: 'http://127.0.0.1:3000' }} }}\ntenant: t\ncredentials: {{ username: u, password: p }}\ndefualt_target: staging\nwebdriver: {{ sessions: two }}\n",
            first_line("synmon.example.yaml")
        ),
    )
    .unwrap();
    let d = editor.diagnostics(&config);
    let at = |line: u64, needle: &str| d.iter().any(|(l, m)| *l == line && m.contains(needle));
    assert!(
        at(4, "defualt_target is not allowed"),
        "an unknown key: {d:?}"
    );
    assert!(at(5, "Incorrect type"), "a wrong type: {d:?}");
}

/// A step's edge cases of shape, judged by the loader and by the schema alike: a key written
/// `null` is absent to the loader, so it neither counts as a second action nor keeps `use`
/// from standing alone; `until: null` is refused by both.
#[test]
fn the_journey_schema_and_the_loader_agree_on_a_steps_shape() {
    let cases: &[(&str, &str)] = &[
        ("one action", "  - goto: /\n"),
        (
            "an action and its common keys",
            "  - click: a\n    name: n\n    timeout: 5s\n    timed: true\n    until: { selector: b }\n",
        ),
        ("two actions", "  - goto: /\n    click: a\n"),
        ("no action", "  - name: nothing\n"),
        ("a null beside an action", "  - goto: null\n    click: a\n"),
        ("only a null action", "  - goto: null\n"),
        ("use alone", "  - use: _shared.yaml\n"),
        ("use with a name", "  - use: _shared.yaml\n    name: n\n"),
        (
            "use with a null name",
            "  - use: _shared.yaml\n    name: null\n",
        ),
        ("until null", "  - click: a\n    until: null\n"),
        (
            "a poll",
            "  - poll: { every: 1s, timeout: 5s, step: { goto: / } }\n",
        ),
        (
            "a poll of two actions",
            "  - poll: { every: 1s, timeout: 5s, step: { goto: /, click: a } }\n",
        ),
        ("a timeout without unit", "  - goto: /\n    timeout: 5\n"),
        ("a timeout of fractions", "  - goto: /\n    timeout: 1.5s\n"),
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("_shared.yaml"), "steps:\n  - goto: /\n").unwrap();
    let ctx = synmon::journey::LoadContext {
        variables: BTreeSet::new(),
        step_timeout: std::time::Duration::from_secs(10),
        navigation_timeout: std::time::Duration::from_secs(10),
        has_database: false,
        has_tenant: true,
        has_credentials: true,
    };
    let v = validator(FileKind::Journey);
    let mut disagreements = Vec::new();
    let mut accepted = 0;
    for (name, steps) in cases {
        let file = dir.path().join("j.yaml");
        std::fs::write(&file, format!("steps:\n{steps}")).unwrap();
        let loader = synmon::journey::load_file(&file, &ctx);
        let schema = complaints(&v, &file);
        accepted += usize::from(loader.is_ok());
        if loader.is_ok() != schema.is_empty() {
            disagreements.push(format!(
                "{name}: loader {}, schema {schema:?}",
                match &loader {
                    Ok(_) => "accepts".to_string(),
                    Err(e) => format!("refuses ({e:?})"),
                }
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    // Both verdicts occur: the table is not all one way.
    assert!(accepted > 3 && accepted < cases.len() - 3, "{accepted}");
}

/// An alert file's edge cases of shape, judged by the loader and by the schema alike: an SLO's
/// `sli` holds exactly one kind, numbers are numbers, `null` is absent.
#[test]
fn the_alerts_schema_and_the_loader_agree_on_shape() {
    const EVENTS: &str = "events: { metric: synmon.check.runs, good: { outcome: pass }, total: { outcome: \"=~pass|fail\" } }";
    const LATENCY: &str = "latency: { metric: synmon.check.latency, threshold_ms: 400 }";
    let slo = |sli: &str, extra: &str| {
        format!("slos:\n  - name: s\n    objective: 99\n    sli: {{ {sli} }}\n{extra}")
    };
    let rule = |threshold: &str| {
        format!(
            "rules:\n  - alert: a\n    metric: synmon.check.latency\n    aggregate: p95\n    op: \">\"\n    threshold: {threshold}\n"
        )
    };
    let cases: Vec<(&str, String)> = vec![
        ("an events SLO", slo(EVENTS, "")),
        ("a latency SLO", slo(LATENCY, "")),
        (
            "an SLI of two kinds",
            slo(&format!("{EVENTS}, {LATENCY}"), ""),
        ),
        ("an SLI of no kind", slo("", "")),
        (
            "an SLI kind written null",
            slo(&format!("{EVENTS}, latency: null"), ""),
        ),
        (
            "min_coverage as a number",
            slo(EVENTS, "    min_coverage: 0.5\n"),
        ),
        (
            "min_coverage as text",
            slo(EVENTS, "    min_coverage: half\n"),
        ),
        (
            "a list with nothing after it",
            "rules:\nslos:\n".to_string(),
        ),
        ("a threshold", rule("400")),
        ("a threshold as text", rule("\"400\"")),
        ("a threshold with a unit", rule("400ms")),
    ];
    let dir = tempfile::tempdir().unwrap();
    let v = validator(FileKind::Alerts);
    let mut disagreements = Vec::new();
    let mut accepted = 0;
    for (name, text) in &cases {
        let file = dir.path().join("rules.yaml");
        std::fs::write(&file, text).unwrap();
        let (_, errors) = synmon::rules::load_files(std::slice::from_ref(&file));
        let schema = complaints(&v, &file);
        accepted += usize::from(errors.is_empty());
        if errors.is_empty() != schema.is_empty() {
            disagreements.push(format!("{name}: loader {errors:?}, schema {schema:?}"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(accepted > 2 && accepted < cases.len() - 2, "{accepted}");
}

/// `synmon.yaml`'s edge cases of shape, judged by the loader and by the schema alike: the
/// schema sees the file before `${VAR}` expansion, so a duration or a secret may be a
/// reference, while a number or a flag may not (the loader reads it as text).
#[test]
fn the_config_schema_and_the_loader_agree_on_shape() {
    let cases: &[(&str, &str)] = &[
        ("the minimum", ""),
        (
            "a duration from the environment",
            "retention: ${SCHEMA_TEST_UNSET_RETENTION:-35d}\n",
        ),
        (
            "a password from the environment",
            "database: { url: '${SCHEMA_TEST_UNSET_DB:-sqlite://x.db}' }\n",
        ),
        (
            "a count from the environment",
            "webdriver: { sessions: '${SCHEMA_TEST_UNSET_N:-2}' }\n",
        ),
        ("a flag as text", "webdriver: { headless: 'true' }\n"),
        ("a section written null", "store: null\n"),
        (
            "sections with nothing after them",
            "checks:\nreceivers:\nvariables:\n",
        ),
        ("a list item with nothing in it", "checks:\n  tcp:\n    -\n"),
        ("an isolation", "webdriver: { isolation: session }\n"),
        ("an unknown isolation", "webdriver: { isolation: tabs }\n"),
        (
            "a console receiver",
            "receivers: [ { name: c, type: console } ]\n",
        ),
        (
            "an unknown receiver type",
            "receivers: [ { name: c, type: teams } ]\n",
        ),
        (
            "a receiver with another's key",
            "receivers: [ { name: c, type: console, channel: '#a' } ]\n",
        ),
        (
            "a query per dialect",
            "database: { url: 'sqlite://x.db' }\nchecks: { sql: [ { name: q, metric: feed_push_queue_depth, query: { sqlite: 'SELECT 1 AS value' } } ] }\n",
        ),
        (
            "a query as a list",
            "database: { url: 'sqlite://x.db' }\nchecks: { sql: [ { name: q, metric: feed_push_queue_depth, query: [ 'SELECT 1' ] } ] }\n",
        ),
        ("a duration without unit", "checks: { interval: 30 }\n"),
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("journeys")).unwrap();
    std::fs::write(
        dir.path().join("journeys/smoke.yaml"),
        "steps:\n  - goto: /\n",
    )
    .unwrap();
    let env: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let v = validator(FileKind::Config);
    let mut disagreements = Vec::new();
    let mut accepted = 0;
    for (name, extra) in cases {
        let file = dir.path().join("synmon.yaml");
        std::fs::write(
            &file,
            format!(
                "targets: {{ staging: {{ base_url: 'http://127.0.0.1:1' }} }}\ntenant: t\ncredentials: {{ username: u, password: secret }}\n{extra}"
            ),
        )
        .unwrap();
        let loader = Config::load_with_env(&file, &env);
        let schema = complaints(&v, &file);
        accepted += usize::from(loader.is_ok());
        if loader.is_ok() != schema.is_empty() {
            disagreements.push(format!(
                "{name}: loader {}, schema {schema:?}",
                match &loader {
                    Ok(_) => "accepts".to_string(),
                    Err(e) => format!("refuses ({e})"),
                }
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(accepted > 3 && accepted < cases.len() - 3, "{accepted}");
}
