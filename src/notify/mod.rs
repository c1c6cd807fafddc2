//! Notifications: from alert transitions to messages people receive, once, never lost.
//!
//! Modelled on Alertmanager's notify pipeline: alerts are routed through a tree to receivers,
//! gathered into groups (`group_wait`, `group_interval`), passed through a mute slot (silences,
//! inhibition, maintenance windows), deduplicated against a persisted notification log, written
//! to a durable outbox *before* any send, and delivered by one worker per receiver that retries
//! with backoff. Receivers (one file each) build payloads and make single attempts.

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
