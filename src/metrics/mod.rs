//! Metrics: windowed HDR histograms, counters and gauges, the metric catalog, exporters.
//!
//! Data flows one way: runners and the scheduler record into the [`Registry`] (runs through the
//! one run -> points mapping in [`runs`], shared with DogStatsD); the Prometheus
//! renderer, the DogStatsD exporter and the alert rules (through [`Registry::snapshot`]) read it.
//! Time is always passed in (`at`/`now`), never read here, so every window is exact in tests.

pub mod catalog;
pub mod prometheus;
pub mod registry;
pub mod runs;
pub mod statsd;
pub mod window;

pub use catalog::{CATALOG, MetricDef, MetricKind, StatsdForm, Unit, lookup};
pub use registry::{
    DistributionSnapshot, HistogramMemory, MetricsError, Registry, SeriesSnapshot, SeriesValue,
    Snapshot, WindowStats,
};
pub use runs::{MAINTENANCE_OUTCOME, Point, PointValue, RunMetrics};
pub use statsd::{StatsdError, StatsdExporter};
pub use window::{Window, WindowedHistogram};
