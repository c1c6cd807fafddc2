//! A TCP probe: whether `address` accepts a connection within the timeout.

use std::time::Duration;

use serde::Deserialize;

use super::{Check, CheckDef, Context, RawSchedule, Schedule, Validator, is_host_port};
use crate::probes::net;
use crate::run::{CheckKind, RunResult};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcpCheck {
    pub name: String,
    /// host:port
    pub address: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TcpCheck {
    pub name: String,
    pub address: String,
    pub schedule: Schedule,
}

impl From<TcpCheck> for CheckDef {
    fn from(c: TcpCheck) -> Self {
        CheckDef::Tcp(c)
    }
}

impl Check for TcpCheck {
    const KIND: CheckKind = CheckKind::Tcp;
    const KEY: &'static str = "tcp";
    type Raw = RawTcpCheck;

    fn name(&self) -> &str {
        &self.name
    }

    fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    fn raw_name(raw: &RawTcpCheck) -> &str {
        &raw.name
    }

    fn raw_schedule(raw: &RawTcpCheck) -> RawSchedule<'_> {
        RawSchedule {
            interval: raw.interval.as_deref(),
            timeout: raw.timeout.as_deref(),
            retry: None,
        }
    }

    fn validate(raw: &RawTcpCheck, path: &str, schedule: Schedule, v: &mut Validator<'_>) -> Self {
        if !is_host_port(&raw.address) {
            v.error(
                &format!("{path}.address"),
                format!("`{}` is not host:port", raw.address),
            );
        }
        TcpCheck {
            name: raw.name.clone(),
            address: raw.address.clone(),
            schedule,
        }
    }

    async fn run(&self, cx: &Context<'_>, timeout: Duration) -> RunResult {
        let mut r = cx.begin(&self.name, Self::KIND);
        net::tcp(&mut r, &self.address, timeout).await;
        r
    }
}
