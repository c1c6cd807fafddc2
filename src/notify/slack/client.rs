//! The Slack Web API client: the [`Slack`] receiver posts a group's message, edits it, replies
//! in its thread, looks for its own earlier post in the channel's history, and uploads the
//! failure screenshot; [`classify`] says which failures are worth retrying. The message itself
//! comes from `payload.rs`.

use std::path::Path;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::{Deserialize, Serialize};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::config::Redactor;
use crate::config::Secret;
use crate::notify::message::{AlertInfo, Notification, Status};
use crate::notify::receiver::{Delivered, FailureKind, Receiver, SendContext, SendError};

use super::SlackConfig;
use super::payload::{SlackPayload, message, thread_reply};

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

/// Whether a notification edits the group's stored message (`chat.update`) rather than
/// posting a new one, given whether that message already shows the group resolved and whether
/// the notification resolves it: a resolve always edits; a firing group edits a message that
/// still shows it firing, and starts a new one after a resolved episode. A replay that
/// counts posts must decide the same way.
pub fn edits_message(message_shows_resolved: bool, resolving: bool) -> bool {
    resolving || !message_shows_resolved
}

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
            Err((e, _)) if e.kind == FailureKind::Retryable => return Err(e),
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

        let editable = state.filter(|s| edits_message(s.resolved, resolved));
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
    use slack_morphism::errors::{SlackClientApiError, SlackClientHttpError, SlackRateLimitError};

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
