//! The connector's metrics and readiness, served by `--metrics ADDR` (off
//! by default, like cloudflared's): `GET /metrics` (OpenMetrics text) and
//! `GET /ready` (200 once at least one edge connection is registered, 503
//! before that and while draining: for Kubernetes probes).
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `warren_connector_streams_total` | `kind`, `outcome` | streams the edge opened, by how they were answered |
//! | `warren_connector_rule_streams_total` | `rule`, `hostname` | streams matched to each ingress rule |
//! | `warren_connector_open_streams` | | streams being served |
//! | `warren_connector_stream_duration_seconds` | `kind` | how long streams lasted (histogram) |
//! | `warren_connector_connections` | | registered edge connections |
//! | `warren_connector_connection_rtt_seconds` | `conn_index` | each connection's round-trip time |
//! | `warren_connector_registrations_total` | `outcome` | dials of the edge (`registered`, or why not) |
//! | `warren_connector_config_reloads_total` | `result` | config reloads (`applied`, `rejected`) |
//!
//! `kind` is `http`, `websocket` or `tcp` (`malformed` for a stream whose
//! header could not be read); `outcome` is `connected`, an HTTP status
//! class, or the error code the edge was answered with
//! (`origin_unreachable`, `no_service`, ...). `rule` is the rule's number
//! in the config and `hostname` its hostname (empty for a catch-all).
//!
//! The listener is plain HTTP/1 for a scraper on a trusted network: bind
//! it to loopback or a pod address. Every connection must send its request
//! head within [`HEADER_TIMEOUT`], and at most [`MAX_CONNECTIONS`] are
//! served at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use warren_transport::metrics::DURATION_BUCKETS;
use warren_transport::TunnelConnection;

/// How long a scraper has to send its request head.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections the listener serves at once; more wait to be accepted.
pub(crate) const MAX_CONNECTIONS: usize = 32;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: usize,
    hostname: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnLabels {
    conn_index: usize,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The connector's metrics (see the module doc), shared by its
/// connections and every ingress config it loads.
pub(crate) struct ConnectorMetrics {
    registry: Registry,
    streams: Family<StreamLabels, Counter>,
    rule_streams: Family<RuleLabels, Counter>,
    open_streams: Gauge,
    duration: Family<KindLabels, Histogram, fn() -> Histogram>,
    connections: Gauge,
    rtt: Family<ConnLabels, Gauge<f64, AtomicU64>>,
    registrations: Family<OutcomeLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    /// Registered connections by index, for their round-trip times.
    live: Mutex<HashMap<usize, TunnelConnection>>,
    /// Set once the connector starts draining: `/ready` says 503.
    draining: AtomicBool,
}

impl Default for ConnectorMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("warren_connector");
        let m = ConnectorMetrics {
            registry: Registry::default(),
            streams: Family::default(),
            rule_streams: Family::default(),
            open_streams: Gauge::default(),
            duration: Family::new_with_constructor(duration_histogram),
            connections: Gauge::default(),
            rtt: Family::default(),
            registrations: Family::default(),
            reloads: Family::default(),
            live: Mutex::new(HashMap::new()),
            draining: AtomicBool::new(false),
        };
        registry.register(
            "streams",
            "Streams the edge opened, by kind and how they were answered",
            m.streams.clone(),
        );
        registry.register(
            "rule_streams",
            "Streams matched to each ingress rule",
            m.rule_streams.clone(),
        );
        registry.register(
            "open_streams",
            "Streams being served",
            m.open_streams.clone(),
        );
        registry.register(
            "stream_duration_seconds",
            "How long streams lasted",
            m.duration.clone(),
        );
        registry.register(
            "connections",
            "Registered edge connections",
            m.connections.clone(),
        );
        registry.register(
            "connection_rtt_seconds",
            "Round-trip time of each registered edge connection",
            m.rtt.clone(),
        );
        registry.register(
            "registrations",
            "Dials of the edge, by outcome",
            m.registrations.clone(),
        );
        registry.register(
            "config_reloads",
            "Ingress config reloads, by result",
            m.reloads.clone(),
        );
        ConnectorMetrics { registry, ..m }
    }
}

/// Keeps a stream counted as open until it drops.
pub(crate) struct OpenStream<'a>(&'a ConnectorMetrics);

impl Drop for OpenStream<'_> {
    fn drop(&mut self) {
        self.0.open_streams.dec();
    }
}

impl ConnectorMetrics {
    /// A stream started; it counts as open while the guard lives.
    pub(crate) fn stream_opened(&self) -> OpenStream<'_> {
        self.open_streams.inc();
        OpenStream(self)
    }

    /// A stream of `kind` was answered `outcome` and has ended.
    pub(crate) fn stream_done(&self, kind: &'static str, outcome: &'static str, lasted: Duration) {
        self.streams
            .get_or_create(&StreamLabels { kind, outcome })
            .inc();
        self.duration
            .get_or_create(&KindLabels { kind })
            .observe(lasted.as_secs_f64());
    }

    /// A stream matched rule `index` (0-based) with this hostname.
    pub(crate) fn rule_matched(&self, index: usize, hostname: &str) {
        self.rule_streams
            .get_or_create(&RuleLabels {
                rule: index + 1,
                hostname: hostname.to_owned(),
            })
            .inc();
    }

    /// A dial of the edge ended (`registered`, or why not).
    pub(crate) fn registration(&self, outcome: &'static str) {
        self.registrations
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Connection `index` is registered, until [`Self::disconnected`].
    pub(crate) fn connected(&self, index: usize, conn: TunnelConnection) {
        self.connections.inc();
        self.live
            .lock()
            .expect("live connections")
            .insert(index, conn);
    }

    /// Connection `index` is no longer registered.
    pub(crate) fn disconnected(&self, index: usize) {
        self.connections.dec();
        self.live.lock().expect("live connections").remove(&index);
        self.rtt.remove(&ConnLabels { conn_index: index });
    }

    /// A config reload was applied or rejected.
    pub(crate) fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "rejected" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// The connector has begun to drain.
    pub(crate) fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Every metric now, as OpenMetrics text.
    fn render(&self) -> String {
        for (index, conn) in self.live.lock().expect("live connections").iter() {
            self.rtt
                .get_or_create(&ConnLabels { conn_index: *index })
                .set(conn.rtt().as_secs_f64());
        }
        warren_transport::metrics::render(&self.registry)
    }

    /// What `/ready` answers: its status and a JSON body.
    fn readiness(&self, connector_id: &str) -> (StatusCode, String) {
        let ready = self.connections.get().max(0);
        let draining = self.draining.load(Ordering::Relaxed);
        let status = if ready > 0 && !draining {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let body = serde_json::json!({
            "status": status.as_u16(),
            "ready_connections": ready,
            "draining": draining,
            "connector_id": connector_id,
        });
        (status, body.to_string())
    }
}

/// Serves `/metrics` and `/ready` on `listener` until the task is
/// dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<ConnectorMetrics>,
    connector_id: String,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = warren_transport::accept::AcceptBackoff::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    let builder = Arc::new(builder);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) =
            warren_transport::accept::accept(&listener, &mut backoff, "metrics").await;
        let (metrics, id, builder) = (metrics.clone(), connector_id.clone(), builder.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let answer = answer(&metrics, &id, &req);
                async move { Ok::<_, std::convert::Infallible>(answer) }
            });
            if let Err(e) = builder.serve_connection(TokioIo::new(tcp), service).await {
                tracing::debug!(%peer, error = %e, "metrics connection ended with an error");
            }
        });
    }
}

fn answer<B>(
    metrics: &ConnectorMetrics,
    connector_id: &str,
    req: &Request<B>,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&hyper::Method::GET | &hyper::Method::HEAD, "/metrics") => (
            StatusCode::OK,
            warren_transport::metrics::CONTENT_TYPE,
            metrics.render(),
        ),
        (&hyper::Method::GET | &hyper::Method::HEAD, "/ready") => {
            let (status, body) = metrics.readiness(connector_id);
            (status, "application/json", body)
        }
        (_, "/metrics" | "/ready") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: the connector serves /metrics and /ready\n".to_owned(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_readiness() {
        let m = ConnectorMetrics::default();
        {
            let _open = m.stream_opened();
            let text = m.render();
            assert!(text.contains("warren_connector_open_streams 1"), "{text}");
        }
        m.stream_done("http", "2xx", Duration::from_millis(5));
        m.stream_done("tcp", "origin_unreachable", Duration::from_millis(1));
        m.rule_matched(0, "app.example.com");
        m.registration("registered");
        m.reload(false);
        let text = m.render();
        for want in [
            "warren_connector_open_streams 0",
            r#"warren_connector_streams_total{kind="http",outcome="2xx"} 1"#,
            r#"warren_connector_streams_total{kind="tcp",outcome="origin_unreachable"} 1"#,
            r#"warren_connector_rule_streams_total{rule="1",hostname="app.example.com"} 1"#,
            r#"warren_connector_registrations_total{outcome="registered"} 1"#,
            r#"warren_connector_config_reloads_total{result="rejected"} 1"#,
            r#"warren_connector_stream_duration_seconds_count{kind="http"} 1"#,
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        assert_eq!(m.readiness("c").0, StatusCode::SERVICE_UNAVAILABLE);
        m.connections.inc();
        assert_eq!(m.readiness("c").0, StatusCode::OK);
        m.set_draining();
        let (status, body) = m.readiness("c");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains(r#""draining":true"#), "{body}");
    }
}
