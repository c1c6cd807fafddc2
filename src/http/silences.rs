//! `/api/v1/silences`: list (read-only, open like the rest of the API), create and expire
//! (JWT bearer with `aud=admin`; a silence that could mute a PagerDuty route also needs a fresh
//! step-up, see `crate::mute::auth`). Errors are JSON `{"error": ...}`; 401 answers carry
//! `WWW-Authenticate: Bearer`.
//!
//! The token is verified by [`require_admin`], a middleware on the mutating routes, before any
//! extractor reads the body: an anonymous client is refused at once, and cannot make the server
//! wait for a body it trickles.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::server::BodyDeadline;
use crate::mute::auth::{AuthError, Principal};
use crate::mute::silence::{NewSilence, SilenceError, mutes_pagerduty, parse_matchers};
use crate::view::DaemonView;

type AppState = DaemonView;

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

fn auth_error(e: &AuthError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut resp = error(status, e.to_string());
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"synmon\""),
        );
    }
    resp
}

/// The admin principal of the request, or why it is refused.
fn admin(s: &DaemonView, headers: &HeaderMap) -> Result<Principal, AuthError> {
    let cfg = s.config();
    let Some(auth) = &cfg.mute.auth else {
        return Err(AuthError::NotConfigured);
    };
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    auth.verify(header, s.now()).inspect_err(|e| {
        tracing::info!(error = %e, "silence API request refused");
    })
}

/// Middleware on the mutating routes: the admin principal verified from the headers alone and
/// handed to the handler as an extension, or the refusal, without the body being read.
pub async fn require_admin(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    match admin(&s, req.headers()) {
        Ok(who) => {
            req.extensions_mut().insert(who);
            next.run(req).await
        }
        Err(e) => auth_error(&e),
    }
}

/// A body that could not be read or parsed: 408 when it did not arrive in time (the client is
/// too slow, not wrong), 400 otherwise.
fn body_error(e: &JsonRejection) -> Response {
    match BodyDeadline::behind(e) {
        Some(d) => error(StatusCode::REQUEST_TIMEOUT, d.to_string()),
        None => error(StatusCode::BAD_REQUEST, e.body_text()),
    }
}

fn silence_error(e: SilenceError) -> Response {
    match e {
        SilenceError::Invalid(m) => error(StatusCode::BAD_REQUEST, m),
        SilenceError::NotFound(id) => error(StatusCode::NOT_FOUND, format!("no silence {id}")),
        SilenceError::Store(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Every silence with its state now, newest first.
pub async fn list(State(s): State<AppState>) -> Response {
    let now = s.now();
    let all: Vec<_> = s
        .mute()
        .silences
        .all()
        .iter()
        .map(|x| x.to_json(now))
        .collect();
    Json(json!({"silences": all, "generated_at": now})).into_response()
}

/// Creates a silence; it applies from the next flush. 201 with the silence. Behind
/// [`require_admin`].
pub async fn create(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Result<Json<NewSilence>, JsonRejection>,
) -> Response {
    let Json(new) = match body {
        Ok(b) => b,
        Err(e) => return body_error(&e),
    };
    let now = s.now();
    let matchers = match parse_matchers(&new.matchers) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if mutes_pagerduty(&matchers, &s.config().notify)
        && let Err(e) = who.require_step_up("a silence that mutes a PagerDuty route", now)
    {
        tracing::info!(subject = %who.subject, error = %e, "silence refused");
        return auth_error(&e);
    }
    let silence = match new.into_silence(&who.subject, now) {
        Ok(x) => x,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match s.mute().silences.add(silence).await {
        Ok(x) => (StatusCode::CREATED, Json(x.to_json(now))).into_response(),
        Err(e) => silence_error(e),
    }
}

/// Expires a silence now (`DELETE`, as Alertmanager): 200 with the expired silence. Behind
/// [`require_admin`].
pub async fn expire(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let now = s.now();
    match s.mute().silences.expire(&id, now).await {
        Ok(x) => {
            tracing::info!(silence = %id, subject = %who.subject, "silence expired through the API");
            Json(x.to_json(now)).into_response()
        }
        Err(e) => silence_error(e),
    }
}
