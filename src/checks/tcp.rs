//! A TCP probe: whether `address` accepts a connection within the timeout.

use std::time::Duration;

use serde::Deserialize;

use super::{Check, Context, Schedule, Validator};
use crate::probes::net;
use crate::run::{CheckKind, RunResult};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTcpCheck {
    pub name: String,
    /// host:port
    pub address: String,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub interval: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TcpCheck {
    pub name: String,
    pub address: String,
    pub schedule: Schedule,
}

impl Check for TcpCheck {
    const KIND: CheckKind = CheckKind::Tcp;
    const KEY: &'static str = "tcp";
    type Raw = RawTcpCheck;

    check_accessors!();

    fn validate(raw: &RawTcpCheck, path: &str, schedule: Schedule, v: &mut Validator<'_>) -> Self {
        v.host_port(&format!("{path}.address"), &raw.address);
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
