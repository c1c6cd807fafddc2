//! Reading one YAML file into typed raw structs while keeping positions for errors.

use std::path::Path;

use serde::de::DeserializeOwned;
use yaml_serde::Value;

use super::diag::Diagnostic;
use super::span::{Pos, SourceMap};

/// A parsed YAML file: its value tree and where each field sits.
#[derive(Debug, Clone)]
pub struct YamlDoc {
    pub file: String,
    pub map: SourceMap,
    pub value: Value,
}

/// How a path is shown in messages: relative to the working directory when it is below it.
pub fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let shown = cwd
        .as_deref()
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .unwrap_or(path);
    // `./journeys/a.yaml` and `journeys/a.yaml` are the same file: show it one way.
    let shown: std::path::PathBuf = shown
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    if shown.as_os_str().is_empty() {
        return ".".to_string();
    }
    shown.display().to_string()
}

impl YamlDoc {
    pub fn read(path: &Path) -> Result<Self, Diagnostic> {
        let file = display_path(path);
        let text = std::fs::read_to_string(path).map_err(|e| Diagnostic {
            file: file.clone(),
            pos: None,
            path: String::new(),
            message: format!("cannot read file: {e}"),
        })?;
        Self::parse(file, &text)
    }

    pub fn parse(file: String, text: &str) -> Result<Self, Diagnostic> {
        let map = SourceMap::parse(text).map_err(|(pos, msg)| Diagnostic {
            file: file.clone(),
            pos: Some(pos),
            path: String::new(),
            message: format!("YAML syntax error: {msg}"),
        })?;
        let value: Value = yaml_serde::from_str(text).map_err(|e| Diagnostic {
            file: file.clone(),
            pos: e.location().map(|l| Pos {
                line: l.line(),
                col: l.column(),
            }),
            path: String::new(),
            message: format!("YAML syntax error: {e}"),
        })?;
        Ok(Self { file, map, value })
    }

    /// A diagnostic about the field at `path` of this file.
    pub fn diag(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            pos: self.map.locate(path),
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Deserializes the sub-tree `value` found at `base` (a field path) into `T`, reporting the
    /// first shape error with its full path and position.
    pub fn deserialize_at<T: DeserializeOwned>(
        &self,
        value: &Value,
        base: &str,
    ) -> Result<T, Diagnostic> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let inner = e.path().to_string();
            let path = match (base.is_empty(), inner.as_str()) {
                (_, ".") => base.to_string(),
                (true, _) => inner,
                (false, p) if p.starts_with('[') => format!("{base}{p}"),
                (false, p) => format!("{base}.{p}"),
            };
            self.diag(&path, clean_serde_message(&e.into_inner().to_string()))
        })
    }
}

/// serde_yaml-style messages sometimes append a position that refers to the sub-tree, not the
/// file; ours come from the source map instead. The names of the raw structs (`expected struct
/// RawFill`) mean nothing to the reader: they are maps in the file.
fn clean_serde_message(msg: &str) -> String {
    let mut msg = match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    };
    const RAW: &str = "expected struct Raw";
    if let Some(i) = msg.find(RAW) {
        let rest = &msg[i + RAW.len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        msg = format!("{}expected a map{}", &msg[..i], &rest[end..]);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_maps_not_structs() {
        assert_eq!(
            clean_serde_message("invalid type: string \"x\", expected struct RawFill at line 2"),
            "invalid type: string \"x\", expected a map"
        );
        assert_eq!(
            clean_serde_message("missing field `a`"),
            "missing field `a`"
        );
    }
}
