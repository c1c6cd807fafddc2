//! Sessions: salted password hashes, HS256 JWTs in a cookie or a bearer header.

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "rvp_session";
/// Session lifetime.
pub const SESSION_SECS: i64 = 12 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The tenant slug this session may act on.
    pub tenant_scope: String,
    pub email: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct JwtKeys {
    enc: EncodingKey,
    dec: DecodingKey,
}

impl JwtKeys {
    pub fn random() -> JwtKeys {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        JwtKeys {
            enc: EncodingKey::from_secret(&secret),
            dec: DecodingKey::from_secret(&secret),
        }
    }

    pub fn issue(&self, user_id: &str, email: &str, tenant: &str) -> (String, i64) {
        let iat = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            tenant_scope: tenant.to_string(),
            email: email.to_string(),
            iat,
            exp: iat + SESSION_SECS,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc)
            .expect("HS256 signing with an in-memory key cannot fail");
        (token, claims.exp)
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.dec, &v)
            .ok()
            .map(|d| d.claims)
    }

    /// Claims from `Authorization: Bearer` or the session cookie, if valid.
    pub fn from_headers(&self, headers: &HeaderMap) -> Option<Claims> {
        if let Some(token) = bearer(headers) {
            return self.verify(token);
        }
        cookie(headers, SESSION_COOKIE).and_then(|t| self.verify(t))
    }
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn session_cookie(token: &str) -> String {
    format!("{SESSION_COOKIE}={token}; HttpOnly; Path=/; SameSite=Lax; Max-Age={SESSION_SECS}")
}

pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; Path=/; SameSite=Lax; Max-Age=0")
}

/// `sha256$<salt hex>$<digest hex>`.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = hex(&salt);
    format!("sha256${salt}${}", digest(&salt, password))
}

pub fn verify_password(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("sha256"), Some(salt), Some(want), None) => {
            let got = digest(salt, password);
            // Constant-time comparison.
            got.len() == want.len()
                && got
                    .bytes()
                    .zip(want.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        }
        _ => false,
    }
}

fn digest(salt: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b"$");
    h.update(password.as_bytes());
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Percent-encodes a string for a query parameter value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Accepts only same-site absolute paths as a post-login redirect.
pub fn safe_next(next: Option<&str>) -> Option<String> {
    let n = next?.trim();
    let ok = n.starts_with('/')
        && !n.starts_with("//")
        && !n.contains('\\')
        && !n.chars().any(|c| c.is_control());
    ok.then(|| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_roundtrip() {
        let h = hash_password("synthetic-demo");
        assert!(verify_password(&h, "synthetic-demo"));
        assert!(!verify_password(&h, "synthetic-dem0"));
        assert!(!verify_password("garbage", "x"));
    }

    #[test]
    fn next_must_be_same_site() {
        assert_eq!(
            safe_next(Some("/t/a/inventory")).as_deref(),
            Some("/t/a/inventory")
        );
        assert_eq!(safe_next(Some("//evil.example/")), None);
        assert_eq!(safe_next(Some("https://evil.example/")), None);
        assert_eq!(safe_next(Some("/\\evil")), None);
        assert_eq!(safe_next(None), None);
    }

    #[test]
    fn jwt_roundtrip_and_tamper() {
        let k = JwtKeys::random();
        let (t, _) = k.issue("u1", "a@b", "synthetic");
        let c = k.verify(&t).unwrap();
        assert_eq!(c.tenant_scope, "synthetic");
        let other = JwtKeys::random();
        assert!(other.verify(&t).is_none());
    }
}
