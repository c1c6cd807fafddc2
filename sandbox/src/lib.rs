//! rvp-sandbox: a small, honest stand-in for the retail visibility platform (RVP).
//!
//! It serves the pages and the JSON API that synmon's journeys and probes drive,
//! keeps its state in SQLite or PostgreSQL, runs a feed-push worker that follows
//! the platform's retry schedule, and has fault switches (`/__sandbox/faults`) so tests
//! and the demo can break it on purpose. See `sandbox/README.md`.

pub mod api;
pub mod auth;
pub mod copy;
pub mod db;
pub mod error;
pub mod faults;
pub mod metrics;
pub mod pages;
pub mod ratelimit;
pub mod seed;
pub mod taxonomy;
pub mod traces;
pub mod worker;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::auth::JwtKeys;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult};
use crate::faults::{Fault, Faults};
use crate::ratelimit::{Decision, RateLimiter};

/// Request bodies above this size are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How the sandbox is started.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Listen address; default 127.0.0.1:3000 (tests use port 0).
    pub listen: SocketAddr,
    /// `sqlite://PATH` (created if missing) or `postgres://...`.
    pub database_url: String,
    /// Bearer token for `/__sandbox/faults`; the fault API is off when `None`.
    pub admin_token: Option<String>,
    /// Feed-job retry delays are divided by this.
    pub time_scale: f64,
    /// Password of `synthetic@rvp.test`.
    pub synthetic_password: String,
    /// Requests per minute per client on `/api/*`.
    pub rate_limit_per_minute: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3000),
            database_url: "sqlite://rvp-sandbox.db".into(),
            admin_token: None,
            time_scale: 1.0,
            synthetic_password: "synthetic-demo".into(),
            rate_limit_per_minute: 1000,
        }
    }
}

/// Shared state of one running sandbox.
pub struct AppState {
    pub db: Db,
    pub config: SandboxConfig,
    pub jwt: JwtKeys,
    pub faults: Faults,
    pub limiter: RateLimiter,
    pub worker_wake: Notify,
    pub shutdown: watch::Receiver<bool>,
    pub synthetic_tenant: Id,
    /// The trace context recent requests brought (`GET /__debug/traces`).
    pub traces: traces::Traces,
}

impl AppState {
    /// The database, unless the `db_down` fault is on.
    pub fn db(&self) -> ApiResult<&Db> {
        if self.faults.db_down() {
            Err(ApiError::db_down())
        } else {
            Ok(&self.db)
        }
    }

    /// Resolves when the sandbox is shutting down.
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// A running sandbox (server + feed worker).
pub struct Sandbox {
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown_tx: watch::Sender<bool>,
    server: JoinHandle<()>,
    worker: JoinHandle<()>,
}

/// Migrates and seeds the database, binds, and spawns the server and the feed worker.
pub async fn start(config: SandboxConfig) -> anyhow::Result<Sandbox> {
    anyhow::ensure!(
        config.time_scale.is_finite() && config.time_scale > 0.0,
        "time_scale must be a positive number"
    );
    anyhow::ensure!(
        !config.synthetic_password.is_empty(),
        "synthetic_password must not be empty"
    );
    let db = Db::connect(&config.database_url)
        .await
        .with_context(|| format!("connecting to {}", db::mask_url(&config.database_url)))?;
    db.migrate().await.context("creating the schema")?;
    let synthetic_tenant = seed::ensure(&db, &config.synthetic_password)
        .await
        .context("seeding")?;
    worker::recover(&db)
        .await
        .context("recovering interrupted feed jobs")?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = Arc::new(AppState {
        db,
        limiter: RateLimiter::new(config.rate_limit_per_minute),
        config,
        jwt: JwtKeys::random(),
        faults: Faults::default(),
        worker_wake: Notify::new(),
        shutdown: shutdown_rx.clone(),
        synthetic_tenant,
        traces: traces::Traces::default(),
    });

    let app = router(state.clone());
    let mut rx = shutdown_rx;
    let server = tokio::spawn(async move {
        let res = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|v| *v).await;
        })
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "server stopped with an error");
        }
    });
    let worker = tokio::spawn(worker::run(state.clone()));
    tracing::info!(%addr, "rvp-sandbox listening");
    Ok(Sandbox {
        addr,
        state,
        shutdown_tx,
        server,
        worker,
    })
}

impl Sandbox {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (loopback when listening on an unspecified address).
    pub fn base_url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            self.addr.ip()
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Stops the server and the worker. Hung requests are released; anything
    /// still running after a grace period is aborted.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        let grace = Duration::from_secs(5);
        let mut server = self.server;
        if tokio::time::timeout(grace, &mut server).await.is_err() {
            tracing::warn!("server did not stop in time; aborting");
            server.abort();
        }
        let mut worker = self.worker;
        if tokio::time::timeout(grace, &mut worker).await.is_err() {
            worker.abort();
        }
        let _ = tokio::time::timeout(grace, self.state.db.close()).await;
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(pages::root))
        .route("/healthz", get(api::healthz))
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        .route("/t/{tenant}/categories", get(pages::categories))
        .route("/t/{tenant}/settings/profile", get(pages::profile))
        .route("/t/{tenant}/inventory", get(pages::inventory))
        .route("/api/login", post(api::login))
        .route("/api/taxonomy", get(api::taxonomy))
        .route("/api/metrics/business", get(api::business_metrics))
        .route("/api/t/{tenant}/categories", get(api::categories))
        .route(
            "/api/t/{tenant}/categories/{id}/mapping",
            put(api::put_mapping),
        )
        .route(
            "/api/t/{tenant}/profile",
            get(api::get_profile).put(api::put_profile),
        )
        .route("/api/t/{tenant}/skus", get(api::skus))
        .route("/api/t/{tenant}/feed-push", post(api::feed_push))
        .route("/api/t/{tenant}/feed-jobs/{id}", get(api::feed_job))
        .route(
            "/api/t/{tenant}/feed-jobs/{id}/attempts",
            get(api::feed_job_attempts),
        )
        .route("/api/t/{tenant}/swis/preview", get(api::swis_preview))
        .route("/api/t/{tenant}/qa-events", post(api::qa_event))
        .route("/svc/{service}/healthz", get(api::svc_healthz))
        .route(
            "/__sandbox/faults",
            get(api::faults_list)
                .post(api::faults_add)
                .delete(api::faults_clear),
        )
        .route("/__debug/traces", get(traces::list))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        // Outside `edge`: a request answered by an injected fault was still seen.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            traces::record,
        ))
        .with_state(state)
}

/// Fault injection and rate limiting, in front of every route except `/__sandbox/*` and
/// `/__debug/*`.
async fn edge(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/__sandbox/") || path == "/__sandbox" || path.starts_with("/__debug/") {
        return next.run(req).await;
    }
    let is_api = path.starts_with("/api/");
    let faults = st.faults.matching(&path);

    let delay: Duration = faults.iter().map(Fault::sample_latency).sum();
    if !delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = st.shutting_down() => return shutting_down(),
        }
    }
    if faults.iter().any(|f| matches!(f, Fault::Hang { .. })) {
        st.shutting_down().await;
        return shutting_down();
    }
    if faults.iter().any(|f| matches!(f, Fault::RateLimit { .. })) {
        let d = Decision {
            allowed: false,
            limit: st.limiter.limit(),
            remaining: 0,
            reset_unix: chrono::Utc::now().timestamp() + 1,
            retry_after_secs: 1,
        };
        return too_many(d);
    }
    let decision = is_api.then(|| st.limiter.check(&client_key(&st, &req)));
    if let Some(d) = decision
        && !d.allowed
    {
        return too_many(d);
    }
    let injected = faults.iter().find_map(|f| match f {
        Fault::Error { rate, status, .. } if rand::random::<f64>() < *rate => Some(*status),
        _ => None,
    });
    let mut resp = match injected {
        Some(status) => ApiError::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            format!("injected fault (status {status})"),
        )
        .into_response(),
        None => next.run(req).await,
    };
    if let Some(d) = decision {
        rate_headers(&mut resp, &d);
    }
    resp
}

fn shutting_down() -> Response {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
}

fn too_many(d: Decision) -> Response {
    let mut resp =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded").into_response();
    rate_headers(&mut resp, &d);
    resp.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(d.retry_after_secs),
    );
    resp
}

fn rate_headers(resp: &mut Response, d: &Decision) {
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("x-ratelimit-limit"),
        HeaderValue::from(d.limit),
    );
    h.insert(
        HeaderName::from_static("x-ratelimit-remaining"),
        HeaderValue::from(d.remaining),
    );
    h.insert(
        HeaderName::from_static("x-ratelimit-reset"),
        HeaderValue::from(d.reset_unix),
    );
}

/// The token subject when the request carries a valid session, else the peer IP.
fn client_key(st: &AppState, req: &Request) -> String {
    if let Some(c) = st.jwt.from_headers(req.headers()) {
        return format!("user:{}", c.sub);
    }
    match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => format!("ip:{}", addr.ip()),
        None => "ip:unknown".into(),
    }
}
