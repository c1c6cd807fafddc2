//! What every SQL error message goes through before it is shown, logged or stored.

/// Database errors can quote the connection URL; never let it (or its password) out.
pub fn scrub(msg: &str) -> String {
    msg.split_whitespace()
        .map(|w| {
            if w.contains("://") {
                "<database url>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
