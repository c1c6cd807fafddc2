//! The ground floor of configuration: what every component's config section is built from.
//! Secrets (`${ENV}` and `file:` expansion, redaction), durations, YAML documents with
//! positions, key paths and diagnostics that name file, line and field.
//!
//! Nothing here knows a component: each component owns its section type, and the assembled
//! `Config` (in `crate::settings`) sits above them all.

pub mod diag;
pub mod duration;
pub mod env;
pub mod file;
pub mod schema;
mod secret;
pub mod span;
pub mod yaml;

pub use diag::{ConfigErrors, Diagnostic};
pub use env::{Env, ProcessEnv};
pub use secret::{REDACTED, Redactor, Secret};

/// Where checks run: a named base URL (`targets:` in the config, or `--base-url`).
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub base_url: reqwest::Url,
    /// Origins besides `base_url`'s that may receive a run's trace headers
    /// (`trace_origins:`); any other origin never does.
    pub trace_origins: Vec<url::Origin>,
}

/// Who the synthetic user is and where it runs from: the tenant it works in, its login, the
/// location label and the config's `variables:`. Every run's template variables start here.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `None`: the config sets no `tenant` (journeys then cannot use `{tenant}`).
    pub tenant: Option<String>,
    /// `None`: the config sets no `credentials` (no `{username}`/`{password}`).
    pub credentials: Option<Credentials>,
    pub location: String,
    pub variables: std::collections::BTreeMap<String, String>,
}

/// The synthetic user's login, shared by every journey.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// An HTTP method as written in a check or a journey step (default GET).
pub fn parse_method(raw: Option<&str>) -> Result<reqwest::Method, String> {
    match raw.unwrap_or("GET").to_ascii_uppercase().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD") => {
            Ok(reqwest::Method::from_bytes(m.as_bytes()).expect("a standard method"))
        }
        other => Err(format!(
            "unknown HTTP method `{other}` (GET, POST, PUT, PATCH, DELETE, HEAD)"
        )),
    }
}
