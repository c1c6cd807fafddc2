//! What leading and following mean for this daemon (the membership itself is
//! `crate::cluster`).
//!
//! - Taking over: unless this replica also held the epoch just before (then its memory is the
//!   latest state, including transitions and notifications the store could not take while it
//!   was down), the alert state, its `for:` timers and the notification log are read back
//!   from the store, so the new leader continues where the previous one stopped, without
//!   paging again. Then delivery starts.
//! - Stepping down: delivery stops; memory is kept (a re-taken lease with continuity uses it).
//! - Following: at every membership tick the leader's alert state, API view and notification
//!   log are read from the store, so `/api/v1/alerts` and `/api/v1/slo` answer the leader's
//!   state from any replica, and a follower that takes over from a store that lost its tables
//!   still knows what was firing and what was sent.

use std::sync::Arc;

use crate::cluster::{Role, Roles};
use crate::rules;
use crate::scheduler::BoxFuture;
use crate::store::{ALERT_STATE_ID, ALERT_VIEW_ID};
use crate::view::{Shared, SloFigures};

/// What the leader saves beside the alert state for the followers' API.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct AlertView {
    pub recent: Vec<rules::eval::Transition>,
    pub evaluations: u64,
    pub slos: Option<SloFigures>,
}

/// How many recent transitions the view carries (the API shows at most 100).
pub(super) const VIEW_TRANSITIONS: usize = 100;

pub(super) struct DaemonRoles {
    pub shared: Arc<Shared>,
    /// Tests deliver on demand: no workers.
    pub manual: bool,
}

impl Roles for DaemonRoles {
    fn lead(&self, epoch: i64, continuity: bool) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let shared = &self.shared;
            // No evaluation runs while the state it would start from is being replaced.
            let _turn = shared.evaluating.lock().await;
            // A store without alert state (new, or its tables dropped and re-created) has
            // nothing newer than this replica's copy: the one it led with, or the one it
            // mirrored from the leader as a follower. Keep it rather than forget an incident.
            let stored = matches!(
                shared.store.load_alert_state(ALERT_STATE_ID).await,
                Ok(Some(_))
            );
            if !continuity && !stored {
                tracing::warn!(
                    epoch,
                    "the store holds no alert state: continuing from this replica's copy"
                );
            }
            if !continuity && !shared.cluster.is_single_node() {
                // The other replicas' last 24 h, so rules with long windows judge every location
                // from the first evaluation.
                // In a task of its own: at thousands of checks a day of runs takes a while, and
                // the membership round that called this must go on renewing the lease. The feed
                // is held before the task starts, so evaluations wait for the whole history.
                // (Tests that evaluate on demand get it done before the first evaluation.)
                let turn = shared.feed.hold().await;
                let me = shared.clone();
                let replay = async move {
                    let now = me.clock.now();
                    me.feed
                        .reset_with(turn, &me.store, me.cluster.id(), now)
                        .await;
                };
                if self.manual {
                    replay.await;
                } else {
                    tokio::spawn(replay);
                }
                // Counter samples taken over an earlier remote registry would read the new
                // one's totals as one sudden increase: the history starts again from the next
                // evaluation. Run counts come from the replayed latency windows, exactly;
                // first-attempt counts (rules matching `attempt`) restart here, so those rules
                // see a young history (`min_coverage`) after a takeover.
                shared.alerting.lock().await.counters = Default::default();
            }
            if !continuity && stored {
                super::evaluator::restore(shared).await;
                match shared.notifier.restore_from_store().await {
                    Ok(n) => tracing::info!(
                        epoch,
                        groups = n,
                        "notification log restored from the store"
                    ),
                    Err(e) => {
                        tracing::error!(epoch, error = %e, "notification log not restored; groups start empty")
                    }
                }
            }
            if !self.manual && !shared.notifier.is_started() {
                shared.notifier.start();
            }
        })
    }

    fn follow(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.shared.notifier.stop().await;
        })
    }

    fn tick(&self, role: Role) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if role == Role::Follower {
                mirror(&self.shared).await;
                // The notification log too: if the store loses it, the replica that takes over
                // still knows what was sent.
                if let Err(e) = self.shared.notifier.mirror_log().await {
                    tracing::debug!(error = %e, "notification log not mirrored");
                }
                if let Err(e) = self.shared.notifier.deliverer().mirror_states().await {
                    tracing::debug!(error = %e, "receiver states not mirrored");
                }
            }
        })
    }
}

/// A follower's copy of the leader's alert state and API view.
async fn mirror(shared: &Shared) {
    let state = shared.store.load_alert_state(ALERT_STATE_ID).await;
    let view = shared.store.load_alert_state(ALERT_VIEW_ID).await;
    let state = match state {
        Ok(Some(v)) => serde_json::from_value::<rules::eval::State>(v).ok(),
        _ => None,
    };
    let view = match view {
        Ok(Some(v)) => serde_json::from_value::<AlertView>(v).ok(),
        _ => None,
    };
    let mut a = shared.alerting.lock().await;
    if let Some(s) = state {
        a.state = s;
    }
    if let Some(v) = view {
        a.recent = v.recent.into_iter().collect();
        a.evaluations = v.evaluations;
        a.slos = v.slos.map(Arc::new);
    }
}
