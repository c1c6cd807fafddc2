//! The Slack receiver (slack-morphism): one Block Kit message per alert group, kept up to date.
//!
//! A group gets ONE message in the channel. Later notifications for the same group edit it with
//! `chat.update` instead of posting again, so a resend after a crash, a repeat or a grown firing
//! set never floods the channel; a short reply in the message's thread says what changed (that
//! reply is what notifies the people following the alert). On resolve the original message is
//! updated to show it resolved and a threaded resolve is posted. The failure screenshot goes into
//! the thread through Slack's external upload flow (`files.getUploadURLExternal` -> POST bytes ->
//! `files.completeUploadExternal`; the retired `files.upload` is never used).
//!
//! Slack has no idempotency key, so a first post whose answer was lost (a crash between Slack's
//! `ok` and the outbox record, or a timeout after the request went out) could post twice. Every
//! top-level post therefore carries message metadata naming its outbox row and alert group
//! ([`METADATA_EVENT`]); the core records an attempt as started before it sends
//! ([`Receiver::checks_before_resend`]), and a later attempt with no message to edit first looks
//! for its own earlier post in the channel's recent history (`conversations.history` with
//! `include_all_metadata`) and edits that instead of posting again. This needs the bot scopes
//! `channels:history` (`groups:history` for a private channel) and, when `channel` is a `#name`,
//! `channels:read` to find its id; without them the resend posts, at worst one duplicate.
//!
//! The payload builder ([`message`], [`thread_reply`]) is pure and tested without a network;
//! [`classify`] maps every slack-morphism error to retryable/permanent without ever quoting a
//! response body or the token.

use std::path::Path;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::{Deserialize, Serialize};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::config::Redactor;
use crate::config::Secret;

use super::config::field;
use super::message::{AlertInfo, Notification, Status};
use super::receiver::{Delivered, Receiver, SendContext, SendError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    pub name: String,
    /// Slack's Web API base (`https://slack.com/api`); tests point it at a local fake.
    #[serde(default)]
    pub api_url: Option<String>,
    /// A bot token (`xoxb-...`), a secret. Empty: the receiver is disabled.
    pub token: String,
    /// `#alerts`, or a channel id (`C0123ABC`).
    pub channel: String,
    /// Upload the failure screenshot into the message's thread (default true).
    #[serde(default)]
    pub upload_screenshots: Option<bool>,
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub name: String,
    pub api_url: reqwest::Url,
    pub token: Secret,
    pub channel: String,
    pub upload_screenshots: bool,
    pub timeout: Duration,
}

pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// The `event_type` of the metadata on every top-level post (Slack: lowercase letters, digits
/// and underscores).
pub const METADATA_EVENT: &str = "synmon_notification";

/// A Slack conversation id (`C0123ABC`, `G...` private, `D...` direct) rather than a name.
fn is_channel_id(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(b'C' | b'G' | b'D'))
        && s.len() >= 9
        && b.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// How far back in the channel a resend looks for its own earlier post (one page of history).
const HISTORY_LOOKBACK: u16 = 200;

pub fn validate(raw: RawSlack, dir: &Path, err: &mut dyn FnMut(&str, String)) -> SlackConfig {
    let api_url = field::endpoint(raw.api_url, DEFAULT_API_URL, "api_url", err);
    let token = field::secret(&raw.token, dir, "token", err);
    if raw.channel.trim().is_empty() {
        err("channel", "must not be empty (e.g. `#alerts`)".into());
    }
    let timeout = field::timeout(raw.timeout.as_deref(), err);
    SlackConfig {
        name: raw.name,
        api_url,
        token,
        channel: raw.channel,
        upload_screenshots: raw.upload_screenshots.unwrap_or(true),
        timeout,
    }
}

// ---------------------------------------------------------------------------------------------
// The pure payload builder.

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
    fn content(&self) -> SlackMessageContent {
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

// ---------------------------------------------------------------------------------------------
// Error classification.

/// `ok:false` codes worth retrying: Slack's own transient failures and rate limiting. Every
/// other code (`channel_not_found`, `invalid_auth`, `not_authed`, `account_inactive`,
/// `token_revoked`, `not_in_channel`, `is_archived`, `msg_too_long`, `no_text`,
/// `invalid_blocks`, `missing_scope`, ...) is a configuration or payload problem that a retry
/// cannot fix: it is reported as permanent so the outbox surfaces it instead of looping.
pub const RETRYABLE_CODES: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Codes meaning the message to update is gone (deleted, too old): post a new one instead.
const MESSAGE_GONE_CODES: &[&str] = &[
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
];

/// Maps a slack-morphism error on `method` to a [`SendError`]. Messages name the method and
/// Slack's error code or HTTP status only: never a response body (it can echo the request) and
/// never the token (slack-morphism sends it in a header, so it is not in any of these).
pub fn classify(method: &str, err: &SlackClientError) -> SendError {
    match err {
        SlackClientError::ApiError(e) => {
            let msg = format!("{method}: Slack answered ok:false, error `{}`", e.code);
            if RETRYABLE_CODES.contains(&e.code.as_str()) {
                SendError::retryable(msg)
            } else {
                SendError::permanent(msg)
            }
        }
        SlackClientError::RateLimitError(e) => SendError::retryable(format!(
            "{method}: rate limited by Slack (HTTP 429{})",
            e.code
                .as_deref()
                .map(|c| format!(", error `{c}`"))
                .unwrap_or_default()
        ))
        .with_retry_after(e.retry_after),
        SlackClientError::HttpError(e) => SendError::from_status(
            e.status_code.as_u16(),
            format!("{method}: HTTP {}", e.status_code),
        ),
        SlackClientError::ProtocolError(_) => SendError::retryable(format!(
            "{method}: Slack's answer was not the expected JSON"
        )),
        SlackClientError::HttpProtocolError(_)
        | SlackClientError::EndOfStream(_)
        | SlackClientError::SystemError(_)
        | SlackClientError::SocketModeProtocolError(_) => {
            SendError::retryable(format!("{method}: connection to Slack failed"))
        }
    }
}

fn api_code(err: &SlackClientError) -> Option<&str> {
    match err {
        SlackClientError::ApiError(e) => Some(e.code.as_str()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The receiver.

/// What this receiver remembers about a group between deliveries (persisted by the core as
/// `SendContext::group_state`): where its message is, which outbox row last delivered it, and
/// whether it already shows the group resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// The channel id Slack answered (chat.update needs the id, not `#name`).
    pub channel: String,
    pub ts: String,
    pub outbox_id: i64,
    #[serde(default)]
    pub resolved: bool,
}

type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;

pub struct Slack {
    config: SlackConfig,
    client: SlackClient<Connector>,
    redactor: Redactor,
    /// The channel's id, once known (from a post's answer or `conversations.list`): history
    /// lookups need the id, not `#name`.
    channel_id: std::sync::Mutex<Option<String>>,
}

impl Slack {
    pub fn new(config: SlackConfig) -> Result<Self, String> {
        crate::tls::install();
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        // https_or_http: production is https; tests point `api_url` at a plain-http fake.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let connector = SlackClientHyperConnector::with_connector(https)
            .with_slack_api_url(config.api_url.as_str().trim_end_matches('/'));
        let mut redactor = Redactor::default();
        redactor.add(&config.token);
        let channel_id = is_channel_id(&config.channel).then(|| config.channel.clone());
        Ok(Slack {
            client: SlackClient::new(connector),
            config,
            redactor,
            channel_id: std::sync::Mutex::new(channel_id),
        })
    }

    /// A call that got no answer within the receiver's timeout: retryable.
    fn no_answer(&self, method: &str) -> SendError {
        SendError::retryable(format!(
            "{method}: no answer from Slack within {}",
            humantime::format_duration(self.config.timeout)
        ))
    }

    /// Runs one Web API call with the receiver's timeout and classifies its failure.
    async fn call<T>(
        &self,
        method: &str,
        fut: impl std::future::Future<Output = Result<T, SlackClientError>>,
    ) -> Result<T, (SendError, Option<String>)> {
        match tokio::time::timeout(self.config.timeout, fut).await {
            Err(_) => Err((self.no_answer(method), None)),
            Ok(Err(e)) => {
                let mut se = classify(method, &e);
                se.message = self.redactor.redact(&se.message);
                Err((se, api_code(&e).map(str::to_string)))
            }
            Ok(Ok(v)) => Ok(v),
        }
    }

    async fn post(
        &self,
        session: &SlackClientSession<'_, Connector>,
        channel: &str,
        content: SlackMessageContent,
        thread_ts: Option<&str>,
    ) -> Result<(String, String), SendError> {
        let req = SlackApiChatPostMessageRequest::new(channel.into(), content)
            .opt_thread_ts(thread_ts.map(|t| SlackTs::new(t.to_string())))
            .with_unfurl_links(false)
            .with_unfurl_media(false);
        let resp = self
            .call("chat.postMessage", session.chat_post_message(&req))
            .await
            .map_err(|(e, _)| e)?;
        Ok((resp.channel.to_string(), resp.ts.to_string()))
    }

    /// The configured channel's id: configured as one, learned from an earlier post, or looked
    /// up by name with `conversations.list`.
    async fn resolve_channel_id(
        &self,
        session: &SlackClientSession<'_, Connector>,
    ) -> Result<String, (SendError, Option<String>)> {
        if let Some(id) = self.channel_id.lock().expect("channel id lock").clone() {
            return Ok(id);
        }
        let name = self.config.channel.trim_start_matches('#');
        // (a bare `alerts` is a name too: only `C...`/`G...`/`D...` ids skip this lookup)
        let mut cursor: Option<SlackCursorId> = None;
        loop {
            let req = SlackApiConversationsListRequest::new()
                .with_limit(1000)
                .with_exclude_archived(true)
                .with_types(vec![
                    SlackConversationType::Public,
                    SlackConversationType::Private,
                ])
                .opt_cursor(cursor.take());
            let resp = self
                .call("conversations.list", session.conversations_list(&req))
                .await?;
            if let Some(c) = resp
                .channels
                .iter()
                .find(|c| c.name.as_deref() == Some(name))
            {
                let id = c.id.to_string();
                *self.channel_id.lock().expect("channel id lock") = Some(id.clone());
                return Ok(id);
            }
            match resp
                .response_metadata
                .and_then(|m| m.next_cursor)
                .filter(|c| !c.value().is_empty())
            {
                Some(next) => cursor = Some(next),
                None => {
                    return Err((
                        SendError::permanent(format!(
                            "conversations.list: no channel named #{name}"
                        )),
                        None,
                    ));
                }
            }
        }
    }

    /// Looks in the channel's recent history for a top-level message an earlier attempt at
    /// this outbox row posted (its metadata names the row and the group). `Ok(None)`: not
    /// there, or history cannot be read for a reason retrying will not fix (a missing scope:
    /// then the caller posts, at worst one duplicate, and says so in the log).
    async fn find_earlier_post(
        &self,
        session: &SlackClientSession<'_, Connector>,
        n: &Notification,
        ctx: &SendContext,
    ) -> Result<Option<(String, String)>, SendError> {
        let lookup = async {
            let channel = self.resolve_channel_id(session).await?;
            let req = SlackApiConversationsHistoryRequest::new()
                .with_channel(channel.clone().into())
                .with_limit(HISTORY_LOOKBACK)
                .with_include_all_metadata(true);
            // Another app's metadata in the channel that slack-morphism cannot read (it reads
            // payloads as strings only) makes the answer unreadable: permanent here, since a
            // retry would fail the same way forever; the caller then posts.
            let resp = match tokio::time::timeout(
                self.config.timeout,
                session.conversations_history(&req),
            )
            .await
            {
                Ok(Err(SlackClientError::ProtocolError(_))) => {
                    return Err((
                        SendError::permanent(
                            "conversations.history: the answer could not be read (a message in \
                             the channel carries metadata this client cannot parse)",
                        ),
                        None,
                    ));
                }
                // Anything else is classified as every other call is.
                Ok(answer) => {
                    self.call("conversations.history", std::future::ready(answer))
                        .await?
                }
                Err(_) => return Err((self.no_answer("conversations.history"), None)),
            };
            Ok((channel, resp))
        };
        let (channel, resp) = match lookup.await {
            Ok(v) => v,
            Err((e, _)) if e.kind == super::receiver::FailureKind::Retryable => return Err(e),
            Err((e, _)) => {
                tracing::warn!(
                    receiver = %self.config.name,
                    group = %n.group_key,
                    error = %e.message,
                    "cannot read the channel's history to look for an earlier post of this notification (the bot may lack channels:history, or channels:read for a #name channel); posting, which may duplicate it"
                );
                return Ok(None);
            }
        };
        let outbox_id = ctx.outbox_id.to_string();
        let group = n.dedup_key();
        let created = n.created_at.timestamp_micros().to_string();
        Ok(resp
            .messages
            .iter()
            .filter(|m| {
                m.origin
                    .thread_ts
                    .as_ref()
                    .is_none_or(|t| *t == m.origin.ts)
            })
            .find(|m| {
                m.content.metadata.as_ref().is_some_and(|md| {
                    md.event_type == METADATA_EVENT
                        && md.event_payload.as_ref().is_some_and(|p| {
                            p.get("outbox_id") == Some(&outbox_id)
                                && p.get("group") == Some(&group)
                                && p.get("created") == Some(&created)
                        })
                })
            })
            .map(|m| (channel, m.origin.ts.to_string())))
    }

    /// `chat.update` of the group's message. `Ok(false)`: the message is gone (deleted or too
    /// old to edit), and the caller posts a new one.
    async fn update(
        &self,
        session: &SlackClientSession<'_, Connector>,
        state: &GroupState,
        payload: &SlackPayload,
    ) -> Result<bool, SendError> {
        let req = SlackApiChatUpdateRequest::new(
            state.channel.clone().into(),
            payload.content(),
            SlackTs::new(state.ts.clone()),
        );
        match self.call("chat.update", session.chat_update(&req)).await {
            Ok(_) => Ok(true),
            Err((_, Some(code))) if MESSAGE_GONE_CODES.contains(&code.as_str()) => Ok(false),
            Err((e, _)) => Err(e),
        }
    }

    /// Uploads the screenshot of the first firing alert that has one into the message's thread.
    /// Best effort: the alert was delivered, so a failure here is a warning, never a retry (a
    /// retry would post the message again). Returns a note for `Delivered::response`.
    async fn upload_screenshot(
        &self,
        session: &SlackClientSession<'_, Connector>,
        n: &Notification,
        channel: &str,
        ts: &str,
    ) -> String {
        if !self.config.upload_screenshots {
            return String::new();
        }
        let Some((alert, path)) = n.firing().find_map(|a| {
            a.run
                .as_ref()
                .and_then(|r| r.screenshot_path.as_deref())
                .map(|p| (a, p))
        }) else {
            return String::new();
        };
        match self
            .try_upload(session, alert, Path::new(path), channel, ts)
            .await
        {
            Ok(file_id) => format!(", screenshot {file_id}"),
            Err(e) => {
                tracing::warn!(
                    receiver = %self.config.name,
                    group = %n.group_key,
                    error = %self.redactor.redact(&e),
                    "Slack screenshot upload failed; the message itself was delivered"
                );
                ", screenshot upload failed".into()
            }
        }
    }

    async fn try_upload(
        &self,
        session: &SlackClientSession<'_, Connector>,
        alert: &AlertInfo,
        path: &Path,
        channel: &str,
        ts: &str,
    ) -> Result<String, String> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let filename = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "screenshot.png".into());
        let check = alert
            .run
            .as_ref()
            .map(|r| r.check.clone())
            .unwrap_or_default();
        let get = SlackApiFilesGetUploadUrlExternalRequest::new(filename.clone(), bytes.len())
            .with_alt_txt(format!("Failure screenshot of {check}"));
        let url = self
            .call(
                "files.getUploadURLExternal",
                session.get_upload_url_external(&get),
            )
            .await
            .map_err(|(e, _)| e.message)?;
        let put = SlackApiFilesUploadViaUrlRequest::new(
            url.upload_url.clone(),
            bytes,
            "image/png".into(),
        );
        self.call("upload", session.files_upload_via_url(&put))
            .await
            .map_err(|(e, _)| e.message)?;
        let complete = SlackApiFilesCompleteUploadExternalRequest::new(vec![
            SlackApiFilesComplete::new(url.file_id.clone())
                .with_title(format!("Failure screenshot: {check}")),
        ])
        .with_channel_id(channel.into())
        .with_thread_ts(SlackTs::new(ts.to_string()));
        self.call(
            "files.completeUploadExternal",
            session.files_complete_upload_external(&complete),
        )
        .await
        .map_err(|(e, _)| e.message)?;
        Ok(url.file_id.to_string())
    }
}

#[async_trait::async_trait]
impl Receiver for Slack {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn uses_group_state(&self) -> bool {
        true
    }

    fn checks_before_resend(&self) -> bool {
        true
    }

    fn kind(&self) -> &'static str {
        "slack"
    }

    fn pacing(&self) -> Option<(String, Duration)> {
        Some((
            format!("slack:{}", self.config.channel),
            Duration::from_secs(1),
        ))
    }

    fn secrets(&self) -> Vec<Secret> {
        vec![self.config.token.clone()]
    }

    /// Firing, no message for the group yet (or its last one shows an earlier, resolved
    /// episode): `chat.postMessage`, then the screenshot into its thread.
    /// Firing, the group has a message still showing it firing (a repeat, a changed firing set,
    /// or a resend of the same outbox row): `chat.update` it, and unless it is a resend of the
    /// same row, reply "still firing" in its thread. One message per episode in the channel.
    /// Resolved: `chat.update` the message to show it resolved and post the threaded resolve
    /// (skipped on a resend of the same row); with no stored message, post the resolve.
    /// A message that can no longer be edited (deleted) is replaced by a new post.
    ///
    /// The core stores `group_state` only after a delivery it recorded: a crash between
    /// Slack's `ok` and that record re-sends with the previous state. For a top-level post the
    /// resend finds the earlier post by its metadata and edits it (see the module doc); for an
    /// update or a resolve it makes the same edit again plus one more thread reply.
    async fn send(&self, n: &Notification, ctx: &SendContext) -> Result<Delivered, SendError> {
        let state = ctx
            .group_state
            .as_ref()
            .and_then(|v| serde_json::from_value::<GroupState>(v.clone()).ok());
        let payload = message(n);
        let token = SlackApiToken::new(self.config.token.expose().to_string().into());
        let session = self.client.open_session(&token);
        let resolved = n.status == Status::Resolved;

        let editable = state.filter(|s| resolved || !s.resolved);
        if let Some(s) = editable {
            let resend = s.outbox_id == ctx.outbox_id;
            if self.update(&session, &s, &payload).await? {
                let mut response = format!("ok, updated ts={}", s.ts);
                if !resend {
                    self.post(
                        &session,
                        &s.channel,
                        SlackMessageContent::new().with_text(thread_reply(n)),
                        Some(&s.ts),
                    )
                    .await?;
                    response.push_str(", replied in thread");
                }
                return Ok(Delivered {
                    response,
                    group_state: Some(state_json(GroupState {
                        outbox_id: ctx.outbox_id,
                        resolved,
                        ..s
                    })),
                });
            }
            tracing::info!(
                receiver = %self.config.name,
                group = %n.group_key,
                "the group's Slack message can no longer be edited; posting a new one"
            );
        }

        // An earlier attempt at this row started and its outcome was not recorded: it may have
        // posted. Edit that post rather than posting a second one.
        if ctx.attempt > 1
            && let Some((channel, ts)) = self.find_earlier_post(&session, n, ctx).await?
        {
            let found = GroupState {
                channel,
                ts,
                outbox_id: ctx.outbox_id,
                resolved,
            };
            if self.update(&session, &found, &payload).await? {
                return Ok(Delivered {
                    response: format!(
                        "ok, found the post of an earlier attempt (ts={}) and updated it",
                        found.ts
                    ),
                    group_state: Some(state_json(found)),
                });
            }
        }
        let metadata = SlackMessageMetadata::new(METADATA_EVENT.into()).with_event_payload(
            [
                ("outbox_id".to_string(), ctx.outbox_id.to_string()),
                ("group".to_string(), n.dedup_key()),
                // With the row id and the group, the moment the notification was made tells
                // this row from another instance's row 41 of the same group in the same channel.
                (
                    "created".to_string(),
                    n.created_at.timestamp_micros().to_string(),
                ),
            ]
            .into(),
        );
        let (channel, ts) = self
            .post(
                &session,
                &self.config.channel,
                payload.content().with_metadata(metadata),
                None,
            )
            .await?;
        // The id of the configured channel (this post went to it, not to a stored thread).
        *self.channel_id.lock().expect("channel id lock") = Some(channel.clone());
        let mut response = format!("ok ts={ts}");
        if !resolved {
            response.push_str(&self.upload_screenshot(&session, n, &channel, &ts).await);
        }
        Ok(Delivered {
            response,
            group_state: Some(state_json(GroupState {
                channel,
                ts,
                outbox_id: ctx.outbox_id,
                resolved,
            })),
        })
    }
}

fn state_json(s: GroupState) -> serde_json::Value {
    serde_json::to_value(s).expect("GroupState serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::{Condition, Labels, RunEvidence};
    use crate::notify::receiver::FailureKind;
    use chrono::TimeZone;
    use slack_morphism::errors::{SlackClientApiError, SlackClientHttpError, SlackRateLimitError};

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

    #[test]
    fn classification_table() {
        let api = |code: &str| SlackClientError::ApiError(SlackClientApiError::new(code.into()));
        for (code, kind) in [
            ("ratelimited", FailureKind::Retryable),
            ("internal_error", FailureKind::Retryable),
            ("channel_not_found", FailureKind::Permanent),
            ("invalid_auth", FailureKind::Permanent),
            ("not_authed", FailureKind::Permanent),
            ("account_inactive", FailureKind::Permanent),
            ("token_revoked", FailureKind::Permanent),
            ("not_in_channel", FailureKind::Permanent),
            ("is_archived", FailureKind::Permanent),
            ("msg_too_long", FailureKind::Permanent),
            ("no_text", FailureKind::Permanent),
            ("invalid_blocks", FailureKind::Permanent),
        ] {
            let e = classify("chat.postMessage", &api(code));
            assert_eq!(e.kind, kind, "{code}");
            assert!(e.message.contains(code), "{}", e.message);
        }
        let rl = SlackClientError::RateLimitError(
            SlackRateLimitError::new().with_retry_after(Duration::from_secs(7)),
        );
        let e = classify("chat.postMessage", &rl);
        assert_eq!(e.kind, FailureKind::Retryable);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        for (status, kind) in [
            (500, FailureKind::Retryable),
            (503, FailureKind::Retryable),
            (404, FailureKind::Permanent),
        ] {
            let h = SlackClientError::HttpError(
                SlackClientHttpError::new(http::StatusCode::from_u16(status).unwrap())
                    .with_http_response_body("Bearer xoxb-body-echo".into()),
            );
            let e = classify("chat.update", &h);
            assert_eq!(e.kind, kind, "{status}");
            assert!(!e.message.contains("xoxb"), "body quoted: {}", e.message);
        }
    }

    #[test]
    fn group_state_round_trips() {
        let s = GroupState {
            channel: "C1".into(),
            ts: "1700000000.000100".into(),
            outbox_id: 7,
            resolved: false,
        };
        let v = state_json(s.clone());
        assert_eq!(v["channel"], "C1");
        assert_eq!(serde_json::from_value::<GroupState>(v).unwrap(), s);
    }
}
