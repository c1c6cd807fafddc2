//! Key names a `press` step accepts, and the WebDriver code points they send.

/// Named keys (W3C WebDriver "keys" table).
const NAMED: &[(&str, char)] = &[
    ("Enter", '\u{e007}'),
    ("Tab", '\u{e004}'),
    ("Escape", '\u{e00c}'),
    ("Backspace", '\u{e003}'),
    ("Delete", '\u{e017}'),
    ("Space", '\u{e00d}'),
    ("ArrowUp", '\u{e013}'),
    ("ArrowDown", '\u{e015}'),
    ("ArrowLeft", '\u{e012}'),
    ("ArrowRight", '\u{e014}'),
    ("Home", '\u{e011}'),
    ("End", '\u{e010}'),
    ("PageUp", '\u{e00e}'),
    ("PageDown", '\u{e00f}'),
];

pub const KEY_NAMES: &[&str] = &[
    "Enter",
    "Tab",
    "Escape",
    "Backspace",
    "Delete",
    "Space",
    "ArrowUp",
    "ArrowDown",
    "ArrowLeft",
    "ArrowRight",
    "Home",
    "End",
    "PageUp",
    "PageDown",
];

/// The text to send for a key name, or `None` if the name is unknown. A single character is
/// sent as itself.
pub fn key_code(name: &str) -> Option<String> {
    if let Some((_, c)) = NAMED.iter().find(|(n, _)| *n == name) {
        return Some(c.to_string());
    }
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_single_chars() {
        assert_eq!(key_code("Enter").as_deref(), Some("\u{e007}"));
        assert_eq!(key_code("a").as_deref(), Some("a"));
        assert_eq!(key_code("Return"), None);
        assert!(KEY_NAMES.iter().all(|n| key_code(n).is_some()));
        assert_eq!(KEY_NAMES.len(), NAMED.len());
    }
}
