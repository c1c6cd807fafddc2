//! `/api/v2/` against Alertmanager's own API definitions: every endpoint's answers (firing,
//! silenced and inhibited alerts; active, pending and expired silences; refusals) validated
//! with a JSON-schema validator against the response schema the spec gives for that path,
//! method and status; then what the answers say, and who may ask.
//!
//! The spec is the Swagger document of Alertmanager's `api/v2/openapi.yaml`, taken from
//! Debian's `golang-github-prometheus-alertmanager-dev` by `scripts/alertmanager-openapi.sh`
//! (which `scripts/test.sh` runs; see `tests/fixtures/alertmanager/README.md`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::{AUTH_TOKEN, AmDaemon, hook_names};

/// Alertmanager's API v2 document, and the check of one answer against it.
struct Spec {
    doc: Value,
}

impl Spec {
    fn path() -> PathBuf {
        if let Ok(p) = std::env::var("SYNMON_ALERTMANAGER_OPENAPI") {
            return PathBuf::from(p);
        }
        let system = PathBuf::from("/usr/local/share/synmon/alertmanager-openapi.json");
        let home = std::env::var("HOME")
            .map(|h| PathBuf::from(h).join(".cache/synmon/alertmanager-openapi.json"))
            .unwrap_or_default();
        if !system.exists() && home.exists() {
            home
        } else {
            system
        }
    }

    fn load() -> Spec {
        let path = Self::path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "Alertmanager's API v2 definitions are not at {} ({e}): run scripts/alertmanager-openapi.sh",
                path.display()
            )
        });
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["basePath"], "/api/v2/", "{}", path.display());
        Spec { doc }
    }

    /// Validates `body` (`Null`: no body) as the answer `status` to `method path` (the spec's
    /// path template, `/silence/{silenceID}`), resolving `$ref`s into the spec's definitions.
    fn check(&self, method: &str, path: &str, status: u16, body: &Value) {
        let errors = self.errors(method, path, status, body);
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match the spec: {errors:#?}\n{body:#}"
        );
    }

    /// What the spec finds wrong with `body` as that answer.
    fn errors(&self, method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
        let op = &self.doc["paths"][path][method];
        assert!(op.is_object(), "the spec has no {method} {path}");
        let mut answer = &op["responses"][status.to_string()];
        assert!(
            answer.is_object(),
            "{method} {path}: the spec lists no {status} answer; got {body}"
        );
        if let Some(r) = answer["$ref"].as_str() {
            answer = &self.doc["responses"][r.trim_start_matches("#/responses/")];
        }
        let Some(schema) = answer.get("schema") else {
            return Vec::new();
        };
        let mut schema = schema.clone();
        schema["definitions"] = self.doc["definitions"].clone();
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }
}

struct Answer {
    status: u16,
    body: Value,
}

async fn call(
    method: reqwest::Method,
    url: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    Answer { status, body }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// A silence body as Grafana and amtool post it.
fn postable(am: &AmDaemon, matchers: Value, starts_in: i64, comment: &str) -> Value {
    let start = am.now() + chrono::Duration::seconds(starts_in);
    json!({
        "matchers": matchers,
        "startsAt": start.to_rfc3339(),
        "endsAt": (start + chrono::Duration::hours(1)).to_rfc3339(),
        "createdBy": "grafana-user",
        "comment": comment,
    })
}

/// The alerts of a `/api/v2/alerts` answer by alert name.
fn by_name(alerts: &Value) -> BTreeMap<String, Value> {
    alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_string(),
                a.clone(),
            )
        })
        .collect()
}

fn names(alerts: &Value) -> Vec<String> {
    by_name(alerts).into_keys().collect()
}

/// Every endpoint's answers validated against the spec, with a firing, a silenced (by a regex
/// and a negative matcher) and an inhibited alert, and an active, a pending and an expired
/// silence in them; the filters, the receivers' regex and the silence order as Alertmanager
/// has them; refusals are 400 with a JSON string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_alertmanagers_api_definitions() {
    let spec = Spec::load();
    // The validator follows the `$ref`s and checks formats: it is not satisfied by anything.
    let partial = json!([{"labels": {"alertname": "x"}, "startsAt": "yesterday"}]);
    let wrong = spec.errors("get", "/alerts", 200, &partial);
    assert!(
        wrong
            .iter()
            .any(|e| e.contains("\"status\" is a required property"))
            && wrong.iter().any(|e| e.contains("date-time")),
        "{wrong:#?}"
    );
    let am = AmDaemon::start(false).await;
    let base = format!("{}/api/v2", am.d.base_url());
    let admin = bearer(&am.token(json!({})));
    let post = async |body: Value| {
        let a = call(
            reqwest::Method::POST,
            &format!("{base}/silences"),
            Some(&admin),
            Some(body),
        )
        .await;
        spec.check("post", "/silences", a.status, &a.body);
        a
    };

    // Silences: one muting hook_noisy (a regex and a negative matcher), one expired, one
    // pending.
    let noisy = post(postable(
        &am,
        json!([
            {"name": "alertname", "value": "hook_noi.*", "isRegex": true},
            {"name": "route", "value": "page", "isRegex": false, "isEqual": false},
        ]),
        0,
        "noisy during the migration",
    ))
    .await;
    assert_eq!(noisy.status, 200, "{}", noisy.body);
    let noisy = noisy.body["silenceID"].as_str().unwrap().to_string();
    let gone = post(postable(
        &am,
        json!([
            {"name": "alertname", "value": "hook_plain", "isRegex": false},
            {"name": "route", "value": "hook", "isRegex": false},
        ]),
        0,
        "expired below",
    ))
    .await;
    let gone = gone.body["silenceID"].as_str().unwrap().to_string();
    let del = call(
        reqwest::Method::DELETE,
        &format!("{base}/silence/{gone}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(del.status, 200, "{}", del.body);
    spec.check("delete", "/silence/{silenceID}", del.status, &del.body);
    let later = post(postable(
        &am,
        json!([
            {"name": "check", "value": "align_category", "isRegex": false},
            {"name": "route", "value": "hook", "isRegex": false},
        ]),
        3600,
        "tonight's window",
    ))
    .await;
    let later = later.body["silenceID"].as_str().unwrap().to_string();

    // What the webhook receives: neither the silenced nor the inhibited alert.
    am.fire().await;
    am.d.notify_now().await.unwrap();
    let bodies = am.hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    assert_eq!(hook_names(&bodies[0]), ["hook_plain", "hook_source"]);

    let get = async |path: &str, query: &str| {
        let a = call(
            reqwest::Method::GET,
            &format!("{base}{path}{query}"),
            None,
            None,
        )
        .await;
        let template = if path.starts_with("/silence/") {
            "/silence/{silenceID}"
        } else {
            path
        };
        spec.check("get", template, a.status, &a.body);
        a
    };

    let status = get("/status", "").await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["cluster"]["status"], "disabled");
    let original = status.body["config"]["original"].as_str().unwrap();
    assert!(original.contains("receiver: hook"), "{original}");
    assert!(original.contains(r#"route="page""#), "{original}");
    assert!(
        original.contains(r#"alertname="hook_source""#),
        "{original}"
    );

    let receivers = get("/receivers", "").await;
    let mut got: Vec<&str> = receivers
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, ["console", "hook", "pagerduty"]);

    let alerts = get("/alerts", "").await;
    assert_eq!(alerts.status, 200);
    let all = by_name(&alerts.body);
    assert_eq!(
        all.keys().collect::<Vec<_>>(),
        [
            "hook_noisy",
            "hook_plain",
            "hook_source",
            "hook_target",
            "page_down"
        ]
    );
    let state = |n: &str| all[n]["status"].clone();
    assert_eq!(
        state("hook_noisy"),
        json!({"state": "suppressed", "silencedBy": [noisy], "inhibitedBy": []})
    );
    assert_eq!(
        state("hook_target"),
        json!({"state": "suppressed", "silencedBy": [], "inhibitedBy": [all["hook_source"]["fingerprint"]]})
    );
    assert_eq!(
        state("hook_plain"),
        json!({"state": "active", "silencedBy": [], "inhibitedBy": []}),
        "an expired silence mutes nothing"
    );
    assert_eq!(
        all["page_down"]["receivers"],
        json!([{"name": "pagerduty"}])
    );
    assert_eq!(all["hook_plain"]["receivers"], json!([{"name": "hook"}]));
    assert_eq!(all["hook_plain"]["labels"]["route"], "hook");
    assert!(all["hook_plain"]["annotations"]["summary"].is_string());
    let at = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(all["hook_plain"][k].as_str().unwrap()).unwrap()
    };
    assert_eq!(
        at("endsAt") - at("updatedAt"),
        chrono::Duration::seconds(4 * 30),
        "4 evaluation intervals (30 s by default) after the last evaluation"
    );
    assert_eq!(
        all["hook_plain"]["generatorURL"],
        format!("{}/", am.d.base_url()),
        "no run behind it: the status page"
    );

    // amtool's default query, filters and the receivers' regex.
    let shown = get(
        "/alerts",
        "?active=true&silenced=false&inhibited=false&unprocessed=false",
    )
    .await;
    assert_eq!(
        names(&shown.body),
        ["hook_plain", "hook_source", "page_down"]
    );
    let muted = get("/alerts", "?active=false").await;
    assert_eq!(names(&muted.body), ["hook_noisy", "hook_target"]);
    let filtered = get(
        "/alerts",
        "?filter=route%3D%22hook%22&filter=alertname%3D~hook_%28plain%7Csource%29",
    )
    .await;
    assert_eq!(names(&filtered.body), ["hook_plain", "hook_source"]);
    let paged = get("/alerts", "?receiver=pager.*").await;
    assert_eq!(names(&paged.body), ["page_down"]);
    let bad = get("/alerts", "?filter=alertname%3D~%28").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .as_str()
            .unwrap()
            .contains("is not a regular expression"),
        "{}",
        bad.body
    );

    let groups = get("/alerts/groups", "").await;
    assert_eq!(groups.status, 200);
    let sizes: Vec<(String, usize)> = groups
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["receiver"]["name"].as_str().unwrap().to_string(),
                g["alerts"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        sizes,
        [("hook".to_string(), 4), ("pagerduty".to_string(), 1)]
    );
    let hook_groups = get("/alerts/groups", "?receiver=hook&silenced=false").await;
    assert_eq!(hook_groups.body.as_array().unwrap().len(), 1);
    assert_eq!(
        names(&hook_groups.body[0]["alerts"]),
        ["hook_plain", "hook_source", "hook_target"]
    );

    // Silences: active, then pending, then expired.
    let silences = get("/silences", "").await;
    let order: Vec<(String, String)> = silences
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["status"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            (noisy.clone(), "active".to_string()),
            (later.clone(), "pending".to_string()),
            (gone.clone(), "expired".to_string()),
        ]
    );
    let only = get("/silences", "?filter=alertname%3Dhook_plain").await;
    assert_eq!(only.body.as_array().unwrap().len(), 1);
    assert_eq!(only.body[0]["id"], gone.as_str());

    let one = get(&format!("/silence/{noisy}"), "").await;
    assert_eq!(one.status, 200);
    assert_eq!(
        one.body["matchers"],
        json!([
            {"name": "alertname", "value": "hook_noi.*", "isRegex": true, "isEqual": true},
            {"name": "route", "value": "page", "isRegex": false, "isEqual": false},
        ])
    );
    assert_eq!(
        one.body["createdBy"], "alice",
        "the token's subject is the author"
    );
    assert_eq!(
        one.body["comment"],
        "noisy during the migration (sent as createdBy: grafana-user)"
    );
    let missing = get("/silence/8a7e3a55-0b1f-4d7e-9d55-3f1c2a9b0c11", "").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.is_string());

    // Refusals: 400 with a JSON string that says why.
    let refusals = [
        (
            json!([
                {"name": "check", "value": "a.*", "isRegex": true},
                {"name": "check", "value": "ab", "isRegex": false, "isEqual": false},
            ]),
            "`check` has more than one matcher; a synmon silence takes one matcher per label (join them into one regex)",
        ),
        (
            json!([{"name": "check", "value": ".*", "isRegex": true}]),
            "at least one matcher must not match the empty string: this silence would mute every alert without its labels",
        ),
        (
            json!([{"name": "route", "value": "page", "isRegex": false}]),
            "a silence that mutes a PagerDuty route needs a step-up token (`amr` with `step_up`)",
        ),
        (
            json!([{"name": "check", "value": "(", "isRegex": true}]),
            "matchers.check: `(` is not a regular expression: unclosed group",
        ),
        (json!([]), "`matchers` must name at least one label"),
    ];
    for (matchers, why) in refusals {
        let a = post(postable(&am, matchers, 0, "refused")).await;
        assert_eq!((a.status, a.body.as_str()), (400, Some(why)));
    }
    let mut past = postable(
        &am,
        json!([
            {"name": "check", "value": "a", "isRegex": false},
            {"name": "route", "value": "hook", "isRegex": false},
        ]),
        -7200,
        "x",
    );
    past["endsAt"] = json!((am.now() - chrono::Duration::minutes(1)).to_rfc3339());
    let a = post(past).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, Some("`endsAt` is in the past"))
    );

    // The step-up token may mute the page; its silence then shows in the alert.
    let a = call(
        reqwest::Method::POST,
        &format!("{base}/silences"),
        Some(&bearer(&am.step_up_token())),
        Some(postable(
            &am,
            json!([{"name": "route", "value": "page", "isRegex": false}]),
            0,
            "failover",
        )),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let paged = get("/alerts", "?receiver=pagerduty").await;
    assert_eq!(
        paged.body[0]["status"]["silencedBy"],
        json!([a.body["silenceID"]])
    );

    // Replacing a silence (Grafana's edit): the old one expires, a new one takes its place.
    let mut edit = postable(
        &am,
        json!([
            {"name": "alertname", "value": "hook_noisy", "isRegex": false},
            {"name": "route", "value": "hook", "isRegex": false},
        ]),
        0,
        "narrowed",
    );
    edit["id"] = json!(noisy);
    let replaced = post(edit).await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let new_id = replaced.body["silenceID"].as_str().unwrap();
    assert_ne!(new_id, noisy);
    let old = get(&format!("/silence/{noisy}"), "").await;
    assert_eq!(old.body["status"]["state"], "expired");
    let alerts = get("/alerts", "").await;
    assert_eq!(
        by_name(&alerts.body)["hook_noisy"]["status"]["silencedBy"],
        json!([new_id])
    );
    am.d.stop().await;
}

/// Who may ask: with `server.auth_token` set, reads take that token (Bearer or Basic) or an
/// admin JWT; writes take only the admin JWT. Every refusal is a 400 with a JSON string.
/// `/api/v1/` keeps its own rules (a JWT does not read it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_take_the_auth_token_or_an_admin_jwt_and_writes_the_jwt() {
    use base64::Engine;
    let am = AmDaemon::start(true).await;
    let base = am.d.base_url();
    let admin = bearer(&am.token(json!({})));
    let tenant = bearer(&am.token(json!({"aud": "tenant"})));
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("ops:{AUTH_TOKEN}"))
    );
    let token = bearer(AUTH_TOKEN);
    let reads: [(&str, Option<&str>, u16); 5] = [
        ("none", None, 400),
        ("auth_token", Some(&token), 200),
        ("auth_token as Basic", Some(&basic), 200),
        ("admin JWT", Some(&admin), 200),
        ("JWT for another audience", Some(&tenant), 400),
    ];
    for (name, auth, want) in reads {
        for path in ["/api/v2/alerts", "/api/v2/silences", "/api/v2/status"] {
            let a = call(reqwest::Method::GET, &format!("{base}{path}"), auth, None).await;
            assert_eq!(a.status, want, "{name} {path}: {}", a.body);
            if want == 400 {
                assert!(
                    a.body
                        .as_str()
                        .unwrap()
                        .starts_with("authentication required"),
                    "{name}: {}",
                    a.body
                );
            }
        }
    }
    let body = postable(
        &am,
        json!([
            {"name": "alertname", "value": "hook_noisy", "isRegex": false},
            {"name": "route", "value": "hook", "isRegex": false},
        ]),
        0,
        "x",
    );
    let writes: [(&str, Option<&str>, u16, &str); 4] = [
        (
            "none",
            None,
            400,
            "missing bearer token (Authorization: Bearer <JWT>)",
        ),
        (
            "auth_token",
            Some(&token),
            400,
            "malformed token: not a JWT (three base64url parts: header, claims, signature)",
        ),
        (
            "JWT for another audience",
            Some(&tenant),
            400,
            "token audience must include `admin`",
        ),
        ("admin JWT", Some(&admin), 200, ""),
    ];
    for (name, auth, want, why) in writes {
        let a = call(
            reqwest::Method::POST,
            &format!("{base}/api/v2/silences"),
            auth,
            Some(body.clone()),
        )
        .await;
        assert_eq!(a.status, want, "{name}: {}", a.body);
        if want == 400 {
            assert_eq!(a.body, json!(why), "{name}");
        }
        let d = call(
            reqwest::Method::DELETE,
            &format!("{base}/api/v2/silence/8a7e3a55-0b1f-4d7e-9d55-3f1c2a9b0c11"),
            auth,
            None,
        )
        .await;
        assert_eq!(
            d.status,
            if want == 200 { 404 } else { 400 },
            "{name}: {}",
            d.body
        );
    }
    // synmon raises its own alerts: posting one is not served.
    let post_alert = call(
        reqwest::Method::POST,
        &format!("{base}/api/v2/alerts"),
        Some(&admin),
        Some(json!([{"labels": {"alertname": "x"}}])),
    )
    .await;
    assert_eq!(post_alert.status, 405);
    // /api/v1/ reads still take only the auth_token.
    let v1 = reqwest::Client::new()
        .get(format!("{base}/api/v1/silences"))
        .header("authorization", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(v1.status(), 401);
    am.d.stop().await;
}
