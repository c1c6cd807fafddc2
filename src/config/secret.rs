//! A string that must never be printed: passwords, tokens, routing keys, database URLs with
//! credentials. Debug, Display and Serialize all redact, so a secret that ends up in a log line,
//! a JSON result or a status page shows `***` instead of its value.

use std::fmt;

/// What a redacted secret prints as.
pub const REDACTED: &str = "***";

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The only way to read the value; grep for `expose` to audit every use.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Replaces every known secret value in free text (error messages from a target, page HTML,
/// log lines) with `***`. Built from every secret a run can touch.
#[derive(Clone, Default, Debug)]
pub struct Redactor {
    values: Vec<Secret>,
}

impl Redactor {
    pub fn add(&mut self, secret: &Secret) {
        // Very short values would redact ordinary words; a secret that short is not worth hiding
        // from itself and is rejected at validation time anyway.
        if secret.expose().len() >= 4 && !self.values.contains(secret) {
            self.values.push(secret.clone());
            // Longest first, so a secret containing another is replaced whole.
            self.values
                .sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.values {
            if out.contains(secret.expose()) {
                out = out.replace(secret.expose(), REDACTED);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2-password");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "hunter2-password");
    }

    #[test]
    fn redactor_replaces_every_occurrence() {
        let mut r = Redactor::default();
        r.add(&Secret::new("s3cret-value"));
        r.add(&Secret::new("abc")); // too short: ignored
        assert_eq!(
            r.redact("a s3cret-value and s3cret-value, abc"),
            "a *** and ***, abc"
        );
    }
}
