//! The W3C trace context each request brought, kept for tests and the demo to follow a
//! synthetic check's trace into the target: the last [`KEEP`] requests' path, method,
//! `traceparent` and `tracestate` (either may be absent), oldest first, at
//! `GET /__debug/traces`; each is also logged at debug level. Requests to `/__debug/*` and
//! `/__sandbox/*` are not recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use crate::AppState;

/// Requests remembered; older ones are forgotten.
pub const KEEP: usize = 1_000;

/// One request as it arrived.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// The last [`KEEP`] requests.
#[derive(Debug, Default)]
pub struct Traces {
    seen: Mutex<VecDeque<SeenRequest>>,
}

impl Traces {
    fn push(&self, r: SeenRequest) {
        let mut seen = self.seen.lock().expect("traces lock");
        if seen.len() == KEEP {
            seen.pop_front();
        }
        seen.push_back(r);
    }

    /// Every remembered request, oldest first.
    pub fn list(&self) -> Vec<SeenRequest> {
        self.seen
            .lock()
            .expect("traces lock")
            .iter()
            .cloned()
            .collect()
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Records what a request brought, then serves it.
pub async fn record(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !path.starts_with("/__debug/") && !path.starts_with("/__sandbox/") {
        let seen = SeenRequest {
            method: req.method().to_string(),
            path: path.to_string(),
            traceparent: header(&req, "traceparent"),
            tracestate: header(&req, "tracestate"),
        };
        tracing::debug!(
            method = %seen.method,
            path = %seen.path,
            traceparent = seen.traceparent.as_deref().unwrap_or("-"),
            "request"
        );
        st.traces.push(seen);
    }
    next.run(req).await
}

/// `GET /__debug/traces`: the remembered requests, oldest first.
pub async fn list(State(st): State<Arc<AppState>>) -> Json<Vec<SeenRequest>> {
    Json(st.traces.list())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(i: usize) -> SeenRequest {
        SeenRequest {
            method: "GET".into(),
            path: format!("/p{i}"),
            traceparent: None,
            tracestate: None,
        }
    }

    #[test]
    fn only_the_last_requests_are_kept_oldest_first() {
        let t = Traces::default();
        for i in 0..KEEP + 5 {
            t.push(seen(i));
        }
        let list = t.list();
        assert_eq!(list.len(), KEEP);
        assert_eq!(list[0].path, "/p5");
        assert_eq!(list[KEEP - 1].path, format!("/p{}", KEEP + 4));
    }
}
