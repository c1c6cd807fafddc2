//! `synmon notify test --receiver NAME [--resolve]`: on-call's check that a route works. A
//! clearly labelled test alert goes through the receiver's real payload builder, the outbox and
//! the retry policy, skipping only the grouping waits; the receiver's answer is printed.
//! Exit 0 delivered, 1 refused (or still failing after the retries), 2 config error.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::notify::deliver::{Attempt, Backoff, Deliverer};
use crate::notify::{AlertInfo, Notification, Status};
use crate::store::{NewNotification, Store};

/// Attempts before giving up (the row then stays in the outbox for the daemon).
const MAX_ATTEMPTS: u32 = 5;
/// How long the test holds its rows: a running daemon sharing the store leaves them alone until
/// then, and delivers them after if this command died.
const LEASE: Duration = Duration::from_secs(600);

pub async fn test(config: &Path, receiver: &str, resolve: bool) -> i32 {
    let cfg = match super::load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(rc) = cfg.notify.receiver(receiver) else {
        let names: Vec<&str> = cfg.notify.receivers.iter().map(|r| r.name()).collect();
        eprintln!(
            "unknown receiver `{receiver}` (defined: {})",
            names.join(", ")
        );
        return 2;
    };
    if let Some(reason) = rc.disabled_reason() {
        eprintln!("receiver `{receiver}` is disabled: {reason}");
        return 2;
    }
    let r = match rc.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("receiver `{receiver}` cannot be built: {e}");
            return 2;
        }
    };
    let store = match Store::connect(&cfg.store_url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let deliverer = Deliverer::new(store.clone(), clock.clone(), Backoff::default());
    deliverer.set_receivers(HashMap::from([(receiver.to_string(), r.clone())]));
    let external_url = cfg.public_url(cfg.listen);
    let started = clock.now();
    let mut statuses = vec![Status::Firing];
    if resolve {
        statuses.push(Status::Resolved);
    }
    for status in statuses {
        let n = test_notification(receiver, status, started, clock.now(), &external_url);
        let label = match status {
            Status::Firing => "test alert",
            Status::Resolved => "its resolve",
        };
        let now = clock.now();
        let lease = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let item = NewNotification {
            receiver: receiver.to_string(),
            group_key: n.group_key.clone(),
            payload: serde_json::to_string(&n).unwrap_or_default(),
        };
        let id = match store
            .enqueue_notifications(&[item], &[], now, Some(lease))
            .await
        {
            Ok(ids) => ids[0],
            Err(e) => {
                eprintln!("cannot write to the outbox: {e}");
                return 2;
            }
        };
        loop {
            let row = match store.outbox_row(id).await {
                Ok(Some(row)) => row,
                Ok(None) => {
                    eprintln!("outbox row {id} disappeared");
                    return 2;
                }
                Err(e) => {
                    eprintln!("cannot read the outbox: {e}");
                    return 2;
                }
            };
            if row.status != crate::store::OutboxStatus::Pending {
                // The lease ran out and a running daemon delivered (or refused) it meanwhile.
                println!(
                    "{label}: outbox row {id} is now {:?} (handled by a running daemon)",
                    row.status
                );
                return i32::from(row.status != crate::store::OutboxStatus::Sent);
            }
            match deliverer.attempt(&row, r.as_ref()).await {
                Ok(Attempt::Sent { response }) => {
                    println!(
                        "{label} delivered to `{receiver}` ({}) after {} attempt(s): {response}",
                        r.kind(),
                        row.attempts + 1
                    );
                    break;
                }
                Ok(Attempt::Failed { error }) => {
                    println!("{label} refused by `{receiver}` ({}): {error}", r.kind());
                    return 1;
                }
                Ok(Attempt::Taken) => {
                    // The lease ran out and a running daemon claimed the row meanwhile: this
                    // command cannot tell whether it will be delivered.
                    println!(
                        "{label}: outbox row {id} was taken over by a running daemon before this command could deliver it (see /api/v1/notifications)"
                    );
                    return 1;
                }
                Ok(Attempt::Retry { error, at }) => {
                    let attempts = row.attempts + 1;
                    if attempts >= MAX_ATTEMPTS {
                        println!(
                            "{label} not delivered to `{receiver}` after {attempts} attempts: {error} (it stays in the outbox; a running daemon delivers it when this command's lease ends)"
                        );
                        return 1;
                    }
                    // Never wait past the lease: the daemon would take the row over meanwhile.
                    let wait = (at - clock.now())
                        .to_std()
                        .unwrap_or_default()
                        .min(LEASE / 2);
                    println!(
                        "attempt {attempts} failed: {error}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    eprintln!("cannot record the attempt: {e}");
                    return 2;
                }
            }
        }
    }
    store.close().await;
    0
}

/// The test alert: its own alert name and group key per receiver, so a resolve finds the
/// message or incident the trigger created.
pub fn test_notification(
    receiver: &str,
    status: Status,
    started: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    external_url: &str,
) -> Notification {
    let labels: BTreeMap<String, String> = [
        ("alertname", "synmon_notify_test"),
        ("severity", "info"),
        ("receiver", receiver),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let annotations: BTreeMap<String, String> = [(
        "summary".to_string(),
        format!(
            "Test notification from `synmon notify test`: the route to `{receiver}` works. No action needed."
        ),
    )]
    .into_iter()
    .collect();
    Notification {
        receiver: receiver.to_string(),
        group_key: format!("test/{receiver}"),
        group_labels: BTreeMap::from([("alertname".into(), "synmon_notify_test".into())]),
        common_labels: labels.clone(),
        common_annotations: annotations.clone(),
        status,
        alerts: vec![AlertInfo {
            fingerprint: format!("test-{receiver}"),
            status,
            labels,
            annotations,
            starts_at: started,
            ends_at: (status == Status::Resolved).then_some(now),
            condition: None,
            run: None,
            affected: Vec::new(),
        }],
        external_url: external_url.to_string(),
        test: true,
        created_at: now,
    }
}
