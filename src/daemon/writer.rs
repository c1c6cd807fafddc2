//! The store's writer: runs are recorded in memory at once and written to the store in batches
//! a little later by one task (a slow store never stalls the scheduler). The store's
//! [`WriteProgress`](crate::store::WriteProgress) says how far the writes have come, so a page
//! waits until the runs that caused it are stored (a restart right after it then replays them
//! and keeps the alert firing).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::store::{Store, StoredRun, WriteProgress as Progress};

/// The recorder's end of the writer's queue.
#[derive(Clone)]
pub(super) struct RunQueue {
    tx: mpsc::UnboundedSender<StoredRun>,
    progress: Arc<Progress>,
}

impl RunQueue {
    /// A queue, the writer's end of it, and the progress both share.
    pub(super) fn new(progress: Arc<Progress>) -> (RunQueue, mpsc::UnboundedReceiver<StoredRun>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (RunQueue { tx, progress }, rx)
    }

    pub(super) fn send(&self, run: StoredRun) {
        self.progress.queue(1);
        if self.tx.send(run).is_err() {
            // The writer has stopped (shutdown): nothing will store it, nothing waits for it.
            self.progress.settle(1);
        }
    }
}

/// Runs kept in memory while the store cannot take them (about 10 minutes of 2,700 checks at
/// 5 s, a few MB); beyond, the oldest are dropped, with an error.
const UNSTORED_RUNS_MAX: usize = 100_000;

/// Runs per insert transaction.
const WRITE_BATCH_MAX: usize = 2_000;

/// How long the writer keeps gathering runs after the first of a batch before it writes them.
/// At 1,000 probes/s, writing whatever queued meanwhile meant a transaction per handful of runs,
/// and every statement is a wake-up of SQLite's worker thread (futex waits and context switches
/// were the top of the probe profile, that thread 37% of the samples). 100 ms of delay before a
/// run is in the store is nothing next to the seconds between evaluations. Measured: 549/459 ->
/// 290 us of CPU per probe at 1,000 probes/s (BENCHMARKS.md, "Core performance, session 10").
const WRITE_GATHER: Duration = Duration::from_millis(100);

/// The store's writer: whatever queued up while the last write ran goes in one transaction.
/// While the store is unreachable (or its tables are being re-created), runs wait here and
/// go in once it is back; the leader reads them from the store for evaluation, so dropping
/// them would leave holes in every other replica's view.
pub(super) async fn write_runs(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<StoredRun>,
    progress: Arc<Progress>,
) {
    let mut batch: Vec<StoredRun> = Vec::with_capacity(64);
    let mut failing = false;
    let mut closed = false;
    loop {
        if batch.is_empty() {
            if closed || rx.recv_many(&mut batch, 256).await == 0 {
                return;
            }
            if !failing {
                tokio::time::sleep(WRITE_GATHER).await;
                while let Ok(r) = rx.try_recv() {
                    batch.push(r);
                }
            }
        } else {
            while let Ok(r) = rx.try_recv() {
                batch.push(r);
            }
        }
        // A bounded transaction: after an outage, the kept runs go in a few thousand at a time
        // (a transaction open for long would make its runs visible to the leader's feed long
        // after their arrival time).
        let n = batch.len().min(WRITE_BATCH_MAX);
        match store.record_runs(&batch[..n]).await {
            Ok(()) => {
                if failing {
                    tracing::info!(
                        runs = batch.len(),
                        "the store takes runs again; the kept ones are stored"
                    );
                    failing = false;
                }
                batch.drain(..n);
                progress.settle(n);
            }
            Err(e) if e.is_transient() => {
                if !failing {
                    tracing::error!(runs = batch.len(), error = %e, "runs not stored; kept in memory until the store is back");
                    failing = true;
                }
                if batch.len() > UNSTORED_RUNS_MAX {
                    let drop = batch.len() - UNSTORED_RUNS_MAX;
                    batch.drain(..drop);
                    progress.settle(drop);
                    tracing::error!(
                        dropped = drop,
                        kept = UNSTORED_RUNS_MAX,
                        "the store has been unreachable too long: the oldest unstored runs are dropped"
                    );
                }
                // Stopping: one more try below after the pause, then give up.
                if rx.is_closed() && rx.is_empty() {
                    if closed {
                        tracing::error!(
                            runs = batch.len(),
                            "stopping with runs the store did not take"
                        );
                        return;
                    }
                    closed = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::error!(runs = n, error = %e, "runs not stored");
                batch.drain(..n);
                progress.settle(n);
            }
        }
    }
}
