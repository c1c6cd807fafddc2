//! The real `amtool` (Debian's `prometheus-alertmanager`) against the daemon in-process:
//! `silence add`, `silence query`, `silence expire` and `alert query` through
//! `--http.config.file` with a bearer JWT, as an operator runs them. A silence added by amtool
//! keeps its alert out of the webhook's notifications until amtool expires it; a silence that
//! could mute the PagerDuty route without a step-up is refused, and amtool prints why.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};

use super::{AmDaemon, hook_names};

/// Runs amtool against one daemon, with its own `HOME` (no user's `amtool.yml` applies).
struct Amtool {
    url: String,
    home: PathBuf,
}

impl Amtool {
    fn new(am: &AmDaemon) -> Amtool {
        Amtool {
            url: am.d.base_url(),
            home: am.dir().to_path_buf(),
        }
    }

    /// An `--http.config.file` carrying `token` as the bearer credentials.
    fn http_config(&self, name: &str, token: &str) -> PathBuf {
        let file = self.home.join(format!("{name}.yml"));
        std::fs::write(
            &file,
            format!("authorization:\n  type: Bearer\n  credentials: \"{token}\"\n"),
        )
        .unwrap();
        file
    }

    async fn run(&self, http_config: &Path, args: &[&str]) -> Output {
        let mut cmd = tokio::process::Command::new("amtool");
        cmd.arg(format!("--alertmanager.url={}", self.url))
            .arg(format!("--http.config.file={}", http_config.display()))
            .arg("--timeout=20s")
            .args(args)
            .env("HOME", &self.home)
            .kill_on_drop(true);
        // amtool bounds its own requests (`--timeout`); this bounds the process.
        tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("amtool finishes")
            .expect(
                "amtool runs (Debian package prometheus-alertmanager; scripts/test.sh installs it)",
            )
    }

    /// Runs amtool and returns its stdout, asserting it succeeded.
    async fn ok(&self, http_config: &Path, args: &[&str]) -> String {
        let out = self.run(http_config, args).await;
        assert!(
            out.status.success(),
            "amtool {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    async fn json(&self, http_config: &Path, args: &[&str]) -> Value {
        let mut a = vec!["-o", "json"];
        a.extend_from_slice(args);
        let out = self.ok(http_config, &a).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("amtool {args:?}: {e}: {out}"))
    }
}

fn alert_names(alerts: &Value) -> Vec<String> {
    let mut v: Vec<String> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// amtool adds a silence for `hook_noisy` (recorded as the token's subject, amtool's author
/// kept in the comment); the next notification leaves it out; `alert query` shows it only when
/// asked for silenced alerts; `silence expire` ends the silence, and the next notification
/// brings the alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_silence_mutes_the_webhook_until_amtool_expires_it() {
    let am = AmDaemon::start(false).await;
    let tool = Amtool::new(&am);
    let admin = tool.http_config("admin", &am.token(json!({})));

    // amtool would stamp the start with the real time, a moment after the daemon's manual
    // clock was set from it: the start is given as the daemon's now (amtool also judges
    // `silence query` by the real time, so the daemon's clock must not run ahead of it).
    let start = format!(
        "--start={}",
        am.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let id = tool
        .ok(
            &admin,
            &[
                "silence",
                "add",
                "alertname=hook_noisy",
                "route=hook",
                "--comment=noisy during the migration",
                "--author=ops-laptop-user",
                "--duration=2h",
                &start,
            ],
        )
        .await
        .trim()
        .to_string();
    assert_eq!(id.len(), 36, "amtool prints the new silence's id: {id}");

    let silences = tool.json(&admin, &["silence", "query"]).await;
    assert_eq!(silences.as_array().unwrap().len(), 1, "{silences:#}");
    let s = &silences[0];
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["status"]["state"], "active");
    assert_eq!(s["createdBy"], "alice");
    assert_eq!(
        s["comment"],
        "noisy during the migration (sent as createdBy: ops-laptop-user)"
    );
    assert_eq!(
        s["matchers"],
        json!([
            {"name": "alertname", "value": "hook_noisy", "isRegex": false, "isEqual": true},
            {"name": "route", "value": "hook", "isRegex": false, "isEqual": true},
        ])
    );
    let table = tool
        .ok(&admin, &["silence", "query", "alertname=hook_noisy"])
        .await;
    assert!(table.contains(&id) && table.contains("alice"), "{table}");

    am.fire().await;
    am.d.notify_now().await.unwrap();
    let bodies = am.hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    assert_eq!(
        hook_names(&bodies[0]),
        ["hook_plain", "hook_source"],
        "neither the silenced nor the inhibited alert is notified"
    );

    // amtool's default shows active alerts only; the silenced and the inhibited on request.
    let active = tool.json(&admin, &["alert", "query"]).await;
    assert_eq!(
        alert_names(&active),
        ["hook_plain", "hook_source", "page_down"]
    );
    let silenced = tool.json(&admin, &["alert", "query", "--silenced"]).await;
    assert_eq!(alert_names(&silenced), ["hook_noisy"]);
    assert_eq!(silenced[0]["status"]["silencedBy"], json!([id]));
    let inhibited = tool.json(&admin, &["alert", "query", "--inhibited"]).await;
    assert_eq!(alert_names(&inhibited), ["hook_target"]);
    let hook = tool
        .json(&admin, &["alert", "query", "-a", "-s", "-i", "route=hook"])
        .await;
    assert_eq!(
        alert_names(&hook),
        ["hook_noisy", "hook_plain", "hook_source", "hook_target"]
    );
    let table = tool.ok(&admin, &["alert", "query"]).await;
    assert!(
        table.contains("hook_plain") && !table.contains("hook_noisy"),
        "{table}"
    );

    tool.ok(&admin, &["silence", "expire", &id]).await;
    let left = tool.json(&admin, &["silence", "query"]).await;
    assert_eq!(left, json!([]), "amtool lists active silences by default");
    let expired = tool.json(&admin, &["silence", "query", "--expired"]).await;
    assert_eq!(expired[0]["id"], id.as_str());
    assert_eq!(expired[0]["status"]["state"], "expired");

    am.clock.advance(chrono::Duration::seconds(2));
    am.d.notify_now().await.unwrap();
    let bodies = am.hook.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:#?}");
    assert_eq!(
        hook_names(&bodies[1]),
        ["hook_noisy", "hook_plain", "hook_source"],
        "the expired silence no longer mutes"
    );
    am.d.stop().await;
}

/// A silence that could mute the PagerDuty route needs a step-up token: amtool with a plain
/// admin token is refused and prints the reason; with a fresh step-up it is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_prints_why_a_pagerduty_silence_needs_a_step_up() {
    let am = AmDaemon::start(false).await;
    let tool = Amtool::new(&am);
    let plain = tool.http_config("admin", &am.token(json!({})));
    let args = [
        "silence",
        "add",
        "route=~pa.*",
        "--comment=failover",
        "--author=ops",
    ];
    let out = tool.run(&plain, &args).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "a silence that mutes a PagerDuty route needs a step-up token (`amr` with `step_up`)"
        ),
        "amtool prints the reason: {stderr}"
    );
    let wrong = tool.http_config("tenant", &am.token(json!({"aud": "tenant"})));
    let out = tool.run(&wrong, &args).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("token audience must include `admin`"),
        "{stderr}"
    );
    let stepped = tool.http_config("step-up", &am.step_up_token());
    let id = tool.ok(&stepped, &args).await;
    let s = tool
        .json(&stepped, &["silence", "query", "route=~pa.*"])
        .await;
    assert_eq!(s[0]["id"], id.trim());
    am.d.stop().await;
}
