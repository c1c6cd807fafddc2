//! The layout tests: no circle of imports between the top-level modules of `src/`, and `unsafe`
//! allowed in one file only.
//!
//! Data flows one way (config -> checks -> scheduler -> runners -> recorder -> rules -> notify,
//! with the HTTP server reading a view below the daemon). A circle between two top-level
//! modules means one of them reaches back upstream, and the compiler does not say so: this test
//! does. It reads every `.rs` file under `src/`, counts every `crate::` path (in `use` lines and
//! inline paths alike, including `crate::{a, b::c}` groups), ignores comments, and fails naming
//! the modules of each circle and one path that closes it.
//!
//! Run it alone with `cargo test --lib layout`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules its files name through `crate::` paths.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Where each edge was seen first (file), for the failure message.
type Witness = BTreeMap<(String, String), String>;

/// The top-level module a file under `src/` belongs to (`None` for the crate roots).
fn top_module(rel: &str) -> Option<String> {
    let first = rel.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    match name {
        "lib" | "main" => None,
        n => Some(n.to_string()),
    }
}

/// The text with `//` comments (doc comments included) and `/* */` blocks blanked, and string
/// literals emptied: an intra-doc link or a message is not a dependency.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' && (i == 0 || b[i - 1] != b'\'') {
            // Raw strings (r"..", r#".."#) are rare here and hold no `crate::` paths that
            // matter; a plain string ends at the first unescaped quote.
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            let ch = text[i..].chars().next().expect("char boundary");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first segments of every `crate::` path in `code` (already stripped).
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| is_ident(c) || c == '$') {
            continue; // `my_crate::x`, `$crate::`
        }
        let rest_trim = rest.trim_start();
        if let Some(group) = rest_trim.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the first segment of each top-level item.
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && is_ident(c) => {
                        let name: String =
                            group[i..].chars().take_while(|&c| is_ident(c)).collect();
                        found.insert(name);
                        item_start = false;
                    }
                    c if item_start && !c.is_whitespace() => item_start = false,
                    _ => {}
                }
            }
        } else {
            let name: String = rest_trim.chars().take_while(|&c| is_ident(c)).collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// The module graph of `files` (paths relative to `src/`, and their text).
fn graph<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> (Graph, Witness) {
    let mut g = Graph::new();
    let mut witness = Witness::new();
    let files: Vec<(&str, &str)> = files.into_iter().collect();
    let tops: BTreeSet<String> = files.iter().filter_map(|(p, _)| top_module(p)).collect();
    for (path, text) in files {
        let Some(from) = top_module(path) else {
            continue;
        };
        let entry = g.entry(from.clone()).or_default();
        for to in crate_paths(&strip(text)) {
            // Items re-exported at the crate root (`crate::Outcome`) are not modules.
            if to == from || !tops.contains(&to) {
                continue;
            }
            witness
                .entry((from.clone(), to.clone()))
                .or_insert_with(|| path.to_string());
            entry.insert(to);
        }
    }
    (g, witness)
}

/// The strongly connected components with more than one module (Tarjan), each sorted.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        g: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            let g = self.g;
            for w in g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

/// A human account of each circle: its modules and, for each edge inside it, a file that
/// makes it.
fn describe(cycles: &[Vec<String>], g: &Graph, witness: &Witness) -> String {
    let mut s = String::new();
    for c in cycles {
        s.push_str(&format!("circle of imports between {}:\n", c.join(", ")));
        for from in c {
            for to in g.get(from).into_iter().flatten() {
                if c.contains(to) {
                    let file = &witness[&(from.clone(), to.clone())];
                    s.push_str(&format!("  {from} -> {to} (first in src/{file})\n"));
                }
            }
        }
    }
    s
}

fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            read_tree(root, &p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p
                .strip_prefix(root)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).expect("source is UTF-8");
            out.push((rel, text));
        }
    }
}

#[test]
fn no_circle_of_imports_between_top_level_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&root, &root, &mut files);
    let (g, witness) = graph(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
    assert!(g.len() > 10, "read too few modules: {:?}", g.keys());
    let found = cycles(&g);
    assert!(found.is_empty(), "{}", describe(&found, &g, &witness));
}

/// `unsafe_code` is denied crate-wide with one reviewed exception, glibc's `mallopt` in
/// `malloc.rs` (see the workspace lints): any other file that allows it fails here, naming it.
#[test]
fn unsafe_code_is_allowed_in_malloc_rs_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&root, &root, &mut files);
    let allowing: Vec<&str> = files
        .iter()
        .filter(|(_, text)| strip(text).contains("allow(unsafe_code)"))
        .map(|(path, _)| path.as_str())
        .collect();
    assert_eq!(allowing, ["malloc.rs"]);
}

#[test]
fn a_planted_circle_is_found_and_named() {
    let files = [
        ("a/mod.rs", "use crate::b::Thing;\n"),
        // inline path, inside a group, after a comment that must not count
        (
            "b.rs",
            "// crate::d::nothing\nfn f() { let _ = crate::c::g(); }\n",
        ),
        ("c/x.rs", "use crate::{d, a::{self, y}};\n"),
        (
            "d.rs",
            "/// [`crate::a::Thing`] is a doc link, not an import\nconst S: &str = \"crate::a\";\n",
        ),
        ("lib.rs", "pub mod a; use crate::b;"),
    ];
    let (g, witness) = graph(files);
    let found = cycles(&g);
    assert_eq!(found, vec![vec!["a", "b", "c"]]);
    let text = describe(&found, &g, &witness);
    assert!(text.contains("c -> a (first in src/c/x.rs)"), "{text}");
    assert!(
        !g["d"].contains("a"),
        "comments and strings are not imports"
    );
    assert!(g["c"].contains("d"));
}

#[test]
fn paths_of_other_crates_and_macros_do_not_count() {
    let p = crate_paths("use my_crate::x; $crate::y; crate::z::q; crate::{ w };");
    assert_eq!(
        p.into_iter().collect::<Vec<_>>(),
        vec!["w".to_string(), "z".to_string()]
    );
}
