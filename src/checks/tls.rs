//! A TLS probe: a handshake with `address`, the chain verified for the server name, and the
//! days left on the certificate (a run fails below `min_days`; the days feed a gauge).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Check, Context, Schedule, Validator};
use crate::metrics::catalog;
use crate::run::{CheckKind, RunResult};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTlsCheck {
    pub name: String,
    /// host:port
    pub address: String,
    /// The name the certificate must be valid for (default: the host of `address`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM file of the CA to trust instead of the web roots (relative to the config's folder).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Fail when the certificate expires in fewer days (default 14).
    #[serde(default)]
    pub min_days: Option<f64>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub interval: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<crate::config::schema::Duration>")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TlsCheck {
    pub name: String,
    pub address: String,
    pub server_name: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub min_days: f64,
    pub schedule: Schedule,
}

impl Check for TlsCheck {
    const KIND: CheckKind = CheckKind::Tls;
    const KEY: &'static str = "tls";
    type Raw = RawTlsCheck;

    check_accessors!();

    fn validate(raw: &RawTlsCheck, path: &str, schedule: Schedule, v: &mut Validator<'_>) -> Self {
        v.host_port(&format!("{path}.address"), &raw.address);
        let ca_file = raw.ca_file.as_ref().map(|f| v.dir.join(f));
        if let Some(f) = &ca_file
            && !f.is_file()
        {
            v.error(
                &format!("{path}.ca_file"),
                format!(
                    "file {} does not exist",
                    crate::config::yaml::display_path(f)
                ),
            );
        }
        let min_days = raw.min_days.unwrap_or(14.0);
        if !(0.0..=3650.0).contains(&min_days) {
            v.error(
                &format!("{path}.min_days"),
                format!("{min_days} is out of range (0-3650)"),
            );
        }
        TlsCheck {
            name: raw.name.clone(),
            address: raw.address.clone(),
            server_name: raw.server_name.clone(),
            ca_file,
            min_days,
            schedule,
        }
    }

    /// Records the days left in `synmon.tls.cert_days_left`; a failed handshake marks it stale
    /// (no data), never zero.
    async fn run(&self, cx: &Context<'_>, timeout: Duration) -> RunResult {
        let mut r = cx.begin(&self.name, Self::KIND);
        let days = crate::probes::tls::tls(
            &mut r,
            &self.address,
            self.server_name.as_deref(),
            self.ca_file.as_deref(),
            self.min_days,
            timeout,
            cx.clock.now(),
        )
        .await;
        if let Some(reg) = cx.registry {
            let labels = [
                ("check", self.name.as_str()),
                ("target", cx.target.name.as_str()),
            ];
            let _ = match days {
                Some(d) => {
                    reg.set_gauge(catalog::TLS_CERT_DAYS_LEFT.name, &labels, d, cx.clock.now())
                }
                None => reg.mark_stale(catalog::TLS_CERT_DAYS_LEFT.name, &labels),
            };
        }
        r
    }
}
