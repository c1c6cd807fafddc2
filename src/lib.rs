//! synmon: synthetic monitoring and SLO alerting.

pub mod config;
pub mod journey;
