//! What the edge's and the connector's `/metrics` endpoints share: the
//! OpenMetrics text rendering of a registry and the histogram buckets.
//!
//! Metrics are [`prometheus_client`] types in a registry each process part
//! owns (no global recorder: `warren dev` runs an edge and a connector in
//! one process). Labels only ever take values from the configuration or
//! from a fixed set (routes, tunnels, rules, applications, outcomes) —
//! never from a client (no addresses, no hostnames a client made up), so
//! the number of series stays bounded.

use prometheus_client::registry::Registry;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets (seconds) for short operations: a store write, a dial, a
/// stream's answer.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Buckets (seconds) for how long a request or connection lasted.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0,
];

/// The registry in the OpenMetrics text format (ending in `# EOF`).
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug
    // in a metric's labels, and an empty answer is better than a panic.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!("cannot render the metrics: {e}");
        out.clear();
    }
    out
}

/// The label value for an HTTP status: its class (`2xx`, `5xx`, ...).
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn renders_openmetrics_text() {
        let mut registry = Registry::with_prefix("warren_test");
        let c = Counter::<u64>::default();
        registry.register("things", "Things counted", c.clone());
        c.inc_by(3);
        let text = render(&registry);
        assert!(text.contains("# TYPE warren_test_things counter"), "{text}");
        assert!(text.contains("warren_test_things_total 3"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(101), "1xx");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(502), "5xx");
        assert_eq!(status_class(999), "5xx");
    }
}
