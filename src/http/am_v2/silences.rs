//! `/api/v2/silences` and `/api/v2/silence/{id}`: synmon's silences in Alertmanager's shapes.
//!
//! A v2 matcher (`name`, `value`, `isRegex`, `isEqual`) is one of synmon's four operators, kept
//! exactly (`crate::mute::silence::written`); regexes are anchored as in Alertmanager. What a
//! synmon silence cannot hold is refused with a 400 saying so, never approximated: two
//! matchers on one label. Like Alertmanager, a silence whose matchers all match the empty string
//! is refused. The rest is `/api/v1/silences`' validation and authority: the author is the
//! token's `sub` (what the client sent as `createdBy` is kept in the comment when it differs),
//! a silence that can mute a PagerDuty route needs a fresh step-up.
//!
//! Posting with the `id` of a silence replaces it as Alertmanager does when it cannot update in
//! place: the old one is expired and a new one (a new id) is created.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AppState, filter, internal, not_found, query_pairs, refuse};
use crate::http::server::BodyDeadline;
use crate::mute::auth::Principal;
use crate::mute::silence::{
    NewSilence, Silence, SilenceError, SilenceState, matcher_map, matches_empty, mutes_pagerduty,
    parse_matchers,
};
use crate::rules::model::MatchOp;

/// A matcher as API v2 writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct WireMatcher {
    name: String,
    value: String,
    is_regex: bool,
    #[serde(default = "equal_by_default")]
    is_equal: bool,
}

fn equal_by_default() -> bool {
    true
}

impl WireMatcher {
    fn op(&self) -> MatchOp {
        match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Eq,
            (false, false) => MatchOp::Ne,
            (true, true) => MatchOp::Re,
            (true, false) => MatchOp::NotRe,
        }
    }
}

#[derive(Serialize)]
struct SilenceStatus {
    state: SilenceState,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableSilence {
    id: String,
    status: SilenceStatus,
    updated_at: DateTime<Utc>,
    matchers: Vec<WireMatcher>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_by: String,
    comment: String,
}

fn gettable(s: &Silence, now: DateTime<Utc>) -> GettableSilence {
    GettableSilence {
        id: s.id.clone(),
        status: SilenceStatus {
            state: s.state(now),
        },
        updated_at: s.updated_at,
        matchers: s
            .parsed
            .0
            .iter()
            .map(|m| WireMatcher {
                name: m.label.clone(),
                value: m.value.clone(),
                is_regex: matches!(m.op, MatchOp::Re | MatchOp::NotRe),
                is_equal: matches!(m.op, MatchOp::Eq | MatchOp::Re),
            })
            .collect(),
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
    }
}

/// Alertmanager's order: active first (the next to end first), then pending (the next to
/// start first), then expired (the latest to end first).
fn order(a: &Silence, b: &Silence, now: DateTime<Utc>) -> std::cmp::Ordering {
    let rank = |s: &Silence| match s.state(now) {
        SilenceState::Active => 0,
        SilenceState::Pending => 1,
        SilenceState::Expired => 2,
    };
    rank(a).cmp(&rank(b)).then_with(|| match a.state(now) {
        SilenceState::Active => a.ends_at.cmp(&b.ends_at),
        SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
        SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
    })
}

/// Whether a silence passes the `filter` matchers, Alertmanager's way: its matchers' values
/// form a label set the filter matches; an empty `=`/`=~` filter value passes a silence
/// without that label, an empty `!=`/`!~` one a silence with it.
fn filter_keeps(s: &Silence, filters: &[crate::rules::model::Matcher]) -> bool {
    let values: crate::notify::message::Labels = s
        .parsed
        .0
        .iter()
        .map(|m| (m.label.clone(), m.value.clone()))
        .collect();
    filters.iter().all(|f| {
        let present = values.contains_key(&f.label);
        let negative = matches!(f.op, MatchOp::Ne | MatchOp::NotRe);
        (f.value.is_empty() && present == negative) || f.matches(&values)
    })
}

/// `GET /api/v2/silences`: every silence (expired ones included), `filter` applied.
pub(super) async fn list(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let mut filters = Vec::new();
    for (_, v) in query_pairs(q.as_deref())
        .iter()
        .filter(|(k, _)| k == "filter")
    {
        match filter::parse(v) {
            Ok(m) => filters.extend(m),
            Err(why) => return refuse(why),
        }
    }
    let now = s.now();
    let mut all: Vec<Silence> = s
        .mute()
        .silences
        .all()
        .into_iter()
        .filter(|x| filter_keeps(x, &filters))
        .collect();
    all.sort_by(|a, b| order(a, b, now));
    Json(all.iter().map(|x| gettable(x, now)).collect::<Vec<_>>()).into_response()
}

/// `GET /api/v2/silence/{id}`.
pub(super) async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.mute().silences.get(&id) {
        Some(x) => Json(gettable(&x, s.now())).into_response(),
        None => not_found(format!("silence {id} not found")),
    }
}

/// The body of `POST /api/v2/silences` (Alertmanager's `postableSilence`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<WireMatcher>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_by: String,
    comment: String,
}

/// At most this much of what a client sent as `createdBy` is kept in the comment.
const MAX_SENT_AUTHOR_CHARS: usize = 64;

/// `/api/v1/`'s validation messages in v2's field names.
fn v2_words(msg: String) -> String {
    msg.replace("`ends_at`", "`endsAt`")
        .replace("`starts_at`", "`startsAt`")
}

fn body_error(e: &JsonRejection) -> Response {
    match BodyDeadline::behind(e) {
        Some(d) => (StatusCode::REQUEST_TIMEOUT, Json(d.to_string())).into_response(),
        None => refuse(e.body_text()),
    }
}

fn silence_error(e: SilenceError) -> Response {
    match e {
        SilenceError::Invalid(m) => refuse(m),
        SilenceError::NotFound(id) => not_found(format!("silence {id} not found")),
        SilenceError::Store(e) => internal(e.to_string()),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    #[serde(rename = "silenceID")]
    silence_id: String,
}

/// `POST /api/v2/silences`: creates a silence (or replaces the one named by `id`); 200 with
/// `{"silenceID": ...}`. Behind the admin check of [`super::authorize`].
pub(super) async fn create(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Result<Json<PostableSilence>, JsonRejection>,
) -> Response {
    let Json(p) = match body {
        Ok(b) => b,
        Err(e) => return body_error(&e),
    };
    let now = s.now();
    let map = match matcher_map(
        p.matchers
            .iter()
            .map(|m| (m.name.as_str(), m.op(), m.value.as_str())),
    ) {
        Ok(m) => m,
        Err(why) => return refuse(why),
    };
    let parsed = match parse_matchers(&map) {
        Ok(m) => m,
        Err(why) => return refuse(why),
    };
    if matches_empty(&parsed) {
        return refuse(
            "at least one matcher must not match the empty string: this silence would mute every alert without its labels",
        );
    }
    if mutes_pagerduty(&parsed, &s.config().notify)
        && let Err(e) = who.require_step_up("a silence that mutes a PagerDuty route", now)
    {
        tracing::info!(subject = %who.subject, error = %e, "API v2 silence refused");
        return refuse(e.to_string());
    }
    let new = NewSilence {
        matchers: map,
        starts_at: Some(p.starts_at),
        ends_at: p.ends_at,
        comment: p.comment,
        created_by: None,
    };
    let mut silence = match new.into_silence(&who.subject, now) {
        Ok(x) => x,
        Err(why) => return refuse(v2_words(why)),
    };
    let sent = p.created_by.trim();
    if !sent.is_empty() && sent != who.subject {
        let sent: String = sent.chars().take(MAX_SENT_AUTHOR_CHARS).collect();
        silence.comment = format!("{} (sent as createdBy: {sent})", silence.comment);
    }
    if let Some(old) = p.id.as_deref().filter(|id| !id.is_empty()) {
        if let Err(e) = s.mute().silences.expire(old, now).await {
            return silence_error(e);
        }
        tracing::info!(silence = %old, subject = %who.subject, "silence replaced through the API v2");
    }
    match s.mute().silences.add(silence).await {
        Ok(x) => Json(Created { silence_id: x.id }).into_response(),
        Err(e) => silence_error(e),
    }
}

/// `DELETE /api/v2/silence/{id}`: expires it now; 200 with no body. Expiring an expired
/// silence changes nothing. Behind the admin check of [`super::authorize`].
pub(super) async fn expire(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    match s.mute().silences.expire(&id, s.now()).await {
        Ok(_) => {
            tracing::info!(silence = %id, subject = %who.subject, "silence expired through the API v2");
            StatusCode::OK.into_response()
        }
        Err(e) => silence_error(e),
    }
}
