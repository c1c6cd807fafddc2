//! Where each field of a YAML file sits, so that every error (syntax, shape or validation) names
//! `file:line:col: field.path`. serde's value tree forgets positions, so the file is parsed a
//! second time with a span-keeping parser and indexed by field path, in the same path syntax
//! `serde_path_to_error` prints (`steps[3].fill.selector`).

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser};

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    positions: HashMap<String, Pos>,
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        seen: HashSet<String>,
        /// Where the collection starts (its `{` or `[` for a flow collection).
        start: Pos,
    },
    Seq {
        path: String,
        next: usize,
        start: Pos,
    },
}

/// Joins a parent path and a map key the way `serde_path_to_error` does.
pub fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

pub fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

impl SourceMap {
    /// Indexes a YAML text. A syntax error is returned with its position; the caller reports it.
    pub fn parse(text: &str) -> Result<Self, (Pos, String)> {
        let mut map = SourceMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let (event, span) = item.map_err(|e| {
                let m = e.marker();
                let mut info = e.info().to_string();
                // An unclosed `{`/`[` is noticed lines later: say where it was opened.
                if info.contains("flow mapping") || info.contains("flow sequence") {
                    let open = stack.last().map(|f| match f {
                        Frame::Map { start, .. } | Frame::Seq { start, .. } => *start,
                    });
                    if let Some(p) = open {
                        info.push_str(&format!(" (it opens at line {}, column {})", p.line, p.col));
                    }
                }
                (pos(m.line(), m.col()), info)
            })?;
            let here = pos(span.start.line(), span.start.col());
            let starts_node = matches!(
                event,
                Event::Scalar(..)
                    | Event::SequenceStart(..)
                    | Event::MappingStart(..)
                    | Event::Alias(_)
            );
            if starts_node {
                // Which path does this node live at (None: it is a map key)?
                let node_path = match stack.last_mut() {
                    None => Some(String::new()),
                    Some(Frame::Map {
                        path, key, seen, ..
                    }) => match key.take() {
                        None => {
                            if let Event::Scalar(k, ..) = &event {
                                // serde would reject it too, but without a usable position.
                                if !seen.insert(k.to_string()) {
                                    return Err((here, format!("duplicate key `{k}`")));
                                }
                                let child = join_key(path, k);
                                map.positions.entry(child).or_insert(here);
                                *key = Some(k.to_string());
                            } else {
                                // Complex keys are not used by synmon's files.
                                *key = Some(String::from("?"));
                            }
                            None
                        }
                        Some(k) => Some(join_key(path, &k)),
                    },
                    Some(Frame::Seq { path, next, .. }) => {
                        let child = join_index(path, *next);
                        *next += 1;
                        map.positions.entry(child.clone()).or_insert(here);
                        Some(child)
                    }
                };
                if let Some(path) = node_path {
                    map.positions.entry(path.clone()).or_insert(here);
                    match event {
                        Event::MappingStart(..) => stack.push(Frame::Map {
                            path,
                            key: None,
                            seen: HashSet::new(),
                            start: here,
                        }),
                        Event::SequenceStart(..) => stack.push(Frame::Seq {
                            path,
                            next: 0,
                            start: here,
                        }),
                        _ => {}
                    }
                }
            } else if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
                stack.pop();
            }
        }
        Ok(map)
    }

    /// The position of a field path, or of its nearest ancestor that exists in the file (a
    /// missing field is reported where its parent starts).
    pub fn locate(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            if p.is_empty() {
                return None;
            }
            p = match p.rfind(['.', '[']) {
                Some(i) => &p[..i],
                None => "",
            };
        }
    }
}

fn pos(line: usize, col0: usize) -> Pos {
    Pos {
        line,
        col: col0 + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "name: x\nsteps:\n  - goto: /a\n  - fill:\n      selector: \"#q\"\n      value: v\n";

    #[test]
    fn indexes_keys_and_items() {
        let m = SourceMap::parse(DOC).unwrap();
        assert_eq!(m.locate("name"), Some(Pos { line: 1, col: 1 }));
        assert_eq!(m.locate("steps[0]"), Some(Pos { line: 3, col: 5 }));
        assert_eq!(m.locate("steps[1].fill"), Some(Pos { line: 4, col: 5 }));
        assert_eq!(
            m.locate("steps[1].fill.selector"),
            Some(Pos { line: 5, col: 7 })
        );
        assert_eq!(
            m.locate("steps[1].fill.value"),
            Some(Pos { line: 6, col: 7 })
        );
    }

    #[test]
    fn missing_field_falls_back_to_parent() {
        let m = SourceMap::parse(DOC).unwrap();
        assert_eq!(
            m.locate("steps[1].fill.timeout"),
            Some(Pos { line: 4, col: 5 })
        );
    }

    #[test]
    fn duplicate_key_is_reported_where_it_repeats() {
        let (pos, msg) = SourceMap::parse("a: 1\nb:\n  c: 2\n  c: 3\n").unwrap_err();
        assert_eq!(pos, Pos { line: 4, col: 3 });
        assert_eq!(msg, "duplicate key `c`");
    }

    #[test]
    fn unclosed_flow_collection_names_where_it_opens() {
        let (pos, msg) = SourceMap::parse("a: b\nc: [d\n").unwrap_err();
        assert_eq!(pos.line, 3, "{msg}");
        assert!(msg.ends_with("(it opens at line 2, column 4)"), "{msg}");
    }

    #[test]
    fn syntax_error_has_position() {
        let (pos, msg) = SourceMap::parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(pos.line >= 1, "{pos:?}");
        assert!(!msg.is_empty());
    }
}
