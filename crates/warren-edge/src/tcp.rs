//! The `warren access tcp` front end of the session pipeline: a WebSocket
//! upgrade on [`TCP_PATH`] of a routed hostname, terminated here and
//! carried to the connector as a raw TCP stream.
//!
//! The edge asks the connector to reach the origin *before* answering the
//! upgrade, so a client learns why it cannot connect (no connector, origin
//! refused) from the HTTP answer rather than a closed socket. Bytes then
//! move by the one copier (`warren_transport::copy`, WebSocket conventions
//! in `warren_transport::ws`), and the session's audit entry is written
//! when both ends are done or access is withdrawn.

use std::sync::Arc;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use warren_proto::stream::StreamResponse;
use warren_transport::body::{empty, BoxBody};
use warren_transport::copy;

use crate::pages::EdgeFailure;
use crate::session::{EdgeCtx, End, Session};
use crate::upstream::{Opened, UpstreamError};

/// The reserved path `access tcp` upgrades on.
pub(crate) const TCP_PATH: &str = "/.warren/tcp";

/// Whether the request is a WebSocket upgrade.
pub(crate) fn is_websocket<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && req.headers().contains_key(header::SEC_WEBSOCKET_KEY)
}

/// Handles an `access tcp` upgrade whose session was allowed.
pub(crate) async fn handle(
    ctx: &Arc<EdgeCtx>,
    mut req: Request<Incoming>,
    mut session: Session,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        session.answered(400);
        return Err(EdgeFailure::BadRequest {
            reason: "the WebSocket upgrade has no Sec-WebSocket-Key".into(),
        });
    };
    let header = session.tcp_request(&ctx.access);
    let on_upgrade = hyper::upgrade::on(&mut req);
    // The client sends nothing until the upgrade is answered, so a broken
    // stream can be retried elsewhere.
    let host = session.host.clone();
    let Opened {
        answer,
        send,
        recv,
        guard,
    } = session
        .open(ctx, &header, true)
        .await
        .map_err(|f| EdgeFailure::from_failure(f, &host))?;
    if answer != StreamResponse::Connected {
        session.answered(502);
        return Err(EdgeFailure::from_upstream(
            UpstreamError::UnexpectedAnswer {
                what: "a TCP stream with an HTTP response",
            },
            host,
        ));
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let _guard = guard;
        let end = match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(warren_transport::ws::config()),
                )
                .await;
                session
                    .splice(
                        warren_transport::ws::side(ws),
                        copy::stream_side(send, recv),
                    )
                    .await
            }
            Err(e) => {
                tracing::debug!(error = %e, "access client upgrade failed");
                End::SetupFailed("the client's WebSocket upgrade failed")
            }
        };
        session.finish(&ctx, end).await;
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
