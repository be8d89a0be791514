//! `/metrics` on the edge's admin listener and on the connector, read by
//! the Prometheus project's own OpenMetrics parser (`prometheus_client`,
//! `tests/fixtures/metrics/parse.py`) after known traffic: every counter
//! matches what was sent. And the connector's `/ready`: 503 while it has
//! no registered connection and while it drains, 200 in between.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use support::deps::{metrics_fixtures, require, Dep};
use support::{curl, eventually, origins, write_config, AccessTcp, Connector, Edge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every sample of an OpenMetrics text, as the real parser reads it.
struct Samples(Vec<Value>);

impl Samples {
    /// Parses `text` with `prometheus_client`; a text it refuses fails
    /// the test.
    async fn parse(text: &str) -> Samples {
        require(Dep::PromClient);
        let script = metrics_fixtures(env!("CARGO_MANIFEST_DIR").as_ref()).join("parse.py");
        let out = support::python(&script, &[], text.as_bytes()).await;
        assert!(
            out.status.success(),
            "the OpenMetrics parser refused the text: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        Samples(serde_json::from_slice(&out.stdout).unwrap())
    }

    /// The value of the sample `name` whose labels include `labels` (0
    /// when there is none: a counter nothing has touched).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .matching(name, labels)
            .map(|s| s["value"].as_f64().unwrap())
            .collect();
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} samples",
            found.len()
        );
        found.first().copied().unwrap_or(0.0)
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.0
            .iter()
            .filter(move |s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
    }
}

/// `GET http://{addr}{path}` with extra curl arguments: (status, body).
async fn get(addr: SocketAddr, path: &str, extra: &[&str]) -> (u16, String) {
    let url = format!("http://{addr}{path}");
    let mut args = vec!["-sS", "-i", "--max-time", "10"];
    args.extend_from_slice(extra);
    args.push(&url);
    let r = curl(&args).await;
    (r.status, r.body)
}

async fn edge_metrics(edge: &Edge) -> Samples {
    let auth = format!("Authorization: Bearer {}", edge.token);
    let (status, body) = get(edge.admin, "/metrics", &["-H", &auth]).await;
    assert_eq!(status, 200, "{body}");
    Samples::parse(&body).await
}

async fn connector_metrics(addr: SocketAddr) -> Samples {
    let (status, body) = get(addr, "/metrics", &[]).await;
    assert_eq!(status, 200, "{body}");
    Samples::parse(&body).await
}

/// The address a connector serves metrics on, from its log.
async fn metrics_addr(c: &Connector) -> SocketAddr {
    let log = c.proc.wait_log("serving /metrics and /ready").await;
    log.lines()
        .find(|l| l.contains("serving /metrics and /ready"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in the connector's log:\n{log}"))
}

/// `/ready`: its status and JSON body.
async fn ready(addr: SocketAddr) -> (u16, Value) {
    let (status, body) = get(addr, "/ready", &[]).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// One connection through `access tcp`: `n` bytes up, half-close, all
/// echoed back plus the origin's `<eof>` marker.
async fn echo_once(access: SocketAddr, n: usize) {
    let mut c = tokio::net::TcpStream::connect(access).await.unwrap();
    let payload = vec![b'e'; n];
    let (mut r, mut w) = c.split();
    let write = async {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut got = Vec::new();
    let (_, read) = tokio::join!(write, r.read_to_end(&mut got));
    read.unwrap();
    assert_eq!(got.len(), n + b"<eof>".len());
}

#[cfg_attr(
    any(warren_missing_curl, warren_missing_prometheus_client),
    ignore = "needs curl and the prometheus_client parser; scripts/test-deps.sh installs them"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_sent_and_ready_follows_the_connections() {
    let dir = support::temp_dir();
    let edge = Edge::start(dir.path()).await;
    let token = edge
        .tunnel(
            "office",
            &["app.example.com", "down.example.com", "echo.example.com"],
        )
        .await;
    let http = origins::http_echo().await;
    let echo = origins::tcp_echo().await;
    let closed = origins::closed_port().await;
    // The connector takes its metrics address from the config's
    // cloudflared-style `metrics:` key.
    let cfg = write_config(
        dir.path(),
        "config.yml",
        &format!(
            "metrics: 127.0.0.1:0\ningress:\n  - hostname: app.example.com\n    service: http://{http}\n  - hostname: down.example.com\n    service: http://127.0.0.1:{closed}\n  - hostname: echo.example.com\n    service: tcp://{echo}\n  - service: http_status:404\n"
        ),
    );
    let cfg = cfg.display().to_string();

    // A connector whose edge does not answer is not ready.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let nowhere = silent.local_addr().unwrap().to_string();
    let mut lonely = Connector::start(
        &edge,
        &token,
        &[
            "--config",
            &cfg,
            "--edge",
            &nowhere,
            "--metrics",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    let lonely_addr = metrics_addr(&lonely).await;
    let (status, body) = ready(lonely_addr).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready_connections"], 0, "{body}");
    lonely.proc.kill().await;

    let mut connector = Connector::start(&edge, &token, &["--config", &cfg], dir.path());
    let addr = metrics_addr(&connector).await;
    eventually(
        "the connector to be ready",
        Duration::from_secs(30),
        || async {
            let (status, body) = ready(addr).await;
            (status == 200 && body["ready_connections"] == 2).then_some(())
        },
    )
    .await;
    edge.wait_connections("office", 2).await;

    // Known traffic: 5 GETs and a 1000-byte POST answered 200, 3 requests
    // for a name no route has, 2 to an origin that is down, and 2 TCP
    // connections of 100 000 bytes each way.
    let mut body_bytes = 0usize;
    for i in 0..5 {
        let r = edge
            .curl("app.example.com", &format!("/get/{i}"), &[])
            .await;
        assert_eq!(r.status, 200, "{} {}", r.body, r.stderr);
        body_bytes += r.body.len();
    }
    let upload = "u".repeat(1000);
    let r = edge
        .curl("app.example.com", "/upload", &["--data-binary", &upload])
        .await;
    assert_eq!(r.status, 200, "{} {}", r.body, r.stderr);
    body_bytes += r.body.len();
    for _ in 0..3 {
        let r = edge.curl("nobody.example.com", "/", &[]).await;
        assert_eq!(r.status, 404, "{} {}", r.body, r.stderr);
    }
    for _ in 0..2 {
        let r = edge.curl("down.example.com", "/", &[]).await;
        assert_eq!(r.status, 502, "{} {}", r.body, r.stderr);
    }
    let access = AccessTcp::start_over(&edge, "echo.example.com", dir.path(), "quic", &[]).await;
    for _ in 0..2 {
        echo_once(access.addr, 100_000).await;
    }

    // The edge, without and with the admin token.
    let (status, _) = get(edge.admin, "/metrics", &[]).await;
    assert_eq!(status, 401, "/metrics needs the admin token");
    let e = eventually(
        "the edge's counters to settle",
        Duration::from_secs(20),
        || async {
            let m = edge_metrics(&edge).await;
            let closed = [
                ("front", "tcp_quic"),
                ("route", "echo.example.com"),
                ("outcome", "closed"),
            ];
            (m.value("warren_edge_sessions_total", &closed) == 2.0).then_some(m)
        },
    )
    .await;
    let http_app = |outcome| {
        [
            ("front", "http"),
            ("route", "app.example.com"),
            ("outcome", outcome),
        ]
    };
    assert_eq!(e.value("warren_edge_sessions_total", &http_app("2xx")), 6.0);
    assert_eq!(
        e.value(
            "warren_edge_sessions_total",
            &[
                ("front", "http"),
                ("route", ""),
                ("outcome", "unknown_host")
            ]
        ),
        3.0
    );
    assert_eq!(
        e.value(
            "warren_edge_sessions_total",
            &[
                ("front", "http"),
                ("route", "down.example.com"),
                ("outcome", "5xx")
            ]
        ),
        2.0
    );
    let bytes = |front, route, direction| {
        e.value(
            "warren_edge_bytes_total",
            &[("front", front), ("route", route), ("direction", direction)],
        )
    };
    assert_eq!(bytes("http", "app.example.com", "to_origin"), 1000.0);
    assert_eq!(
        bytes("http", "app.example.com", "to_client"),
        body_bytes as f64
    );
    assert_eq!(
        bytes("tcp_quic", "echo.example.com", "to_origin"),
        200_000.0
    );
    assert_eq!(
        bytes("tcp_quic", "echo.example.com", "to_client"),
        200_010.0
    );
    assert_eq!(
        e.value("warren_edge_open_sessions", &[("front", "tcp_quic")]),
        0.0
    );
    // Every HTTP session that started has its duration (those for a name
    // no route has never start; `access tcp` asked `whoami` once).
    let started: f64 = e
        .matching("warren_edge_sessions_total", &[("front", "http")])
        .filter(|s| s["labels"]["outcome"] != "unknown_host")
        .map(|s| s["value"].as_f64().unwrap())
        .sum();
    assert_eq!(started, 9.0);
    assert_eq!(
        e.value(
            "warren_edge_session_duration_seconds_count",
            &[("front", "http")]
        ),
        started
    );
    assert_eq!(
        e.value("warren_edge_tunnel_connections", &[("tunnel", "office")]),
        2.0
    );
    assert_eq!(
        e.value(
            "warren_edge_tunnel_registrations_total",
            &[("outcome", "registered")]
        ),
        2.0
    );
    let rtts: Vec<f64> = e
        .matching("warren_edge_tunnel_rtt_seconds", &[("tunnel", "office")])
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    assert_eq!(rtts.len(), 2, "one RTT per connection");
    assert!(rtts.iter().all(|r| *r > 0.0 && *r < 1.0), "{rtts:?}");
    // The two TCP connections each wrote an audit entry.
    assert!(e.value("warren_edge_audit_write_seconds_count", &[]) >= 1.0);
    assert_eq!(e.value("warren_edge_audit_write_failures_total", &[]), 0.0);

    // The connector saw the same streams.
    let c = connector_metrics(addr).await;
    let streams = |kind, outcome| {
        c.value(
            "warren_connector_streams_total",
            &[("kind", kind), ("outcome", outcome)],
        )
    };
    assert_eq!(streams("http", "2xx"), 6.0);
    assert_eq!(streams("http", "origin_unreachable"), 2.0);
    assert_eq!(streams("tcp", "connected"), 2.0);
    assert_eq!(
        c.value(
            "warren_connector_rule_streams_total",
            &[("rule", "1"), ("hostname", "app.example.com")]
        ),
        6.0
    );
    assert_eq!(c.value("warren_connector_open_streams", &[]), 0.0);
    assert_eq!(c.value("warren_connector_connections", &[]), 2.0);
    assert_eq!(
        c.value(
            "warren_connector_registrations_total",
            &[("outcome", "registered")]
        ),
        2.0
    );
    assert_eq!(
        c.matching("warren_connector_connection_rtt_seconds", &[])
            .count(),
        2
    );

    // Draining (SIGTERM with a connection still open): not ready any more,
    // while the connector waits for that connection.
    let mut held = tokio::net::TcpStream::connect(access.addr).await.unwrap();
    held.write_all(b"held").await.unwrap();
    let mut four = [0u8; 4];
    held.read_exact(&mut four).await.unwrap();
    connector.proc.signal("TERM");
    let (status, body) = eventually(
        "/ready to say 503 while draining",
        Duration::from_secs(10),
        || async {
            let (status, body) = ready(addr).await;
            (status == 503).then_some((status, body))
        },
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["draining"], true, "{body}");
    assert!(
        connector.proc.alive(),
        "the connector waits for the held connection"
    );
    drop(held);
    connector.proc.wait_exit().await;
    drop(closed);
}
