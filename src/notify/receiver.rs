//! The one interface every receiver implements. As in Alertmanager's `Notifier`, a receiver makes
//! one attempt and says whether a failure is worth retrying; the outbox owns retries, backoff,
//! pacing and persistence, so receiver files never loop, sleep or touch the store.

use std::time::Duration;

use crate::config::Secret;

use super::message::Notification;

/// What the core knows about earlier deliveries of the same alert group to this receiver.
#[derive(Debug, Clone, Default)]
pub struct SendContext {
    /// The state this receiver returned at its last successful delivery for the group (Slack: the
    /// channel and `ts` of the message to update on resolve). Persisted in the store.
    pub group_state: Option<serde_json::Value>,
    /// The outbox row being delivered. The same id on a later attempt means a resend of the same
    /// notification (after a crash between send and record): a receiver that can, makes the
    /// resend harmless (Slack updates the message it already posted instead of posting again).
    pub outbox_id: i64,
    /// 1 for the first attempt. For receivers with [`Receiver::checks_before_resend`], more
    /// than 1 means an earlier attempt started, and may have been delivered even if it was not
    /// recorded as such (a crash, a timeout after the request was sent).
    pub attempt: u32,
}

/// A delivery the receiver's API accepted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivered {
    /// What the receiver answered, short and free of secrets (`202 Accepted`, `ok ts=1700.1`).
    pub response: String,
    /// Replaces the stored state for this group when `Some`.
    pub group_state: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Try again later: network errors, timeouts, 429, 5xx, Slack `ratelimited`.
    Retryable,
    /// Trying again cannot help: 400, 401/403, Slack `channel_not_found`, `invalid_auth`.
    Permanent,
}

/// A failed attempt. `message` must never contain a secret (the core also scrubs it with
/// `Receiver::secrets` before logging or storing it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub kind: FailureKind,
    /// The receiver's own `Retry-After` (read with `http_util::retry_after`), which the core
    /// honours over its backoff.
    pub retry_after: Option<Duration>,
    pub message: String,
}

impl SendError {
    pub fn retryable(message: impl Into<String>) -> Self {
        SendError {
            kind: FailureKind::Retryable,
            retry_after: None,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        SendError {
            kind: FailureKind::Permanent,
            retry_after: None,
            message: message.into(),
        }
    }

    pub fn with_retry_after(mut self, d: Option<Duration>) -> Self {
        self.retry_after = d;
        self
    }

    /// Classifies an HTTP status the way most webhook-style APIs mean it: 408, 425, 429 and 5xx
    /// are worth retrying, other 4xx are not.
    pub fn from_status(status: u16, message: impl Into<String>) -> Self {
        if matches!(status, 408 | 425 | 429) || status >= 500 {
            SendError::retryable(message)
        } else {
            SendError::permanent(message)
        }
    }
}

/// The HTTP client of a receiver: its timeout, synmon's user agent, ring-only TLS.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    crate::tls::install();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("synmon/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// A request that got no HTTP answer, described without reqwest's text (which quotes the URL,
/// and webhook URLs often carry a token): always worth retrying.
pub fn network_error(e: &reqwest::Error) -> SendError {
    SendError::retryable(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    })
}

#[async_trait::async_trait]
pub trait Receiver: Send + Sync {
    /// The receiver's name in the config.
    fn name(&self) -> &str;
    /// `slack`, `pagerduty`, `webhook`, `console`.
    fn kind(&self) -> &'static str;
    /// Deliveries sharing a pacing key go out at most once per interval (Slack: one message per
    /// second per channel). The core enforces it.
    fn pacing(&self) -> Option<(String, Duration)> {
        None
    }
    /// Whether `send` reads `SendContext::group_state` (Slack: the message to update). The core
    /// skips the store lookup for receivers that do not.
    fn uses_group_state(&self) -> bool {
        false
    }
    /// Whether the core should record an attempt as started before `send` runs. A crash (or a
    /// timeout) can leave a delivery whose outcome nobody recorded; with this on, the resend
    /// arrives with `SendContext::attempt > 1`, so a receiver that can look up what it already
    /// delivered (Slack: the channel's history) makes the resend an edit, not a second message.
    /// It costs one store write per attempt, so receivers whose API deduplicates on its own
    /// (PagerDuty's `dedup_key`) leave it off.
    fn checks_before_resend(&self) -> bool {
        false
    }
    /// Every secret the receiver holds, so the core can scrub them from anything it logs or
    /// stores, and tests can assert they never appear.
    fn secrets(&self) -> Vec<Secret> {
        Vec::new()
    }
    /// One attempt to deliver `n`.
    async fn send(&self, n: &Notification, ctx: &SendContext) -> Result<Delivered, SendError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classification() {
        for (status, kind) in [
            (400, FailureKind::Permanent),
            (401, FailureKind::Permanent),
            (403, FailureKind::Permanent),
            (404, FailureKind::Permanent),
            (408, FailureKind::Retryable),
            (429, FailureKind::Retryable),
            (500, FailureKind::Retryable),
            (502, FailureKind::Retryable),
            (503, FailureKind::Retryable),
        ] {
            assert_eq!(SendError::from_status(status, "x").kind, kind, "{status}");
        }
    }
}
