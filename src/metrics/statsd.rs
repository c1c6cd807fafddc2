//! DogStatsD exporter (cadence) for the Datadog agent.
//!
//! DogStatsD carries the platform's names (the `name` of each catalog entry), because the
//! platform's Datadog dashboards already use them, and values in the recorded unit: latencies as
//! distributions (`|d`) in **milliseconds**, sent as `f64`. (cadence's `distribution(Duration)`
//! and `histogram(Duration)` would send nanoseconds.) Percent gauges stay percent.
//!
//! Datagrams are buffered (several lines per datagram, up to 1,432 bytes, the size Datadog
//! recommends for UDP) over a non-blocking socket, so a slow agent never blocks a run: call
//! [`StatsdExporter::flush`] after a batch and on a timer. Tag order: global tags, then the
//! catalog's labels in catalog order.

use std::net::{SocketAddr, UdpSocket};

use cadence::prelude::*;
use cadence::{BufferedUdpMetricSink, MetricError, StatsdClient};
use chrono::{DateTime, Utc};

use super::catalog::{MetricDef, MetricKind, StatsdForm};
use super::prometheus::SUMMARY_WINDOW;
use super::registry::{Registry, SeriesRead};
use super::runs::{Point, PointValue, RunMetrics};
use crate::run::RunResult;

/// The `statsd:` section: where DogStatsD datagrams go, with which prefix and global tags.
#[derive(Debug, Clone)]
pub struct StatsdConfig {
    pub address: std::net::SocketAddr,
    pub prefix: Option<String>,
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Bytes per datagram.
pub const DATAGRAM_CAPACITY: usize = 1432;

#[derive(Debug, thiserror::Error)]
pub enum StatsdError {
    #[error("cannot open a UDP socket for DogStatsD: {0}")]
    Socket(#[from] std::io::Error),
    #[error("DogStatsD send failed: {0}")]
    Send(#[from] MetricError),
    #[error("metric `{metric}` takes tags {expected:?}")]
    Tags {
        metric: &'static str,
        expected: &'static [&'static str],
    },
}

/// Sends synmon's metrics to a DogStatsD agent.
#[derive(Debug)]
pub struct StatsdExporter {
    client: StatsdClient,
}

/// DogStatsD tag values cannot carry the characters that delimit tags and fields.
fn tag_value(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains([',', '|', '\n', '\r']) {
        value.replace([',', '|', '\n', '\r'], "_").into()
    } else {
        value.into()
    }
}

impl StatsdExporter {
    /// Connect (UDP: nothing is sent yet) to the agent at `addr`. `prefix` is prepended with a
    /// dot to every name; `global_tags` go on every metric (e.g. `env`, `service`).
    pub fn new(
        addr: SocketAddr,
        prefix: Option<&str>,
        global_tags: &[(&str, &str)],
    ) -> Result<Self, StatsdError> {
        let bind: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let socket = UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        let sink = BufferedUdpMetricSink::with_capacity(addr, socket, DATAGRAM_CAPACITY)?;
        let mut builder = StatsdClient::builder(prefix.unwrap_or(""), sink);
        for (k, v) in global_tags {
            builder = builder.with_tag(*k, tag_value(v).into_owned());
        }
        Ok(StatsdExporter {
            client: builder.build(),
        })
    }

    /// Send one run: the distributions and counts [`RunMetrics`] maps it to (the check
    /// latency, every step's latency in ms, a count of the run by outcome and attempt), in that
    /// order. Gauges (the probe-health gauge) go with the registry's gauges on the flush
    /// interval ([`emit_registry_gauges`](Self::emit_registry_gauges)). Cancelled runs are not
    /// sent.
    pub fn emit_run(&self, run: &RunResult) -> Result<(), StatsdError> {
        self.emit_run_marked(run, None)
    }

    /// [`emit_run`](Self::emit_run) for a run that fell inside the maintenance window `window`:
    /// its points carry the outcome `maintenance`, as in the registry, so Datadog's SLO queries
    /// (which count `pass` and `fail`) leave it out of the budget too.
    pub fn emit_run_marked(
        &self,
        run: &RunResult,
        window: Option<&str>,
    ) -> Result<(), StatsdError> {
        RunMetrics::of(run)
            .marked(window)
            .try_for_each_point(|p| self.emit_point(&p))
    }

    /// Send one metric point; gauge points are left to the registry flush (see
    /// [`emit_run`](Self::emit_run)).
    pub fn emit_point(&self, p: &Point<'_>) -> Result<(), StatsdError> {
        match p.value {
            PointValue::Latency(ms) => self.emit_distribution(p.def, p.labels, ms),
            PointValue::Count(by) => self.emit_count(p.def, p.labels, by),
            PointValue::Gauge(_) => Ok(()),
        }
    }

    /// Tags in catalog order; every catalog label must be given.
    fn tags<'a>(
        def: &'static MetricDef,
        labels: &[(&'a str, &'a str)],
    ) -> Result<Vec<(&'static str, std::borrow::Cow<'a, str>)>, StatsdError> {
        if labels.len() != def.labels.len() {
            return Err(StatsdError::Tags {
                metric: def.name,
                expected: def.labels,
            });
        }
        def.labels
            .iter()
            .map(|name| {
                labels
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| (*name, tag_value(v)))
                    .ok_or(StatsdError::Tags {
                        metric: def.name,
                        expected: def.labels,
                    })
            })
            .collect()
    }

    /// One latency sample (ms) as a distribution.
    pub fn emit_distribution(
        &self,
        def: &'static MetricDef,
        labels: &[(&str, &str)],
        value_ms: f64,
    ) -> Result<(), StatsdError> {
        let tags = Self::tags(def, labels)?;
        let mut m = self.client.distribution_with_tags(def.name, value_ms);
        for (k, v) in &tags {
            m = m.with_tag(k, v);
        }
        m.try_send()?;
        Ok(())
    }

    /// A counter increment.
    pub fn emit_count(
        &self,
        def: &'static MetricDef,
        labels: &[(&str, &str)],
        by: u64,
    ) -> Result<(), StatsdError> {
        let tags = Self::tags(def, labels)?;
        let by = i64::try_from(by).unwrap_or(i64::MAX);
        let mut m = self.client.count_with_tags(def.name, by);
        for (k, v) in &tags {
            m = m.with_tag(k, v);
        }
        m.try_send()?;
        Ok(())
    }

    /// A gauge in the catalog's unit (percent stays percent).
    pub fn emit_gauge(
        &self,
        def: &'static MetricDef,
        labels: &[(&str, &str)],
        value: f64,
    ) -> Result<(), StatsdError> {
        let tags = Self::tags(def, labels)?;
        let mut m = self.client.gauge_with_tags(def.name, value);
        for (k, v) in &tags {
            m = m.with_tag(k, v);
        }
        m.try_send()?;
        Ok(())
    }

    /// Send every gauge of the registry that has a value (stale gauges send nothing, so
    /// Datadog shows no data rather than 0), and the quantile gauges such as
    /// `swis_preview_p95_ms` (the 5-minute p95 of its distribution). Returns how many were sent.
    /// Call on the flush interval.
    pub fn emit_registry_gauges(
        &self,
        registry: &Registry,
        now: DateTime<Utc>,
    ) -> Result<usize, StatsdError> {
        let mut sent = 0;
        for (def, series) in registry.families() {
            let quantile = match (def.kind, def.statsd) {
                (MetricKind::Gauge, _) => None,
                (MetricKind::Distribution, StatsdForm::QuantileGauge(q)) => Some(q),
                _ => continue,
            };
            for s in series {
                let value = match (s.read(), quantile) {
                    (SeriesRead::Gauge(Some(v)), None) => v,
                    (SeriesRead::Distribution, Some(q)) => {
                        match s.with_histogram(|h| h.quantile(SUMMARY_WINDOW, q, now)) {
                            Some(Some(v)) => v,
                            _ => continue,
                        }
                    }
                    _ => continue,
                };
                let labels: Vec<(&str, &str)> = def
                    .labels
                    .iter()
                    .copied()
                    .zip(s.labels.iter().map(|v| &**v))
                    .collect();
                self.emit_gauge(def, &labels, value)?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Send what is buffered.
    pub fn flush(&self) -> Result<(), StatsdError> {
        self.client.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalog;
    use crate::metrics::registry::tests::{run, step, t};
    use crate::outcome::Outcome;
    use std::time::Duration;

    /// A fake agent: a real UDP socket on 127.0.0.1:0.
    fn agent() -> (UdpSocket, SocketAddr) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        (socket, addr)
    }

    /// Every line received until `n` lines arrived.
    fn lines(socket: &UdpSocket, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 65_536];
        while out.len() < n {
            let len = socket.recv(&mut buf).expect("datagram");
            let text = std::str::from_utf8(&buf[..len]).unwrap();
            out.extend(text.split('\n').filter(|l| !l.is_empty()).map(String::from));
        }
        out
    }

    #[test]
    fn a_run_inside_a_maintenance_window_is_sent_as_maintenance() {
        let (socket, addr) = agent();
        let exporter = StatsdExporter::new(addr, None, &[]).unwrap();
        let r = run(
            "align",
            Outcome::Fail,
            vec![step("save", 123.4, true, Outcome::Fail)],
        );
        exporter.emit_run_marked(&r, Some("sunday-db")).unwrap();
        exporter.flush().unwrap();
        let got = lines(&socket, 3);
        assert_eq!(got.len(), 3, "{got:?}");
        for l in &got {
            assert!(l.contains("outcome:maintenance"), "{l}");
            assert!(!l.contains("outcome:fail"), "{l}");
        }
    }

    #[test]
    fn emit_run_sends_millisecond_distributions_byte_exact() {
        let (socket, addr) = agent();
        let exporter =
            StatsdExporter::new(addr, None, &[("env", "test"), ("service", "synmon")]).unwrap();
        let mut r = run(
            "align",
            Outcome::Fail,
            vec![
                step("login", 812.0, false, Outcome::Pass),
                step("save", 123.4, true, Outcome::Pass),
                step("toast", 4000.5, true, Outcome::Fail),
            ],
        );
        r.attempt = 2;
        exporter.emit_run(&r).unwrap();
        exporter.flush().unwrap();
        let got = lines(&socket, 5);
        let g = "env:test,service:synmon";
        assert_eq!(
            got,
            vec![
                format!(
                    "synmon.check.latency:4123.9|d|#{g},check:align,location:eu,target:staging,outcome:fail"
                ),
                format!(
                    "synmon.step.latency:812|d|#{g},check:align,step:login,location:eu,target:staging,outcome:pass"
                ),
                format!(
                    "synmon.step.latency:123.4|d|#{g},check:align,step:save,location:eu,target:staging,outcome:pass"
                ),
                format!(
                    "synmon.step.latency:4000.5|d|#{g},check:align,step:toast,location:eu,target:staging,outcome:fail"
                ),
                format!(
                    "synmon.check.runs:1|c|#{g},check:align,location:eu,outcome:fail,attempt:2"
                ),
            ]
        );
    }

    #[test]
    fn prefix_gauges_and_sanitised_tags() {
        let (socket, addr) = agent();
        let exporter = StatsdExporter::new(addr, Some("rvp"), &[]).unwrap();
        exporter
            .emit_gauge(&catalog::FEED_PUSH_SUCCESS_RATE, &[], 97.5)
            .unwrap();
        exporter
            .emit_gauge(&catalog::FEED_PUSH_ERROR_RATE, &[("tenant", "a,b|c")], 2.0)
            .unwrap();
        exporter.flush().unwrap();
        assert_eq!(
            lines(&socket, 2),
            vec![
                "rvp.feed_push_success_rate:97.5|g".to_string(),
                "rvp.feed_push_error_rate:2|g|#tenant:a_b_c".to_string(),
            ]
        );
        assert!(matches!(
            exporter.emit_gauge(&catalog::FEED_PUSH_ERROR_RATE, &[], 1.0),
            Err(StatsdError::Tags { .. })
        ));
    }

    #[test]
    fn registry_gauges_skip_stale_and_send_the_swis_p95() {
        let (socket, addr) = agent();
        let exporter = StatsdExporter::new(addr, None, &[]).unwrap();
        let reg = Registry::new();
        for ms in 1..=100 {
            reg.record(
                catalog::SWIS_PREVIEW.name,
                &[("location", "eu")],
                f64::from(ms) * 3.0,
                t(0, 1),
            )
            .unwrap();
        }
        reg.set_gauge(catalog::CATEGORY_MAPPING_COVERAGE.name, &[], 100.0, t(0, 0))
            .unwrap();
        reg.set_gauge(catalog::OAUTH_ERROR_RATE.name, &[], 3.0, t(0, 0))
            .unwrap();
        reg.mark_stale(catalog::OAUTH_ERROR_RATE.name, &[]).unwrap();
        reg.incr(
            catalog::CHECK_OVERRUNS.name,
            &[("check", "a"), ("location", "eu")],
            1,
        )
        .unwrap();
        assert_eq!(exporter.emit_registry_gauges(&reg, t(1, 0)).unwrap(), 2);
        exporter.flush().unwrap();
        assert_eq!(
            lines(&socket, 2),
            vec![
                // p95 of 3..=300 ms is 285 ms, reported as the top of its HDR bucket.
                "swis_preview_p95_ms:286.719|g|#location:eu".to_string(),
                "category_mapping_coverage_pct:100|g".to_string(),
            ]
        );
    }

    #[test]
    fn cancelled_runs_send_nothing() {
        let (socket, addr) = agent();
        let exporter = StatsdExporter::new(addr, None, &[]).unwrap();
        let mut r = run(
            "a",
            Outcome::Pass,
            vec![step("s", 1.0, true, Outcome::Pass)],
        );
        r.cancelled = true;
        exporter.emit_run(&r).unwrap();
        exporter
            .emit_count(
                &catalog::CHECK_OVERRUNS,
                &[("location", "eu"), ("check", "a")],
                3,
            )
            .unwrap();
        exporter.flush().unwrap();
        assert_eq!(
            lines(&socket, 1),
            vec!["synmon.check.overruns:3|c|#check:a,location:eu".to_string()]
        );
    }
}
