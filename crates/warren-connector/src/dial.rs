//! The connector's life: HA connections to the edge, registration,
//! accepting streams, reload and graceful drain.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, watch};
use warren_proto::close::CloseCode;
use warren_proto::control::Register;
use warren_proto::session::{
    shutting_down_response, Admission, ConnectorEvent, ConnectorSession, ConnectorSessionConfig,
    RegisterError, StreamId, Transmit,
};
use warren_proto::token::TunnelToken;
use warren_transport::clock::{now, sleep_until};
use warren_transport::quic::{QuicDialer, QuicSettings};
use warren_transport::tls::{client_config, Trust};
use warren_transport::{ConnectionError, RecvStream, SendStream, TunnelConnection};

use crate::ingress::IngressConfig;
use crate::metrics::ConnectorMetrics;
use crate::serve::config::ConfigSlot;
use crate::serve::{serve_stream, Runtime};

/// Where the ingress rules come from.
#[derive(Debug, Clone)]
pub enum IngressSource {
    /// A cloudflared-style config file, re-read on [`Signal::Reload`].
    File(PathBuf),
    /// `--url`: one catch-all rule.
    Url(String),
    /// Neither: the tunnel's config stored at the edge, pushed to the
    /// connector after it registers and on every change.
    Remote,
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
    /// How long in-flight streams may run after a shutdown signal; `None`:
    /// the config file's `grace-period:`, else [`DEFAULT_GRACE_PERIOD`].
    pub grace_period: Option<Duration>,
    pub ingress: IngressSource,
    /// The largest config file read, at start and on every reload
    /// ([`crate::ingress::DEFAULT_MAX_CONFIG_BYTES`] by default).
    pub max_config_bytes: u64,
    /// How long to wait for a connection to be established and registered.
    pub dial_timeout: Duration,
    /// Longest wait between re-dials.
    pub max_backoff: Duration,
    pub quic: QuicSettings,
    /// Where to serve `/metrics` and `/ready` (`--metrics`; `None`: not
    /// at all).
    pub metrics: Option<std::net::SocketAddr>,
}

/// The grace period when neither the flag nor the config file sets one.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);

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
    Quic(#[from] warren_transport::quic::SetupError),
    #[error("cannot listen for metrics on {addr}: {source}; pick another --metrics address, or a port that is free")]
    MetricsListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Why one dial of the edge did not end in a registered connection.
#[derive(Debug, thiserror::Error)]
enum DialError {
    /// The edge address does not resolve.
    #[error("cannot resolve {edge}: {reason}")]
    Resolve { edge: String, reason: String },
    /// QUIC could not connect.
    #[error(transparent)]
    Transport(#[from] warren_transport::quic::DialError),
    /// The connection ended before or while registering.
    #[error("the connection ended while registering: {0}")]
    Lost(#[from] warren_transport::ConnectionError),
    /// The edge refused, did not answer, or broke the protocol.
    #[error(transparent)]
    Register(#[from] RegisterError),
}

impl DialError {
    /// Its label in metrics.
    fn label(&self) -> &'static str {
        match self {
            DialError::Resolve { .. } => "resolve_failed",
            DialError::Transport(_) => "transport_error",
            DialError::Lost(_) => "connection_lost",
            DialError::Register(RegisterError::Refused { code, .. }) => code.as_str(),
            DialError::Register(RegisterError::Timeout(_)) => "timeout",
            DialError::Register(RegisterError::Violation(_)) => "protocol_violation",
        }
    }

    /// Whether dialling again may help (everything but a refusal the
    /// operator must act on).
    fn is_retryable(&self) -> bool {
        match self {
            DialError::Register(e) => e.is_retryable(),
            _ => true,
        }
    }
}

struct Shared {
    cfg: ConnectorConfig,
    connector_id: String,
    endpoint: QuicDialer,
    runtime: watch::Receiver<Arc<Runtime>>,
    /// Applies the edge's config pushes (or says they are ignored).
    config: Arc<ConfigSlot>,
    /// The grace period in force (see [`ConnectorConfig::grace_period`]).
    grace_period: Duration,
    fatal: mpsc::Sender<String>,
    /// Registered connections right now.
    status: watch::Sender<usize>,
    metrics: Arc<ConnectorMetrics>,
}

fn load_runtime(
    src: &IngressSource,
    max_config_bytes: u64,
    metrics: Arc<ConnectorMetrics>,
) -> Result<Runtime, ConnectorError> {
    let (ingress, base) = match src {
        IngressSource::File(p) => (
            IngressConfig::load(p, max_config_bytes)?,
            p.parent().map(PathBuf::from).unwrap_or_default(),
        ),
        IngressSource::Url(u) => (IngressConfig::single(u)?, PathBuf::from(".")),
        IngressSource::Remote => return Ok(Runtime::awaiting_remote(metrics)),
    };
    Ok(Runtime::new(ingress, &base, metrics)?)
}

/// Loads the ingress and sets up every rule's origins exactly as [`run`]
/// does (CA files read, TLS configured, pools built), without dialling
/// the edge: what `warren tunnel ingress validate` checks, so it says OK
/// only to a config `run` accepts. Returns the number of rules.
pub fn check_ingress(src: &IngressSource, max_config_bytes: u64) -> Result<usize, ConnectorError> {
    Ok(load_runtime(src, max_config_bytes, Default::default())?
        .ingress
        .rules
        .len())
}

/// The UDP socket a connector dials from when the caller has none: any
/// port, all addresses.
pub fn bind_socket() -> Result<std::net::UdpSocket, ConnectorError> {
    std::net::UdpSocket::bind(("0.0.0.0", 0)).map_err(ConnectorError::Socket)
}

/// Runs the connector, dialling from `socket`, until a
/// [`Signal::Shutdown`] (after draining) or a fatal error.
pub async fn run(
    cfg: ConnectorConfig,
    socket: std::net::UdpSocket,
    signals: mpsc::Receiver<Signal>,
) -> Result<(), ConnectorError> {
    run_with_status(cfg, socket, signals, watch::channel(0).0).await
}

/// [`run`], publishing the number of registered edge connections on
/// `status` (readiness for embedders and `/ready`).
pub async fn run_with_status(
    cfg: ConnectorConfig,
    socket: std::net::UdpSocket,
    mut signals: mpsc::Receiver<Signal>,
    status: watch::Sender<usize>,
) -> Result<(), ConnectorError> {
    warren_transport::tls::install_provider();
    if cfg.edges.is_empty() {
        return Err(ConnectorError::NoEdge);
    }
    let metrics = Arc::new(ConnectorMetrics::default());
    let runtime = load_runtime(&cfg.ingress, cfg.max_config_bytes, metrics.clone())?;
    let connector_id = uuid::Uuid::new_v4().to_string();
    let grace_period = cfg
        .grace_period
        .or(runtime.ingress.grace_period)
        .unwrap_or(DEFAULT_GRACE_PERIOD);
    let metrics_addr = match (cfg.metrics, runtime.ingress.metrics) {
        (Some(flag), Some(file)) if flag != file => {
            tracing::warn!(%flag, %file, "--metrics is given, so the config file's `metrics:` is not used");
            Some(flag)
        }
        (flag, file) => flag.or(file),
    };
    let metrics_task = match metrics_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ConnectorError::MetricsListen { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| ConnectorError::MetricsListen { addr, source })?;
            tracing::info!(addr = %bound, "serving /metrics and /ready");
            Some(AbortOnDrop(tokio::spawn(crate::metrics::serve(
                listener,
                metrics.clone(),
                connector_id.clone(),
            ))))
        }
        None => None,
    };
    let (rt_tx, rt_rx) = watch::channel(Arc::new(runtime));
    let rt_tx = Arc::new(rt_tx);
    let config = Arc::new(ConfigSlot::new(
        rt_tx.clone(),
        matches!(cfg.ingress, IngressSource::Remote),
        cfg.max_config_bytes,
        metrics.clone(),
    ));

    let trust = match &cfg.ca_cert {
        Some(p) => Trust::Roots(Arc::new(warren_transport::tls::roots_from_file(p)?)),
        None => Trust::Pinned(cfg.token.ca_pin.clone()),
    };
    let tls = client_config(&trust, &[warren_proto::ALPN])?;
    let endpoint = QuicDialer::new(socket, tls, &cfg.quic)?;

    let (fatal_tx, mut fatal_rx) = mpsc::channel(1);
    let shared = Arc::new(Shared {
        connector_id,
        cfg: cfg.clone(),
        endpoint: endpoint.clone(),
        runtime: rt_rx,
        config,
        grace_period,
        fatal: fatal_tx,
        status,
        metrics: metrics.clone(),
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
                    IngressSource::File(p) => match load_runtime(&cfg.ingress, cfg.max_config_bytes, metrics.clone()) {
                        Ok(rt) => {
                            let _ = rt_tx.send(Arc::new(rt));
                            metrics.reload(true);
                            tracing::info!(path = %p.display(), "reloaded the ingress config");
                        }
                        Err(e) => {
                            metrics.reload(false);
                            tracing::error!(path = %p.display(), "the new config was rejected, keeping the previous one: {e}");
                        }
                    },
                    IngressSource::Url(_) => tracing::info!("nothing to reload: the ingress comes from --url"),
                    IngressSource::Remote => tracing::info!("nothing to reload: the ingress is the config stored at the edge, which pushes every change"),
                },
                Some(Signal::Shutdown) | None => break Ok(()),
            },
            Some(msg) = fatal_rx.recv() => break Err(ConnectorError::Refused(msg)),
        }
    };

    // Drain: each connection tells the edge, takes no new stream, lets
    // its in-flight ones finish (or the grace period end) and closes.
    let _ = stop_tx.send(true);
    metrics.set_draining();
    if outcome.is_ok() {
        tracing::info!(?grace_period, "draining");
    }
    let drained = async {
        for c in &mut conns {
            let _ = c.await;
        }
    };
    if tokio::time::timeout(grace_period + DELIVERY_WAIT, drained)
        .await
        .is_err()
    {
        tracing::warn!("connections did not close after the grace period; closing them now");
    }
    for c in conns {
        c.abort();
    }
    endpoint.close(CloseCode::ConnectorStopped, b"connector stopped");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    drop(metrics_task);
    outcome
}

/// A task aborted when this drops (the metrics listener: it ends with the
/// connector, whichever way `run` returns).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long a finished stream waits for the edge to acknowledge its data
/// before it stops counting as in flight.
const DELIVERY_WAIT: Duration = Duration::from_secs(5);

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
        let dialled = tokio::select! {
            d = connect(&shared, idx, edge) => d,
            _ = stop.changed() => return,
        };
        match dialled {
            Ok(link) => {
                backoff.attempt = 0;
                shared.metrics.registration("registered");
                shared.metrics.connected(idx, link.conn.clone());
                shared.status.send_modify(|n| *n += 1);
                let ended = serve_connection(&shared, idx, edge, link, &mut stop).await;
                shared.status.send_modify(|n| *n = n.saturating_sub(1));
                shared.metrics.disconnected(idx);
                // The path to this address just died silently: the next
                // dial goes to another one, where one is configured.
                if ended == Ended::DeadPath {
                    edge_idx = (edge_idx + 1) % edges.len();
                }
                if *stop.borrow() {
                    return;
                }
                // Re-dial with backoff and jitter, like any failed dial, so
                // an edge that restarts is not hit by every connection of
                // every connector at once.
                let wait = backoff.next();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
            }
            Err(e) if !e.is_retryable() => {
                shared.metrics.registration(e.label());
                let _ = shared.fatal.try_send(e.to_string());
                return;
            }
            Err(e) => {
                shared.metrics.registration(e.label());
                edge_idx = (edge_idx + 1) % edges.len();
                let wait = backoff.next();
                tracing::warn!(conn_index = idx, %edge, retry_in = ?wait, "cannot connect to the edge: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

/// A registered connection: the transport connection, its control stream
/// and the session that speaks on it.
struct Link {
    conn: TunnelConnection,
    send: SendStream,
    recv: RecvStream,
    session: ConnectorSession,
}

/// Writes what the session has to send; false if the stream broke.
async fn flush(session: &mut ConnectorSession, send: &mut SendStream) -> bool {
    while let Some(t) = session.poll_transmit(now()) {
        let ok = match t {
            Transmit::Frame(frame) => send.write_all(&frame).await.is_ok(),
            Transmit::Finish => send.finish().is_ok(),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Dials `edge` and registers; the registration deadline covers the whole
/// dial.
async fn connect(shared: &Shared, idx: usize, edge: &str) -> Result<Link, DialError> {
    let started = now();
    let config = ConnectorSessionConfig {
        register_timeout: shared.cfg.dial_timeout,
        liveness: shared.cfg.quic.liveness(),
    };
    let register = Register {
        versions: warren_proto::SUPPORTED_VERSIONS.to_vec(),
        tunnel_id: shared.cfg.token.tunnel_id.clone(),
        secret: shared.cfg.token.secret,
        connector_id: shared.connector_id.clone(),
        connector_version: env!("CARGO_PKG_VERSION").to_owned(),
        conn_index: idx as u8,
        ha_connections: shared.cfg.ha_connections.clamp(1, u8::MAX as usize) as u8,
        host: hostname(),
    };
    let mut session = ConnectorSession::new(config, register, started);
    let dial = async {
        let addr = tokio::net::lookup_host(edge)
            .await
            .map_err(|e| DialError::Resolve {
                edge: edge.to_owned(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| DialError::Resolve {
                edge: edge.to_owned(),
                reason: "it has no address".into(),
            })?;
        let conn = shared
            .endpoint
            .connect(addr, warren_proto::EDGE_SERVER_NAME)
            .await?;
        let (send, recv) = conn.open_stream().await?;
        Ok::<_, DialError>((conn, send, recv))
    };
    let (conn, mut send, mut recv) = tokio::select! {
        d = dial => d?,
        () = sleep_until(session.poll_timeout()) => {
            return Err(RegisterError::Timeout(shared.cfg.dial_timeout).into());
        }
    };
    loop {
        if !flush(&mut session, &mut send).await {
            session.handle_connection_lost(now());
        }
        while let Some(event) = session.poll_event() {
            match event {
                ConnectorEvent::Registered(r) => {
                    tracing::info!(conn_index = idx, %edge, tunnel = %r.tunnel_name, connection_id = %r.connection_id, protocol = r.version, "registered tunnel connection");
                    return Ok(Link {
                        conn,
                        send,
                        recv,
                        session,
                    });
                }
                ConnectorEvent::Failed(e) => {
                    // The session's Close follows; close now.
                    conn.close(CloseCode::ConnectorStopped, b"registration failed");
                    return Err(e.into());
                }
                ConnectorEvent::Close(code) => {
                    conn.close(code, code.description().as_bytes());
                    return Err(conn.close_reason().map_or(
                        DialError::Register(RegisterError::Timeout(shared.cfg.dial_timeout)),
                        DialError::Lost,
                    ));
                }
                other => tracing::debug!(?other, "while registering"),
            }
        }
        tokio::select! {
            chunk = recv.read_chunk(warren_transport::copy::CHUNK) => match chunk {
                Ok(Some(bytes)) => session.handle_data(now(), &bytes),
                Ok(None) | Err(_) => session.handle_finished(now()),
            },
            () = sleep_until(session.poll_timeout()) => session.handle_timeout(now()),
            reason = conn.closed() => return Err(DialError::Lost(reason)),
        }
    }
}

/// How a served connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Nothing came from the edge within the idle timeout.
    DeadPath,
    /// It was closed (by either side, or after a drain).
    Closed,
}

/// Serves a registered connection until it ends or, after `stop`, has
/// drained.
async fn serve_connection(
    shared: &Arc<Shared>,
    idx: usize,
    edge: &str,
    link: Link,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let Link {
        conn,
        mut send,
        mut recv,
        mut session,
    } = link;
    // Streams report here once their answer has been delivered.
    let (done_tx, mut done_rx) = mpsc::channel::<StreamId>(256);
    let mut control_open = true;
    let mut stopping = *stop.borrow();
    if stopping {
        session.drain(now(), shared.grace_period);
    }
    loop {
        if !flush(&mut session, &mut send).await {
            session.handle_connection_lost(now());
        }
        while let Some(event) = session.poll_event() {
            match event {
                ConnectorEvent::Drained { open_streams: 0 } => {}
                ConnectorEvent::Drained { open_streams } => {
                    tracing::warn!(
                        conn_index = idx,
                        in_flight = open_streams,
                        "grace period over; closing with streams still open"
                    );
                }
                ConnectorEvent::Close(code) => {
                    conn.close(code, code.description().as_bytes());
                    if code == CloseCode::PeerDead {
                        tracing::warn!(conn_index = idx, %edge, "tunnel connection lost: nothing from the edge within the idle timeout; re-dialling");
                        return Ended::DeadPath;
                    }
                    return Ended::Closed;
                }
                ConnectorEvent::Violation(v) => {
                    tracing::warn!(conn_index = idx, %edge, "the edge broke the control protocol: {v}")
                }
                other => tracing::debug!(conn_index = idx, ?other, "control stream"),
            }
        }
        if session.is_closed() {
            return Ended::Closed;
        }
        tokio::select! {
            accepted = conn.accept_stream() => match accepted {
                Ok((send, recv)) => {
                    let admission = session.accept_stream(now());
                    let delivered = send.stopped();
                    let done = done_tx.clone();
                    match admission {
                        Admission::ShuttingDown(id) => {
                            tokio::spawn(async move {
                                let mut send = send;
                                let _ = send.write_all(&shutting_down_response().encode()).await;
                                let _ = send.finish();
                                drop(send);
                                let _ = tokio::time::timeout(DELIVERY_WAIT, delivered).await;
                                let _ = done.send(id).await;
                            });
                        }
                        Admission::Serve(id) => {
                            let rt = shared.runtime.borrow().clone();
                            let slot = shared.config.clone();
                            let conn = conn.clone();
                            // A stream stays in flight until the edge has
                            // acknowledged its last byte: closing the
                            // connection at the end of a drain before that
                            // would discard the tail of a response that was
                            // already written.
                            tokio::spawn(async move {
                                serve_stream(rt, slot, conn, send, recv).await;
                                let _ = tokio::time::timeout(DELIVERY_WAIT, delivered).await;
                                let _ = done.send(id).await;
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(conn_index = idx, %edge, reason = %e, "tunnel connection lost; re-dialling");
                    session.handle_connection_lost(now());
                    return if e == ConnectionError::TimedOut {
                        Ended::DeadPath
                    } else {
                        Ended::Closed
                    };
                }
            },
            Some(id) = done_rx.recv() => {
                session.stream_done(now(), id);
            }
            chunk = recv.read_chunk(warren_transport::copy::CHUNK), if control_open => match chunk {
                Ok(Some(bytes)) => session.handle_data(now(), &bytes),
                Ok(None) | Err(_) => {
                    control_open = false;
                    session.handle_finished(now());
                }
            },
            () = sleep_until(session.poll_timeout()) => session.handle_timeout(now()),
            _ = stop.changed(), if !stopping => {
                // Tell the edge to stop sending streams here. Streams
                // already on their way are answered ShuttingDown, so the
                // edge retries them elsewhere.
                stopping = true;
                session.drain(now(), shared.grace_period);
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
