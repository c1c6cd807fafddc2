//! How far the run writer has come (the daemon's `writer.rs` queues runs and writes them in
//! batches): a page waits until the runs that caused it are stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// How many runs were queued for the store and how many the writer has settled (stored, or
/// given up on: refused by the store, or dropped after too long an outage).
pub struct WriteProgress {
    queued: AtomicU64,
    settled: watch::Sender<u64>,
}

impl Default for WriteProgress {
    fn default() -> Self {
        WriteProgress {
            queued: AtomicU64::new(0),
            settled: watch::Sender::new(0),
        }
    }
}

impl WriteProgress {
    /// Counts `n` runs handed to the writer.
    pub fn queue(&self, n: u64) {
        self.queued.fetch_add(n, Ordering::AcqRel);
    }

    /// Counts `n` runs the writer is done with (stored, refused or dropped).
    pub fn settle(&self, n: usize) {
        self.settled.send_modify(|s| *s += n as u64);
    }

    /// How many runs have been queued so far: a mark to wait for with [`WriteProgress::settled`].
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Acquire)
    }

    /// Waits until the first `mark` runs queued are settled, at most `within`; false when that
    /// time ran out (the store is slow or down: the runs stay queued and the caller goes on).
    pub async fn settled(&self, mark: u64, within: Duration) -> bool {
        let mut rx = self.settled.subscribe();
        tokio::time::timeout(within, rx.wait_for(|s| *s >= mark))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_mark_is_settled_once_the_runs_before_it_are() {
        let p = Arc::new(WriteProgress::default());
        assert!(
            p.settled(p.queued(), Duration::ZERO).await,
            "nothing queued"
        );
        p.queue(3);
        let mark = p.queued();
        p.queue(1); // queued after the mark: not waited for
        p.settle(2);
        assert!(!p.settled(mark, Duration::from_millis(10)).await);
        let settler = {
            let p = p.clone();
            tokio::spawn(async move { p.settle(1) })
        };
        assert!(p.settled(mark, Duration::from_secs(10)).await);
        settler.await.unwrap();
    }
}
