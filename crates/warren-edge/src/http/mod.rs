//! The HTTP front end of the session pipeline (`session.rs`): one request
//! arriving at the HTTPS listener.
//!
//! 1. **identify**: the hostname from `:authority` or `Host`
//!    ([`headers::identify`]) → [`Session::identify`];
//! 2. the edge's own endpoints under `/.warren/` answer here
//!    ([`edge_paths`]); a WebSocket upgrade on `/.warren/tcp` is an
//!    `access tcp` byte stream (`tcp.rs`);
//! 3. **authorize** ([`Session::authorize`]); a browser that must sign in
//!    is sent to the identity provider;
//! 4. **route + open** ([`Session::open`], `upstream.rs`), with the
//!    request head the origin should see ([`headers::head`]);
//! 5. **proxy**: request body up and response body down as body frames,
//!    concurrently, each awaiting the other side's flow control; or, for an
//!    upgrade answered 101, raw bytes both ways ([`Session::splice`]).
//!
//! Failures become pages through [`EdgeFailure`], never ad hoc responses.

pub(crate) mod edge_paths;
pub(crate) mod headers;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use warren_proto::close::ResetCode;
use warren_proto::stream::{StreamRequest, StreamResponse};
use warren_transport::body::{recv_body, send_body, BoxBody};
use warren_transport::copy;

use crate::access::{self, Refusal};
use crate::pages::EdgeFailure;
use crate::registry::StreamGuard;
use crate::session::{EdgeCtx, Failure, Front, Presented, Session};
use crate::upstream::{Opened, UpstreamError};

pub(crate) use headers::https_location;

/// Serves one HTTP request arriving at the edge.
pub(crate) async fn handle(
    ctx: Arc<EdgeCtx>,
    req: Request<Incoming>,
    client: SocketAddr,
    scheme: &'static str,
) -> Response<BoxBody> {
    match serve(&ctx, req, client, scheme).await {
        Ok(resp) => resp,
        Err(failure) => {
            tracing::debug!(code = failure.code(), "{}", failure.sentence());
            failure.response()
        }
    }
}

async fn serve(
    ctx: &Arc<EdgeCtx>,
    req: Request<Incoming>,
    client: SocketAddr,
    scheme: &'static str,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let host = headers::identify(&req)?;
    let path = req.uri().path().to_owned();
    if path == crate::quick::QUICK_PATH {
        // No route yet, so no session: the tunnel is made here.
        return Ok(edge_paths::quick_tunnel(ctx, &req, client).await);
    }
    let tcp = path == crate::tcp::TCP_PATH && crate::tcp::is_websocket(&req);
    let front = if path == edge_paths::PG_CERT_PATH {
        Front::EdgeEndpoint
    } else if tcp {
        Front::Tcp
    } else {
        Front::Http
    };
    let mut session = Session::identify(ctx, front, host.clone(), client)
        .map_err(|f| EdgeFailure::from_failure(f, &host))?;
    match path.as_str() {
        edge_paths::PG_CERT_PATH => {
            let answer = edge_paths::pg_cert(ctx, req, &mut session).await;
            return settle(&mut session, answer);
        }
        edge_paths::WHOAMI_PATH => {
            let answer = edge_paths::whoami(ctx, &req, &session);
            return settle(&mut session, answer);
        }
        access::oidc::DEVICE_START_PATH
        | access::oidc::DEVICE_POLL_PATH
        | access::oidc::DEVICE_REDEEM_PATH => {
            let answer = edge_paths::device(ctx, req, &host, &path, client).await;
            return settle(&mut session, Ok(answer));
        }
        _ => {}
    }
    if let Some(resp) = edge_paths::serve(ctx, &req, &host, &path, client).await {
        return settle(&mut session, Ok(resp));
    }
    let presented = Presented::Headers {
        headers: req.headers(),
        path: &path,
    };
    match session.authorize(&ctx.access, presented).await {
        Ok(_) => {}
        Err(Failure::Refused(Refusal::NeedsLogin { app, .. }))
            if front == Front::Http && headers::wants_html(&req) =>
        {
            let back = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let authority = headers::authority(&req, &host);
            return Ok(access::oidc::begin(&ctx.access, &app, &authority, &back, None).await);
        }
        Err(f) => return Err(EdgeFailure::from_failure(f, &host)),
    }
    if tcp {
        return crate::tcp::handle(ctx, req, session).await;
    }
    let mut client = session.client_info();
    client.scheme = scheme.to_owned();
    let assertion = session.assertion(&ctx.access);
    if headers::is_upgrade(&req) {
        let head = headers::head(&req, &host, client, false, true, assertion);
        proxy_upgrade(ctx, req, session, StreamRequest::WebSocket(head)).await
    } else {
        let has_body = !req.body().is_end_stream();
        let head = headers::head(&req, &host, client, has_body, false, assertion);
        let answer = proxy_http(ctx, req, &mut session, StreamRequest::Http(head), has_body).await;
        settle(&mut session, answer)
    }
}

/// Notes the status a request is answered with on its session (its
/// outcome in metrics), and hands the answer on.
fn settle(
    session: &mut Session,
    answer: Result<Response<BoxBody>, EdgeFailure>,
) -> Result<Response<BoxBody>, EdgeFailure> {
    session.answered(match &answer {
        Ok(resp) => resp.status().as_u16(),
        Err(f) => f.status().as_u16(),
    });
    answer
}

/// Whether a request may be sent twice: safe methods, no body.
pub(crate) fn idempotent(method: &hyper::Method) -> bool {
    matches!(
        *method,
        hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS | hyper::Method::TRACE
    )
}

/// Open and proxy for plain requests.
async fn proxy_http(
    ctx: &EdgeCtx,
    req: Request<Incoming>,
    session: &mut Session,
    header: StreamRequest,
    has_body: bool,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let host = session.host.clone();
    let failed = |e: UpstreamError| EdgeFailure::from_upstream(e, host.clone());
    let (answer, recv, guard) = if has_body {
        let (mut send, mut recv, guard) = ctx
            .upstream
            .open(&session.route, &header)
            .await
            .map_err(failed)?;
        // Request body goes up while the response comes down (gRPC
        // streams both ways at once).
        let body = req.into_body();
        let sent = session.bytes_counter("to_origin");
        tokio::spawn(async move {
            match send_body(body, &mut send).await {
                Ok(n) => {
                    sent.inc_by(n);
                    let _ = send.finish();
                }
                Err(e) => {
                    tracing::debug!(error = %e, "request body not fully sent");
                    send.reset(ResetCode::BodyIncomplete);
                }
            }
        });
        let answer = ctx.upstream.answer(&mut recv).await.map_err(failed)?;
        (answer, recv, guard)
    } else {
        let replay_safe = idempotent(req.method());
        let Opened {
            answer,
            mut send,
            recv,
            guard,
        } = session
            .open(ctx, &header, replay_safe)
            .await
            .map_err(|f| EdgeFailure::from_failure(f, &host))?;
        let _ = send.finish();
        (answer, recv, guard)
    };
    let StreamResponse::Http(h) = answer else {
        return Err(failed(UpstreamError::UnexpectedAnswer {
            what: "an HTTP request with a non-HTTP response",
        }));
    };
    let body = counted(
        recv_body(Guarded {
            inner: recv,
            _guard: guard,
        }),
        session.bytes_counter("to_client"),
    );
    headers::response(h.status, h.headers, body, false)
}

/// Open and proxy for upgrades (a WebSocket to an HTTP origin): the
/// connector makes the upgrade request to the origin; on 101 both sides
/// switch to raw bytes.
async fn proxy_upgrade(
    ctx: &Arc<EdgeCtx>,
    mut req: Request<Incoming>,
    mut session: Session,
    header: StreamRequest,
) -> Result<Response<BoxBody>, EdgeFailure> {
    let host = session.host.clone();
    let path = req.uri().path().to_owned();
    let on_upgrade = hyper::upgrade::on(&mut req);
    let Opened {
        answer,
        send,
        recv,
        guard,
    } = session
        .open(ctx, &header, true)
        .await
        .map_err(|f| EdgeFailure::from_failure(f, &host))?;
    let StreamResponse::Http(h) = answer else {
        let failure = EdgeFailure::from_upstream(
            UpstreamError::UnexpectedAnswer {
                what: "an upgrade with a non-HTTP response",
            },
            host,
        );
        session.answered(failure.status().as_u16());
        return Err(failure);
    };
    session.answered(h.status);
    if h.status != 101 {
        // The origin declined the upgrade; its answer has a body.
        let mut send = send;
        let _ = send.finish();
        let body = counted(
            recv_body(Guarded {
                inner: recv,
                _guard: guard,
            }),
            session.bytes_counter("to_client"),
        );
        return headers::response(h.status, h.headers, body, false);
    }
    // A WebSocket lives as long as its grant does.
    session.watch(&ctx.access, &path);
    tokio::spawn(async move {
        let _guard = guard;
        match on_upgrade.await {
            Ok(upgraded) => {
                let client = copy::io_side(TokioIo::new(upgraded));
                let end = session.splice(client, copy::stream_side(send, recv)).await;
                tracing::debug!(?end, "upgraded connection ended");
            }
            Err(e) => tracing::debug!(error = %e, "client upgrade failed"),
        }
    });
    headers::response(101, h.headers, warren_transport::body::empty(), true)
}

/// A body whose data bytes are counted into `counter` as they pass.
fn counted(body: BoxBody, counter: prometheus_client::metrics::counter::Counter) -> BoxBody {
    use http_body_util::BodyExt;
    body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            counter.inc_by(data.len() as u64);
        }
        frame
    })
    .boxed_unsync()
}

/// A stream reader that keeps its connection's outstanding-stream count
/// up until the body is done.
struct Guarded<R> {
    inner: R,
    _guard: StreamGuard,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Guarded<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}
