//! Alertmanager's API v2 (`/api/v2/`), the subset its clients use: `amtool` (silence add,
//! query, expire; alert query) and Grafana's Alertmanager data source. The JSON shapes are those
//! of Alertmanager's OpenAPI definitions (v0.25); what they show is synmon's own state: the
//! alerts the evaluator fires (with the routes, silences, inhibitions and maintenance windows
//! that apply to them, judged as the notification pipeline judges them), the silences of
//! `crate::mute::silence`, and the receivers and routing tree of the config.
//!
//! Who may do what is synmon's rule, not Alertmanager's: reads need the `server.auth_token`
//! when one is set, or an admin JWT (amtool sends one bearer token from `--http.config.file`
//! for every request, so the token that may write may also read); writes need the admin JWT,
//! and a silence that can mute a PagerDuty route a fresh step-up, as on `/api/v1/silences`.
//!
//! Every refusal is a 400 whose body is a JSON string: Alertmanager's generated client (amtool)
//! shows an answer's body only for 400 and 404, and reads it as a string. `/api/v1/` keeps its
//! own statuses and `{"error": ...}` bodies.

mod alerts;
mod config;
mod filter;
mod silences;

use std::collections::BTreeSet;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::AppState;
use crate::mute::auth::Principal;
use crate::view::DaemonView;

/// The `/api/v2/` routes, each behind [`authorize`]. Merged outside the `server.auth_token`
/// layer of the other reads: this one accepts that token or an admin JWT.
pub fn routes(shared: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v2/status", get(status))
        .route("/api/v2/receivers", get(receivers))
        .route("/api/v2/alerts", get(alerts::list))
        .route("/api/v2/alerts/groups", get(alerts::groups))
        .route(
            "/api/v2/silences",
            get(silences::list).post(silences::create),
        )
        .route(
            "/api/v2/silence/{id}",
            get(silences::get).delete(silences::expire),
        )
        .layer(axum::middleware::from_fn_with_state(shared, authorize))
}

/// A refusal as Alertmanager's clients expect it: 400 with the reason as a JSON string.
fn refuse(why: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(why.into())).into_response()
}

fn not_found(what: impl Into<String>) -> Response {
    (StatusCode::NOT_FOUND, Json(what.into())).into_response()
}

/// A failure on this side (the store): 500 with a JSON string, Alertmanager's
/// `InternalServerError`.
fn internal(why: impl Into<String>) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, Json(why.into())).into_response()
}

/// Middleware: reads pass with the `server.auth_token` (Bearer or Basic) or an admin JWT (or
/// with nothing when no token is set, like `/api/v1/`); writes need the admin JWT, whose
/// principal the handlers receive as an extension. Judged from the headers alone, before a
/// body is read.
pub async fn authorize(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let cfg = s.config();
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if reads {
        let Some(token) = cfg.auth_token.as_ref() else {
            return next.run(req).await;
        };
        if super::auth::authorize(req.headers(), Some(token)).is_ok() {
            return next.run(req).await;
        }
        let why = match &cfg.mute.auth {
            Some(jwt) => match jwt.verify(authorization.as_deref(), s.now()) {
                Ok(_) => return next.run(req).await,
                Err(e) => format!(" (as a JWT: {e})"),
            },
            None => String::new(),
        };
        tracing::info!(path = %req.uri().path(), "API v2 read refused");
        return refuse(format!(
            "authentication required: send `Authorization: Bearer` with the server's `server.auth_token` or an admin JWT; the request had neither{why}"
        ));
    }
    match admin(&s, authorization.as_deref()) {
        Ok(who) => {
            req.extensions_mut().insert(who);
            next.run(req).await
        }
        Err(why) => refuse(why),
    }
}

/// The admin principal of a write, or why it is refused (the `/api/v1/silences` rules).
fn admin(s: &DaemonView, authorization: Option<&str>) -> Result<Principal, String> {
    let cfg = s.config();
    let Some(auth) = &cfg.mute.auth else {
        return Err(crate::mute::auth::AuthError::NotConfigured.to_string());
    };
    auth.verify(authorization, s.now()).map_err(|e| {
        tracing::info!(error = %e, "API v2 write refused");
        e.to_string()
    })
}

/// The query string as pairs, repeated keys kept (`filter=a&filter=b`, Alertmanager's
/// `collectionFormat: multi`).
fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A boolean query parameter (Go's `strconv.ParseBool` words), `default` when absent.
fn flag(pairs: &[(String, String)], name: &str, default: bool) -> Result<bool, String> {
    match pairs.iter().rev().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => match v.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            other => Err(format!("`{name}` must be true or false, not `{other}`")),
        },
    }
}

#[derive(Clone, Serialize)]
struct Receiver {
    name: String,
}

/// Every receiver a route can name (the console included), in config order.
async fn receivers(State(s): State<AppState>) -> Json<Vec<Receiver>> {
    let cfg = s.config();
    let mut seen = BTreeSet::new();
    let names = cfg
        .notify
        .receivers
        .iter()
        .map(|r| r.name().to_string())
        .chain(cfg.notify.route.walk().iter().map(|r| r.receiver.clone()))
        .filter(|n| seen.insert(n.clone()))
        .map(|name| Receiver { name })
        .collect();
    Json(names)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    cluster: ClusterStatus,
    version_info: VersionInfo,
    config: ConfigOriginal,
    /// When the daemon started.
    uptime: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize)]
struct ClusterStatus {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    peers: Vec<Peer>,
}

#[derive(Serialize)]
struct Peer {
    name: String,
    /// Where the replica runs: its location (replicas do not publish an address).
    address: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    version: &'static str,
    revision: &'static str,
    branch: &'static str,
    build_user: &'static str,
    build_date: &'static str,
    go_version: &'static str,
}

#[derive(Serialize)]
struct ConfigOriginal {
    original: String,
}

/// synmon's version, its cluster (this replica and the live ones beside it, `disabled` for a
/// single node on SQLite), its routing as an Alertmanager config (receivers by name only: no
/// secret is in it), and when it started.
async fn status(State(s): State<AppState>) -> Json<Status> {
    let cfg = s.config();
    let cluster = if s.cluster().is_single_node() {
        ClusterStatus {
            status: "disabled",
            name: None,
            peers: Vec::new(),
        }
    } else {
        match s.cluster().status().await {
            Ok(st) => ClusterStatus {
                status: "ready",
                name: Some(st.replica),
                peers: st
                    .replicas
                    .into_iter()
                    .map(|r| Peer {
                        name: r.id,
                        address: r.location,
                    })
                    .collect(),
            },
            // The store does not answer: this replica cannot tell who its peers are.
            Err(_) => ClusterStatus {
                status: "settling",
                name: None,
                peers: Vec::new(),
            },
        }
    };
    Json(Status {
        cluster,
        version_info: VersionInfo {
            version: env!("CARGO_PKG_VERSION"),
            revision: "",
            branch: "",
            build_user: "",
            build_date: "",
            go_version: "none (synmon is written in Rust)",
        },
        config: ConfigOriginal {
            original: config::alertmanager_yaml(&cfg),
        },
        uptime: s.started_at(),
    })
}
