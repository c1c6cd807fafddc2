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
//! ([`super::Receiver::checks_before_resend`]), and a later attempt with no message to edit
//! first looks for its own earlier post in the channel's recent history
//! (`conversations.history` with `include_all_metadata`) and edits that instead of posting again. This needs the bot scopes
//! `channels:history` (`groups:history` for a private channel) and, when `channel` is a `#name`,
//! `channels:read` to find its id; without them the resend posts, at worst one duplicate.
//!
//! Two rooms: `payload.rs` builds the Block Kit message and the thread replies ([`message`],
//! [`thread_reply`]), pure and tested without a network; `client.rs` is the Web API client (the
//! [`Slack`] receiver: post, update, history lookup, screenshot upload), where [`classify`] maps
//! every slack-morphism error to retryable/permanent without ever quoting a response body or
//! the token. This file holds the receiver's config.

pub mod client;
pub mod payload;

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Secret;

use super::config::field;

pub use client::{GroupState, METADATA_EVENT, RETRYABLE_CODES, Slack, classify, edits_message};
pub use payload::{
    MAX_BLOCKS, MAX_HEADER_CHARS, MAX_SECTION_CHARS, MAX_TEXT_CHARS, SlackPayload, cut, escape,
    message, thread_reply,
};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    pub name: String,
    /// Slack's Web API base (`https://slack.com/api`); tests point it at a local fake.
    #[serde(default)]
    pub api_url: Option<String>,
    /// A bot token (`xoxb-...`), a secret. Empty: the receiver is disabled.
    #[schemars(with = "crate::config::schema::SecretText")]
    pub token: String,
    /// `#alerts`, or a channel id (`C0123ABC`).
    pub channel: String,
    /// Upload the failure screenshot into the message's thread (default true).
    #[serde(default)]
    pub upload_screenshots: Option<bool>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
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
