//! The Slack message of a notification, pure: Block Kit blocks and the plain `text` fallback,
//! every interpolated string escaped for mrkdwn and cut to Slack's limits, and the short
//! replies posted in the message's thread. No network, no clock.

use slack_morphism::prelude::*;

use crate::notify::message::{AlertInfo, Notification, Status};

/// Slack rejects a message with more blocks (`invalid_blocks`).
pub const MAX_BLOCKS: usize = 50;
/// Slack rejects a section whose text is longer (`invalid_blocks`).
pub const MAX_SECTION_CHARS: usize = 3000;
/// Slack rejects a header whose text is longer (`invalid_blocks`).
pub const MAX_HEADER_CHARS: usize = 150;
/// The plain `text` fallback (push notifications, screen readers, clients without Block Kit).
/// Slack accepts far more (40,000) but shows only the first lines: keep it a summary.
pub const MAX_TEXT_CHARS: usize = 3000;
/// A step's error is evidence, not the whole log: the run page has the rest. Keeps a group of
/// many alerts with huge errors well inside Slack's message size.
const MAX_ERROR_CHARS: usize = 1000;
const MAX_DESCRIPTION_CHARS: usize = 500;

/// Escapes text for Slack's mrkdwn (and the `text` field): `&`, `<` and `>` are control
/// characters there (`<url|label>`, `<@U123>`, `<!channel>`), so an error message containing
/// `<!channel>` must not ping the whole channel.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Cuts already-escaped mrkdwn to at most `max` characters (Slack counts characters, not
/// bytes), ending with `…`. Never leaves half an entity (`&am`) or half a link (`<http://x|Ru`),
/// which Slack would render as garbage or reject.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let mut out: String = s.chars().take(keep).collect();
    if let Some(amp) = out.rfind('&')
        && !out[amp..].contains(';')
    {
        out.truncate(amp);
    }
    if let Some(lt) = out.rfind('<')
        && !out[lt..].contains('>')
    {
        out.truncate(lt);
    }
    out.push('…');
    out
}

/// `<url|label>` with the URL escaped; `|` would end the URL early, so it is percent-encoded.
fn link(url: &str, label: &str) -> String {
    format!("<{}|{}>", escape(&url.replace('|', "%7C")), escape(label))
}

/// A run's trace id: a link to its page in the tracing UI when `tracing.ui_url` is set, else
/// the id as code (to paste into the tracing UI's search).
fn trace(r: &crate::notify::message::RunEvidence) -> Option<String> {
    let id = r.trace_id.as_deref()?;
    Some(match &r.trace_url {
        Some(u) => link(u, id),
        None => code(id),
    })
}

/// Inline code: a backtick inside would end the span early.
fn code(s: &str) -> String {
    format!("`{}`", escape(&s.replace('`', "'")))
}

fn severity_emoji(n: &Notification) -> &'static str {
    if n.status == Status::Resolved {
        return ":white_check_mark:";
    }
    match n.severity() {
        "page" | "critical" | "error" => ":rotating_light:",
        "warning" => ":warning:",
        _ => ":large_blue_circle:",
    }
}

/// What a message says, in both forms Slack takes.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackPayload {
    /// The plain fallback (mrkdwn-escaped), shown in notifications.
    pub text: String,
    pub blocks: Vec<SlackBlock>,
}

impl SlackPayload {
    pub(super) fn content(&self) -> SlackMessageContent {
        SlackMessageContent::new()
            .with_text(self.text.clone())
            .with_blocks(self.blocks.clone())
    }
}

fn mrkdwn_section(text: String) -> SlackBlock {
    SlackSectionBlock::new()
        .with_text(SlackBlockMarkDownText::new(text).into())
        .into()
}

fn context(text: String) -> SlackBlock {
    SlackContextBlock::new(vec![SlackBlockMarkDownText::new(text).into()]).into()
}

/// The message for `n`, firing or resolved: header with severity, one section per alert (check
/// and target, value against threshold, failing step and its error, failing locations, links
/// to the run and the runbook), cut to Slack's limits. Pure.
pub fn message(n: &Notification) -> SlackPayload {
    let header_text = cut(
        &escape(&format!(
            "{} {} · {}",
            severity_emoji(n),
            n.title(),
            n.severity().to_uppercase()
        )),
        MAX_HEADER_CHARS,
    );
    let mut head: Vec<SlackBlock> = vec![
        SlackHeaderBlock::new(
            SlackBlockPlainText::new(header_text)
                .with_emoji(true)
                .into(),
        )
        .into(),
    ];
    if n.test {
        head.push(mrkdwn_section(
            ":test_tube: *TEST NOTIFICATION* sent by `synmon notify test` to check routing. \
             No action needed."
                .into(),
        ));
    }
    let firing = n.firing().count();
    let resolved = n.resolved().count();
    let mut ctx = format!(
        "*Severity:* {} · *Status:* {} · {firing} firing, {resolved} resolved",
        escape(n.severity()),
        n.status.as_str()
    );
    if !n.external_url.is_empty() {
        ctx.push_str(&format!(" · {}", link(&n.external_url, "synmon")));
    }
    head.push(context(cut(&ctx, MAX_SECTION_CHARS)));

    // Room for one section per alert; the last block is kept for "and N more" if needed.
    let room = MAX_BLOCKS - head.len();
    let shown = if n.alerts.len() <= room {
        n.alerts.len()
    } else {
        room - 1
    };
    let mut blocks = head;
    for a in &n.alerts[..shown] {
        blocks.push(mrkdwn_section(alert_section(n, a)));
    }
    if shown < n.alerts.len() {
        let rest = &n.alerts[shown..];
        let rest_firing = rest.iter().filter(|a| a.status == Status::Firing).count();
        let mut more = format!(
            "…and {} more alerts ({rest_firing} firing, {} resolved) not shown",
            rest.len(),
            rest.len() - rest_firing
        );
        if !n.external_url.is_empty() {
            more.push_str(&format!(": {}", link(&n.external_url, "see synmon")));
        }
        blocks.push(context(more));
    }
    debug_assert!(blocks.len() <= MAX_BLOCKS);

    let first = n
        .alerts
        .first()
        .and_then(|a| a.annotations.get("summary"))
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    let text = cut(
        &escape(&format!("{}{first} (severity {})", n.title(), n.severity())),
        MAX_TEXT_CHARS,
    );
    SlackPayload { text, blocks }
}

/// One alert's section. The error gets whatever room the other lines leave (at most
/// `MAX_ERROR_CHARS`), so the links at the end survive the cut to `MAX_SECTION_CHARS`.
fn alert_section(n: &Notification, a: &AlertInfo) -> String {
    let mut lines: Vec<String> = Vec::new();
    let name = a
        .labels
        .get("alertname")
        .map(String::as_str)
        .unwrap_or(n.alertname());
    let title = a
        .annotations
        .get("summary")
        .map(String::as_str)
        .unwrap_or(name);
    let marker = if a.status == Status::Resolved {
        ":white_check_mark: _resolved_ "
    } else {
        ""
    };
    lines.push(cut(&format!("{marker}*{}*", escape(title)), 300));
    if let Some(d) = a.annotations.get("description") {
        lines.push(cut(&escape(d), MAX_DESCRIPTION_CHARS));
    }
    let run = a.run.as_ref();
    let check = run
        .map(|r| r.check.as_str())
        .or(a.labels.get("check").map(String::as_str));
    if let Some(check) = check {
        let mut l = format!("*Check:* {}", code(check));
        if let Some(r) = run {
            if !r.target.is_empty() {
                l.push_str(&format!(" on {}", escape(&r.target)));
            }
            if !r.location.is_empty() {
                l.push_str(&format!(" from {}", escape(&r.location)));
            }
        }
        lines.push(cut(&l, 500));
    }
    if let Some(c) = &a.condition {
        lines.push(cut(&format!("*Value:* {}", escape(&c.describe())), 300));
    }
    let step = run.and_then(|r| r.failing_step.as_deref());
    if let Some(step) = step {
        lines.push(cut(&format!("*Failing step:* {}", code(step)), 300));
    }
    if let Some(r) = run
        && !r.failing_locations.is_empty()
    {
        lines.push(cut(
            &format!(
                "*Failing locations:* {}",
                escape(&r.failing_locations.join(", "))
            ),
            500,
        ));
    }
    if let Some(r) = run
        && let Some(t) = trace(r)
    {
        lines.push(format!("*Trace:* {t}"));
    }
    if !a.affected.is_empty() {
        let names: Vec<String> = a
            .affected
            .iter()
            .map(|r| {
                let mut about: Vec<String> = r.failing_step.iter().map(|s| escape(s)).collect();
                about.extend(trace(r).map(|t| format!("trace {t}")));
                if about.is_empty() {
                    code(&r.check)
                } else {
                    format!("{} ({})", code(&r.check), about.join(", "))
                }
            })
            .collect();
        // Room for 25 checks with their trace ids; `cut` never splits a link.
        lines.push(cut(&format!("*Failing:* {}", names.join(", ")), 1500));
    }
    let mut links = Vec::new();
    if let Some(r) = run {
        if !r.run_url.is_empty() {
            links.push(link(&r.run_url, "View run"));
        }
        if let Some(u) = &r.screenshot_url {
            links.push(link(u, "Screenshot"));
        }
    }
    if let Some(u) = a.annotations.get("runbook_url") {
        links.push(link(u, "Runbook"));
    }
    let links = cut(&links.join(" · "), 1000);

    let error = run
        .and_then(|r| r.error.as_deref())
        .filter(|e| !e.is_empty());
    let mut text = lines.join("\n");
    if let Some(e) = error {
        // A code block keeps stack traces readable; ``` inside would close it.
        let used = text.chars().count() + links.chars().count() + 16;
        let room = MAX_SECTION_CHARS.saturating_sub(used).min(MAX_ERROR_CHARS);
        if room > 20 {
            let e = cut(&escape(&e.replace("```", "'''")), room);
            text.push_str(&format!("\n```{e}```"));
        }
    }
    if !links.is_empty() {
        text.push('\n');
        text.push_str(&links);
    }
    cut(&text, MAX_SECTION_CHARS)
}

/// The short reply posted in the message's thread when a group changes: resolved, or still
/// firing (a repeat, or the firing set changed). Escaped mrkdwn. Pure.
pub fn thread_reply(n: &Notification) -> String {
    let text = match n.status {
        Status::Resolved => format!(":white_check_mark: Resolved: {}", n.title()),
        Status::Firing => format!(
            "{} Still firing: {} ({} alerts firing)",
            severity_emoji(n),
            n.title(),
            n.firing().count()
        ),
    };
    cut(&escape(&text), MAX_TEXT_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::{Condition, Labels, RunEvidence};
    use chrono::TimeZone;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
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
                ("alertname", "journey_latency_high"),
                ("severity", "critical"),
                ("check", "login"),
            ]),
            annotations: labels(&[
                ("summary", &format!("Login p95 too slow #{i}")),
                ("runbook_url", "https://runbooks.example/login?a=1&b=2"),
            ]),
            starts_at: t,
            ends_at: None,
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
                run_id: format!("r{i}"),
                check: "login".into(),
                target: "https://rvp.example/login".into(),
                location: "eu-west".into(),
                outcome: "fail".into(),
                started_at: t,
                total_ms: 700.0,
                failing_step: Some("submit credentials".into()),
                error: Some(error.into()),
                steps: vec![],
                run_url: format!("http://synmon.local/runs/r{i}"),
                screenshot_path: None,
                screenshot_url: None,
                failing_locations: vec!["eu-west".into(), "us-east".into()],
                trace_id: Some(format!("0af7651916cd43dd8448eb211c8031{i:02x}")),
                trace_url: None,
            }),
        }
    }

    fn notification(alerts: Vec<AlertInfo>) -> Notification {
        Notification {
            receiver: "slack-alerts".into(),
            group_key: "{}:{check=\"login\"}".into(),
            group_labels: labels(&[("check", "login")]),
            common_labels: labels(&[
                ("alertname", "journey_latency_high"),
                ("severity", "critical"),
            ]),
            common_annotations: Labels::new(),
            status: Status::Firing,
            alerts,
            external_url: "http://synmon.local".into(),
            test: false,
            created_at: chrono::Utc
                .with_ymd_and_hms(2026, 11, 27, 10, 5, 0)
                .unwrap(),
        }
    }

    fn json(p: &SlackPayload) -> serde_json::Value {
        serde_json::to_value(&p.blocks).unwrap()
    }

    fn section_texts(p: &SlackPayload) -> Vec<String> {
        json(p)
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "section")
            .map(|b| b["text"]["text"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn escape_slack_control_characters() {
        assert_eq!(
            escape("a & b <!channel> > c"),
            "a &amp; b &lt;!channel&gt; &gt; c"
        );
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn cut_respects_the_limit_and_never_splits_an_entity_or_link() {
        assert_eq!(cut("short", 10), "short");
        let s = "abcdefgh&amp;ijk";
        let c = cut(s, 11);
        assert!(c.chars().count() <= 11, "{c}");
        assert_eq!(c, "abcdefgh…");
        let l = "see <http://x/run|View run> now";
        assert_eq!(cut(l, 12), "see …");
        let u = "é".repeat(5000);
        assert_eq!(cut(&u, 3000).chars().count(), 3000);
    }

    #[test]
    fn firing_message_carries_the_evidence() {
        let n = notification(vec![alert(
            1,
            Status::Firing,
            "timeout waiting for #dashboard",
        )]);
        let p = message(&n);
        let blocks = json(&p);
        assert_eq!(blocks[0]["type"], "header");
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(
            header.contains("[FIRING:1] journey_latency_high"),
            "{header}"
        );
        assert!(header.contains("CRITICAL"), "{header}");
        assert!(header.starts_with(":rotating_light:"), "{header}");
        let s = &section_texts(&p)[0];
        for want in [
            "*Login p95 too slow #1*",
            "*Check:* `login` on https://rvp.example/login from eu-west",
            "*Value:* p95 612 ms &gt; 400 ms over 5m",
            "*Failing step:* `submit credentials`",
            "```timeout waiting for #dashboard```",
            "*Failing locations:* eu-west, us-east",
            "*Trace:* `0af7651916cd43dd8448eb211c803101`",
            "<http://synmon.local/runs/r1|View run>",
            "<https://runbooks.example/login?a=1&amp;b=2|Runbook>",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
        assert!(
            p.text.contains("[FIRING:1] journey_latency_high"),
            "{}",
            p.text
        );
        assert!(p.text.contains("Login p95 too slow #1"), "{}", p.text);
        assert!(!p.text.contains("TEST"));
    }

    #[test]
    fn every_interpolated_string_is_escaped() {
        let mut a = alert(1, Status::Firing, "<!channel> a&b <script>");
        a.annotations
            .insert("summary".into(), "p95 > 400 <@U123>".into());
        a.annotations.insert("description".into(), "x & y".into());
        if let Some(r) = a.run.as_mut() {
            r.failing_step = Some("click <Save>".into());
            r.target = "https://x/?a=1&b=<2>".into();
            r.failing_locations = vec!["<here>".into()];
        }
        let mut n = notification(vec![a]);
        n.group_labels.insert("check".into(), "a<b>&c".into());
        let p = message(&n);
        let all = serde_json::to_string(&json(&p)).unwrap() + &p.text;
        for raw in [
            "<!channel>",
            "<@U123>",
            "<script>",
            "<Save>",
            "<2>",
            "<here>",
            "a<b>",
            "a&b",
            "x & y",
        ] {
            assert!(!all.contains(raw), "unescaped {raw:?} in {all}");
        }
        assert!(all.contains("&lt;!channel&gt; a&amp;b"));
        assert!(p.text.contains("a&lt;b&gt;&amp;c"), "{}", p.text);
    }

    #[test]
    fn limits_hold_for_80_alerts_with_10kb_errors() {
        let big = "E".repeat(10_000) + "&<>";
        let alerts: Vec<_> = (0..80)
            .map(|i| {
                alert(
                    i,
                    if i < 60 {
                        Status::Firing
                    } else {
                        Status::Resolved
                    },
                    &big,
                )
            })
            .collect();
        let p = message(&notification(alerts));
        let blocks = json(&p);
        let blocks = blocks.as_array().unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= MAX_HEADER_CHARS);
        for s in section_texts(&p) {
            assert!(
                s.chars().count() <= MAX_SECTION_CHARS,
                "{}",
                s.chars().count()
            );
            // The error is cut, the links after it survive.
            assert!(s.contains("|Runbook>"), "{s}");
        }
        let last = &blocks[MAX_BLOCKS - 1];
        assert_eq!(last["type"], "context");
        let more = last["elements"][0]["text"].as_str().unwrap();
        assert!(
            more.contains("and 33 more alerts (13 firing, 20 resolved)"),
            "{more}"
        );
        assert!(p.text.chars().count() <= MAX_TEXT_CHARS);
    }

    #[test]
    fn long_header_is_cut_to_150() {
        let mut n = notification(vec![alert(1, Status::Firing, "e")]);
        n.group_labels.insert("path".into(), "/a".repeat(300));
        let p = message(&n);
        let header = json(&p)[0]["text"]["text"].as_str().unwrap().to_string();
        assert_eq!(header.chars().count(), MAX_HEADER_CHARS);
        assert!(header.ends_with('…'));
    }

    #[test]
    fn test_notifications_are_labelled() {
        let mut n = notification(vec![alert(1, Status::Firing, "e")]);
        n.test = true;
        let p = message(&n);
        let blocks = json(&p);
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("[TEST]")
        );
        assert!(section_texts(&p)[0].contains("TEST NOTIFICATION"));
        assert!(p.text.starts_with("[TEST]"), "{}", p.text);
        assert!(thread_reply(&n).contains("[TEST]"));
    }

    #[test]
    fn resolved_message_and_thread_reply() {
        let mut n = notification(vec![alert(1, Status::Resolved, "e")]);
        n.status = Status::Resolved;
        let p = message(&n);
        let header = json(&p)[0]["text"]["text"].as_str().unwrap().to_string();
        assert!(
            header.starts_with(":white_check_mark: [RESOLVED:1]"),
            "{header}"
        );
        assert!(section_texts(&p)[0].contains("_resolved_"));
        let r = thread_reply(&n);
        assert!(
            r.starts_with(":white_check_mark: Resolved: [RESOLVED:1] journey_latency_high"),
            "{r}"
        );
        n.status = Status::Firing;
        assert!(
            thread_reply(&notification(vec![alert(1, Status::Firing, "e")]))
                .contains("Still firing")
        );
    }

    #[test]
    fn no_run_evidence_still_renders() {
        let mut a = alert(1, Status::Firing, "e");
        a.run = None;
        a.condition = None;
        let p = message(&notification(vec![a]));
        let s = &section_texts(&p)[0];
        assert!(s.contains("*Check:* `login`"), "{s}");
        assert!(s.contains("|Runbook>"), "{s}");
        assert!(!s.contains("Failing step"));
    }
}
