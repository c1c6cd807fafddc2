//! The notifier side: the pipeline (routing, grouping, dedup, the outbox and its delivery
//! workers) with the mute stages plugged in, and the hand-over of each evaluation's firing
//! alerts to it.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::clock::Clock;
use crate::metrics::registry::Registry;
use crate::mute::Mute;
use crate::notify::dispatch::IncomingAlert;
use crate::notify::pipeline::Notifier;
use crate::settings::Config;
use crate::store::Store;
use crate::view::Shared;

use super::{DaemonError, Options};

/// Builds the notification pipeline and its mute slot (silences, inhibition, maintenance), and
/// warns about rules whose route matches no node of the routing tree. The pipeline writes
/// through the leader's fenced handle; silences, which any replica's API writes, through the
/// plain one.
pub(super) async fn build(
    config: &Config,
    store: &Store,
    leader_store: &Store,
    clock: &Arc<dyn Clock>,
    options: &Options,
    addr: SocketAddr,
    registry: &Registry,
) -> Result<(Arc<Notifier>, Arc<Mute>), DaemonError> {
    for (file, rule, route) in crate::notify::config::unrouted(&config.rules, &config.notify.route)
    {
        tracing::warn!(%file, %rule, %route, "the rule's route matches no node of `route:`; its alerts go to the root receiver");
    }
    let notifier = Arc::new(
        Notifier::new(
            &config.notify,
            leader_store.clone(),
            clock.clone(),
            options.notify_backoff.unwrap_or_default(),
            &config.public_url(addr),
            Some(registry.clone()),
        )
        .await?,
    );
    let mute = Arc::new(Mute::new(store.clone(), &config.mute, &config.rules).await?);
    mute.attach(&notifier).await;
    Ok((notifier, mute))
}

/// Hands what fires after an evaluation (plus the watchdog, when configured) to the pipeline,
/// which groups it and queues what is new or resolved. Called after the alert state is saved:
/// after a crash the restored state and the notification log agree on what was already said.
pub(super) async fn hand_over(shared: &Shared, cfg: &Config, mut firing: Vec<IncomingAlert>) {
    if cfg.mute.watchdog.is_some() {
        firing.push(crate::mute::watchdog::alert(shared.started_at));
    }
    if let Err(e) = shared.notifier.sync(&firing).await {
        tracing::error!(error = %e, "notifications not queued; retrying at the next flush");
    }
}
