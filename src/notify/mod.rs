//! Notifications: from alert transitions to messages people receive, once, never lost.
//!
//! Modelled on Alertmanager's notify pipeline: alerts are routed through a tree to receivers,
//! gathered into groups (`group_wait`, `group_interval`), passed through a mute slot (silences,
//! inhibition, maintenance windows), deduplicated against a persisted notification log, written
//! to a durable outbox *before* any send, and delivered by one worker per receiver that retries
//! with backoff. Receivers (one file each) build payloads and make single attempts.
//!
//! Rooms: `route.rs` the routing tree (keys, validation, matching); `dispatch.rs` groups, the
//! mute slot (`Muter`) and flushes; `dedup.rs`, `deliver.rs` (outbox worker, retries) and
//! `pipeline.rs` (the stages wired together); `config.rs` the receivers' config; one file per
//! receiver (`pagerduty.rs`, `webhook.rs`, `console.rs`) and `slack/` (`payload.rs` pure,
//! `client.rs` the Web API). Silences, inhibition and maintenance (`mute/`) sit above this
//! module and plug into the mute slot; nothing here names them.

pub mod config;
pub mod console;
pub mod message;
pub mod pagerduty;
pub mod receiver;
pub mod route;
pub mod slack;
pub mod webhook;

pub use config::{NotifyConfig, ReceiverConfig};
pub use message::{AlertInfo, Notification, Status};
pub use receiver::{Delivered, FailureKind, Receiver, SendContext, SendError};
pub use route::Route;
pub mod dedup;
pub mod deliver;
pub mod dispatch;
pub mod incoming;
pub mod pipeline;
