//! Deadline-bounded polling: the one way a test waits for something that real I/O makes true
//! later (a run recorded, a row stored, a request received).

use std::time::Duration;

/// How often `eventually` asks again.
const POLL: Duration = Duration::from_millis(100);

/// Polls `f` until it returns `Some`, and returns that value; panics naming `what` and the
/// timeout if it has not within `timeout`. Time is tokio's, so a paused-time test advances it.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}
