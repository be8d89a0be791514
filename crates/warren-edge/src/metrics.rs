//! The edge's metrics, served as OpenMetrics text at `GET /metrics` on the
//! admin listener (with the admin token, like the rest of the API).
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `warren_edge_sessions_total` | `front`, `route`, `outcome` | requests and connections, by how they ended |
//! | `warren_edge_open_sessions` | `front` | requests and connections in progress |
//! | `warren_edge_bytes_total` | `front`, `route`, `direction` | bytes carried (`to_origin`, `to_client`) |
//! | `warren_edge_session_duration_seconds` | `front` | how long they lasted (histogram) |
//! | `warren_edge_access_decisions_total` | `app`, `result` | access decisions of applications |
//! | `warren_edge_tunnel_registrations_total` | `outcome` | connector registrations (`registered`, or why refused) |
//! | `warren_edge_tunnel_connections` | `tunnel` | registered connector connections |
//! | `warren_edge_tunnel_streams` | `tunnel` | streams open on them |
//! | `warren_edge_tunnel_rtt_seconds` | `tunnel`, `connector`, `conn_index` | each connection's round-trip time |
//! | `warren_edge_audit_write_seconds` | | one batch of audit entries written (histogram) |
//! | `warren_edge_audit_write_failures_total` | | batches that could not be written (retried) |
//! | `warren_edge_pg_pool_clients` | `database`, `role`, `state` | pooled PostgreSQL clients: `connected`, `active` (holding a server connection), `waiting` |
//! | `warren_edge_pg_pool_servers` | `database`, `role`, `state` | the pool's server connections: `open`, `idle` |
//! | `warren_edge_pg_pool_transactions_total` | `database`, `role` | transactions served (connections given back) |
//! | `warren_edge_pg_pool_checkout_timeouts_total` | `database`, `role` | clients that found every connection busy for the checkout timeout |
//!
//! `front` is `http`, `edge_endpoint`, `tcp` (WebSocket), `tcp_quic` or
//! `postgres`; `route` is the route's hostname as configured (a wildcard
//! stays `*.example.com`), or empty when no route matched. An HTTP
//! request's outcome is its status class (`2xx` ... `5xx`); a connection's
//! is why it ended (`closed`, `client_gone`, `origin_closed`,
//! `tunnel_reset`, `revoked`, `idle`, `setup_failed`); a session stopped
//! before that says why (`unknown_host`, `denied`, `certificate_expired`,
//! `certificate_invalid`, `upstream_error`, `audit_unavailable`).
//!
//! Connection bytes are added when the connection ends; HTTP body bytes
//! as they move.
//!
//! The dashboard's traffic plots (`admin/ui/traffic.rs`) sample the same
//! counters per route ([`EdgeMetrics::route_totals`]): every session, the
//! ones that ended in [`ERROR_OUTCOMES`], and the bytes both ways.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use warren_transport::metrics::{DURATION_BUCKETS, LATENCY_BUCKETS};

use crate::registry::Registry as Connections;
use crate::session::Front;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    front: &'static str,
    route: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    database: String,
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolStateLabels {
    database: String,
    role: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FrontLabels {
    front: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    front: &'static str,
    route: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    app: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TunnelLabels {
    tunnel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnLabels {
    tunnel: String,
    connector: String,
    conn_index: u8,
}

/// The outcomes the dashboard plots as errors: the origin's 5xx answers,
/// and sessions the tunnel or the connector failed (not refusals, which
/// are access decisions, nor clients that went away).
pub(crate) const ERROR_OUTCOMES: [&str; 4] =
    ["5xx", "upstream_error", "tunnel_reset", "setup_failed"];

/// Every front end, for reading a route's byte counters of each.
const FRONTS: [Front; 5] = [
    Front::Http,
    Front::EdgeEndpoint,
    Front::Tcp,
    Front::TcpQuic,
    Front::Postgres,
];

/// A route's running totals since the edge started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RouteTotals {
    /// Requests and connections that ended (or never started).
    pub(crate) sessions: u64,
    /// Those of them that ended in one of [`ERROR_OUTCOMES`].
    pub(crate) errors: u64,
    /// Bytes carried, both directions.
    pub(crate) bytes: u64,
}

/// The session counts of one route, kept beside the labelled family so
/// that they can be read without knowing every outcome.
#[derive(Default)]
struct RouteCounts {
    sessions: AtomicU64,
    errors: AtomicU64,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The edge's metrics (see the module doc). Cheap to share: every metric
/// is a handle on shared atomics.
pub(crate) struct EdgeMetrics {
    registry: Registry,
    sessions: Family<SessionLabels, Counter>,
    open: Family<FrontLabels, Gauge>,
    bytes: Family<BytesLabels, Counter>,
    duration: Family<FrontLabels, Histogram, fn() -> Histogram>,
    decisions: Family<DecisionLabels, Counter>,
    registrations: Family<OutcomeLabels, Counter>,
    tunnel_connections: Family<TunnelLabels, Gauge>,
    tunnel_streams: Family<TunnelLabels, Gauge>,
    tunnel_rtt: Family<ConnLabels, Gauge<f64, AtomicU64>>,
    audit_write: Histogram,
    audit_failures: Counter,
    pool_clients: Family<PoolStateLabels, Gauge>,
    pool_servers: Family<PoolStateLabels, Gauge>,
    pool_transactions: Family<PoolLabels, Counter>,
    pool_timeouts: Family<PoolLabels, Counter>,
    /// Sessions and errors by route (routes as configured, so bounded like
    /// the labels), for [`EdgeMetrics::route_totals`].
    route_counts: RwLock<HashMap<String, Arc<RouteCounts>>>,
    /// One scrape at a time: the tunnel gauges are refilled from the
    /// registry of connections for each.
    scrape: tokio::sync::Mutex<()>,
}

impl Default for EdgeMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("warren_edge");
        let m = EdgeMetrics {
            sessions: Family::default(),
            open: Family::default(),
            bytes: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            decisions: Family::default(),
            registrations: Family::default(),
            tunnel_connections: Family::default(),
            tunnel_streams: Family::default(),
            tunnel_rtt: Family::default(),
            audit_write: Histogram::new(LATENCY_BUCKETS),
            audit_failures: Counter::default(),
            pool_clients: Family::default(),
            pool_servers: Family::default(),
            pool_transactions: Family::default(),
            pool_timeouts: Family::default(),
            route_counts: RwLock::default(),
            scrape: tokio::sync::Mutex::new(()),
            registry: Registry::default(),
        };
        registry.register(
            "sessions",
            "Requests and connections, by front end, route and how they ended",
            m.sessions.clone(),
        );
        registry.register(
            "open_sessions",
            "Requests and connections in progress",
            m.open.clone(),
        );
        registry.register(
            "bytes",
            "Bytes carried, by front end, route and direction",
            m.bytes.clone(),
        );
        registry.register(
            "session_duration_seconds",
            "How long requests and connections lasted",
            m.duration.clone(),
        );
        registry.register(
            "access_decisions",
            "Access decisions made by applications, by application and result",
            m.decisions.clone(),
        );
        registry.register(
            "pg_pool_clients",
            "Pooled PostgreSQL clients, by database, role and state (connected, active, waiting)",
            m.pool_clients.clone(),
        );
        registry.register(
            "pg_pool_servers",
            "Server connections of the PostgreSQL pools, by database, role and state (open, idle)",
            m.pool_servers.clone(),
        );
        registry.register(
            "pg_pool_transactions",
            "Transactions the PostgreSQL pools served (server connections given back)",
            m.pool_transactions.clone(),
        );
        registry.register(
            "pg_pool_checkout_timeouts",
            "Clients that found every server connection busy for the checkout timeout",
            m.pool_timeouts.clone(),
        );
        registry.register(
            "tunnel_registrations",
            "Connector connection registrations, by outcome",
            m.registrations.clone(),
        );
        registry.register(
            "tunnel_connections",
            "Registered connector connections, by tunnel",
            m.tunnel_connections.clone(),
        );
        registry.register(
            "tunnel_streams",
            "Streams open on connector connections, by tunnel",
            m.tunnel_streams.clone(),
        );
        registry.register(
            "tunnel_rtt_seconds",
            "Round-trip time of each connector connection",
            m.tunnel_rtt.clone(),
        );
        registry.register(
            "audit_write_seconds",
            "Time to write one batch of audit entries",
            m.audit_write.clone(),
        );
        registry.register(
            "audit_write_failures",
            "Batches of audit entries that could not be written (each is retried)",
            m.audit_failures.clone(),
        );
        EdgeMetrics { registry, ..m }
    }
}

/// The label a front end has in metrics.
fn front_label(front: Front) -> &'static str {
    match front {
        Front::Http => "http",
        Front::EdgeEndpoint => "edge_endpoint",
        Front::Tcp => "tcp",
        Front::TcpQuic => "tcp_quic",
        Front::Postgres => "postgres",
    }
}

impl EdgeMetrics {
    /// A session started.
    pub(crate) fn session_opened(&self, front: Front) {
        self.open
            .get_or_create(&FrontLabels {
                front: front_label(front),
            })
            .inc();
    }

    /// A session (started with [`EdgeMetrics::session_opened`]) ended.
    pub(crate) fn session_closed(
        &self,
        front: Front,
        route: &str,
        outcome: &'static str,
        lasted: Duration,
        (up, down): (u64, u64),
    ) {
        let f = front_label(front);
        self.open.get_or_create(&FrontLabels { front: f }).dec();
        self.count_session(front, route, outcome);
        self.duration
            .get_or_create(&FrontLabels { front: f })
            .observe(lasted.as_secs_f64());
        for (direction, n) in [("to_origin", up), ("to_client", down)] {
            if n > 0 {
                self.bytes_counter(front, route, direction).inc_by(n);
            }
        }
    }

    /// A session that never started (no route, or no audit log).
    pub(crate) fn count_session(&self, front: Front, route: &str, outcome: &'static str) {
        self.sessions
            .get_or_create(&SessionLabels {
                front: front_label(front),
                route: route.to_owned(),
                outcome,
            })
            .inc();
        if route.is_empty() {
            return;
        }
        let known = self
            .route_counts
            .read()
            .expect("route counts")
            .get(route)
            .cloned();
        let counts = match known {
            Some(c) => c,
            None => self
                .route_counts
                .write()
                .expect("route counts")
                .entry(route.to_owned())
                .or_default()
                .clone(),
        };
        counts.sessions.fetch_add(1, Ordering::Relaxed);
        if ERROR_OUTCOMES.contains(&outcome) {
            counts.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What `route` (its hostname as routed) carried since the edge
    /// started: the counters above, summed over front ends, outcomes and
    /// directions.
    pub(crate) fn route_totals(&self, route: &str) -> RouteTotals {
        let (sessions, errors) = self
            .route_counts
            .read()
            .expect("route counts")
            .get(route)
            .map_or((0, 0), |c| {
                (
                    c.sessions.load(Ordering::Relaxed),
                    c.errors.load(Ordering::Relaxed),
                )
            });
        let mut bytes = 0u64;
        for front in FRONTS {
            for direction in ["to_origin", "to_client"] {
                let labels = BytesLabels {
                    front: front_label(front),
                    route: route.to_owned(),
                    direction,
                };
                if let Some(c) = self.bytes.get(&labels) {
                    bytes = bytes.saturating_add(c.get());
                }
            }
        }
        RouteTotals {
            sessions,
            errors,
            bytes,
        }
    }

    /// The byte counter of a route in one direction (`to_origin` or
    /// `to_client`), for bodies that are counted as they move.
    pub(crate) fn bytes_counter(
        &self,
        front: Front,
        route: &str,
        direction: &'static str,
    ) -> Counter {
        self.bytes.get_or_create_owned(&BytesLabels {
            front: front_label(front),
            route: route.to_owned(),
            direction,
        })
    }

    /// An application decided (`result`: allow, deny, ...).
    pub(crate) fn decision(&self, app: &str, result: &str) {
        self.decisions
            .get_or_create(&DecisionLabels {
                app: app.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// A connector connection registered, or was refused (`outcome`).
    pub(crate) fn registration(&self, outcome: &'static str) {
        self.registrations
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// One batch of audit entries was written, or failed to be.
    pub(crate) fn audit_write(&self, took: Duration, ok: bool) {
        self.audit_write.observe(took.as_secs_f64());
        if !ok {
            self.audit_failures.inc();
        }
    }

    /// Every metric now, as OpenMetrics text: the tunnel gauges are read
    /// from `connections` first.
    pub(crate) async fn render(
        &self,
        connections: &Connections,
        tunnel_names: &TunnelNames,
        pools: &[crate::pg::pool::PoolView],
    ) -> String {
        let _one = self.scrape.lock().await;
        self.pool_clients.clear();
        self.pool_servers.clear();
        for p in pools {
            let state = |state| PoolStateLabels {
                database: p.database.clone(),
                role: p.role.clone(),
                state,
            };
            for (s, v) in [
                ("connected", p.clients),
                ("active", p.clients_active),
                ("waiting", p.clients_waiting),
            ] {
                self.pool_clients.get_or_create(&state(s)).set(i64::from(v));
            }
            for (s, v) in [("open", p.servers), ("idle", p.servers_idle)] {
                self.pool_servers.get_or_create(&state(s)).set(i64::from(v));
            }
            let labels = PoolLabels {
                database: p.database.clone(),
                role: p.role.clone(),
            };
            // The pools count; the counters catch up with them.
            for (family, now) in [
                (&self.pool_transactions, p.transactions),
                (&self.pool_timeouts, p.checkout_timeouts),
            ] {
                let c = family.get_or_create(&labels);
                c.inc_by(now.saturating_sub(c.get()));
            }
        }
        self.tunnel_connections.clear();
        self.tunnel_streams.clear();
        self.tunnel_rtt.clear();
        for c in connections.all() {
            let tunnel = tunnel_names.name(&c.tunnel_id);
            let t = TunnelLabels {
                tunnel: tunnel.clone(),
            };
            self.tunnel_connections.get_or_create(&t).inc();
            self.tunnel_streams
                .get_or_create(&t)
                .inc_by(i64::try_from(c.outstanding()).unwrap_or(i64::MAX));
            self.tunnel_rtt
                .get_or_create(&ConnLabels {
                    tunnel,
                    connector: c.connector_id.clone(),
                    conn_index: c.conn_index,
                })
                .set(c.conn.rtt().as_secs_f64());
        }
        warren_transport::metrics::render(&self.registry)
    }
}

/// Tunnel ids to names, for labels.
pub(crate) struct TunnelNames(std::collections::HashMap<String, String>);

impl TunnelNames {
    pub(crate) fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        TunnelNames(pairs.into_iter().collect())
    }

    /// The tunnel's name, or its id when it has none (deleted while
    /// connected).
    fn name(&self, id: &str) -> String {
        self.0.get(id).cloned().unwrap_or_else(|| id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_count_by_route_and_outcome_and_bytes_by_direction() {
        let m = EdgeMetrics::default();
        m.session_opened(Front::Tcp);
        m.session_opened(Front::Tcp);
        m.session_closed(
            Front::Tcp,
            "db.example.com",
            "closed",
            Duration::from_millis(20),
            (10, 250),
        );
        m.count_session(Front::Http, "", "unknown_host");
        m.bytes_counter(Front::Http, "*.example.com", "to_client")
            .inc_by(7);
        m.decision("admin", "deny");
        m.registration("bad_secret");
        m.audit_write(Duration::from_millis(3), false);
        let text = warren_transport::metrics::render(&m.registry);
        for want in [
            r#"warren_edge_sessions_total{front="tcp",route="db.example.com",outcome="closed"} 1"#,
            r#"warren_edge_sessions_total{front="http",route="",outcome="unknown_host"} 1"#,
            r#"warren_edge_open_sessions{front="tcp"} 1"#,
            r#"warren_edge_bytes_total{front="tcp",route="db.example.com",direction="to_origin"} 10"#,
            r#"warren_edge_bytes_total{front="tcp",route="db.example.com",direction="to_client"} 250"#,
            r#"warren_edge_bytes_total{front="http",route="*.example.com",direction="to_client"} 7"#,
            r#"warren_edge_session_duration_seconds_count{front="tcp"} 1"#,
            r#"warren_edge_access_decisions_total{app="admin",result="deny"} 1"#,
            r#"warren_edge_tunnel_registrations_total{outcome="bad_secret"} 1"#,
            "warren_edge_audit_write_seconds_count 1",
            "warren_edge_audit_write_failures_total 1",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }

    #[test]
    fn route_totals_sum_fronts_outcomes_and_directions() {
        let m = EdgeMetrics::default();
        let route = "app.example.com";
        assert_eq!(m.route_totals(route), RouteTotals::default());
        m.session_opened(Front::Http);
        m.session_closed(Front::Http, route, "2xx", Duration::ZERO, (0, 0));
        m.session_opened(Front::Http);
        m.session_closed(Front::Http, route, "5xx", Duration::ZERO, (0, 0));
        m.session_opened(Front::Tcp);
        m.session_closed(Front::Tcp, route, "tunnel_reset", Duration::ZERO, (5, 7));
        m.count_session(Front::Http, route, "denied");
        m.bytes_counter(Front::Http, route, "to_client").inc_by(100);
        m.count_session(Front::Http, "", "unknown_host");
        m.count_session(Front::Http, "other.example.com", "upstream_error");
        assert_eq!(
            m.route_totals(route),
            RouteTotals {
                sessions: 4,
                errors: 2,
                bytes: 112,
            }
        );
        assert_eq!(m.route_totals("other.example.com").errors, 1);
        assert_eq!(m.route_totals(""), RouteTotals::default());
    }
}
