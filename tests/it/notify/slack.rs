//! The Slack receiver against the protocol-checking fake Slack (tests/it/fakes/slack.rs): post,
//! update on resend, resolve (update + threaded reply), the external screenshot upload,
//! retryable/permanent classification, the token kept out of errors and logs, and Slack's limits.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeZone;
use serde_json::Value;
use synmon::config::Secret;
use synmon::notify::message::{Condition, RunEvidence};
use synmon::notify::slack::{GroupState, Slack, SlackConfig};
use synmon::notify::{
    AlertInfo, Delivered, FailureKind, Notification, Receiver, SendContext, SendError, Status,
};

use crate::fakes::slack::{FakeSlack, Fault, TOKEN, png};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn alert(i: usize, status: Status, error: &str) -> AlertInfo {
    let t = chrono::Utc
        .with_ymd_and_hms(2026, 11, 27, 10, 0, 0)
        .unwrap();
    AlertInfo {
        fingerprint: format!("fp{i:03}"),
        status,
        labels: labels(&[
            ("alertname", "journey_failed"),
            ("severity", "critical"),
            ("check", "align_category"),
        ]),
        annotations: labels(&[
            ("summary", &format!("Align category journey fails #{i}")),
            ("runbook_url", "https://runbooks.example/align?x=1&y=2"),
        ]),
        starts_at: t,
        ends_at: (status == Status::Resolved).then_some(t),
        condition: Some(Condition {
            aggregate: "p95".into(),
            value: Some(612.0),
            op: ">".into(),
            threshold: 400.0,
            unit: "ms".into(),
            window: "5m".into(),
        }),
        affected: Vec::new(),
        run: Some(RunEvidence {
            run_id: format!("run-{i}"),
            check: "align_category".into(),
            target: "http://rvp.local/categories".into(),
            location: "local".into(),
            outcome: "fail".into(),
            started_at: t,
            total_ms: 812.0,
            failing_step: Some("save alignment".into()),
            error: Some(error.into()),
            steps: vec![],
            run_url: format!("http://synmon.local/runs/run-{i}"),
            screenshot_path: None,
            screenshot_url: None,
            failing_locations: vec!["local".into()],
            trace_id: None,
            trace_url: None,
        }),
    }
}

fn notification(status: Status, alerts: Vec<AlertInfo>) -> Notification {
    Notification {
        receiver: "slack-alerts".into(),
        group_key: "{}/{severity=~\"critical\"}:{check=\"align_category\"}".into(),
        group_labels: labels(&[("check", "align_category")]),
        common_labels: labels(&[("alertname", "journey_failed"), ("severity", "critical")]),
        common_annotations: BTreeMap::new(),
        status,
        alerts,
        external_url: "http://synmon.local".into(),
        test: false,
        created_at: chrono::Utc
            .with_ymd_and_hms(2026, 11, 27, 10, 5, 0)
            .unwrap(),
    }
}

fn firing() -> Notification {
    notification(
        Status::Firing,
        vec![alert(1, Status::Firing, "element #save not found")],
    )
}

fn resolved() -> Notification {
    notification(Status::Resolved, vec![alert(1, Status::Resolved, "")])
}

fn config(api_url: &str, token: &str) -> SlackConfig {
    SlackConfig {
        name: "slack-alerts".into(),
        api_url: reqwest::Url::parse(api_url).unwrap(),
        token: Secret::new(token),
        channel: "#alerts".into(),
        upload_screenshots: true,
        timeout: Duration::from_secs(5),
    }
}

fn receiver(fake: &FakeSlack) -> Slack {
    Slack::new(config(&fake.api_url(), fake.token())).unwrap()
}

fn ctx(outbox_id: i64, group_state: Option<&Value>) -> SendContext {
    SendContext {
        group_state: group_state.cloned(),
        outbox_id,
        attempt: 1,
    }
}

/// A later attempt at `outbox_id`: an earlier one started and its outcome was not recorded.
fn retry_ctx(outbox_id: i64, group_state: Option<&Value>) -> SendContext {
    SendContext {
        attempt: 2,
        ..ctx(outbox_id, group_state)
    }
}

fn state(d: &Delivered) -> GroupState {
    serde_json::from_value(d.group_state.clone().expect("group_state")).unwrap()
}

fn header(m: &Value) -> String {
    m[0]["text"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn firing_posts_one_block_kit_message_and_remembers_it() {
    let fake = FakeSlack::start().await;
    let slack = receiver(&fake);
    let d = slack.send(&firing(), &ctx(1, None)).await.unwrap();

    let calls = fake.calls();
    assert_eq!(fake.methods(), ["chat.postMessage"]);
    let post = &calls[0];
    assert!(post.ok(), "{:?}", post.response);
    assert!(post.authorized);
    assert!(post.content_type.starts_with("application/json"));
    assert_eq!(post.body["channel"], "#alerts");
    assert!(
        post.body["text"]
            .as_str()
            .unwrap()
            .contains("[FIRING:1] journey_failed")
    );

    let s = state(&d);
    assert_eq!(s.channel, fake.channel_id("#alerts"));
    assert_eq!(s.outbox_id, 1);
    assert!(!s.resolved);
    assert!(d.response.contains(&s.ts), "{}", d.response);

    let msgs = fake.top_level();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].ts, s.ts);
    assert!(header(&msgs[0].blocks).contains("[FIRING:1] journey_failed"));
    let section = msgs[0].blocks[2]["text"]["text"].as_str().unwrap();
    assert!(
        section.contains("*Value:* p95 612 ms &gt; 400 ms over 5m"),
        "{section}"
    );
    assert!(
        section.contains("<http://synmon.local/runs/run-1|View run>"),
        "{section}"
    );
    assert!(section.contains("|Runbook>"), "{section}");
}

#[tokio::test]
async fn resend_of_the_same_outbox_row_updates_instead_of_posting_a_duplicate() {
    let fake = FakeSlack::start().await;
    let slack = receiver(&fake);
    let first = slack.send(&firing(), &ctx(7, None)).await.unwrap();
    let st = first.group_state.clone();

    let again = slack.send(&firing(), &ctx(7, st.as_ref())).await.unwrap();
    assert_eq!(fake.methods(), ["chat.postMessage", "chat.update"]);
    assert!(fake.calls().iter().all(|c| c.ok()));
    let msgs = fake.messages();
    assert_eq!(
        msgs.len(),
        1,
        "no duplicate and no thread reply on a resend"
    );
    assert_eq!(msgs[0].edits, 1);
    assert_eq!(state(&again), state(&first));
}

#[tokio::test]
async fn repeat_of_a_firing_group_updates_the_message_and_replies_in_its_thread() {
    let fake = FakeSlack::start().await;
    let slack = receiver(&fake);
    let first = slack.send(&firing(), &ctx(1, None)).await.unwrap();
    let ts = state(&first).ts;

    let mut grown = firing();
    grown.alerts.push(alert(2, Status::Firing, "timeout"));
    let d = slack
        .send(&grown, &ctx(2, first.group_state.as_ref()))
        .await
        .unwrap();
    assert_eq!(
        fake.methods(),
        ["chat.postMessage", "chat.update", "chat.postMessage"]
    );
    assert_eq!(fake.top_level().len(), 1, "one message per episode");
    assert!(header(&fake.top_level()[0].blocks).contains("[FIRING:2]"));
    let thread = fake.thread(&ts);
    assert_eq!(thread.len(), 1);
    assert!(
        thread[0].text.contains("Still firing"),
        "{}",
        thread[0].text
    );
    let s = state(&d);
    assert_eq!((s.ts.as_str(), s.outbox_id), (ts.as_str(), 2));
}

#[tokio::test]
async fn resolve_updates_the_original_and_posts_a_threaded_resolve() {
    let fake = FakeSlack::start().await;
    let slack = receiver(&fake);
    let first = slack.send(&firing(), &ctx(1, None)).await.unwrap();
    let ts = state(&first).ts;

    let d = slack
        .send(&resolved(), &ctx(2, first.group_state.as_ref()))
        .await
        .unwrap();
    assert_eq!(
        fake.methods(),
        ["chat.postMessage", "chat.update", "chat.postMessage"]
    );
    let update = &fake.calls_to("chat.update")[0];
    assert_eq!(update.body["ts"], ts.as_str());
    assert_eq!(update.body["channel"], fake.channel_id("#alerts"));
    let top = fake.top_level();
    assert_eq!(top.len(), 1);
    assert!(
        header(&top[0].blocks).starts_with(":white_check_mark: [RESOLVED:1] journey_failed"),
        "{}",
        header(&top[0].blocks)
    );
    let thread = fake.thread(&ts);
    assert_eq!(thread.len(), 1);
    assert!(thread[0].text.contains("Resolved"), "{}", thread[0].text);
    let s = state(&d);
    assert!(s.resolved);

    // A resend of the resolve (same row) edits again and does not reply twice.
    slack
        .send(&resolved(), &ctx(2, d.group_state.as_ref()))
        .await
        .unwrap();
    assert_eq!(fake.thread(&ts).len(), 1);

    // The next episode gets its own message, not an edit of the resolved one.
    let next = slack
        .send(&firing(), &ctx(3, d.group_state.as_ref()))
        .await
        .unwrap();
    assert_ne!(state(&next).ts, ts);
    assert_eq!(fake.top_level().len(), 2);
}

#[tokio::test]
async fn resolve_without_a_stored_message_posts_the_resolve() {
    let fake = FakeSlack::start().await;
    let d = receiver(&fake)
        .send(&resolved(), &ctx(4, None))
        .await
        .unwrap();
    assert_eq!(fake.methods(), ["chat.postMessage"]);
    let top = fake.top_level();
    assert!(header(&top[0].blocks).contains("[RESOLVED:1]"));
    assert!(state(&d).resolved);
}

#[tokio::test]
async fn a_message_that_is_gone_is_replaced_by_a_new_post() {
    let fake = FakeSlack::start().await;
    let gone = serde_json::to_value(GroupState {
        channel: fake.channel_id("#alerts"),
        ts: "1600000000.000001".into(),
        outbox_id: 1,
        resolved: false,
    })
    .unwrap();
    let d = receiver(&fake)
        .send(&firing(), &ctx(2, Some(&gone)))
        .await
        .unwrap();
    assert_eq!(fake.methods(), ["chat.update", "chat.postMessage"]);
    assert_eq!(
        fake.calls_to("chat.update")[0].error(),
        Some("message_not_found")
    );
    assert_eq!(state(&d).ts, fake.top_level()[0].ts);
}

#[tokio::test]
async fn screenshot_goes_through_the_external_upload_flow_into_the_thread() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run-1-failure.png");
    let image = png(64, 40);
    std::fs::write(&path, &image).unwrap();
    let mut n = firing();
    n.alerts[0].run.as_mut().unwrap().screenshot_path = Some(path.display().to_string());

    let d = receiver(&fake).send(&n, &ctx(1, None)).await.unwrap();
    assert_eq!(
        fake.methods(),
        [
            "chat.postMessage",
            "files.getUploadURLExternal",
            "upload",
            "files.completeUploadExternal"
        ]
    );
    assert!(fake.calls().iter().all(|c| c.ok()), "{:?}", fake.calls());
    let get = &fake.calls_to("files.getUploadURLExternal")[0];
    assert_eq!(get.body["filename"], "run-1-failure.png");
    assert_eq!(get.body["length"], image.len().to_string());

    let s = state(&d);
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].bytes, image, "the PNG's exact bytes");
    assert_eq!(
        uploads[0].shared_to,
        Some((s.channel.clone(), Some(s.ts.clone())))
    );
    assert_eq!(fake.top_level()[0].files, [uploads[0].file_id.clone()]);
    assert!(d.response.contains(&uploads[0].file_id), "{}", d.response);
    assert!(fake.calls_to("files.upload").is_empty());
}

#[tokio::test]
async fn a_failed_screenshot_upload_does_not_fail_the_notification() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shot.png");
    std::fs::write(&path, png(8, 8)).unwrap();
    let slack = receiver(&fake);

    let mut n = firing();
    n.alerts[0].run.as_mut().unwrap().screenshot_path = Some(path.display().to_string());
    fake.fail_next_for("files.getUploadURLExternal", 1, Fault::Status(500));
    let d = slack.send(&n, &ctx(1, None)).await.unwrap();
    assert!(
        d.response.contains("screenshot upload failed"),
        "{}",
        d.response
    );
    assert_eq!(fake.top_level().len(), 1);

    // A screenshot file that vanished is the same: delivered, with a warning.
    let mut n = firing();
    n.alerts[0].run.as_mut().unwrap().screenshot_path =
        Some(dir.path().join("missing.png").display().to_string());
    let d = slack.send(&n, &ctx(2, None)).await.unwrap();
    assert!(
        d.response.contains("screenshot upload failed"),
        "{}",
        d.response
    );
}

#[tokio::test]
async fn failures_are_classified_retryable_or_permanent() {
    struct Case {
        name: &'static str,
        fault: Fault,
        kind: FailureKind,
        retry_after: Option<Duration>,
    }
    let cases = [
        Case {
            name: "429 with Retry-After",
            fault: Fault::RateLimited { retry_after: 3 },
            kind: FailureKind::Retryable,
            retry_after: Some(Duration::from_secs(3)),
        },
        Case {
            name: "ok:false ratelimited",
            fault: Fault::RateLimitedOkFalse,
            kind: FailureKind::Retryable,
            retry_after: None,
        },
        Case {
            name: "500",
            fault: Fault::Status(500),
            kind: FailureKind::Retryable,
            retry_after: None,
        },
        Case {
            name: "503",
            fault: Fault::Status(503),
            kind: FailureKind::Retryable,
            retry_after: None,
        },
        Case {
            name: "internal_error",
            fault: Fault::ApiError("internal_error".into()),
            kind: FailureKind::Retryable,
            retry_after: None,
        },
    ]
    .into_iter()
    .chain(
        [
            "channel_not_found",
            "invalid_auth",
            "not_authed",
            "account_inactive",
            "token_revoked",
            "not_in_channel",
            "is_archived",
            "msg_too_long",
            "no_text",
            "invalid_blocks",
        ]
        .into_iter()
        .map(|code| Case {
            name: code,
            fault: Fault::ApiError(code.into()),
            kind: FailureKind::Permanent,
            retry_after: None,
        }),
    );
    let fake = FakeSlack::start().await;
    let slack = receiver(&fake);
    for case in cases {
        fake.fail_next(1, case.fault.clone());
        let e = slack.send(&firing(), &ctx(1, None)).await.unwrap_err();
        assert_eq!(e.kind, case.kind, "{}: {e}", case.name);
        assert_eq!(e.retry_after, case.retry_after, "{}", case.name);
        if let Fault::ApiError(code) = &case.fault {
            assert!(e.message.contains(code.as_str()), "{}: {e}", case.name);
        }
    }
    // After the faults, the same send goes through.
    slack.send(&firing(), &ctx(1, None)).await.unwrap();
}

#[tokio::test]
async fn a_wrong_token_is_permanent_invalid_auth() {
    let fake = FakeSlack::start().await;
    let slack = Slack::new(config(&fake.api_url(), "xoxb-not-the-right-one")).unwrap();
    let e = slack.send(&firing(), &ctx(1, None)).await.unwrap_err();
    assert_eq!(e.kind, FailureKind::Permanent);
    assert!(e.message.contains("invalid_auth"), "{e}");
    assert!(!fake.calls()[0].authorized);
}

#[tokio::test]
async fn slack_down_is_retryable_and_delivery_resumes_when_it_is_back() {
    let fake = FakeSlack::start().await;
    let slack = receiver(&fake);
    fake.set_down(true);
    let e = slack.send(&firing(), &ctx(1, None)).await.unwrap_err();
    assert_eq!(e.kind, FailureKind::Retryable, "{e}");
    fake.set_down(false);
    slack.send(&firing(), &ctx(1, None)).await.unwrap();
    let statuses: Vec<u16> = fake.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [503, 200]);

    // Nothing listening at all: retryable too.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let nowhere = Slack::new(config(&format!("http://127.0.0.1:{port}/api"), TOKEN)).unwrap();
    let e = nowhere.send(&firing(), &ctx(1, None)).await.unwrap_err();
    assert_eq!(e.kind, FailureKind::Retryable, "{e}");
}

/// A `tracing` writer into a shared buffer, to read what the receiver and slack-morphism log.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_token_appears_in_no_error_and_no_log_line() {
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakeSlack::start().await;
    let slack = receiver(&fake);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shot.png");
    std::fs::write(&path, png(8, 8)).unwrap();
    let mut n = firing();
    n.alerts[0].run.as_mut().unwrap().screenshot_path = Some(path.display().to_string());

    let mut errors: Vec<SendError> = Vec::new();
    let mut responses: Vec<String> = Vec::new();
    for fault in [
        Fault::RateLimited { retry_after: 1 },
        Fault::Status(500),
        Fault::ApiError("invalid_auth".into()),
        Fault::ApiError("channel_not_found".into()),
    ] {
        fake.fail_next(1, fault);
        errors.push(slack.send(&n, &ctx(1, None)).await.unwrap_err());
    }
    // A failing upload logs a warning; the rest of the flow succeeds.
    fake.fail_next_for("files.completeUploadExternal", 1, Fault::Status(502));
    let d = slack.send(&n, &ctx(1, None)).await.unwrap();
    responses.push(d.response);
    let d = slack
        .send(&resolved(), &ctx(2, d.group_state.as_ref()))
        .await
        .unwrap();
    responses.push(d.response);
    fake.set_down(true);
    errors.push(slack.send(&n, &ctx(3, None)).await.unwrap_err());
    fake.set_down(false);
    let wrong = Slack::new(config(&fake.api_url(), &format!("{TOKEN}-typo"))).unwrap();
    errors.push(wrong.send(&n, &ctx(1, None)).await.unwrap_err());
    drop(_guard);

    // The requests did carry the token (the test would be vacuous otherwise).
    assert!(fake.calls().iter().any(|c| c.authorized));
    for e in &errors {
        assert!(!e.to_string().contains(TOKEN), "token in error: {e}");
        assert!(!format!("{e:?}").contains(TOKEN), "token in error: {e:?}");
    }
    for r in &responses {
        assert!(!r.contains(TOKEN));
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("screenshot upload failed"),
        "the warning was captured: {text}"
    );
    assert!(
        text.contains("Sending HTTP request"),
        "slack-morphism's own debug lines were captured too"
    );
    assert!(!text.contains(TOKEN), "token in logs");
    assert!(!text.contains("TOKENSECRET"), "part of the token in logs");
    assert!(!format!("{:?}", slack.secrets()).contains(TOKEN));
}

#[tokio::test]
async fn eighty_alerts_and_a_10_kb_error_stay_within_slack_limits() {
    let fake = FakeSlack::start().await;
    let huge = format!("<!channel> & {}", "stack frame\n".repeat(850));
    assert!(huge.len() > 10_000);
    let alerts = (0..80)
        .map(|i| {
            alert(
                i,
                if i < 50 {
                    Status::Firing
                } else {
                    Status::Resolved
                },
                &huge,
            )
        })
        .collect();
    let n = notification(Status::Firing, alerts);
    let d = receiver(&fake).send(&n, &ctx(1, None)).await.unwrap();
    let post = &fake.calls_to("chat.postMessage")[0];
    assert!(post.ok(), "{:?}", post.response);
    let blocks = post.body["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 50);
    let all = post.body.to_string();
    assert!(
        !all.contains("<!channel>"),
        "an error must not ping the channel"
    );
    assert!(
        all.contains("&lt;!channel&gt; &amp; stack frame"),
        "escaped, kept"
    );
    assert!(all.contains("and 33 more alerts (3 firing, 30 resolved)"));

    // The resolve of the same big group is accepted by chat.update too.
    let mut r = n.clone();
    r.status = Status::Resolved;
    for a in &mut r.alerts {
        a.status = Status::Resolved;
    }
    receiver(&fake)
        .send(&r, &ctx(2, d.group_state.as_ref()))
        .await
        .unwrap();
    assert!(fake.calls().iter().all(|c| c.ok()), "{:?}", fake.methods());
}

#[tokio::test]
async fn test_notifications_are_labelled_in_slack() {
    let fake = FakeSlack::start().await;
    let mut n = firing();
    n.test = true;
    receiver(&fake).send(&n, &ctx(1, None)).await.unwrap();
    let m = &fake.top_level()[0];
    assert!(m.text.starts_with("[TEST]"), "{}", m.text);
    assert!(header(&m.blocks).contains("[TEST]"));
    assert!(m.blocks.to_string().contains("TEST NOTIFICATION"));
}

/// The fake itself refuses what real Slack refuses (so the tests above mean something).
#[tokio::test]
async fn the_fake_checks_the_protocol() {
    synmon::tls::install();
    let fake = FakeSlack::start().await;
    let http = reqwest::Client::new();
    let api = fake.api_url();
    let post = |method: &str, token: Option<&str>, body: Value| {
        let mut r = http.post(format!("{api}/{method}")).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    };
    async fn error(r: reqwest::RequestBuilder) -> Option<String> {
        let resp = r.send().await.unwrap();
        assert_eq!(
            resp.headers()[reqwest::header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        let v: Value = resp.json().await.unwrap();
        v["error"].as_str().map(str::to_string)
    }
    let msg = serde_json::json!({"channel": "#alerts", "text": "hi"});
    let t = Some(TOKEN);
    assert_eq!(
        error(post("chat.postMessage", None, msg.clone()))
            .await
            .as_deref(),
        Some("not_authed")
    );
    assert_eq!(
        error(post("chat.postMessage", Some("xoxb-x"), msg.clone()))
            .await
            .as_deref(),
        Some("invalid_auth")
    );
    assert_eq!(
        error(post(
            "chat.postMessage",
            t,
            serde_json::json!({"text": "x"})
        ))
        .await
        .as_deref(),
        Some("channel_not_found")
    );
    assert_eq!(
        error(post(
            "chat.postMessage",
            t,
            serde_json::json!({"channel": "#a"})
        ))
        .await
        .as_deref(),
        Some("no_text")
    );
    // Message metadata: an event_type of [a-z0-9_] and an event_payload object.
    for (metadata, code) in [
        (
            serde_json::json!({"event_payload": {}}),
            "invalid_metadata_format",
        ),
        (
            serde_json::json!({"event_type": "Bad-Type", "event_payload": {}}),
            "invalid_metadata_format",
        ),
        (
            serde_json::json!({"event_type": "ok_type"}),
            "invalid_metadata_schema",
        ),
    ] {
        assert_eq!(
            error(post(
                "chat.postMessage",
                t,
                serde_json::json!({"channel": "#a", "text": "x", "metadata": metadata})
            ))
            .await
            .as_deref(),
            Some(code)
        );
    }
    // History is read by channel id, never by name.
    let history = |channel: &str| {
        http.get(format!(
            "{api}/conversations.history?include_all_metadata=true&channel={}",
            url::form_urlencoded::byte_serialize(channel.as_bytes()).collect::<String>()
        ))
        .bearer_auth(TOKEN)
    };
    assert_eq!(
        error(history("#a")).await.as_deref(),
        Some("channel_not_found")
    );
    assert_eq!(error(history(&fake.channel_id("#a"))).await, None);
    let section = |len: usize| serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(len)}});
    let blocks51: Vec<Value> = (0..51).map(|_| section(1)).collect();
    assert_eq!(
        error(post(
            "chat.postMessage",
            t,
            serde_json::json!({"channel": "#a", "blocks": blocks51})
        ))
        .await
        .as_deref(),
        Some("invalid_blocks")
    );
    assert_eq!(
        error(post(
            "chat.postMessage",
            t,
            serde_json::json!({"channel": "#a", "blocks": [section(3001)]})
        ))
        .await
        .as_deref(),
        Some("invalid_blocks")
    );
    assert_eq!(
        error(post(
            "chat.postMessage",
            t,
            serde_json::json!({"channel": "#a", "blocks": [section(3000)]})
        ))
        .await,
        None
    );
    assert_eq!(
        error(post(
            "chat.postMessage",
            t,
            serde_json::json!({"channel": "#a", "text": "x", "thread_ts": "abc"})
        ))
        .await
        .as_deref(),
        Some("invalid_thread_ts")
    );
    assert_eq!(
        error(post(
            "chat.update",
            t,
            serde_json::json!({"channel": fake.channel_id("#a"), "text": "x"})
        ))
        .await
        .as_deref(),
        Some("message_not_found")
    );
    assert_eq!(
        error(post("files.upload", t, msg.clone())).await.as_deref(),
        Some("method_deprecated")
    );
    let wrong_ct = http
        .post(format!("{api}/chat.postMessage"))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body("channel=#a&text=x");
    assert_eq!(error(wrong_ct).await.as_deref(), Some("invalid_form_data"));

    // Upload flow: wrong length refused, completion before the bytes refused.
    let resp: Value = http
        .get(format!(
            "{api}/files.getUploadURLExternal?filename=a.png&length=4"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fake.calls().last().unwrap().http_method, "GET");
    let file_id = resp["file_id"].as_str().unwrap().to_string();
    let url = resp["upload_url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("http://{}/", fake.addr())),
        "{url}"
    );
    let complete = serde_json::json!({"files": [{"id": file_id}]});
    assert_eq!(
        error(post("files.completeUploadExternal", t, complete.clone()))
            .await
            .as_deref(),
        Some("file_upload_incomplete")
    );
    let wrong = http.post(&url).body(vec![1u8, 2, 3]).send().await.unwrap();
    assert_eq!(wrong.status(), 400);
    let right = http
        .post(&url)
        .body(vec![1u8, 2, 3, 4])
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(
        error(post("files.completeUploadExternal", t, complete)).await,
        None
    );

    // Faults for the next N calls, then normal service.
    fake.fail_next(2, Fault::Status(502));
    let r = post("chat.postMessage", t, msg.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let r = post("chat.postMessage", t, msg.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(error(post("chat.postMessage", t, msg.clone())).await, None);
    fake.fail_next(1, Fault::RateLimited { retry_after: 9 });
    let r = post("chat.postMessage", t, msg).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()[reqwest::header::RETRY_AFTER], "9");
    assert!(fake.calls().iter().all(|c| !c.method.is_empty()));
}

/// `wait_for_ok` (for tests that drive the daemon) wakes when a delivery lands, without sleeping.
#[tokio::test]
async fn the_fake_wakes_waiters_on_each_call() {
    let fake = FakeSlack::start().await;
    let slack = receiver(&fake);
    let task = tokio::spawn(async move {
        slack.send(&firing(), &ctx(1, None)).await.unwrap();
        slack.send(&resolved(), &ctx(2, None)).await.unwrap();
    });
    let calls = fake
        .wait_for_ok("chat.postMessage", 2, Duration::from_secs(10))
        .await;
    assert!(calls.len() >= 2);
    task.await.unwrap();
}

#[tokio::test]
async fn no_answer_within_the_timeout_is_retryable() {
    let fake = FakeSlack::start().await;
    let mut c = config(&fake.api_url(), fake.token());
    c.timeout = Duration::from_millis(300);
    let slack = Slack::new(c).unwrap();
    fake.fail_next(1, Fault::Hang);
    let e = slack.send(&firing(), &ctx(1, None)).await.unwrap_err();
    assert_eq!(e.kind, FailureKind::Retryable, "{e}");
    assert!(e.message.contains("no answer"), "{e}");
    assert_eq!(fake.calls()[0].status, 0);
    slack.send(&firing(), &ctx(1, None)).await.unwrap();
}

#[tokio::test]
async fn a_post_whose_answer_was_lost_is_found_by_its_metadata_and_edited_not_posted_again() {
    let fake = FakeSlack::start().await;
    let mut c = config(&fake.api_url(), fake.token());
    c.timeout = Duration::from_millis(300);
    // Slack posts the message, the answer never arrives: a timeout, retryable.
    fake.fail_next_for("chat.postMessage", 1, Fault::ApplyThenHang);
    let e = Slack::new(c.clone())
        .unwrap()
        .send(&firing(), &ctx(41, None))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Retryable, "{e}");
    let posted = fake.top_level();
    assert_eq!(posted.len(), 1, "Slack did post it");
    assert_eq!(posted[0].metadata["event_type"], "synmon_notification");
    assert_eq!(posted[0].metadata["event_payload"]["outbox_id"], "41");
    assert_eq!(
        posted[0].metadata["event_payload"]["group"],
        firing().dedup_key()
    );

    // The next attempt, from a fresh receiver (as after a restart: the channel id is not
    // known yet, the config names `#alerts`), finds that post and edits it.
    let d = Slack::new(c)
        .unwrap()
        .send(&firing(), &retry_ctx(41, None))
        .await
        .unwrap();
    assert_eq!(
        fake.methods(),
        [
            "chat.postMessage",
            "conversations.list",
            "conversations.history",
            "chat.update"
        ]
    );
    let history = &fake.calls_to("conversations.history")[0];
    assert!(history.ok(), "{:?}", history.response);
    assert_eq!(history.http_method, "GET");
    assert_eq!(history.body["channel"], fake.channel_id("#alerts"));
    assert_eq!(history.body["include_all_metadata"], "true");
    let top = fake.top_level();
    assert_eq!(top.len(), 1, "no second message: {top:#?}");
    assert_eq!(top[0].edits, 1);
    let s = state(&d);
    assert_eq!(s.ts, posted[0].ts);
    assert_eq!(s.channel, fake.channel_id("#alerts"));
    assert_eq!(s.outbox_id, 41);
    assert!(d.response.contains("earlier attempt"), "{}", d.response);
    // An edit without metadata keeps it: a later crash-resend can still find the message.
    assert_eq!(top[0].metadata, posted[0].metadata);
}

#[tokio::test]
async fn a_resend_that_finds_no_earlier_post_posts_once_and_never_takes_another_rows_message() {
    let fake = FakeSlack::start().await;
    let slack = receiver(&fake);
    // Row 7 was delivered earlier (an earlier episode of the same group).
    slack.send(&firing(), &ctx(7, None)).await.unwrap();
    // Row 8's first attempt failed before Slack did anything.
    fake.fail_next_for("chat.postMessage", 1, Fault::Status(503));
    slack.send(&firing(), &ctx(8, None)).await.unwrap_err();
    let d = slack.send(&firing(), &retry_ctx(8, None)).await.unwrap();
    assert_eq!(
        fake.methods(),
        [
            "chat.postMessage",
            "chat.postMessage",
            // The channel id was learned from the first post: no conversations.list.
            "conversations.history",
            "chat.postMessage"
        ]
    );
    let top = fake.top_level();
    assert_eq!(top.len(), 2, "row 8 gets its own message: {top:#?}");
    assert_eq!(top[1].metadata["event_payload"]["outbox_id"], "8");
    assert_eq!(state(&d).ts, top[1].ts);
    assert_eq!(top[0].edits, 0, "row 7's message is left alone");
}

#[tokio::test]
async fn history_that_cannot_be_read_is_retried_or_posted_through_with_a_warning() {
    let fake = FakeSlack::start().await;
    let slack = Slack::new(SlackConfig {
        channel: fake.channel_id("#alerts"),
        ..config(&fake.api_url(), fake.token())
    })
    .unwrap();
    // Rate limited: retry later rather than risk a duplicate.
    fake.fail_next_for(
        "conversations.history",
        1,
        Fault::RateLimited { retry_after: 2 },
    );
    let e = slack
        .send(&firing(), &retry_ctx(3, None))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Retryable, "{e}");
    assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
    assert!(fake.messages().is_empty());
    // A bot without the history scope: post (at worst a duplicate), not fail the alert.
    fake.fail_next_for(
        "conversations.history",
        1,
        Fault::ApiError("missing_scope".into()),
    );
    slack.send(&firing(), &retry_ctx(3, None)).await.unwrap();
    assert_eq!(fake.top_level().len(), 1);
    assert_eq!(
        fake.methods(),
        [
            "conversations.history",
            "conversations.history",
            "chat.postMessage"
        ],
        "a channel configured by id needs no conversations.list"
    );
}

#[tokio::test]
async fn another_apps_metadata_that_cannot_be_read_makes_the_resend_post_not_retry_forever() {
    let fake = FakeSlack::start().await;
    let slack = receiver(&fake);
    // Slack allows numbers and objects in a payload; slack-morphism reads strings only.
    fake.add_foreign_message(
        "#alerts",
        "deploy finished",
        serde_json::json!({"event_type": "deploy", "event_payload": {"build": 1234, "tags": {"a": 1}}}),
    );
    let d = slack.send(&firing(), &retry_ctx(5, None)).await.unwrap();
    assert_eq!(
        fake.methods(),
        [
            "conversations.list",
            "conversations.history",
            "chat.postMessage"
        ]
    );
    let top = fake.top_level();
    assert_eq!(top.len(), 2);
    assert_eq!(state(&d).ts, top[1].ts);
}
