//! JWT bearer tokens for the mutating API (the platform's R5): `aud` must contain `admin`;
//! muting a PagerDuty route additionally needs a step-up token: `amr` containing `step_up`,
//! authenticated (`auth_time`, or `iat` when absent) at most 5 minutes ago.
//!
//! Signatures are checked by `jsonwebtoken` with an HS256 secret or a configured public key
//! (RSA, EC or Ed25519 PEM). Time claims (`exp`, `nbf`, the step-up age) are checked here
//! against the injected clock, never the system's, so tests decide what "now" is.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// How old a step-up authentication may be.
pub const STEP_UP_MAX_AGE_SECS: i64 = 300;
/// The audience the mutating API requires.
pub const ADMIN_AUDIENCE: &str = "admin";

/// A verified token's facts the API needs.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: String,
    /// When the holder last stepped up (`auth_time`, else `iat`), if `amr` says `step_up`.
    pub step_up_at: Option<DateTime<Utc>>,
}

/// Why a token is refused, in words a caller can act on. The library's own messages never reach
/// the answer: they name its internals (an unknown `alg` echoes its whole list of algorithms).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token (Authorization: Bearer <JWT>)")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("the token's algorithm {got} is not accepted; this server accepts {accepted}")]
    WrongAlgorithm { got: String, accepted: String },
    #[error("invalid token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("the token is not valid yet (`nbf` is in the future)")]
    NotYetValid,
    #[error("the token has no `exp`: tokens must expire")]
    NoExpiry,
    #[error("token audience must include `admin`")]
    WrongAudience,
    /// A failure on this server's side (its key), told to the caller without details; the log
    /// has them.
    #[error("the token could not be verified with this server's key")]
    Unverifiable,
    #[error("{0}")]
    StepUpRequired(String),
    #[error("the mutating API is disabled: no `server.auth` key is configured")]
    NotConfigured,
}

impl AuthError {
    /// 401 when the caller is not authenticated, 403 when authenticated but not allowed.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing
            | AuthError::Malformed(_)
            | AuthError::WrongAlgorithm { .. }
            | AuthError::BadSignature
            | AuthError::Expired
            | AuthError::NotYetValid
            | AuthError::NoExpiry
            | AuthError::Unverifiable => 401,
            AuthError::WrongAudience | AuthError::StepUpRequired(_) | AuthError::NotConfigured => {
                403
            }
        }
    }

    /// Every `jsonwebtoken` error kind as a plain reason. `header_alg` is the algorithm the
    /// token's header names (already read, so a mismatch can name it).
    fn from_jwt(e: &jsonwebtoken::errors::Error, header_alg: &str, accepted: Algorithm) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                AuthError::WrongAlgorithm {
                    got: header_alg.to_string(),
                    accepted: format!("{accepted:?}"),
                }
            }
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                AuthError::Malformed("not a JWT (three base64url parts: header, claims, signature)")
            }
            ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) => AuthError::Malformed(
                "its claims are not a JSON object with `exp`, `nbf`, `iat` and `auth_time` as numbers",
            ),
            ErrorKind::MissingRequiredClaim(_) => AuthError::NoExpiry,
            ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
                AuthError::Malformed("unexpected `iss` or `sub`")
            }
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::RsaFailedSigning
            | ErrorKind::Signing(_)
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::MissingAlgorithm
            | ErrorKind::Provider(_) => {
                tracing::warn!(error = %e, "a token could not be checked with the configured key");
                AuthError::Unverifiable
            }
            // The kind list is non-exhaustive: a new kind is refused without its text.
            _ => {
                tracing::warn!(error = %e, "a token was refused for a reason this version does not name");
                AuthError::Malformed("refused by the verifier")
            }
        }
    }
}

/// The `alg` a token's header names, read before the library sees it: an algorithm the library
/// does not know fails its header parsing with a message listing every algorithm it does.
fn header_alg(token: &str) -> Result<String, AuthError> {
    use base64::Engine;
    let not_jwt =
        AuthError::Malformed("not a JWT (three base64url parts: header, claims, signature)");
    let head = token.split('.').next().ok_or_else(|| not_jwt.clone())?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .map_err(|_| not_jwt.clone())?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| not_jwt)?;
    let alg = v
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or(AuthError::Malformed("its header names no `alg`"))?;
    // Echoed in the answer: only a short plain name is repeated as written.
    if !alg.is_empty() && alg.len() <= 16 && alg.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(alg.to_string())
    } else {
        Ok("(unprintable)".to_string())
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn contains(&self, s: &str) -> bool {
        match self {
            OneOrMany::One(x) => x == s,
            OneOrMany::Many(v) => v.iter().any(|x| x == s),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<OneOrMany>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    auth_time: Option<i64>,
    #[serde(default)]
    amr: Option<OneOrMany>,
}

/// The key that verifies tokens.
#[derive(Clone)]
pub struct ApiAuth {
    key: DecodingKey,
    algorithm: Algorithm,
}

impl std::fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key may be a shared secret: never printed.
        f.debug_struct("ApiAuth")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl ApiAuth {
    pub fn hs256(secret: &[u8]) -> ApiAuth {
        ApiAuth {
            key: DecodingKey::from_secret(secret),
            algorithm: Algorithm::HS256,
        }
    }

    /// A public key in PEM for `algorithm` (`RS256`, `RS384`, `RS512`, `PS256`, `PS384`,
    /// `PS512`, `ES256`, `ES384`, `EdDSA`).
    pub fn public_key(pem: &[u8], algorithm: &str) -> Result<ApiAuth, String> {
        let alg: Algorithm = algorithm
            .parse()
            .map_err(|_| format!("unknown algorithm `{algorithm}`"))?;
        let key = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem),
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            _ => return Err(format!("`{algorithm}` is not a public-key algorithm")),
        }
        .map_err(|e| format!("not a {algorithm} public key in PEM: {e}"))?;
        Ok(ApiAuth {
            key,
            algorithm: alg,
        })
    }

    /// Verifies `Authorization: Bearer <token>` for the admin audience at `now`.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Principal, AuthError> {
        let Some(header) = authorization else {
            return Err(AuthError::Missing);
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let alg = header_alg(token)?;
        let accepted = format!("{:?}", self.algorithm);
        if alg != accepted {
            return Err(AuthError::WrongAlgorithm { got: alg, accepted });
        }
        let mut v = Validation::new(self.algorithm);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims = HashSet::new();
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &v)
            .map_err(|e| AuthError::from_jwt(&e, &alg, self.algorithm))?;
        let c = data.claims;
        let now_s = now.timestamp();
        match c.exp {
            None => return Err(AuthError::NoExpiry),
            Some(exp) if exp <= now_s => return Err(AuthError::Expired),
            Some(_) => {}
        }
        if c.nbf.is_some_and(|nbf| nbf > now_s) {
            return Err(AuthError::NotYetValid);
        }
        if !c.aud.as_ref().is_some_and(|a| a.contains(ADMIN_AUDIENCE)) {
            return Err(AuthError::WrongAudience);
        }
        let step_up_at = c
            .amr
            .as_ref()
            .filter(|a| a.contains("step_up"))
            .and(c.auth_time.or(c.iat))
            .and_then(|t| DateTime::from_timestamp(t, 0));
        Ok(Principal {
            subject: c.sub.unwrap_or_else(|| "unknown".into()),
            step_up_at,
        })
    }
}

impl Principal {
    /// A step-up at most 5 minutes old (and not in the future beyond a minute of skew).
    pub fn require_step_up(&self, why: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        let Some(at) = self.step_up_at else {
            return Err(AuthError::StepUpRequired(format!(
                "{why} needs a step-up token (`amr` with `step_up`)"
            )));
        };
        let age = (now - at).num_seconds();
        if age > STEP_UP_MAX_AGE_SECS {
            return Err(AuthError::StepUpRequired(format!(
                "{why} needs a step-up at most 5 minutes old (this one is {age} s old)"
            )));
        }
        if age < -60 {
            return Err(AuthError::StepUpRequired(
                "the step-up time is in the future".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    /// A configured public key (ES256): its tokens pass, an HS256 token signed with the public
    /// key's text (algorithm confusion) does not, and the step-up age is judged on the clock.
    #[test]
    fn public_key_tokens_and_step_up_age() {
        let kp = rcgen::KeyPair::generate().unwrap();
        let auth = ApiAuth::public_key(kp.public_key_pem().as_bytes(), "ES256").unwrap();
        let signer = EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap();
        let n = now().timestamp();
        let claims = json!({"sub": "bob", "aud": ["admin", "tenant"], "exp": n + 60,
                            "amr": "step_up", "auth_time": n - 300});
        let t = encode(&Header::new(Algorithm::ES256), &claims, &signer).unwrap();
        let p = auth.verify(Some(&format!("Bearer {t}")), now()).unwrap();
        assert_eq!(p.subject, "bob");
        assert!(p.require_step_up("x", now()).is_ok(), "exactly 5 minutes");
        let later = now() + chrono::Duration::seconds(1);
        assert!(matches!(
            p.require_step_up("x", later),
            Err(AuthError::StepUpRequired(_))
        ));
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(kp.public_key_pem().as_bytes()),
        )
        .unwrap();
        let e = auth
            .verify(Some(&format!("Bearer {forged}")), now())
            .unwrap_err();
        assert_eq!(e.status(), 401, "{e}");
        assert_eq!(
            auth.verify(Some("Basic abc"), now()).unwrap_err(),
            AuthError::Missing
        );
        let no_exp = encode(
            &Header::new(Algorithm::ES256),
            &json!({"aud": "admin"}),
            &signer,
        )
        .unwrap();
        assert_eq!(
            auth.verify(Some(&format!("Bearer {no_exp}")), now())
                .unwrap_err()
                .status(),
            401
        );
    }

    /// Every refusal in plain words: no library internals (its list of algorithms for an
    /// unknown `alg`, its JSON or base64 errors), and the status a client acts on.
    #[test]
    fn refusals_say_what_is_wrong_in_plain_words() {
        use base64::Engine;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let secret = b"0123456789abcdef0123456789abcdef";
        let auth = ApiAuth::hs256(secret);
        let n = now().timestamp();
        let hs = |claims: serde_json::Value, key: &[u8]| {
            encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(key),
            )
            .unwrap()
        };
        let good = json!({"sub": "bob", "aud": "admin", "exp": n + 60});
        let kp = rcgen::KeyPair::generate().unwrap();
        let es = encode(
            &Header::new(Algorithm::ES256),
            &good,
            &EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
        let cases: Vec<(&str, String, u16, &str)> = vec![
            (
                "alg none",
                format!(
                    "{}.{}.",
                    b64(json!({"alg": "none", "typ": "JWT"})),
                    b64(good.clone())
                ),
                401,
                "the token's algorithm none is not accepted; this server accepts HS256",
            ),
            (
                "another algorithm",
                es,
                401,
                "the token's algorithm ES256 is not accepted; this server accepts HS256",
            ),
            (
                "not a JWT",
                "abc".into(),
                401,
                "malformed token: not a JWT (three base64url parts: header, claims, signature)",
            ),
            (
                "unsigned garbage claims (the signature is checked first)",
                format!("{}.bm90IGpzb24.sig", b64(json!({"alg": "HS256"}))),
                401,
                "invalid token signature",
            ),
            (
                "exp as text",
                hs(json!({"aud": "admin", "exp": "tomorrow"}), secret),
                401,
                "malformed token: its claims are not a JSON object with `exp`, `nbf`, `iat` and `auth_time` as numbers",
            ),
            (
                "bad signature",
                hs(good.clone(), b"another-secret-another-secret-12"),
                401,
                "invalid token signature",
            ),
            (
                "expired",
                hs(json!({"aud": "admin", "exp": n}), secret),
                401,
                "token expired",
            ),
            (
                "not yet valid",
                hs(
                    json!({"aud": "admin", "exp": n + 60, "nbf": n + 30}),
                    secret,
                ),
                401,
                "the token is not valid yet (`nbf` is in the future)",
            ),
            (
                "no exp",
                hs(json!({"aud": "admin"}), secret),
                401,
                "the token has no `exp`: tokens must expire",
            ),
            (
                "wrong audience",
                hs(json!({"aud": "tenant", "exp": n + 60}), secret),
                403,
                "token audience must include `admin`",
            ),
        ];
        for (name, token, status, message) in cases {
            let e = auth
                .verify(Some(&format!("Bearer {token}")), now())
                .unwrap_err();
            assert_eq!(
                (e.status(), e.to_string().as_str()),
                (status, message),
                "{name}"
            );
        }
        assert_eq!(
            auth.verify(Some(&format!("Bearer {}", hs(good, secret))), now())
                .unwrap()
                .subject,
            "bob"
        );
    }
}
