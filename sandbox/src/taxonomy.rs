//! The bundled slice of Google's product taxonomy (real ids and paths).

use std::sync::OnceLock;

use serde::Serialize;

const RAW: &str = include_str!("../data/taxonomy-slice.en-US.txt");

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i32,
    pub path: String,
    #[serde(skip)]
    lower: String,
}

pub struct Taxonomy {
    pub version: String,
    pub entries: Vec<Entry>,
}

pub fn get() -> &'static Taxonomy {
    static T: OnceLock<Taxonomy> = OnceLock::new();
    T.get_or_init(|| parse(RAW))
}

fn parse(raw: &str) -> Taxonomy {
    let mut version = String::from("unknown");
    let mut entries = Vec::new();
    for line in raw.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("# Google_Product_Taxonomy_Version:") {
            version = v.trim().to_string();
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((id, path)) = line.split_once(" - ")
            && let Ok(id) = id.trim().parse::<i32>()
        {
            entries.push(Entry {
                id,
                path: path.trim().to_string(),
                lower: path.trim().to_lowercase(),
            });
        }
    }
    Taxonomy { version, entries }
}

impl Taxonomy {
    pub fn by_id(&self, id: i64) -> Option<&Entry> {
        self.entries.iter().find(|e| i64::from(e.id) == id)
    }

    /// Entries containing every word of `q` (case-insensitive), best first:
    /// leaf names starting with the query, then shorter paths.
    pub fn search(&self, q: &str, limit: usize) -> Vec<&Entry> {
        let q = q.trim().to_lowercase();
        let words: Vec<&str> = q.split_whitespace().collect();
        if words.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<(u8, usize, &Entry)> = self
            .entries
            .iter()
            .filter(|e| words.iter().all(|w| e.lower.contains(w)))
            .map(|e| {
                let leaf = e.lower.rsplit(" > ").next().unwrap_or(&e.lower);
                let rank = if leaf == q {
                    0
                } else if leaf.starts_with(&q) {
                    1
                } else if leaf.contains(&q) {
                    2
                } else {
                    3
                };
                (rank, e.path.len(), e)
            })
            .collect();
        hits.sort_by_key(|a| (a.0, a.1));
        hits.into_iter().take(limit).map(|(_, _, e)| e).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_slice_is_real_and_sizeable() {
        let t = get();
        assert_eq!(t.version, "2021-09-21");
        assert!(t.entries.len() >= 300, "{}", t.entries.len());
        assert_eq!(
            t.by_id(5).unwrap().path,
            "Animals & Pet Supplies > Pet Supplies > Dog Supplies"
        );
        assert_eq!(t.by_id(632).unwrap().path, "Hardware");
    }

    #[test]
    fn search_ranks_leaf_matches_first() {
        let hits = get().search("dog food", 5);
        assert_eq!(hits[0].id, 3530);
        assert!(get().search("   ", 5).is_empty());
        assert!(get().search("screws", 5).iter().any(|e| e.id == 2251));
    }
}
