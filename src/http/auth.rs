//! Who may read the status page, run pages, artifacts and the JSON API.
//!
//! `server.auth_token` set: those need `Authorization: Bearer <token>`, or HTTP Basic with the
//! token as password (what a browser can send after its login prompt). `/healthz`, `/readyz` and
//! `/metrics` stay open for probes and scrapers. Requests that change state (`POST`, `DELETE`)
//! are not judged here: the mutating API has its own check (the admin JWT), which also runs
//! before their body is read (`silences::require_admin`). Extend [`authorize`] to accept other
//! credentials (the platform's JWT).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::AppState;
use crate::config::Secret;

/// Paths that never need credentials: liveness/readiness probes and the Prometheus scrape.
const OPEN: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("authentication required")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
}

/// Whether `headers` carry the credentials `token` asks for; `None` means authentication is off.
pub fn authorize(headers: &HeaderMap, token: Option<&Secret>) -> Result<(), Denied> {
    let Some(token) = token else {
        return Ok(());
    };
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(Denied::Missing);
    };
    let (scheme, rest) = value.trim().split_once(' ').ok_or(Denied::Invalid)?;
    let presented = if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().as_bytes().to_vec()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| Denied::Invalid)?;
        // `user:password`; any user name, the token as password.
        match decoded.iter().position(|&b| b == b':') {
            Some(i) => decoded[i + 1..].to_vec(),
            None => return Err(Denied::Invalid),
        }
    } else {
        return Err(Denied::Invalid);
    };
    if constant_time_eq(&presented, token.expose().as_bytes()) {
        Ok(())
    } else {
        Err(Denied::Invalid)
    }
}

/// Compares without an early exit, so response time says nothing about how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in b.iter().enumerate() {
        diff |= usize::from(x ^ a.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// Middleware: reading requests outside [`OPEN`] need credentials when a token is configured.
pub async fn require(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    if !reads || OPEN.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let token = s.config().auth_token.clone();
    match authorize(req.headers(), token.as_ref()) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::debug!(path = %req.uri().path(), reason = %e, "request refused");
            let mut res = (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("401 {e}: send `Authorization: Bearer <server.auth_token>`\n"),
            )
                .into_response();
            // Basic first: browsers show their login prompt for it (any user, the token as
            // password); API clients use Bearer.
            let h = res.headers_mut();
            h.append(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(r#"Basic realm="synmon", charset="UTF-8""#),
            );
            h.append(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(r#"Bearer realm="synmon""#),
            );
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn off_without_a_token() {
        assert_eq!(authorize(&headers(None), None), Ok(()));
    }

    #[test]
    fn bearer_and_basic_with_the_token_pass_everything_else_is_refused() {
        let t = Secret::new("0123456789abcdef-token");
        let basic = |cred: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(cred)
            )
        };
        let cases = [
            (None, Err(Denied::Missing)),
            (Some("Bearer 0123456789abcdef-token".to_string()), Ok(())),
            (Some("bearer 0123456789abcdef-token".to_string()), Ok(())),
            (
                Some("Bearer 0123456789abcdef-toke".to_string()),
                Err(Denied::Invalid),
            ),
            (
                Some("Bearer 0123456789abcdef-tokenX".to_string()),
                Err(Denied::Invalid),
            ),
            (Some(basic("ops:0123456789abcdef-token")), Ok(())),
            (Some(basic("0123456789abcdef-token")), Err(Denied::Invalid)),
            (Some(basic("ops:wrong")), Err(Denied::Invalid)),
            (
                Some("Token 0123456789abcdef-token".to_string()),
                Err(Denied::Invalid),
            ),
            (Some("Bearer".to_string()), Err(Denied::Invalid)),
        ];
        for (auth, want) in cases {
            assert_eq!(
                authorize(&headers(auth.as_deref()), Some(&t)),
                want,
                "{auth:?}"
            );
        }
    }
}
