//! Local stand-ins for the services synmon talks to, each checking the real protocol.

pub mod controls;
pub mod datadog;
pub mod pagerduty;
pub mod slack;
pub mod webhook;
