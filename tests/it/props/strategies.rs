//! How inputs are made: corpus seeds mutated byte- and line-wise, seeds with one value swapped for
//! a hostile one, and documents generated from the keys the corpus uses.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::json;
use yaml_serde::Value;

use super::Input;

/// An anchor bomb: nine levels of nine aliases (9^9 nodes once expanded).
const ANCHOR_BOMB: &[u8] = b"\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";

/// What a careless hand or a hostile one adds to a YAML file.
pub const YAML_TOKENS: &[&[u8]] = &[
    b":",
    b": ",
    b"- ",
    b"-",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"'",
    b"\"",
    b"#",
    b"|",
    b">",
    b"?",
    b"!",
    b"!!binary ",
    b"!!int ",
    b"%YAML 1.2\n",
    b"---\n",
    b"...\n",
    b"\n",
    b"  ",
    b"\t",
    b"\r",
    b"\0",
    b"\xef\xbb\xbf",
    b"&a ",
    b"*a",
    b"<<: *a\n",
    b"&a x\n*a: y\n",
    ANCHOR_BOMB,
    b"99999999999999d",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"1e309",
    b"-0",
    b".nan",
    b"~",
    b"null",
    b"0s",
    b"1ms",
    b"${SYNMON_PROPS_UNSET}",
    b"${SYNMON_PROPS_UNSET:-x}",
    b"$${",
    b"{tenant}",
    b"{unknown}",
    b"=~(",
    b"\"\\ud800\"",
];

/// What a hostile client puts in a JSON body.
pub const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\",
    b"\\ud800",
    b"\\u0000",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"18446744073709551616",
    b"\"+99999-01-01T00:00:00Z\"",
    b"\"2026-13-45T99:99:99Z\"",
    b"\"=~(\"",
    b" ",
    b"\n",
    b"\0",
    b"\xff",
    b"\xef\xbb\xbf",
];

/// Values swapped into a document: absurd durations and numbers, empty and odd strings, system
/// folders, template and env syntax.
pub const HOSTILE_SCALARS: &[&str] = &[
    "99999999999999d",
    "99999999999999999999s",
    "18446744073709551615ms",
    "0s",
    "-1s",
    "1ns",
    "401d",
    "91d",
    "1y",
    "10 minutes",
    "5",
    "0",
    "-1",
    "4294967296",
    "18446744073709551616",
    "1e309",
    "-1e309",
    ".nan",
    ".inf",
    "null",
    "~",
    "true",
    "''",
    "' '",
    "/",
    "/etc",
    "..",
    "../..",
    "http://",
    "http://[::1",
    "sqlite://",
    "postgres://",
    "file:",
    "file:missing",
    "${SYNMON_PROPS_UNSET}",
    "'{unknown}'",
    "'=~('",
    "'!~'",
    "'[]'",
    "'{}'",
    "[]",
    "{}",
    "9999-99-99",
    "+99999-01-01T00:00:00Z",
];

#[derive(Debug, Clone)]
pub enum Mutation {
    FlipByte(Index, u8),
    Insert(Index, &'static [u8]),
    DeleteLine(Index),
    DuplicateLine(Index),
    Truncate(Index),
}

fn line_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            spans.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < bytes.len() {
        spans.push((start, bytes.len()));
    }
    spans
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            Mutation::FlipByte(at, xor) if !bytes.is_empty() => {
                let i = at.index(bytes.len());
                bytes[i] ^= xor;
            }
            Mutation::Insert(at, token) => {
                let i = at.index(bytes.len() + 1);
                bytes.splice(i..i, token.iter().copied());
            }
            Mutation::DeleteLine(at) | Mutation::DuplicateLine(at) => {
                let spans = line_spans(bytes);
                if spans.is_empty() {
                    return;
                }
                let (s, e) = spans[at.index(spans.len())];
                if matches!(self, Mutation::DeleteLine(_)) {
                    bytes.drain(s..e);
                } else {
                    let line = bytes[s..e].to_vec();
                    bytes.splice(e..e, line);
                }
            }
            Mutation::Truncate(at) => {
                let i = at.index(bytes.len() + 1);
                bytes.truncate(i);
            }
            Mutation::FlipByte(..) => {}
        }
    }
}

fn mutation(tokens: &'static [&'static [u8]]) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 1..=255u8).prop_map(|(i, x)| Mutation::FlipByte(i, x)),
        5 => (any::<Index>(), select(tokens)).prop_map(|(i, t)| Mutation::Insert(i, t)),
        2 => any::<Index>().prop_map(Mutation::DeleteLine),
        2 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// A seed with one to four mutations.
pub fn mutated(
    seeds: Vec<Vec<u8>>,
    tokens: &'static [&'static [u8]],
) -> impl Strategy<Value = Input> {
    (
        select(seeds),
        prop::collection::vec(mutation(tokens), 1..=4),
    )
        .prop_map(|(mut bytes, ms)| {
            for m in &ms {
                m.apply(&mut bytes);
            }
            Input(bytes)
        })
}

fn leaves_mut<'a>(v: &'a mut Value, out: &mut Vec<&'a mut Value>) {
    match v {
        Value::Sequence(s) => s.iter_mut().for_each(|x| leaves_mut(x, out)),
        Value::Mapping(m) => m.values_mut().for_each(|x| leaves_mut(x, out)),
        Value::Tagged(t) => leaves_mut(&mut t.value, out),
        leaf => out.push(leaf),
    }
}

fn scalar(text: &str) -> Value {
    yaml_serde::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// A seed that parses, with one of its values (a leaf) replaced by a hostile scalar: passes the
/// syntax and shape checks more often than byte mutations, so it reaches validation.
pub fn swapped(seeds: &[Vec<u8>]) -> impl Strategy<Value = Input> + use<> {
    let docs: Vec<Value> = seeds
        .iter()
        .filter_map(|s| yaml_serde::from_slice::<Value>(s).ok())
        .filter(|v| matches!(v, Value::Mapping(_)))
        .collect();
    assert!(!docs.is_empty(), "no seed parses as a YAML map");
    (select(docs), any::<Index>(), select(HOSTILE_SCALARS)).prop_map(|(mut doc, at, text)| {
        let mut leaves = Vec::new();
        leaves_mut(&mut doc, &mut leaves);
        if !leaves.is_empty() {
            let i = at.index(leaves.len());
            *leaves[i] = scalar(text);
        }
        Input(
            yaml_serde::to_string(&doc)
                .expect("a value tree serializes")
                .into_bytes(),
        )
    })
}

fn keys_of(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Sequence(s) => s.iter().for_each(|x| keys_of(x, out)),
        Value::Mapping(m) => {
            for (k, x) in m {
                if let Value::String(k) = k {
                    out.insert(k.clone());
                }
                keys_of(x, out);
            }
        }
        Value::Tagged(t) => keys_of(&t.value, out),
        _ => {}
    }
}

/// Documents built from nothing but the keys the seeds use, nested up to four levels, with
/// hostile, random and ordinary values.
pub fn generated(seeds: &[Vec<u8>]) -> impl Strategy<Value = Input> + use<> {
    let mut keys = BTreeSet::new();
    for s in seeds {
        if let Ok(v) = yaml_serde::from_slice::<Value>(s) {
            keys_of(&v, &mut keys);
        }
    }
    let keys: Vec<String> = keys.into_iter().collect();
    assert!(!keys.is_empty(), "the seeds name no keys");
    let leaf = prop_oneof![
        select(HOSTILE_SCALARS).prop_map(scalar),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        "[a-z_/.{}:= -]{0,16}".prop_map(Value::String),
    ];
    let node_keys = keys.clone();
    let value = leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            prop::collection::vec((select(node_keys.clone()), inner), 0..6).prop_map(mapping),
        ]
    });
    prop::collection::vec((select(keys), value), 1..8).prop_map(|kv| {
        Input(
            yaml_serde::to_string(&mapping(kv))
                .expect("a value tree serializes")
                .into_bytes(),
        )
    })
}

fn mapping(kv: Vec<(String, Value)>) -> Value {
    Value::Mapping(kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect())
}

/// Silence bodies built field by field: each field present or not, of the right type or not.
pub fn silence_bodies() -> impl Strategy<Value = Input> {
    let text = prop_oneof![
        Just(json!("2026-01-01T13:00:00Z")),
        Just(json!("2027-06-01T00:00:00Z")),
        Just(json!("+99999-01-01T00:00:00Z")),
        Just(json!("2025-01-01T00:00:00Z")),
        Just(json!("not a date")),
        Just(json!("")),
        Just(json!(" ")),
        Just(json!("=~(")),
        Just(json!("!~a|b")),
        "[a-z_=~!.*|]{0,12}".prop_map(serde_json::Value::from),
    ];
    let any_json = prop_oneof![
        4 => text.clone(),
        1 => Just(serde_json::Value::Null),
        1 => any::<i64>().prop_map(serde_json::Value::from),
        1 => any::<f64>().prop_map(serde_json::Value::from),
        1 => any::<bool>().prop_map(serde_json::Value::from),
        1 => Just(json!([])),
    ];
    let matchers = prop_oneof![
        4 => prop::collection::btree_map("[a-z_0-9A-Z]{0,6}", text, 0..4)
            .prop_map(|m| serde_json::to_value(m).expect("a map of strings")),
        1 => any_json.clone(),
    ];
    (
        prop::option::of(matchers),
        prop::option::of(any_json.clone()),
        prop::option::of(any_json.clone()),
        prop::option::of(any_json.clone()),
        prop::option::of(any_json.clone()),
        prop::option::of(("[a-z_]{1,10}", any_json)),
    )
        .prop_map(|(m, starts, ends, comment, by, extra)| {
            let mut body = serde_json::Map::new();
            let fields = [
                ("matchers", m),
                ("starts_at", starts),
                ("ends_at", ends),
                ("comment", comment),
                ("created_by", by),
            ];
            for (k, v) in fields {
                if let Some(v) = v {
                    body.insert(k.to_string(), v);
                }
            }
            if let Some((k, v)) = extra {
                body.insert(k, v);
            }
            Input(serde_json::to_vec(&body).expect("a JSON value serializes"))
        })
}
