//! Durations written like `500ms`, `5s`, `2m`, `1h 30m` (humantime syntax).

use std::time::Duration;

pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let d = parse_duration_or_zero(raw)?;
    if d.is_zero() {
        return Err(format!("`{raw}` must be longer than zero"));
    }
    Ok(d)
}

/// As [`parse_duration`], where zero means "no wait" (a route's `group_wait: 0s`).
pub fn parse_duration_or_zero(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim()).map_err(|e| {
        format!("`{raw}` is not a duration ({e}); write it like `500ms`, `5s` or `2m`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_duration_or_zero("0s").unwrap(), Duration::ZERO);
        assert!(parse_duration("soon").is_err());
    }
}
