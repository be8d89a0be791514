//! The edge's HTTP listeners: HTTPS (the front end of `http/`), the HTTP
//! listener that redirects to HTTPS, and the admin API. Each times what a
//! client sends before it has been served: the TLS handshake, the first
//! bytes, the request head and the wait on a kept-alive connection (see
//! the settings in [`crate::config::EdgeConfig`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{header, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use warren_transport::body::{empty, BoxBody};

use crate::accept::{Acceptor, Unauthenticated};
use crate::routes::ServedNames;
use crate::session::EdgeCtx;

type Builder = hyper_util::server::conn::auto::Builder<TokioExecutor>;

/// The connection builders of one listener, one per protocol: the version
/// is known before hyper reads a byte (ALPN on TLS; HTTP/1 on the admin
/// listener), because hyper-util's version detection has no timer and
/// would hold a silent client forever.
struct Builders {
    /// HTTP/1 closes a connection that has not sent a whole request head
    /// within `header_read_timeout`, timed from the connection's start and
    /// again for each next request on a kept-alive connection.
    h1: Builder,
    /// HTTP/2 pings an idle peer and closes it when the ping goes
    /// unanswered as long; the preface itself is timed by [`ReadDeadline`].
    /// (Each is one protocol only, so hyper-util does not wait to detect
    /// the version where it can avoid it.)
    h2: Builder,
}

impl Builders {
    fn new(header_read_timeout: Duration) -> Self {
        let builder = || {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(header_read_timeout)
                .keep_alive_timeout(header_read_timeout);
            builder
        };
        Builders {
            h1: builder().http1_only(),
            h2: builder().http2_only(),
        }
    }
}

/// How many bytes a client must send within `header_read_timeout` before
/// hyper times anything itself: the length of the HTTP/2 preface, which
/// hyper-util reads (untimed) to choose the version in
/// `serve_connection_with_upgrades` even when only one is enabled, and
/// which HTTP/2's own server does not time. Every HTTP/1 request the edge
/// can serve is longer (it needs a Host header).
const FIRST_BYTES: usize = 24;

/// A stream whose first `remaining` bytes must arrive before a deadline:
/// a read after it fails with `TimedOut`, which ends the connection. Once
/// they have arrived, reads pass through untimed, and the connection no
/// longer counts against its address's unauthenticated connections.
struct ReadDeadline<S> {
    inner: S,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    remaining: usize,
    unauthenticated: Option<Unauthenticated>,
}

impl<S> ReadDeadline<S> {
    fn new(
        inner: S,
        first_bytes: usize,
        within: Duration,
        unauthenticated: Unauthenticated,
    ) -> Self {
        ReadDeadline {
            inner,
            deadline: (first_bytes > 0).then(|| Box::pin(tokio::time::sleep(within))),
            remaining: first_bytes,
            unauthenticated: Some(unauthenticated),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(deadline) = &mut this.deadline {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client did not send its first bytes in time",
                )));
            }
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.deadline.is_some() {
            this.remaining = this.remaining.saturating_sub(buf.filled().len() - before);
            if this.remaining == 0 {
                this.deadline = None;
                this.unauthenticated = None;
            }
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The HTTPS listener: TLS within `handshake_timeout`, then HTTP/2 or
/// HTTP/1 as ALPN chose (HTTP/1 when the client offered none), each with
/// its first bytes timed.
pub(crate) async fn serve_https(
    mut listener: Acceptor,
    acceptor: tokio_rustls::TlsAcceptor,
    ctx: Arc<EdgeCtx>,
    handshake_timeout: Duration,
    header_read_timeout: Duration,
) {
    let builders = Arc::new(Builders::new(header_read_timeout));
    loop {
        let accepted = listener.next().await;
        let (tcp, peer) = (accepted.tcp, accepted.peer);
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        let builders = builders.clone();
        tokio::spawn(async move {
            let _slot = accepted.slot;
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let activity = Arc::new(Activity::new());
            let service = {
                let activity = activity.clone();
                service_fn(move |req| {
                    let ctx = ctx.clone();
                    let busy = activity.enter();
                    async move {
                        let _busy = busy;
                        Ok::<_, std::convert::Infallible>(
                            crate::http::handle(ctx, req, peer, "https").await,
                        )
                    }
                })
            };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let builder = if h2 { &builders.h2 } else { &builders.h1 };
            let io = ReadDeadline::new(
                tls,
                FIRST_BYTES,
                header_read_timeout,
                accepted.unauthenticated,
            );
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            tokio::pin!(conn);
            // HTTP/1 times the wait for the next request itself; an HTTP/2
            // connection that answers pings but starts no request for
            // `header_read_timeout` gets a GOAWAY (streams still open, such
            // as a long download, finish first).
            let mut closing = false;
            let ended = loop {
                let wait = activity.idle_left(header_read_timeout);
                tokio::select! {
                    r = conn.as_mut() => break r,
                    () = tokio::time::sleep(wait), if h2 && !closing => {
                        if activity.idle_left(header_read_timeout).is_zero() {
                            tracing::debug!(%peer, "closing an idle HTTP/2 connection");
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
}

/// Requests a connection is handling, and when it last started or
/// finished one.
struct Activity {
    state: std::sync::Mutex<(usize, tokio::time::Instant)>,
}

/// One request being handled, until it drops.
struct Busy(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Activity {
            state: std::sync::Mutex::new((0, tokio::time::Instant::now())),
        }
    }

    fn enter(self: &Arc<Self>) -> Busy {
        let mut s = self.state.lock().expect("activity lock");
        *s = (s.0 + 1, tokio::time::Instant::now());
        Busy(self.clone())
    }

    /// How much longer the connection may stay idle: `timeout` while a
    /// request is being handled, zero once it has been idle that long.
    fn idle_left(&self, timeout: Duration) -> Duration {
        let (busy, last) = *self.state.lock().expect("activity lock");
        if busy > 0 {
            return timeout;
        }
        timeout.saturating_sub(last.elapsed())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().expect("activity lock");
        *s = (s.0 - 1, tokio::time::Instant::now());
    }
}

/// The HTTP listener: redirects a request for a name the edge serves to
/// HTTPS, and answers any other with the edge's page (400 or 404).
pub(crate) async fn serve_redirect(
    mut listener: Acceptor,
    https_port: u16,
    names: ServedNames,
    header_read_timeout: Duration,
) {
    loop {
        let accepted = listener.next().await;
        let tcp = accepted.tcp;
        let names = names.clone();
        tokio::spawn(async move {
            // Nothing on this listener is ever more than a redirect: the
            // whole connection counts as unauthenticated.
            let _held = (accepted.slot, accepted.unauthenticated);
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let names = names.clone();
                async move {
                    let path = req
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/");
                    let resp: Response<BoxBody> = match crate::http::https_location(
                        req.headers().get(header::HOST),
                        path,
                        https_port,
                        |host| names.serves(host),
                    ) {
                        Ok(loc) => Response::builder()
                            .status(StatusCode::PERMANENT_REDIRECT)
                            .header(header::LOCATION, loc)
                            .body(empty())
                            .expect("valid redirect"),
                        Err(failure) => failure.response(),
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// The admin API's listener: HTTP/1 with the same head timeout as the
/// public ones (the router times the body itself, see `admin::router`).
pub(crate) async fn serve_admin(
    mut listener: Acceptor,
    router: axum::Router,
    header_read_timeout: Duration,
) {
    let builder = Arc::new(Builders::new(header_read_timeout).h1);
    loop {
        let accepted = listener.next().await;
        let (tcp, peer) = (accepted.tcp, accepted.peer);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        tokio::spawn(async move {
            let _held = (accepted.slot, accepted.unauthenticated);
            if let Err(e) = builder.serve_connection(TokioIo::new(tcp), service).await {
                tracing::debug!(%peer, error = %e, "admin connection ended with an error");
            }
        });
    }
}
