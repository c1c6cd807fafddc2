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

/// How deep collections may nest. The deserializer stops at 128 levels without saying where;
/// synmon's files need a handful, so the source map stops first, with the line.
pub const MAX_DEPTH: usize = 100;

/// The most values that aliases (`*name`) may repeat in one file: a few nested anchors can
/// otherwise stand for billions of values (the "billion laughs" file). The deserializer has its
/// own limit (alias jumps up to 100 times the file's events) but reports it without a position,
/// so this one is lower: the same count per event at half the rate, and never above
/// [`MAX_ALIAS_VALUES`].
pub const MAX_ALIAS_VALUES: u64 = 10_000;
const ALIAS_VALUES_PER_EVENT: u64 = 50;
/// The most scalar bytes aliases may repeat in one file: a few aliases of one large anchored
/// string are few values but each is a copy of the string (9,000 aliases of a 100 KiB string
/// in a 1 MiB file is 900 MiB once deserialized). Four times the largest file synmon reads.
pub const MAX_ALIAS_BYTES: u64 = 4 << 20;

impl SourceMap {
    /// Indexes a YAML text. A problem is returned with its position and the whole message: a
    /// syntax error, a duplicate key, a second document, nesting or aliases beyond the limits.
    pub fn parse(text: &str) -> Result<Self, (Pos, String)> {
        let mut map = SourceMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut aliases = AliasCount::default();
        let mut documents = 0usize;
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
                (pos(m.line(), m.col()), format!("YAML syntax error: {info}"))
            })?;
            let here = pos(span.start.line(), span.start.col());
            if let Event::DocumentStart(_) = event {
                documents += 1;
                if documents > 1 {
                    return Err((
                        here,
                        "a second YAML document starts here; synmon reads one document per file"
                            .to_string(),
                    ));
                }
            }
            aliases.event(&event, here);
            if aliases.depth() > MAX_DEPTH {
                return Err((
                    here,
                    format!("collections nest more than {MAX_DEPTH} levels deep here"),
                ));
            }
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
                                    return Err((
                                        here,
                                        format!("YAML syntax error: duplicate key `{k}`"),
                                    ));
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
        match aliases.first_over_limit() {
            Some(AliasExcess::Values { at, limit }) => {
                return Err((
                    at,
                    format!(
                        "YAML aliases repeat more than {limit} values by here (the limit grows \
                         with the file, up to {MAX_ALIAS_VALUES}); write the values out instead \
                         of nesting anchors"
                    ),
                ));
            }
            Some(AliasExcess::Bytes { at }) => {
                return Err((
                    at,
                    format!(
                        "YAML aliases repeat more than {} MiB of text by here; write the values \
                         out instead of repeating a large anchor",
                        MAX_ALIAS_BYTES >> 20
                    ),
                ));
            }
            None => {}
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

/// Counts how many values, and how many scalar bytes, aliases stand for, without expanding them:
/// each anchored node's size (itself and everything inside, aliases inside included) is known
/// when it ends, and an alias adds its anchor's size.
#[derive(Default)]
struct AliasCount {
    /// Open collections: their anchor id (0: none) and the size of what is inside so far.
    open: Vec<(usize, Size)>,
    sizes: HashMap<usize, Size>,
    events: u64,
    repeated: Size,
    /// After each alias: the size repeated so far, and where that alias is.
    marks: Vec<(Size, Pos)>,
}

/// What a node stands for once aliases are expanded: values, and bytes of scalar text.
#[derive(Debug, Default, Clone, Copy)]
struct Size {
    values: u64,
    bytes: u64,
}

impl Size {
    fn plus(self, other: Size) -> Size {
        Size {
            values: self.values.saturating_add(other.values),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// Which alias limit a file crosses first, and where.
#[derive(Debug, PartialEq, Eq)]
enum AliasExcess {
    Values { at: Pos, limit: u64 },
    Bytes { at: Pos },
}

impl AliasCount {
    fn depth(&self) -> usize {
        self.open.len()
    }

    fn event(&mut self, event: &Event<'_>, here: Pos) {
        self.events += 1;
        match event {
            Event::Scalar(text, _, anchor, _) => {
                let size = Size {
                    values: 1,
                    bytes: text.len() as u64,
                };
                if *anchor != 0 {
                    self.sizes.insert(*anchor, size);
                }
                self.add(size);
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                self.open.push((*anchor, Size::default()));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some((anchor, inside)) = self.open.pop() {
                    let size = inside.plus(Size {
                        values: 1,
                        bytes: 0,
                    });
                    if anchor != 0 {
                        self.sizes.insert(anchor, size);
                    }
                    self.add(size);
                }
            }
            Event::Alias(id) => {
                // An anchor still open (an alias inside its own anchor) has no size yet: the
                // parser refuses that as an undefined alias before it could matter.
                let size = self.sizes.get(id).copied().unwrap_or(Size {
                    values: 1,
                    bytes: 0,
                });
                self.repeated = self.repeated.plus(size);
                self.marks.push((self.repeated, here));
                self.add(size);
            }
            _ => {}
        }
    }

    fn add(&mut self, n: Size) {
        if let Some((_, inside)) = self.open.last_mut() {
            *inside = inside.plus(n);
        }
    }

    /// The first alias that takes the count over one of this file's limits.
    fn first_over_limit(&self) -> Option<AliasExcess> {
        let limit = MAX_ALIAS_VALUES.min(self.events.saturating_mul(ALIAS_VALUES_PER_EVENT));
        self.marks.iter().find_map(|(n, at)| {
            if n.values > limit {
                Some(AliasExcess::Values { at: *at, limit })
            } else if n.bytes > MAX_ALIAS_BYTES {
                Some(AliasExcess::Bytes { at: *at })
            } else {
                None
            }
        })
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
        assert_eq!(msg, "YAML syntax error: duplicate key `c`");
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

    #[test]
    fn a_second_document_is_refused_where_it_starts() {
        let (pos, msg) = SourceMap::parse("a: 1\nb: 2\n---\nc: 3\n").unwrap_err();
        assert_eq!(pos, Pos { line: 3, col: 1 });
        assert_eq!(
            msg,
            "a second YAML document starts here; synmon reads one document per file"
        );
        // One document with explicit markers is one document.
        assert!(SourceMap::parse("---\na: 1\n...\n").is_ok());
    }

    #[test]
    fn an_alias_bomb_stops_at_the_alias_that_crosses_the_limit() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for (name, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e")] {
            let items = vec![format!("*{prev}"); 9].join(", ");
            text.push_str(&format!("{name}: &{name} [{items}]\n"));
        }
        let (pos, msg) = SourceMap::parse(&text).unwrap_err();
        // `b` and `c` repeat 90 + 819 values; each alias in `d` repeats c's 820 and the
        // fourth one crosses this 78-event file's limit (50 per event: 3900).
        assert_eq!(pos, Pos { line: 4, col: 20 }, "{msg}");
        assert_eq!(
            msg,
            "YAML aliases repeat more than 3900 values by here (the limit grows with the file, \
             up to 10000); write the values out instead of nesting anchors"
        );
        // The deserializer would have refused the same file, without a position.
        assert!(yaml_serde::from_str::<yaml_serde::Value>(&text).is_err());
    }

    #[test]
    fn aliases_of_a_large_string_stop_at_the_byte_limit() {
        // Under 1 MiB on disk and a few hundred values, but 200 copies of a 100 KiB string.
        let mut text = format!("s: &s {}\nl: [", "x".repeat(100 * 1024));
        text.push_str(&vec!["*s"; 200].join(", "));
        text.push_str("]\n");
        let (pos, msg) = SourceMap::parse(&text).unwrap_err();
        // The 41st alias crosses 4 MiB (41 x 100 KiB, beside the anchor's own 100 KiB).
        assert_eq!(
            pos,
            Pos {
                line: 2,
                col: 5 + 40 * 4
            },
            "{msg}"
        );
        assert_eq!(
            msg,
            "YAML aliases repeat more than 4 MiB of text by here; write the values out instead \
             of repeating a large anchor"
        );
    }

    #[test]
    fn a_few_aliases_are_fine() {
        let text =
            "base: &base {selector: \"#q\", value: v}\nsteps:\n  - fill: *base\n  - fill: *base\n";
        let m = SourceMap::parse(text).unwrap();
        assert_eq!(m.locate("steps[1].fill"), Some(Pos { line: 4, col: 5 }));
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_with_a_position() {
        let depth = MAX_DEPTH + 1;
        let text = format!("a: {}1{}\n", "[".repeat(depth), "]".repeat(depth));
        let (pos, msg) = SourceMap::parse(&text).unwrap_err();
        // The top-level map is the first level.
        assert_eq!(
            pos,
            Pos {
                line: 1,
                col: 3 + MAX_DEPTH
            }
        );
        assert_eq!(msg, "collections nest more than 100 levels deep here");
        let ok = format!(
            "a: {}1{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(SourceMap::parse(&ok).is_ok());
    }
}
