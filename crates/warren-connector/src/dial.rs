//! The connector's life: HA connections to the edge, registration,
//! accepting streams, reload and graceful drain.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, watch, Notify};
use warren_proto::control::{ControlMessage, Register};
use warren_proto::token::TunnelToken;
use warren_transport::framed::expect_frame;
use warren_transport::quic::QuicSettings;
use warren_transport::tls::{client_config, Trust};

use crate::ingress::IngressConfig;
use crate::serve::{serve_stream, Runtime};

/// Where the ingress rules come from.
#[derive(Debug, Clone)]
pub enum IngressSource {
    /// A cloudflared-style config file, re-read on [`Signal::Reload`].
    File(PathBuf),
    /// `--url`: one catch-all rule.
    Url(String),
}

/// Everything a connector needs.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub token: TunnelToken,
    /// Edge tunnel addresses; the token's unless overridden.
    pub edges: Vec<String>,
    /// A CA file to trust instead of the token's pin.
    pub ca_cert: Option<PathBuf>,
    pub ha_connections: usize,
    pub grace_period: Duration,
    pub ingress: IngressSource,
    /// How long to wait for a connection to be established and registered.
    pub dial_timeout: Duration,
    /// Longest wait between re-dials.
    pub max_backoff: Duration,
    pub quic: QuicSettings,
}

/// Signals the binary forwards to a running connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Re-read the config file.
    Reload,
    /// Drain and stop.
    Shutdown,
}

/// Why the connector stopped with an error. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("{0}")]
    Config(#[from] crate::ingress::ConfigError),
    #[error("the ingress config cannot be used: {0}")]
    Origin(#[from] crate::origin::OriginError),
    #[error("the edge refused this connector: {0}")]
    Refused(String),
    #[error("{0}")]
    Tls(#[from] warren_transport::tls::TlsError),
    #[error("the token lists no edge address; pass one with --edge HOST:PORT")]
    NoEdge,
    #[error("cannot open a UDP socket for QUIC: {0}")]
    Socket(std::io::Error),
    #[error("cannot set up QUIC: {0}")]
    Quic(String),
}

enum DialError {
    /// Worth retrying.
    Retry(String),
    /// The edge said no for a reason that retrying will not fix.
    Fatal(String),
}

struct Shared {
    cfg: ConnectorConfig,
    connector_id: String,
    endpoint: quinn::Endpoint,
    runtime: watch::Receiver<Arc<Runtime>>,
    draining: AtomicBool,
    inflight: AtomicUsize,
    idle: Notify,
    fatal: mpsc::Sender<String>,
    /// Registered connections right now.
    status: watch::Sender<usize>,
}

fn load_runtime(src: &IngressSource) -> Result<Runtime, ConnectorError> {
    let (ingress, base) = match src {
        IngressSource::File(p) => (
            IngressConfig::load(p)?,
            p.parent().map(PathBuf::from).unwrap_or_default(),
        ),
        IngressSource::Url(u) => (IngressConfig::single(u)?, PathBuf::from(".")),
    };
    Ok(Runtime::new(ingress, &base)?)
}

/// Runs the connector until a [`Signal::Shutdown`] (after draining) or a
/// fatal error.
pub async fn run(
    cfg: ConnectorConfig,
    signals: mpsc::Receiver<Signal>,
) -> Result<(), ConnectorError> {
    run_with_status(cfg, signals, watch::channel(0).0).await
}

/// [`run`], publishing the number of registered edge connections on
/// `status` (readiness for embedders and `/ready`).
pub async fn run_with_status(
    cfg: ConnectorConfig,
    mut signals: mpsc::Receiver<Signal>,
    status: watch::Sender<usize>,
) -> Result<(), ConnectorError> {
    warren_transport::tls::install_provider();
    if cfg.edges.is_empty() {
        return Err(ConnectorError::NoEdge);
    }
    let runtime = load_runtime(&cfg.ingress)?;
    let (rt_tx, rt_rx) = watch::channel(Arc::new(runtime));

    let trust = match &cfg.ca_cert {
        Some(p) => Trust::Roots(Arc::new(warren_transport::tls::roots_from_file(p)?)),
        None => Trust::Pinned(cfg.token.ca_pin.clone()),
    };
    let tls = client_config(&trust, &[warren_proto::ALPN])?;
    let quic_tls = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| ConnectorError::Quic(e.to_string()))?;
    let mut client_cfg = quinn::ClientConfig::new(Arc::new(quic_tls));
    client_cfg.transport_config(cfg.quic.transport());
    let mut endpoint = quinn::Endpoint::client("0.0.0.0:0".parse().expect("literal address"))
        .map_err(ConnectorError::Socket)?;
    endpoint.set_default_client_config(client_cfg);

    let (fatal_tx, mut fatal_rx) = mpsc::channel(1);
    let shared = Arc::new(Shared {
        connector_id: uuid::Uuid::new_v4().to_string(),
        cfg: cfg.clone(),
        endpoint: endpoint.clone(),
        runtime: rt_rx,
        draining: AtomicBool::new(false),
        inflight: AtomicUsize::new(0),
        idle: Notify::new(),
        fatal: fatal_tx,
        status,
    });
    tracing::info!(connector_id = %shared.connector_id, tunnel_id = %cfg.token.tunnel_id, edges = ?cfg.edges, connections = cfg.ha_connections, "starting connector");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = Vec::new();
    for idx in 0..cfg.ha_connections.max(1) {
        conns.push(tokio::spawn(connection_loop(
            idx,
            shared.clone(),
            stop_rx.clone(),
        )));
    }

    let outcome = loop {
        tokio::select! {
            sig = signals.recv() => match sig {
                Some(Signal::Reload) => match &cfg.ingress {
                    IngressSource::File(p) => match load_runtime(&cfg.ingress) {
                        Ok(rt) => {
                            let _ = rt_tx.send(Arc::new(rt));
                            tracing::info!(path = %p.display(), "reloaded the ingress config");
                        }
                        Err(e) => tracing::error!(path = %p.display(), "the new config was rejected, keeping the previous one: {e}"),
                    },
                    IngressSource::Url(_) => tracing::info!("nothing to reload: the ingress comes from --url"),
                },
                Some(Signal::Shutdown) | None => break Ok(()),
            },
            Some(msg) = fatal_rx.recv() => break Err(ConnectorError::Refused(msg)),
        }
    };

    // Drain: no new streams, tell the edge, wait for in-flight ones.
    shared.draining.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    if outcome.is_ok() {
        let n = shared.inflight.load(Ordering::SeqCst);
        tracing::info!(in_flight = n, grace_period = ?cfg.grace_period, "draining");
        let wait_idle = async {
            while shared.inflight.load(Ordering::SeqCst) > 0 {
                let notified = shared.idle.notified();
                if shared.inflight.load(Ordering::SeqCst) == 0 {
                    break;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(cfg.grace_period, wait_idle)
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = shared.inflight.load(Ordering::SeqCst),
                "grace period over; closing with streams still open"
            );
        }
    }
    for c in conns {
        c.abort();
    }
    endpoint.close(quinn::VarInt::from_u32(0), b"connector stopped");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    outcome
}

/// How long a finished stream waits for the edge to acknowledge its data
/// before it stops counting as in flight.
const DELIVERY_WAIT: Duration = Duration::from_secs(5);

/// Counts a stream as in flight until dropped.
struct Inflight(Arc<Shared>);

impl Inflight {
    fn new(s: &Arc<Shared>) -> Self {
        s.inflight.fetch_add(1, Ordering::SeqCst);
        Inflight(s.clone())
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Exponential backoff with full jitter.
struct Backoff {
    attempt: u32,
    max: Duration,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let base = Duration::from_millis(500).saturating_mul(1 << self.attempt.min(10));
        self.attempt += 1;
        let cap = base.min(self.max);
        let ms = cap.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms.max(1)))
    }
}

async fn connection_loop(idx: usize, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let edges = &shared.cfg.edges;
    let mut backoff = Backoff {
        attempt: 0,
        max: shared.cfg.max_backoff,
    };
    let mut edge_idx = idx % edges.len();
    loop {
        if *stop.borrow() {
            return;
        }
        let edge = &edges[edge_idx];
        match connect(&shared, idx, edge).await {
            Ok((conn, control)) => {
                backoff.attempt = 0;
                shared.status.send_modify(|n| *n += 1);
                serve_connection(&shared, idx, edge, conn, control, &mut stop).await;
                shared.status.send_modify(|n| *n = n.saturating_sub(1));
                if *stop.borrow() {
                    return;
                }
            }
            Err(DialError::Fatal(msg)) => {
                let _ = shared.fatal.try_send(msg);
                return;
            }
            Err(DialError::Retry(msg)) => {
                edge_idx = (edge_idx + 1) % edges.len();
                let wait = backoff.next();
                tracing::warn!(conn_index = idx, %edge, retry_in = ?wait, "cannot connect to the edge: {msg}");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

async fn connect(
    shared: &Shared,
    idx: usize,
    edge: &str,
) -> Result<(quinn::Connection, quinn::SendStream), DialError> {
    let addr = tokio::net::lookup_host(edge)
        .await
        .map_err(|e| DialError::Retry(format!("cannot resolve {edge}: {e}")))?
        .next()
        .ok_or_else(|| DialError::Retry(format!("{edge} resolves to no address")))?;
    let attempt = async {
        let conn = shared
            .endpoint
            .connect(addr, warren_proto::EDGE_SERVER_NAME)
            .map_err(|e| DialError::Retry(e.to_string()))?
            .await
            .map_err(|e| DialError::Retry(e.to_string()))?;
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| DialError::Retry(e.to_string()))?;
        let reg = ControlMessage::Register(Register {
            versions: warren_proto::SUPPORTED_VERSIONS.to_vec(),
            tunnel_id: shared.cfg.token.tunnel_id.clone(),
            secret: shared.cfg.token.secret,
            connector_id: shared.connector_id.clone(),
            connector_version: env!("CARGO_PKG_VERSION").to_owned(),
            conn_index: idx as u8,
            ha_connections: shared.cfg.ha_connections.clamp(1, u8::MAX as usize) as u8,
            host: hostname(),
        });
        send.write_all(&reg.encode())
            .await
            .map_err(|e| DialError::Retry(e.to_string()))?;
        let frame = expect_frame(&mut recv)
            .await
            .map_err(|e| DialError::Retry(format!("registration: {e}")))?;
        match ControlMessage::decode(&frame.payload) {
            Ok(ControlMessage::Registered(r)) => {
                tracing::info!(conn_index = idx, %edge, tunnel = %r.tunnel_name, connection_id = %r.connection_id, protocol = r.version, "registered tunnel connection");
                Ok((conn, send))
            }
            Ok(ControlMessage::Refused(r)) => {
                conn.close(quinn::VarInt::from_u32(0), b"refused");
                if r.code.is_retryable() {
                    Err(DialError::Retry(r.message))
                } else {
                    Err(DialError::Fatal(r.message))
                }
            }
            Ok(other) => Err(DialError::Retry(format!(
                "unexpected answer to registration: {other:?}"
            ))),
            Err(e) => Err(DialError::Retry(format!(
                "malformed answer to registration: {e}"
            ))),
        }
    };
    tokio::time::timeout(shared.cfg.dial_timeout, attempt)
        .await
        .map_err(|_| {
            DialError::Retry(format!(
                "no registration within {:?}",
                shared.cfg.dial_timeout
            ))
        })?
}

async fn serve_connection(
    shared: &Arc<Shared>,
    idx: usize,
    edge: &str,
    conn: quinn::Connection,
    mut control: quinn::SendStream,
    stop: &mut watch::Receiver<bool>,
) {
    let mut drain_sent = false;
    loop {
        tokio::select! {
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    if shared.draining.load(Ordering::SeqCst) {
                        let mut send = send;
                        let refuse = warren_proto::stream::StreamResponse::Error {
                            code: warren_proto::stream::ErrorCode::ShuttingDown,
                            message: "the connector is shutting down".into(),
                        };
                        let guard = Inflight::new(shared);
                        let delivered = send.stopped();
                        tokio::spawn(async move {
                            let _guard = guard;
                            let _ = send.write_all(&refuse.encode()).await;
                            let _ = send.finish();
                            drop(send);
                            let _ = tokio::time::timeout(DELIVERY_WAIT, delivered).await;
                        });
                        continue;
                    }
                    let rt = shared.runtime.borrow().clone();
                    let guard = Inflight::new(shared);
                    // A stream stays in flight until the edge has
                    // acknowledged its last byte: closing the connection
                    // at the end of a drain before that would discard the
                    // tail of a response that was already written.
                    let delivered = send.stopped();
                    let conn = conn.clone();
                    tokio::spawn(async move {
                        let _guard = guard;
                        serve_stream(rt, conn, send, recv).await;
                        let _ = tokio::time::timeout(DELIVERY_WAIT, delivered).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(conn_index = idx, %edge, reason = %e, "tunnel connection lost; re-dialling");
                    return;
                }
            },
            _ = stop.changed(), if !drain_sent => {
                // Tell the edge to stop sending streams here. Keep
                // accepting (streams already on their way are answered
                // ShuttingDown, so the edge retries them elsewhere) until
                // the caller closes the connection after the grace period.
                let _ = control.write_all(&ControlMessage::Drain.encode()).await;
                drain_sent = true;
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff {
            attempt: 0,
            max: Duration::from_secs(10),
        };
        let first = b.next();
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
        for _ in 0..20 {
            assert!(b.next() <= Duration::from_secs(10));
        }
        let late = b.next();
        assert!(late >= Duration::from_secs(5));
    }
}
