//! A journey's `viewport`, `device` and `network`, applied to the run's browser. Chromium only
//! (chromedriver's `goog/cdp/execute` and network conditions endpoints).
//!
//! What applies where matters because browsers are pooled: the device metrics, user agent and
//! touch overrides are the run's tab's own (DevTools overrides of one target, closed with the
//! run's user context), but chromedriver's network conditions hold for the whole session, every
//! tab of every later run included. [`Browser::reset_emulation`] undoes both when the run ends;
//! a browser whose reset fails is not reused.

use serde_json::{Value, json};

use super::{Browser, StepError, wd_err};
use crate::run::Emulation;

/// A chromedriver command that fantoccini does not have: `method` on `path` under the session.
#[derive(Debug)]
struct Chromium {
    method: http::Method,
    path: &'static str,
    body: Option<Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Chromium {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/{}",
            session.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

/// Kilobits per second as DevTools wants them: bytes per second (-1: not limited).
fn bytes_per_s(kbps: u64) -> f64 {
    if kbps == 0 {
        -1.0
    } else {
        kbps as f64 * 1000.0 / 8.0
    }
}

impl Browser {
    async fn cdp(&self, cmd: &str, params: Value) -> Result<Value, StepError> {
        self.client
            .issue_cmd(Chromium {
                method: http::Method::POST,
                path: "goog/cdp/execute",
                body: Some(json!({"cmd": cmd, "params": params})),
            })
            .await
            .map_err(|e| {
                let mut err = wd_err(&format!("emulation ({cmd})"), e);
                // Not the target's fault whatever chromedriver says: the probe could not set up.
                err.outcome = crate::outcome::Outcome::Error;
                err
            })
    }

    /// Applies `e` to the run's tab (and, for the network, to the session until
    /// [`Browser::reset_emulation`]).
    pub async fn emulate(&self, e: &Emulation) -> Result<(), StepError> {
        if let Some((w, h)) = e.viewport {
            self.cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({
                    "width": w,
                    "height": h,
                    // 0: the browser's own ratio.
                    "deviceScaleFactor": e.device_pixel_ratio.unwrap_or(0.0),
                    "mobile": e.mobile,
                }),
            )
            .await?;
        }
        if let Some(ua) = &e.user_agent {
            self.cdp("Emulation.setUserAgentOverride", json!({"userAgent": ua}))
                .await?;
        }
        if e.mobile {
            self.cdp(
                "Emulation.setTouchEmulationEnabled",
                json!({"enabled": true, "maxTouchPoints": 5}),
            )
            .await?;
        }
        if let Some(n) = &e.network {
            let body = json!({"network_conditions": {
                "offline": n.offline,
                "latency": n.latency_ms,
                "download_throughput": bytes_per_s(n.down_kbps),
                "upload_throughput": bytes_per_s(n.up_kbps),
            }});
            self.client
                .issue_cmd(Chromium {
                    method: http::Method::POST,
                    path: "chromium/network_conditions",
                    body: Some(body),
                })
                .await
                .map_err(|e| {
                    let mut err = wd_err("setting network conditions", e);
                    err.outcome = crate::outcome::Outcome::Error;
                    err
                })?;
        }
        Ok(())
    }

    /// Undoes [`Browser::emulate`]: the session's network conditions, and the tab's overrides
    /// (gone with the tab where a run's tab closes with it; undone too so that a browser that
    /// keeps its tab from run to run is left as found).
    pub async fn reset_emulation(&self, e: &Emulation) -> Result<(), StepError> {
        if e.network.is_some() {
            self.client
                .issue_cmd(Chromium {
                    method: http::Method::DELETE,
                    path: "chromium/network_conditions",
                    body: None,
                })
                .await
                .map_err(|e| wd_err("resetting network conditions", e))?;
        }
        if e.viewport.is_some() {
            self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
                .await?;
        }
        if e.user_agent.is_some() {
            // An empty user agent is no override: the browser's own again.
            self.cdp("Emulation.setUserAgentOverride", json!({"userAgent": ""}))
                .await?;
        }
        if e.mobile {
            self.cdp(
                "Emulation.setTouchEmulationEnabled",
                json!({"enabled": false}),
            )
            .await?;
        }
        Ok(())
    }
}
