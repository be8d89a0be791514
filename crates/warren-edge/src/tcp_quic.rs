//! The `warren access tcp` front end over QUIC (`--listen-quic`): one
//! long-lived connection per access client, one stream per local
//! connection, spoken as `warren_proto::access` says.
//!
//! Each stream is a session of its own, decided and audited exactly as a
//! WebSocket upgrade on [`crate::tcp`] is: its request carries the same
//! credential headers, the same phases run (`identify → authorize → open →
//! splice → finish`), and a refusal is the same status and sentence, sent
//! as an [`AccessResponse::Refused`] instead of an HTTP answer. What the
//! carrier saves is per connection: no TCP, TLS or WebSocket handshake to
//! the edge, and no WebSocket framing or second TLS layer on the bytes.
//!
//! Bounds: the connection count shares the public listeners' cap
//! (`--max-connections`); an address may hold at most
//! `--max-unauthenticated-per-source` connections that have not yet sent
//! a request; a connection must open its first stream and send its
//! request within `--handshake-timeout`, and every later request within
//! the same time after its stream opens; requests are at most one header
//! frame (64 KiB); streams per connection are QUIC's own limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use warren_proto::access::{AccessRequest, AccessResponse};
use warren_proto::stream::StreamResponse;
use warren_transport::conn::{RecvStream, SendStream, TunnelConnection};
use warren_transport::copy;
use warren_transport::framed::{expect_frame, FrameError};
use warren_transport::quic::QuicListener;

use crate::accept::{ConnLimits, Sources, Unauthenticated};
use crate::pages::EdgeFailure;
use crate::session::{EdgeCtx, End, Front, Presented, Session};
use crate::tcp::TCP_PATH;
use crate::upstream::{Opened, UpstreamError};

/// What the QUIC access front end needs besides the pipeline.
pub(crate) struct QuicAccess {
    pub(crate) ctx: Arc<EdgeCtx>,
    pub(crate) limits: ConnLimits,
    /// A connection's first request, and each stream's request, must have
    /// arrived this long after the handshake started or the stream opened.
    pub(crate) request_timeout: Duration,
}

/// Accepts access clients until the listener is closed.
pub(crate) async fn serve(listener: Arc<QuicListener>, front: Arc<QuicAccess>) {
    let sources = front.limits.sources();
    while let Some(incoming) = listener.accept().await {
        let remote = incoming.remote_address();
        // Dropping an attempt refuses it; the client falls back or
        // retries.
        let Some(slot) = front.limits.try_slot("quic") else {
            continue;
        };
        let Some(unauthenticated) = Sources::enter(&sources, remote.ip()) else {
            tracing::debug!(%remote, "too many QUIC access connections from this address that have not asked for anything; refusing one");
            continue;
        };
        let front = front.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let conn = match tokio::time::timeout(front.request_timeout, incoming.establish()).await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "access client QUIC handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "access client QUIC handshake timed out");
                    return;
                }
            };
            connection(conn, remote, &front, unauthenticated).await;
        });
    }
}

/// Serves one access client's streams until its connection ends.
async fn connection(
    conn: TunnelConnection,
    remote: SocketAddr,
    front: &Arc<QuicAccess>,
    unauthenticated: Unauthenticated,
) {
    // A connection that never asks for anything is closed, as a TCP
    // connection that never sends a request is; one that has opened a
    // stream no longer counts against its address.
    let first = tokio::time::timeout(front.request_timeout, conn.accept_stream()).await;
    drop(unauthenticated);
    let mut next = match first {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "access client left before opening a stream");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "access client opened no stream in time; closing it");
            conn.close(
                warren_proto::close::CloseCode::RegistrationTimeout,
                b"no request in time",
            );
            return;
        }
    };
    loop {
        let (send, recv) = match next.take() {
            Some(s) => s,
            None => match conn.accept_stream().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%remote, error = %e, "access client connection ended");
                    return;
                }
            },
        };
        let front = front.clone();
        tokio::spawn(async move { stream(&front, remote, send, recv).await });
    }
}

/// One local connection of the access client: request, decision, stream
/// to the connector, bytes, audit entry.
async fn stream(
    front: &QuicAccess,
    source: SocketAddr,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let request = match tokio::time::timeout(front.request_timeout, read_request(&mut recv)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            refuse(&mut send, 400, &format!("The access request was malformed ({e}); use a `warren access tcp` of the same version as the edge.")).await;
            return;
        }
        Err(_) => {
            refuse(
                &mut send,
                408,
                "The access request did not arrive in time; try again.",
            )
            .await;
            return;
        }
    };
    let host = request.host.to_ascii_lowercase();
    let ctx = &front.ctx;
    let mut session = match Session::identify(ctx, Front::TcpQuic, host.clone(), source) {
        Ok(s) => s,
        Err(f) => return refuse_failure(&mut send, EdgeFailure::from_failure(f, &host)).await,
    };
    let headers = match credential_headers(&request) {
        Ok(h) => h,
        Err(why) => {
            session.answered(400);
            refuse(&mut send, 400, &why).await;
            return;
        }
    };
    if let Err(f) = session
        .authorize(
            &ctx.access,
            Presented::Headers {
                headers: &headers,
                path: TCP_PATH,
            },
        )
        .await
    {
        return refuse_failure(&mut send, EdgeFailure::from_failure(f, &host)).await;
    }
    let header = session.tcp_request(&ctx.access);
    // The client sends nothing until it is answered, so a broken stream
    // can be retried elsewhere.
    let Opened {
        answer,
        send: up_send,
        recv: up_recv,
        guard,
    } = match session.open(ctx, &header, true).await {
        Ok(o) => o,
        Err(f) => return refuse_failure(&mut send, EdgeFailure::from_failure(f, &host)).await,
    };
    let _guard = guard;
    if answer != StreamResponse::Connected {
        let failure = EdgeFailure::from_upstream(
            UpstreamError::UnexpectedAnswer {
                what: "a TCP stream with an HTTP response",
            },
            host,
        );
        refuse_failure(&mut send, failure).await;
        session
            .finish(
                ctx,
                End::SetupFailed("the connector answered a TCP stream with HTTP"),
            )
            .await;
        return;
    }
    let end = match send.write_all(&AccessResponse::Connected.encode()).await {
        Ok(()) => {
            session
                .splice(
                    copy::stream_side(send, recv),
                    copy::stream_side(up_send, up_recv),
                )
                .await
        }
        Err(_) => End::ClientGone,
    };
    session.finish(ctx, end).await;
}

async fn read_request(recv: &mut RecvStream) -> Result<AccessRequest, FrameError> {
    let frame = expect_frame(recv).await?;
    Ok(AccessRequest::decode(&frame)?)
}

/// The request's credentials as the headers an upgrade would carry, so
/// the access decision reads them the same way.
fn credential_headers(request: &AccessRequest) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in &request.credentials {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("The access request names a credential \"{name}\" that is not a header name; use a `warren access tcp` of the same version as the edge."))?;
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| "The access request's credentials contain characters a header cannot carry; check the token or service token you passed.".to_owned())?;
        headers.append(name, value);
    }
    Ok(headers)
}

async fn refuse_failure(send: &mut SendStream, failure: EdgeFailure) {
    refuse(send, failure.status().as_u16(), &failure.sentence()).await;
}

/// Answers a stream with a refusal and ends it.
async fn refuse(send: &mut SendStream, status: u16, message: &str) {
    let answer = AccessResponse::Refused {
        status,
        message: message.to_owned(),
    };
    if send.write_all(&answer.encode()).await.is_ok() {
        let _ = send.finish();
        // Let the answer reach the client before the stream is dropped.
        let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
    }
}
