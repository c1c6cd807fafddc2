//! A DNS probe: whether `host` resolves to at least one address within the timeout.

use std::time::Duration;

use serde::Deserialize;

use super::{Check, Context, Schedule, Validator};
use crate::probes::net;
use crate::run::{CheckKind, RunResult};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDnsCheck {
    pub name: String,
    pub host: String,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub interval: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DnsCheck {
    pub name: String,
    pub host: String,
    pub schedule: Schedule,
}

impl Check for DnsCheck {
    const KIND: CheckKind = CheckKind::Dns;
    const KEY: &'static str = "dns";
    type Raw = RawDnsCheck;

    check_accessors!();

    fn validate(raw: &RawDnsCheck, path: &str, schedule: Schedule, v: &mut Validator<'_>) -> Self {
        if raw.host.trim().is_empty() {
            v.error(&format!("{path}.host"), "must not be empty");
        }
        DnsCheck {
            name: raw.name.clone(),
            host: raw.host.clone(),
            schedule,
        }
    }

    async fn run(&self, cx: &Context<'_>, timeout: Duration) -> RunResult {
        let mut r = cx.begin(&self.name, Self::KIND);
        net::dns(&mut r, &self.host, timeout).await;
        r
    }
}
