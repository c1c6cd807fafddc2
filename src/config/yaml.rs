//! Reading one YAML file into typed raw structs while keeping positions for errors.

use std::path::Path;

use serde::de::DeserializeOwned;
use yaml_serde::Value;

use super::diag::Diagnostic;
use super::file::{MAX_INPUT_BYTES, ReadError, read_text};
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

/// Why [`YamlDoc::load`] failed.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read (missing, not a regular file, too large).
    File(ReadError),
    /// It was read; its text is not one YAML document (the diagnostic has the position).
    Content(Diagnostic),
}

/// What an empty file should have held, when the caller does not say.
const A_YAML_MAP: &str = "a YAML map of settings";

impl YamlDoc {
    /// Reads and parses one YAML file (through [`super::file`]: a regular file of at most
    /// 1 MiB).
    pub fn read(path: &Path) -> Result<Self, Diagnostic> {
        Self::read_expecting(path, A_YAML_MAP)
    }

    /// Like [`YamlDoc::read`]; `what` says what the file should hold when it holds nothing
    /// ("a journey: a YAML map with `steps:`").
    pub fn read_expecting(path: &Path, what: &str) -> Result<Self, Diagnostic> {
        Self::load(path, what).map_err(|failure| match failure {
            LoadError::File(e) => Diagnostic {
                file: display_path(path),
                pos: None,
                path: String::new(),
                message: match e {
                    ReadError::Io(e) => format!("cannot read file: {e}"),
                    e => format!("the file {e}"),
                },
            },
            LoadError::Content(d) => d,
        })
    }

    /// Like [`YamlDoc::read_expecting`], keeping apart a file that could not be read (the caller
    /// may report that where the path was written) from one whose content is wrong.
    pub fn load(path: &Path, what: &str) -> Result<Self, LoadError> {
        let file = display_path(path);
        let text = match read_text(path, MAX_INPUT_BYTES) {
            Ok(t) => t,
            Err(ReadError::NotUtf8 {
                line,
                col,
                byte,
                utf16,
            }) => {
                let message = if utf16 {
                    "the file is UTF-16 text; synmon reads UTF-8 (save it as UTF-8)".to_string()
                } else {
                    format!(
                        "byte 0x{byte:02X} is not UTF-8 text; synmon reads UTF-8 (save the file as UTF-8)"
                    )
                };
                return Err(LoadError::Content(Diagnostic {
                    file,
                    pos: Some(Pos { line, col }),
                    path: String::new(),
                    message,
                }));
            }
            Err(e) => return Err(LoadError::File(e)),
        };
        Self::parse_expecting(file, &text, what).map_err(LoadError::Content)
    }

    pub fn parse(file: String, text: &str) -> Result<Self, Diagnostic> {
        Self::parse_expecting(file, text, A_YAML_MAP)
    }

    /// Parses `text` as the one YAML document of `file`; an empty document (nothing, or only
    /// comments) is an error saying it should hold `what`.
    pub fn parse_expecting(file: String, text: &str, what: &str) -> Result<Self, Diagnostic> {
        // A UTF-8 byte-order mark (editors on Windows write one) is allowed by YAML, but the
        // deserializer takes it for the start of a second document. Columns are counted
        // without it, as editors show them.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let map = SourceMap::parse(text).map_err(|(pos, message)| Diagnostic {
            file: file.clone(),
            pos: Some(pos),
            path: String::new(),
            message,
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
        if value.is_null() {
            return Err(Diagnostic {
                file,
                pos: Some(Pos { line: 1, col: 1 }),
                path: String::new(),
                message: format!(
                    "the file holds nothing (it is empty or only comments); it should hold {what}"
                ),
            });
        }
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

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn invalid_utf8_is_reported_at_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "a.yaml",
            b"name: x\nsteps:\n  - goto: /caf\xE9\n",
        );
        let d = YamlDoc::read(&p).unwrap_err();
        assert_eq!(d.pos, Some(Pos { line: 3, col: 15 }));
        assert_eq!(
            d.message,
            "byte 0xE9 is not UTF-8 text; synmon reads UTF-8 (save the file as UTF-8)"
        );
    }

    #[test]
    fn an_oversized_file_is_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let mut big = b"steps:\n".to_vec();
        while big.len() as u64 <= MAX_INPUT_BYTES {
            big.extend_from_slice(b"  - goto: /a-long-enough-path-to-fill-a-file-quickly\n");
        }
        let p = write(dir.path(), "big.yaml", &big);
        let d = YamlDoc::read(&p).unwrap_err();
        assert_eq!(d.pos, None);
        assert_eq!(d.message, "the file is larger than 1 MiB");
    }

    #[test]
    fn an_empty_file_says_what_it_should_hold() {
        for text in ["", "# only a comment\n", "\n\n"] {
            let d = YamlDoc::parse_expecting("j.yaml".into(), text, "a journey").unwrap_err();
            assert_eq!(d.pos, Some(Pos { line: 1, col: 1 }), "{text:?}");
            assert_eq!(
                d.message,
                "the file holds nothing (it is empty or only comments); it should hold a journey"
            );
        }
    }

    #[test]
    fn a_utf8_byte_order_mark_is_not_a_second_document() {
        let text = "\u{feff}a: &a [x, y]\nb: *a\nc: {d: 1}\n";
        let doc = YamlDoc::parse("c.yaml".into(), text).unwrap();
        assert_eq!(doc.value["b"][1].as_str(), Some("y"));
        // Positions as an editor shows them, the mark not counted.
        assert_eq!(doc.map.locate("c.d"), Some(Pos { line: 3, col: 5 }));
    }
}
