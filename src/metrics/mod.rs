//! Metrics: windowed HDR histograms, counters and gauges, the metric catalog, exporters.
