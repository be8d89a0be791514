//! The IO half of PostgreSQL negotiation, shared by the edge's native
//! listener and the connector's `postgres://` origins: [`negotiate`] drives
//! `warren_pg`'s sans-IO [`Negotiator`] over a stream — reads with a
//! deadline, answers, the TLS handshake when it says so — and hands back
//! the (possibly TLS) stream with the startup, the cancel, or why it
//! ended. Every decision is the core's; only the reading, writing and the
//! handshake are here.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use warren_pg::negotiate::{
    Action, CancelReady, NegotiationError, Negotiator, Policy, StartupReady,
};

/// A stream with bytes already read put back in front: the TLS acceptor
/// must see the start of a direct-TLS ClientHello the negotiation read.
#[derive(Debug)]
pub struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    /// A stream reading `prefix`, then `inner`.
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() && buf.remaining() > 0 {
            let n = self.prefix.len().min(buf.remaining());
            let head = self.prefix.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A client connection after negotiation: as it came, or inside the TLS
/// the negotiation started.
pub enum PgStream<S> {
    /// Plaintext.
    Plain(S),
    /// TLS terminated here.
    Tls(Box<tokio_rustls::server::TlsStream<Rewind<S>>>),
}

impl<S> PgStream<S> {
    /// The TLS session, when there is one.
    pub fn tls(&self) -> Option<&rustls::ServerConnection> {
        match self {
            PgStream::Plain(_) => None,
            PgStream::Tls(t) => Some(t.get_ref().1),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How a negotiation ended.
pub enum Negotiated<S> {
    /// A `StartupMessage`: authorize and forward it (its `rest` too).
    Startup(PgStream<S>, StartupReady),
    /// A `CancelRequest`: forward it, then close.
    Cancel(PgStream<S>, CancelReady),
    /// The core refused the client; the caller sends its ErrorResponse
    /// (its own sentence, or [`NegotiationError::error_response`]).
    Refused(PgStream<S>, NegotiationError),
    /// The connection ended without anything to answer: the client went
    /// away, was silent past the deadline, or its TLS handshake failed.
    Gone(GoneReason),
}

/// Why a negotiation ended with nothing to answer.
#[derive(Debug, thiserror::Error)]
pub enum GoneReason {
    /// The client had not sent its StartupMessage (or finished its TLS
    /// handshake) when the deadline passed.
    #[error("the client did not finish its startup within {0:?}")]
    Silent(Duration),
    /// Reading or writing the client failed.
    #[error("the client connection failed: {0}")]
    Io(io::Error),
    /// The TLS handshake failed.
    #[error("the client's TLS handshake failed: {0}")]
    Handshake(io::Error),
}

/// Reads to hand the negotiator at once.
const READ_CHUNK: usize = 4096;

/// Runs the negotiation on `stream`. `tls_config(direct)` gives the TLS
/// configuration to terminate with, or `None` when TLS cannot be offered
/// (asked when the policy says [`warren_pg::negotiate::TlsPolicy::Ask`],
/// and before every handshake). The whole negotiation, TLS handshake
/// included, must finish within `timeout` of the call: a deadline, not a
/// per-read limit, so a client sending a byte at a time cannot hold the
/// connection longer.
pub async fn negotiate<S, F, Fut>(
    stream: S,
    policy: Policy,
    mut tls_config: F,
    timeout: Duration,
) -> Negotiated<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = Option<Arc<rustls::ServerConfig>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut neg = Negotiator::new(policy);
    let mut stream = PgStream::Plain(stream);
    let mut config: Option<Arc<rustls::ServerConfig>> = None;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        while let Some(action) = neg.poll() {
            match action {
                Action::Send(bytes) => {
                    match tokio::time::timeout_at(deadline, stream.write_all(&bytes)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Negotiated::Gone(GoneReason::Io(e)),
                        Err(_) => return Negotiated::Gone(GoneReason::Silent(timeout)),
                    }
                }
                Action::DecideTls { direct } => {
                    config = tls_config(direct).await;
                    neg.decide_tls(config.is_some());
                }
                Action::StartTls { replay } => {
                    let cfg = match config.take() {
                        Some(c) => Some(c),
                        None => {
                            tls_config(replay.first() == Some(&warren_pg::TLS_HANDSHAKE_BYTE)).await
                        }
                    };
                    let (PgStream::Plain(plain), Some(cfg)) = (stream, cfg) else {
                        return Negotiated::Gone(GoneReason::Handshake(io::Error::other(
                            "TLS cannot be started here",
                        )));
                    };
                    let accept =
                        tokio_rustls::TlsAcceptor::from(cfg).accept(Rewind::new(replay, plain));
                    stream = match tokio::time::timeout_at(deadline, accept).await {
                        Ok(Ok(tls)) => PgStream::Tls(Box::new(tls)),
                        Ok(Err(e)) => return Negotiated::Gone(GoneReason::Handshake(e)),
                        Err(_) => return Negotiated::Gone(GoneReason::Silent(timeout)),
                    };
                    neg.tls_established();
                }
                Action::Startup(ready) => return Negotiated::Startup(stream, ready),
                Action::Cancel(ready) => return Negotiated::Cancel(stream, ready),
                Action::Close(e) => return Negotiated::Refused(stream, e),
            }
        }
        buf.clear();
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Err(_) => return Negotiated::Gone(GoneReason::Silent(timeout)),
            Ok(Err(e)) => return Negotiated::Gone(GoneReason::Io(e)),
            Ok(Ok(0)) => neg.eof(),
            Ok(Ok(_)) => neg.feed(&buf),
        }
    }
}

/// Sends `message` (an ErrorResponse) and closes the write side.
pub async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, message: &warren_pg::Message) {
    let _ = stream.write_all(&message.encode()).await;
    let _ = stream.shutdown().await;
}
