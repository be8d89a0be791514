//! `warren access tcp` byte streams: a WebSocket upgrade on
//! [`TCP_PATH`] of a routed hostname, terminated here and carried to the
//! connector as a raw TCP stream.
//!
//! The edge asks the connector to reach the origin *before* answering the
//! upgrade, so a client learns why it cannot connect (no connector, origin
//! refused) from the HTTP answer rather than a closed socket.
//!
//! Byte stream conventions on the WebSocket (see `docs/protocol.md`):
//! binary messages carry bytes; an empty binary message is end-of-stream
//! in that direction (a TCP half-close); a Close frame ends both.

use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use warren_proto::stream::{ClientInfo, StreamRequest, StreamResponse, TcpRequest};
use warren_store::AuditEntry;
use warren_transport::body::{empty, BoxBody};

use crate::access::{Grant, Watched};
use crate::pages::EdgeFailure;
use crate::proxy::{exchange, ProxyCtx};
use crate::routes::Route;

/// The reserved path `access tcp` upgrades on.
pub const TCP_PATH: &str = "/.warren/tcp";
/// Largest WebSocket message accepted from a client.
pub const MAX_MESSAGE: usize = 1024 * 1024;
/// Largest chunk sent to the client per message.
const CHUNK: usize = 64 * 1024;

/// Whether the request is a WebSocket upgrade.
pub fn is_websocket<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && req.headers().contains_key(header::SEC_WEBSOCKET_KEY)
}

/// WebSocket limits used on both ends of an `access tcp` stream.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Handles an `access tcp` upgrade.
pub(crate) async fn handle(
    ctx: &ProxyCtx,
    mut req: Request<Incoming>,
    host: String,
    route: Route,
    client: SocketAddr,
    grant: Grant,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or_else(|| EdgeFailure::BadRequest {
            reason: "the WebSocket upgrade has no Sec-WebSocket-Key".into(),
        })?;
    let session = uuid::Uuid::new_v4().simple().to_string();
    let header = StreamRequest::Tcp(TcpRequest {
        host: host.clone(),
        client: ClientInfo {
            addr: client.to_string(),
            scheme: "wss".into(),
        },
        session: session.clone(),
        statement_log: grant.app.as_ref().is_some_and(|a| a.statement_log),
        assertion: grant
            .assertion(&ctx.access.snapshot().keys, &host)
            .unwrap_or_default(),
    });
    let on_upgrade = hyper::upgrade::on(&mut req);
    // The client sends nothing until the upgrade is answered, so a broken
    // stream can be retried elsewhere.
    let (resp, send, recv, guard) = exchange(ctx, &route, &host, &header, true).await?;
    match resp {
        StreamResponse::Connected => {}
        _ => {
            return Err(EdgeFailure::Tunnel {
                host,
                reason: "the connector answered a TCP stream with an HTTP response".into(),
            })
        }
    }
    let audit = ctx.audit.clone();
    let tunnel = route.tunnel_name(&guard.conn().tunnel_id);
    let started = std::time::Instant::now();
    let access = ctx.access.clone();
    access.sessions().open(
        &session,
        crate::access::sessions::SessionInfo {
            identity: grant.who.label(),
            app: grant.app_name(),
            host: host.clone(),
            source: client.to_string(),
            tunnel: tunnel.clone(),
        },
    );
    // The connection lives as long as its grant does.
    let live = ctx.access.watch(Watched {
        who: grant.who.clone(),
        host: host.clone(),
        path: TCP_PATH.to_owned(),
        source: client,
    });
    tokio::spawn(async move {
        let _guard = guard;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "access client upgrade failed");
                access.sessions().close(&session);
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(ws_config()),
        )
        .await;
        let moved = bridge(ws, send, recv, live.revoked()).await;
        let reported = access.sessions().close(&session);
        let destination = if reported.is_empty() {
            "tcp".to_owned()
        } else {
            format!("tcp {reported}")
        };
        let end_reason = match live.reason() {
            Some(why) => format!("access revoked: {why}"),
            None => moved.end.to_owned(),
        };
        audit
            .record(AuditEntry {
                kind: "connection".into(),
                identity: grant.who.label(),
                source: client.to_string(),
                app: grant.app_name(),
                hostname: host,
                tunnel,
                destination,
                decision: "allow".into(),
                rule: grant.reason(),
                bytes_up: i64::try_from(moved.up).unwrap_or(i64::MAX),
                bytes_down: i64::try_from(moved.down).unwrap_or(i64::MAX),
                duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                end_reason,
                ..Default::default()
            })
            .await;
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
    );
    Ok(resp)
}

/// What a bridged connection carried.
pub struct Moved {
    /// Client → origin bytes.
    pub up: u64,
    /// Origin → client bytes.
    pub down: u64,
    /// `closed` when both sides ended cleanly.
    pub end: &'static str,
}

/// Moves bytes between a WebSocket and a tunnel stream until both
/// directions have ended, or `stop` resolves (access was revoked).
pub async fn bridge<S>(
    ws: WebSocketStream<S>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    stop: impl std::future::Future<Output = ()>,
) -> Moved
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut up_bytes, mut down_bytes) = (0u64, 0u64);
    let mut end = "closed";
    let up = async {
        while let Some(msg) = ws_rx.next().await {
            match msg {
                Ok(Message::Binary(b)) if b.is_empty() => break,
                Ok(Message::Binary(b)) => {
                    if send.write_all(&b).await.is_err() {
                        return Some("the origin side closed");
                    }
                    up_bytes += b.len() as u64;
                }
                Ok(Message::Close(_)) | Err(_) => {
                    let _ = send.reset(quinn::VarInt::from_u32(0));
                    return Some("the client went away");
                }
                Ok(_) => {}
            }
        }
        let _ = send.finish();
        None
    };
    let down = async {
        loop {
            match recv.read_chunk(CHUNK, true).await {
                Ok(Some(chunk)) => {
                    let n = chunk.bytes.len() as u64;
                    if ws_tx.send(Message::Binary(chunk.bytes)).await.is_err() {
                        return Some("the client went away");
                    }
                    down_bytes += n;
                }
                Ok(None) => {
                    let _ = ws_tx.send(Message::Binary(Bytes::new())).await;
                    return None;
                }
                Err(_) => {
                    let _ = ws_tx.close().await;
                    return Some("the tunnel stream was reset");
                }
            }
        }
    };
    let (a, b) = tokio::select! {
        r = async { tokio::join!(up, down) } => r,
        () = stop => (Some("access revoked"), None),
    };
    if let Some(why) = a.or(b) {
        end = why;
    }
    if end == "access revoked" {
        let _ = send.reset(quinn::VarInt::from_u32(0));
        let _ = recv.stop(quinn::VarInt::from_u32(0));
    }
    let _ = ws_tx.close().await;
    Moved {
        up: up_bytes,
        down: down_bytes,
        end,
    }
}
