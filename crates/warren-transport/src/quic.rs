//! QUIC, the first transport behind [`TunnelConnection`]: the edge's
//! listener, the connector's dialer, and the timers both ends share.
//!
//! Both take an already-bound UDP socket, so a caller (or a test) can bind
//! port 0 and learn the port before anything runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};

use warren_proto::close::CloseCode;

use crate::conn::{ConnectionError, TunnelConnection};

/// Timers and limits of a tunnel connection.
#[derive(Debug, Clone)]
pub struct QuicSettings {
    /// A connection with no packets for this long is dead.
    pub idle_timeout: Duration,
    /// PING interval that keeps an idle but live connection alive. A
    /// silently dead path is noticed within `idle_timeout + keep_alive`:
    /// sending a PING restarts the idle timer (RFC 9000 §10.1), so the
    /// timer may start up to one interval after the last packet arrived.
    pub keep_alive: Duration,
    /// QUIC PING interval on a connection that has sent nothing else: the
    /// peer's acknowledgements of these are what lets the edge notice a
    /// dead peer within `unanswered` plus this, long before `idle_timeout`.
    pub probe_every: Duration,
    /// The edge closes a connection whose peer has left ack-eliciting
    /// packets unanswered this long (or four round trips, if longer; see
    /// `warren_proto::answered`), so new streams go elsewhere and caught
    /// ones are retried.
    pub unanswered: Duration,
    /// Streams the peer may have open at once.
    pub max_streams: u32,
    /// Per-stream receive window, in bytes.
    pub stream_window: u32,
    /// Per-connection receive window, in bytes.
    pub conn_window: u32,
    /// Largest UDP payload this end accepts and that path MTU discovery
    /// searches up to (RFC 8899; quinn starts at 1200 bytes and probes
    /// upward, so a path that carries less costs a few lost probes, never
    /// a broken connection). Larger packets mean fewer packets, syscalls
    /// and acknowledgements per byte where the path allows them (loopback,
    /// jumbo frames); the cost is a receive buffer per endpoint that grows
    /// with it.
    pub max_udp_payload: u16,
}

/// See [`QuicSettings::max_udp_payload`]: the largest payload that still
/// lets quinn send its batches of up to 10 packets as one segmentation
/// offload (GSO) send, which carries at most 64 KiB.
pub const DEFAULT_MAX_UDP_PAYLOAD: u16 = GSO_MAX_PAYLOAD;

/// Above this payload, 10 segments pass the 64 KiB one UDP send carries
/// and the kernel refuses the batch (EMSGSIZE, which quinn takes for a lost
/// probe), so segmentation offload is turned off: each packet is then its
/// own send, of up to `max_udp_payload` bytes.
pub const GSO_MAX_PAYLOAD: u16 = 6_500;

impl Default for QuicSettings {
    fn default() -> Self {
        Self {
            // 7 s + 2 s: a dead path is noticed by both ends within 9 s.
            idle_timeout: Duration::from_secs(7),
            keep_alive: Duration::from_secs(2),
            probe_every: Duration::from_millis(300),
            unanswered: Duration::from_millis(1500),
            max_streams: 4096,
            stream_window: 4 * 1024 * 1024,
            conn_window: 32 * 1024 * 1024,
            max_udp_payload: DEFAULT_MAX_UDP_PAYLOAD,
        }
    }
}

impl QuicSettings {
    /// The settings of an access client's connection to the edge
    /// (`warren access tcp` over QUIC) with `self`'s packet size and
    /// windows: it stays up while idle, with a PING every 10 s, and is
    /// given up after 30 s without an answer (a laptop that sleeps, a
    /// network that changes); up to 16384 streams at once (a stream
    /// per local connection; the edge's memory per stream is a few KB).
    pub fn access(&self) -> QuicSettings {
        QuicSettings {
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(10),
            probe_every: Duration::from_secs(10),
            max_streams: 16_384,
            ..self.clone()
        }
    }

    /// The same timers for the control stream's own keep-alive
    /// (`warren_proto::liveness`), so both rules agree.
    pub fn liveness(&self) -> warren_proto::liveness::LivenessConfig {
        warren_proto::liveness::LivenessConfig {
            keep_alive: self.keep_alive,
            idle_timeout: self.idle_timeout,
        }
    }

    /// The rule the edge applies to its connections' answers.
    pub fn answered(&self) -> warren_proto::answered::AnsweredConfig {
        warren_proto::answered::AnsweredConfig {
            min_wait: self.unanswered,
            ..Default::default()
        }
    }

    /// The quinn transport config for these settings.
    fn transport(&self) -> Arc<TransportConfig> {
        let mut t = TransportConfig::default();
        t.max_idle_timeout(Some(
            IdleTimeout::try_from(self.idle_timeout)
                .unwrap_or(IdleTimeout::from(VarInt::from_u32(7_000))),
        ));
        t.keep_alive_interval(Some(self.probe_every.min(self.keep_alive)));
        t.max_concurrent_bidi_streams(VarInt::from_u32(self.max_streams));
        t.max_concurrent_uni_streams(VarInt::from_u32(16));
        t.stream_receive_window(VarInt::from_u32(self.stream_window));
        t.receive_window(VarInt::from_u32(self.conn_window));
        t.send_window(u64::from(self.conn_window));
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(self.max_udp_payload);
        t.mtu_discovery_config(Some(mtu));
        t.enable_segmentation_offload(self.max_udp_payload <= GSO_MAX_PAYLOAD);
        Arc::new(t)
    }

    /// The quinn endpoint config for these settings.
    fn endpoint(&self) -> Result<quinn::EndpointConfig, SetupError> {
        let mut e = quinn::EndpointConfig::default();
        e.max_udp_payload_size(self.max_udp_payload).map_err(|_| {
            SetupError::Socket(std::io::Error::other(format!(
                "a maximum UDP payload of {} bytes is out of range (1200-65527)",
                self.max_udp_payload
            )))
        })?;
        Ok(e)
    }
}

/// Why a QUIC endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The TLS configuration cannot drive QUIC (it must allow TLS 1.3).
    #[error("the TLS configuration cannot be used for QUIC: {0}")]
    Tls(String),
    /// The UDP socket could not be used.
    #[error("the UDP socket cannot be used for QUIC: {0}")]
    Socket(#[from] std::io::Error),
}

/// Why dialling a QUIC tunnel connection failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The connection could not even be started (bad address or name).
    #[error("cannot start a QUIC connection to {addr}: {reason}")]
    Start {
        /// Where it was going.
        addr: SocketAddr,
        /// quinn's reason.
        reason: String,
    },
    /// The handshake failed or the connection ended during it.
    #[error("the QUIC handshake with {addr} failed: {source}")]
    Handshake {
        /// Where it was going.
        addr: SocketAddr,
        /// Why.
        source: ConnectionError,
    },
}

fn endpoint(
    socket: std::net::UdpSocket,
    server: Option<quinn::ServerConfig>,
    settings: &QuicSettings,
) -> Result<quinn::Endpoint, SetupError> {
    let runtime = quinn::default_runtime()
        .ok_or_else(|| SetupError::Socket(std::io::Error::other("no async runtime for QUIC")))?;
    Ok(quinn::Endpoint::new(
        settings.endpoint()?,
        server,
        socket,
        runtime,
    )?)
}

/// The edge's QUIC tunnel listener.
pub struct QuicListener {
    endpoint: quinn::Endpoint,
}

impl QuicListener {
    /// Listens on `socket` with `tls` (TLS 1.3, ALPN already set).
    pub fn new(
        socket: std::net::UdpSocket,
        tls: rustls::ServerConfig,
        settings: &QuicSettings,
    ) -> Result<Self, SetupError> {
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| SetupError::Tls(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(settings.transport());
        Ok(QuicListener {
            endpoint: endpoint(socket, Some(server), settings)?,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The next connection attempt; `None` once the listener is closed.
    /// Cancel-safe.
    pub async fn accept(&self) -> Option<Incoming> {
        self.endpoint.accept().await.map(Incoming)
    }

    /// Closes every connection with `code` and stops accepting.
    pub fn close(&self, code: CloseCode, reason: &[u8]) {
        self.endpoint.close(VarInt::from_u32(code.to_u32()), reason);
    }

    /// Waits until the close frames of every connection have left.
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await;
    }
}

/// A connection attempt at the listener.
pub struct Incoming(quinn::Incoming);

impl Incoming {
    /// Where it comes from.
    pub fn remote_address(&self) -> SocketAddr {
        self.0.remote_address()
    }

    /// Completes the handshake. Not cancel-safe: dropping it abandons the
    /// attempt.
    pub async fn establish(self) -> Result<TunnelConnection, ConnectionError> {
        let conn = self.0.await?;
        Ok(TunnelConnection::from_quic(conn))
    }
}

/// The connector's QUIC dialer: one UDP socket for all its connections.
#[derive(Clone)]
pub struct QuicDialer {
    endpoint: quinn::Endpoint,
}

impl QuicDialer {
    /// Dials from `socket` with `tls` (ALPN already set).
    pub fn new(
        socket: std::net::UdpSocket,
        tls: rustls::ClientConfig,
        settings: &QuicSettings,
    ) -> Result<Self, SetupError> {
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| SetupError::Tls(e.to_string()))?;
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(settings.transport());
        let mut endpoint = endpoint(socket, None, settings)?;
        endpoint.set_default_client_config(client);
        Ok(QuicDialer { endpoint })
    }

    /// Connects to `addr`, expecting a certificate for `server_name`. Not
    /// cancel-safe: dropping it abandons the attempt.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<TunnelConnection, DialError> {
        let connecting =
            self.endpoint
                .connect(addr, server_name)
                .map_err(|e| DialError::Start {
                    addr,
                    reason: e.to_string(),
                })?;
        let conn = connecting.await.map_err(|e| DialError::Handshake {
            addr,
            source: e.into(),
        })?;
        Ok(TunnelConnection::from_quic(conn))
    }

    /// Closes every connection with `code`.
    pub fn close(&self, code: CloseCode, reason: &[u8]) {
        self.endpoint.close(VarInt::from_u32(code.to_u32()), reason);
    }

    /// Waits until the close frames of every connection have left.
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await;
    }
}
