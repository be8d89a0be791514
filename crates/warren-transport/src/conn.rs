//! The transport seam: one tunnel connection between an edge and a
//! connector, whatever carries it.
//!
//! [`TunnelConnection`] is what the edge's registry, its stream opener and
//! the connector hold; none of them names the transport underneath. A
//! connection carries:
//!
//! - **bidirectional streams** ([`TunnelConnection::open_stream`],
//!   [`TunnelConnection::accept_stream`]): one per proxied request or
//!   connection, plus the control stream and the connector's questions;
//! - **datagrams** ([`TunnelConnection::send_datagram`],
//!   [`TunnelConnection::read_datagram`]): unreliable, unordered messages
//!   for UDP and ICMP flows;
//! - a **close code** ([`TunnelConnection::close`],
//!   [`TunnelConnection::closed`]).
//!
//! QUIC ([`crate::quic`]) is the first implementation; the TCP/TLS
//! fallback is the second, as another variant of the same types. Adding
//! one means adding a variant to each of [`TunnelConnection`],
//! [`SendStream`] and [`RecvStream`] and an arm to each method here —
//! nothing above this module changes.
//!
//! # Cancel safety
//!
//! Every `async` method here is cancel-safe unless its doc says otherwise:
//! dropping the future before it completes loses nothing (no stream is
//! opened or accepted, no datagram or chunk is consumed).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use warren_proto::close::{CloseCode, ResetCode};

/// Which transport carries a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// QUIC over UDP.
    Quic,
}

impl Protocol {
    /// Lower-case name for logs and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Quic => "quic",
        }
    }
}

/// Why a tunnel connection ended, or why an operation on it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The peer closed the connection with an application close code.
    #[error("the peer closed the connection (code {code:#x}: {reason})")]
    ClosedByPeer {
        /// The peer's close code (`warren_proto` close codes).
        code: u64,
        /// The peer's reason text.
        reason: String,
    },
    /// This side closed the connection.
    #[error("the connection was closed on this side")]
    ClosedLocally,
    /// Nothing arrived from the peer within the idle timeout.
    #[error("the peer stopped answering (idle timeout)")]
    TimedOut,
    /// The peer reset the connection (it restarted, or lost its state).
    #[error("the peer reset the connection")]
    Reset,
    /// The transport broke its own protocol or could not continue.
    #[error("the transport failed: {0}")]
    Transport(String),
}

impl ConnectionError {
    /// Whether work that failed because of this may be tried on another
    /// connection: always, since the connection itself is what failed.
    pub fn is_retryable_elsewhere(&self) -> bool {
        true
    }

    /// The peer's close code, when the peer closed it with one Warren
    /// knows.
    pub fn peer_code(&self) -> Option<CloseCode> {
        match self {
            ConnectionError::ClosedByPeer { code, .. } => u32::try_from(*code)
                .ok()
                .and_then(|c| CloseCode::from_u32(c).ok()),
            _ => None,
        }
    }
}

impl From<quinn::ConnectionError> for ConnectionError {
    fn from(e: quinn::ConnectionError) -> Self {
        use quinn::ConnectionError as Q;
        match e {
            Q::ApplicationClosed(c) => ConnectionError::ClosedByPeer {
                code: c.error_code.into_inner(),
                reason: String::from_utf8_lossy(&c.reason).into_owned(),
            },
            Q::LocallyClosed => ConnectionError::ClosedLocally,
            Q::TimedOut => ConnectionError::TimedOut,
            Q::Reset => ConnectionError::Reset,
            other => ConnectionError::Transport(other.to_string()),
        }
    }
}

/// Why an operation on one stream failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The connection the stream is on ended.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The peer abandoned sending on the stream.
    #[error("the peer reset the stream (code {0})")]
    Reset(u64),
    /// The peer stopped reading the stream.
    #[error("the peer stopped reading the stream (code {0})")]
    Stopped(u64),
    /// The stream was already finished or reset on this side.
    #[error("the stream is already closed")]
    Closed,
    /// The stream carried more than the reader would take.
    #[error("the stream carried more than {limit} bytes")]
    TooLong {
        /// The reader's limit.
        limit: usize,
    },
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> Self {
        let kind = match &e {
            StreamError::Connection(_) => io::ErrorKind::NotConnected,
            StreamError::Reset(_) | StreamError::Stopped(_) => io::ErrorKind::ConnectionReset,
            StreamError::Closed => io::ErrorKind::BrokenPipe,
            StreamError::TooLong { .. } => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

impl From<quinn::WriteError> for StreamError {
    fn from(e: quinn::WriteError) -> Self {
        match e {
            quinn::WriteError::Stopped(c) => StreamError::Stopped(c.into_inner()),
            quinn::WriteError::ConnectionLost(c) => StreamError::Connection(c.into()),
            quinn::WriteError::ClosedStream | quinn::WriteError::ZeroRttRejected => {
                StreamError::Closed
            }
        }
    }
}

impl From<quinn::ReadError> for StreamError {
    fn from(e: quinn::ReadError) -> Self {
        match e {
            quinn::ReadError::Reset(c) => StreamError::Reset(c.into_inner()),
            quinn::ReadError::ConnectionLost(c) => StreamError::Connection(c.into()),
            quinn::ReadError::ClosedStream
            | quinn::ReadError::IllegalOrderedRead
            | quinn::ReadError::ZeroRttRejected => StreamError::Closed,
        }
    }
}

/// Why a datagram could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    /// The peer does not accept datagrams.
    #[error("the peer does not accept datagrams")]
    Unsupported,
    /// The datagram is larger than the path allows.
    #[error("the datagram is larger than the {max} bytes the path allows")]
    TooLarge {
        /// The most the path takes now.
        max: usize,
    },
    /// The connection ended.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

/// One tunnel connection. Cheap to clone: clones are handles to the same
/// connection.
#[derive(Clone)]
pub struct TunnelConnection(ConnInner);

#[derive(Clone)]
enum ConnInner {
    Quic(quinn::Connection),
}

impl TunnelConnection {
    pub(crate) fn from_quic(conn: quinn::Connection) -> Self {
        TunnelConnection(ConnInner::Quic(conn))
    }

    /// The transport carrying it.
    pub fn protocol(&self) -> Protocol {
        match &self.0 {
            ConnInner::Quic(_) => Protocol::Quic,
        }
    }

    /// Opens a bidirectional stream. The peer learns of it only when the
    /// first byte is written.
    pub async fn open_stream(&self) -> Result<(SendStream, RecvStream), ConnectionError> {
        match &self.0 {
            ConnInner::Quic(c) => {
                let (s, r) = c.open_bi().await?;
                Ok((
                    SendStream(SendInner::Quic(s)),
                    RecvStream(RecvInner::Quic(r)),
                ))
            }
        }
    }

    /// Accepts the next bidirectional stream the peer opened.
    pub async fn accept_stream(&self) -> Result<(SendStream, RecvStream), ConnectionError> {
        match &self.0 {
            ConnInner::Quic(c) => {
                let (s, r) = c.accept_bi().await?;
                Ok((
                    SendStream(SendInner::Quic(s)),
                    RecvStream(RecvInner::Quic(r)),
                ))
            }
        }
    }

    /// Sends one datagram, or fails at once (never waits).
    pub fn send_datagram(&self, data: Bytes) -> Result<(), DatagramError> {
        match &self.0 {
            ConnInner::Quic(c) => c.send_datagram(data).map_err(|e| match e {
                quinn::SendDatagramError::UnsupportedByPeer
                | quinn::SendDatagramError::Disabled => DatagramError::Unsupported,
                quinn::SendDatagramError::TooLarge => DatagramError::TooLarge {
                    max: c.max_datagram_size().unwrap_or(0),
                },
                quinn::SendDatagramError::ConnectionLost(e) => DatagramError::Connection(e.into()),
            }),
        }
    }

    /// Receives the next datagram.
    pub async fn read_datagram(&self) -> Result<Bytes, ConnectionError> {
        match &self.0 {
            ConnInner::Quic(c) => Ok(c.read_datagram().await?),
        }
    }

    /// The largest datagram the path takes now; `None` when the peer does
    /// not accept datagrams.
    pub fn max_datagram_size(&self) -> Option<usize> {
        match &self.0 {
            ConnInner::Quic(c) => c.max_datagram_size(),
        }
    }

    /// Closes the connection at once with `code` and a reason for the
    /// peer's logs. Open streams end.
    pub fn close(&self, code: CloseCode, reason: &[u8]) {
        match &self.0 {
            ConnInner::Quic(c) => c.close(quinn::VarInt::from_u32(code.to_u32()), reason),
        }
    }

    /// Resolves when the connection has ended, with why.
    pub async fn closed(&self) -> ConnectionError {
        match &self.0 {
            ConnInner::Quic(c) => c.closed().await.into(),
        }
    }

    /// Why the connection ended, if it has.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        match &self.0 {
            ConnInner::Quic(c) => c.close_reason().map(Into::into),
        }
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.close_reason().is_some()
    }

    /// The peer's address.
    pub fn remote_address(&self) -> SocketAddr {
        match &self.0 {
            ConnInner::Quic(c) => c.remote_address(),
        }
    }

    /// The local address the connection arrived at, when known.
    pub fn local_ip(&self) -> Option<IpAddr> {
        match &self.0 {
            ConnInner::Quic(c) => c.local_ip(),
        }
    }

    /// The transport's current round-trip estimate.
    pub fn rtt(&self) -> Duration {
        match &self.0 {
            ConnInner::Quic(c) => c.rtt(),
        }
    }

    /// What [`warren_proto::answered`] needs to tell whether the peer still
    /// answers: ack-eliciting frames sent (every frame but ACK and
    /// PADDING; QUIC's keep-alive PINGs included), datagrams received, the
    /// round-trip estimate.
    pub fn counters(&self) -> warren_proto::answered::Counters {
        match &self.0 {
            ConnInner::Quic(c) => {
                let s = c.stats();
                let f = &s.frame_tx;
                let eliciting = [
                    f.ack_frequency,
                    f.crypto,
                    f.data_blocked,
                    f.datagram,
                    f.immediate_ack,
                    f.max_data,
                    f.max_stream_data,
                    f.max_streams_bidi,
                    f.max_streams_uni,
                    f.new_connection_id,
                    f.new_token,
                    f.path_challenge,
                    f.path_response,
                    f.ping,
                    f.reset_stream,
                    f.retire_connection_id,
                    f.stream_data_blocked,
                    f.streams_blocked_bidi,
                    f.streams_blocked_uni,
                    f.stop_sending,
                    f.stream,
                ]
                .iter()
                .sum();
                warren_proto::answered::Counters {
                    eliciting_sent: eliciting,
                    received: s.udp_rx.datagrams,
                    rtt: s.path.rtt,
                }
            }
        }
    }
}

/// The sending half of a stream. Dropping it without [`SendStream::finish`]
/// or [`SendStream::reset`] finishes it.
pub struct SendStream(SendInner);

enum SendInner {
    Quic(quinn::SendStream),
}

impl SendStream {
    /// Writes all of `data`, waiting for flow control. Not cancel-safe:
    /// part of it may have been written when the future is dropped.
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), StreamError> {
        match &mut self.0 {
            SendInner::Quic(s) => Ok(s.write_all(data).await?),
        }
    }

    /// Writes a chunk without copying it. Not cancel-safe (as
    /// [`SendStream::write_all`]).
    pub async fn write_chunk(&mut self, data: Bytes) -> Result<(), StreamError> {
        match &mut self.0 {
            SendInner::Quic(s) => Ok(s.write_chunk(data).await?),
        }
    }

    /// Ends the stream cleanly (the peer reads end of stream).
    pub fn finish(&mut self) -> Result<(), StreamError> {
        match &mut self.0 {
            SendInner::Quic(s) => s.finish().map_err(|_| StreamError::Closed),
        }
    }

    /// Abandons the stream with `code`: the peer reads an error, not end
    /// of stream.
    pub fn reset(&mut self, code: ResetCode) {
        match &mut self.0 {
            SendInner::Quic(s) => {
                let _ = s.reset(quinn::VarInt::from_u32(code.to_u32()));
            }
        }
    }

    /// A future that resolves once the peer has received everything
    /// written (after [`SendStream::finish`]) or stopped reading. It does
    /// not borrow the stream.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        match &self.0 {
            SendInner::Quic(s) => {
                let f = s.stopped();
                async move {
                    let _ = f.await;
                }
            }
        }
    }
}

impl AsyncWrite for SendStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().0 {
            SendInner::Quic(s) => AsyncWrite::poll_write(Pin::new(s), cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            SendInner::Quic(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            SendInner::Quic(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The receiving half of a stream.
pub struct RecvStream(RecvInner);

enum RecvInner {
    Quic(quinn::RecvStream),
}

impl RecvStream {
    /// The next chunk of at most `max` bytes, without copying; `None` at
    /// end of stream.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        match &mut self.0 {
            RecvInner::Quic(r) => Ok(r.read_chunk(max, true).await?.map(|c| c.bytes)),
        }
    }

    /// As many chunks as are ready (at least one), without copying, into
    /// `bufs`; how many were filled, `None` at end of stream. Cancel-safe:
    /// nothing is taken from the stream unless the call completes.
    pub async fn read_chunks(&mut self, bufs: &mut [Bytes]) -> Result<Option<usize>, StreamError> {
        match &mut self.0 {
            RecvInner::Quic(r) => Ok(r.read_chunks(bufs).await?),
        }
    }

    /// Everything up to end of stream, at most `limit` bytes. Not
    /// cancel-safe.
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, StreamError> {
        match &mut self.0 {
            RecvInner::Quic(r) => r.read_to_end(limit).await.map_err(|e| match e {
                quinn::ReadToEndError::Read(e) => e.into(),
                quinn::ReadToEndError::TooLong => StreamError::TooLong { limit },
            }),
        }
    }

    /// Tells the peer to stop sending, with `code`.
    pub fn stop(&mut self, code: ResetCode) {
        match &mut self.0 {
            RecvInner::Quic(r) => {
                let _ = r.stop(quinn::VarInt::from_u32(code.to_u32()));
            }
        }
    }
}

impl AsyncRead for RecvStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            RecvInner::Quic(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

/// Both halves of a stream as one `AsyncRead + AsyncWrite`, for code that
/// wants a single IO object (a TLS acceptor on a tunnel stream, a
/// PostgreSQL conversation). Shutting down the write half finishes the
/// stream.
pub struct TunnelStream {
    /// The sending half.
    pub send: SendStream,
    /// The receiving half.
    pub recv: RecvStream,
}

impl TunnelStream {
    /// Joins the two halves.
    pub fn new(send: SendStream, recv: RecvStream) -> Self {
        TunnelStream { send, recv }
    }

    /// The two halves again.
    pub fn into_parts(self) -> (SendStream, RecvStream) {
        (self.send, self.recv)
    }
}

impl AsyncRead for TunnelStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.send).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_shutdown(cx)
    }
}
