//! The QUIC carrier of `warren access tcp`: one warm connection to the
//! edge's QUIC listener, one stream per local connection
//! (`warren_proto::access`).
//!
//! Opening a local connection then costs one stream and one round trip to
//! the edge (which reaches the origin before it answers), instead of a
//! TCP connect, a TLS handshake and a WebSocket upgrade; its bytes carry
//! one encryption and no WebSocket framing. The connection is made on
//! first use (or by [`QuicCarrier::warm`]), kept alive while idle, and
//! made again when it is lost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use warren_proto::access::{AccessRequest, AccessResponse};
use warren_transport::conn::{RecvStream, SendStream, TunnelConnection};
use warren_transport::framed::expect_frame;
use warren_transport::quic::{QuicDialer, QuicSettings};
use warren_transport::tls::{client_config, Trust};

use crate::{AccessError, Credentials};

/// How long the QUIC carrier may take.
#[derive(Debug, Clone, Copy)]
pub struct QuicTimeouts {
    /// The QUIC handshake with the edge. Where UDP is blocked this is
    /// what a first connection waits before `auto` falls back to the
    /// WebSocket carrier.
    pub handshake: Duration,
    /// From a stream's request to the edge's answer (the edge reaches the
    /// origin through the connector first).
    pub answer: Duration,
}

impl Default for QuicTimeouts {
    fn default() -> Self {
        QuicTimeouts {
            handshake: Duration::from_secs(3),
            // The edge gives a connector 100 s to reach an origin.
            answer: Duration::from_secs(110),
        }
    }
}

/// One access client's QUIC connection to the edge.
pub struct QuicCarrier {
    dialer: QuicDialer,
    /// Where the edge's QUIC listener is.
    addr: SocketAddr,
    /// The name its certificate must carry (the routed hostname).
    server_name: String,
    timeouts: QuicTimeouts,
    conn: Mutex<Option<TunnelConnection>>,
}

impl QuicCarrier {
    /// A carrier to the QUIC listener at `addr`, checking its certificate
    /// for `hostname` with `trust`. Nothing is sent until it is used.
    pub fn new(
        addr: SocketAddr,
        hostname: &str,
        trust: &Trust,
        timeouts: QuicTimeouts,
    ) -> Result<Arc<Self>, AccessError> {
        let tls = client_config(trust, &[warren_proto::access::ALPN])?;
        let bind: SocketAddr = if addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let socket = std::net::UdpSocket::bind(bind)?;
        let dialer = QuicDialer::new(socket, tls, &QuicSettings::default().access())
            .map_err(|e| AccessError::Quic(e.to_string()))?;
        Ok(Arc::new(QuicCarrier {
            dialer,
            addr,
            server_name: hostname.to_owned(),
            timeouts,
            conn: Mutex::new(None),
        }))
    }

    /// Where the carrier goes.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live connection, made if there is none. Callers that arrive
    /// while it is being made wait for that one.
    async fn connection(&self) -> Result<TunnelConnection, AccessError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        *slot = None;
        let dialed = tokio::time::timeout(
            self.timeouts.handshake,
            self.dialer.connect(self.addr, &self.server_name),
        )
        .await;
        let conn = match dialed {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(AccessError::Quic(e.to_string())),
            Err(_) => {
                return Err(AccessError::Quic(format!(
                    "no QUIC answer from {} within {} ms (UDP may be blocked on this network)",
                    self.addr,
                    self.timeouts.handshake.as_millis()
                )))
            }
        };
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Makes the connection now, so the first local connection finds it
    /// ready.
    pub async fn warm(&self) -> Result<(), AccessError> {
        self.connection().await.map(|_| ())
    }

    /// A stream to `hostname`'s TCP service, answered by the edge:
    /// `Connected` gives the stream, a refusal its sentence.
    pub async fn open(
        &self,
        hostname: &str,
        credentials: &Credentials,
    ) -> Result<(SendStream, RecvStream), AccessError> {
        let conn = self.connection().await?;
        let (mut send, mut recv) = match conn.open_stream().await {
            Ok(s) => s,
            // The connection died since it was last used: one new one.
            Err(_) => self
                .connection()
                .await?
                .open_stream()
                .await
                .map_err(|e| AccessError::Quic(e.to_string()))?,
        };
        let request = AccessRequest {
            host: hostname.to_owned(),
            credentials: credentials.pairs(),
        };
        send.write_all(&request.encode())
            .await
            .map_err(|e| AccessError::Quic(e.to_string()))?;
        let frame = tokio::time::timeout(self.timeouts.answer, expect_frame(&mut recv))
            .await
            .map_err(|_| {
                AccessError::Quic(format!(
                    "the edge did not answer within {} s",
                    self.timeouts.answer.as_secs()
                ))
            })?
            .map_err(|e| AccessError::Quic(e.to_string()))?;
        match AccessResponse::decode(&frame).map_err(|e| AccessError::Quic(e.to_string()))? {
            AccessResponse::Connected => Ok((send, recv)),
            AccessResponse::Refused { status, message } => Err(AccessError::Refused {
                hostname: hostname.to_owned(),
                status,
                message,
            }),
        }
    }
}
