//! Serving one data stream: read the typed header, match the ingress
//! rule, reach the origin, answer, then carry bytes.
//!
//! Every failure is answered on the stream with a typed
//! [`StreamResponse::Error`] whose message the edge shows to the client;
//! nothing here can take down the connection or the process.

use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Version};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use warren_proto::stream::{
    ErrorCode, Headers, HttpHead, HttpResponseHead, StreamRequest, StreamResponse, TcpRequest,
};
use warren_transport::body::{
    empty, headers_from_wire, headers_to_wire, recv_body, send_body, BodyError, BoxBody,
};
use warren_transport::framed::expect_frame;
use warren_transport::splice::{splice, QuicStream};

use crate::ingress::{IngressConfig, Rule, Service, SslMode};
use crate::origin::{http_client, origin_error, Dialer, HttpClient, OriginError, OriginStream};
use crate::pool::{Facts, Outstanding, Pool};

/// How long the edge has to send a stream's header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A loaded ingress config with its dialers, pooled clients and origin
/// pools, swapped whole on reload. Dropping it stops its pools' health
/// checks.
pub struct Runtime {
    pub ingress: IngressConfig,
    origins: Vec<RuleOrigin>,
    checkers: Vec<tokio::task::AbortHandle>,
    /// Certificates from the edge's CA for client TLS the connector
    /// terminates (PostgreSQL).
    certs: crate::certs::CertCache,
    /// The edge's identity-token keys, for `originRequest.access`.
    access_keys: crate::access::KeyCache,
}

/// How one rule reaches its origins.
enum RuleOrigin {
    /// The connector answers itself (`http_status`, `hello_world`).
    None,
    /// One origin (boxed: the HTTP client is large).
    Single(Box<SingleOrigin>),
    /// `service: pool`.
    Pool(Arc<Pool>),
}

/// The dialer and pooled HTTP client of a one-origin rule.
struct SingleOrigin {
    dialer: Dialer,
    client: HttpClient,
}

impl Runtime {
    /// Builds dialers and HTTP clients for every rule, and the pools of
    /// `service: pool` rules. Inside a tokio runtime it also starts one
    /// health-check task per pool, which runs until this `Runtime` is
    /// dropped. `base_dir` resolves relative `caPool` paths (the config
    /// file's directory).
    pub fn new(ingress: IngressConfig, base_dir: &Path) -> Result<Runtime, OriginError> {
        let mut origins = Vec::with_capacity(ingress.rules.len());
        for (index, rule) in ingress.rules.iter().enumerate() {
            if let Service::Postgres { .. } = &rule.service {
                match rule.origin_request.sslmode {
                    SslMode::Require => {
                        tracing::warn!(rule = index + 1, service = %rule.service, "sslmode: require encrypts the link to the database but does not check its certificate; use verify-full with caPool")
                    }
                    SslMode::Disable => {
                        tracing::error!(rule = index + 1, service = %rule.service, "sslmode: disable: the link from this connector to the database is NOT ENCRYPTED; anyone on that network can read and change it")
                    }
                    SslMode::VerifyFull | SslMode::VerifyCa => {}
                }
            }
            origins.push(match &rule.service {
                Service::Pool(pool) => {
                    RuleOrigin::Pool(Arc::new(Pool::new(index + 1, rule, pool, base_dir)?))
                }
                _ => match Dialer::for_rule(rule, base_dir)? {
                    Some(dialer) => {
                        let client = http_client(dialer.clone(), &rule.origin_request);
                        RuleOrigin::Single(Box::new(SingleOrigin { dialer, client }))
                    }
                    None => RuleOrigin::None,
                },
            });
        }
        let checkers = match tokio::runtime::Handle::try_current() {
            Ok(handle) => origins
                .iter()
                .filter_map(|o| match o {
                    RuleOrigin::Pool(pool) => {
                        Some(handle.spawn(pool.clone().check_forever()).abort_handle())
                    }
                    _ => None,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        Ok(Runtime {
            ingress,
            origins,
            checkers,
            certs: Default::default(),
            access_keys: Default::default(),
        })
    }

    /// How rule `index` (from [`IngressConfig::find`]) reaches its origins.
    fn origin(&self, index: usize) -> &RuleOrigin {
        self.origins.get(index).unwrap_or(&RuleOrigin::None)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for checker in &self.checkers {
            checker.abort();
        }
    }
}

fn error(code: ErrorCode, message: impl Into<String>) -> StreamResponse {
    StreamResponse::Error {
        code,
        message: message.into(),
    }
}

/// Serves one stream opened by the edge.
pub async fn serve_stream(
    rt: Arc<Runtime>,
    conn: quinn::Connection,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let header = match tokio::time::timeout(HEADER_TIMEOUT, expect_frame(&mut recv)).await {
        Ok(Ok(f)) => StreamRequest::decode(&f).map_err(|e| e.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no stream header in time".into()),
    };
    let req = match header {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "malformed stream header; closing that stream");
            let _ = send
                .write_all(
                    &error(
                        ErrorCode::BadRequest,
                        format!("malformed stream header: {e}"),
                    )
                    .encode(),
                )
                .await;
            let _ = send.finish();
            return;
        }
    };
    match req {
        StreamRequest::Http(head) => serve_http(&rt, &conn, head, send, recv).await,
        StreamRequest::WebSocket(head) => serve_upgrade(&rt, &conn, head, send, recv).await,
        StreamRequest::Tcp(t) => serve_tcp(&rt, &conn, t, send, recv).await,
    }
}

fn path_only(p: &str) -> &str {
    p.split('?').next().unwrap_or("/")
}

async fn respond(send: &mut quinn::SendStream, resp: StreamResponse) {
    let _ = send.write_all(&resp.encode()).await;
}

async fn respond_final(mut send: quinn::SendStream, resp: StreamResponse) {
    respond(&mut send, resp).await;
    let _ = send.finish();
}

/// Sends a complete small HTTP response.
async fn respond_page(mut send: quinn::SendStream, status: u16, headers: Headers, body: Bytes) {
    respond(
        &mut send,
        StreamResponse::Http(HttpResponseHead { status, headers }),
    )
    .await;
    if !body.is_empty() {
        let _ = send
            .write_all(&warren_proto::stream::BodyFrame::data_header(body.len()))
            .await;
        let _ = send.write_all(&body).await;
    }
    let _ = send
        .write_all(&warren_proto::stream::BodyFrame::encode_end())
        .await;
    let _ = send.finish();
}

fn classify(e: &hyper_util::client::legacy::Error) -> (ErrorCode, String) {
    use std::error::Error as _;
    if let Some(oe) = origin_error(e) {
        let code = match oe {
            OriginError::ConnectTimeout { .. } | OriginError::TlsTimeout { .. } => {
                ErrorCode::OriginTimeout
            }
            OriginError::Connect { .. } => ErrorCode::OriginUnreachable,
            OriginError::Tls { .. } | OriginError::TlsConfig(_) => ErrorCode::OriginTls,
        };
        return (code, oe.to_string());
    }
    let detail = e
        .source()
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.to_string());
    (
        ErrorCode::OriginProtocol,
        format!("the origin broke the HTTP exchange ({detail})"),
    )
}

fn build_request(
    head: &HttpHead,
    service: &Service,
    o: &crate::ingress::OriginRequest,
    body: BoxBody,
) -> Result<Request<BoxBody>, String> {
    let (scheme, authority) = match service {
        Service::Http {
            scheme_https,
            authority,
            ..
        } => (
            if *scheme_https { "https" } else { "http" },
            authority.clone(),
        ),
        Service::Unix { tls, .. } => (if *tls { "https" } else { "http" }, "localhost".to_owned()),
        _ => return Err("not an HTTP service".into()),
    };
    let uri = format!("{scheme}://{authority}{}", head.path);
    let mut req = Request::builder()
        .method(head.method.as_str())
        .uri(uri)
        .version(if o.http2_origin {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        })
        .body(body)
        .map_err(|e| format!("the request cannot be forwarded: {e}"))?;
    *req.headers_mut() = headers_from_wire(head.headers.clone());
    let host = o.http_host_header.as_deref().unwrap_or(&head.host);
    if !o.http2_origin {
        if let Ok(v) = HeaderValue::from_str(host) {
            req.headers_mut().insert(http::header::HOST, v);
        }
    }
    Ok(req)
}

async fn serve_http(
    rt: &Runtime,
    conn: &quinn::Connection,
    head: HttpHead,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let (idx, rule) = rt.ingress.find(&head.host, path_only(&head.path));
    let token = crate::access::http_assertion(&head.headers);
    if let Some(why) = access_refusal(rt, conn, idx, rule, &head.host, token).await {
        return respond_forbidden(send, why).await;
    }
    match &rule.service {
        Service::HttpStatus(code) => return respond_page(send, *code, vec![], Bytes::new()).await,
        Service::HelloWorld => {
            let (status, headers, body) = crate::hello::respond(&head);
            return respond_page(send, status, headers, body).await;
        }
        Service::Tcp { .. } | Service::Postgres { .. } => {
            return respond_final(send, tcp_only(&head.host)).await
        }
        Service::Pool(pool) if pool.is_tcp() => {
            return respond_final(send, tcp_only(&head.host)).await
        }
        Service::Http { .. } | Service::Unix { .. } | Service::Pool(_) => {}
    }
    // Without a body, `recv` stays open (unread) until the answer is sent.
    let (body_recv, _idle_recv) = if head.has_body {
        (Some(recv), None)
    } else {
        (None, Some(recv))
    };
    let (resp, _outstanding) = match rt.origin(idx) {
        RuleOrigin::Single(single) => {
            let body = body_recv.map_or_else(empty, recv_body);
            let req = match build_request(&head, &rule.service, &rule.origin_request, body) {
                Ok(r) => r,
                Err(e) => return respond_final(send, error(ErrorCode::BadRequest, e)).await,
            };
            match single.client.request(req).await {
                Ok(r) => (r, None),
                Err(e) => {
                    let (code, message) = classify(&e);
                    tracing::info!(host = %head.host, rule = idx + 1, %message, "origin request failed");
                    return respond_final(send, error(code, message)).await;
                }
            }
        }
        RuleOrigin::Pool(pool) => match pool_request(pool, idx, rule, &head, body_recv).await {
            Ok((r, outstanding)) => (r, Some(outstanding)),
            Err(answer) => return respond_final(send, answer).await,
        },
        RuleOrigin::None => {
            return respond_final(
                send,
                error(ErrorCode::Internal, "the rule has no origin client"),
            )
            .await
        }
    };
    let (parts, body) = resp.into_parts();
    let mut send = send;
    respond(
        &mut send,
        StreamResponse::Http(HttpResponseHead {
            status: parts.status.as_u16(),
            headers: headers_to_wire(&parts.headers),
        }),
    )
    .await;
    match send_body(body, &mut send).await {
        Ok(_) => {
            let _ = send.finish();
        }
        Err(e) => {
            tracing::debug!(error = %e, "response body not fully sent");
            let _ = send.reset(quinn::VarInt::from_u32(1));
        }
    }
}

/// `originRequest.access.required`: verifies the edge's signed identity
/// (`token`, empty when none came) before any origin is reached. `None`
/// lets the stream go on; `Some` is the refusal sentence, already logged.
async fn access_refusal(
    rt: &Runtime,
    conn: &quinn::Connection,
    idx: usize,
    rule: &Rule,
    host: &str,
    token: &[u8],
) -> Option<String> {
    let access = rule.origin_request.access.as_ref().filter(|a| a.required)?;
    let verified = rt.access_keys.verify(token, host, &access.aud_tags, conn);
    match verified.await {
        Ok(who) => {
            tracing::debug!(%host, rule = idx + 1, sub = %who.sub, kind = %who.kind, "access token verified");
            None
        }
        Err(reason) => {
            tracing::warn!(%host, rule = idx + 1, %reason, "refused a stream without a valid access token (originRequest.access.required)");
            Some(format!(
                "the connector requires a valid Warren access token for {host} \
                 (originRequest.access.required): {reason}"
            ))
        }
    }
}

/// A 403 page from the connector itself, for HTTP and WebSocket requests
/// refused by [`access_refusal`].
async fn respond_forbidden(send: quinn::SendStream, why: String) {
    let mut sentence = why;
    if let Some(first) = sentence.get(..1) {
        let upper = first.to_ascii_uppercase();
        sentence.replace_range(..1, &upper);
    }
    let headers = vec![
        (
            "content-type".to_owned(),
            b"text/plain; charset=utf-8".to_vec(),
        ),
        ("warren-error".to_owned(), b"access-token-required".to_vec()),
    ];
    respond_page(send, 403, headers, Bytes::from(format!("{sentence}.\n"))).await
}

/// The answer to an HTTP request for a hostname served over TCP.
fn tcp_only(host: &str) -> StreamResponse {
    error(
        ErrorCode::NoService,
        format!(
            "{host} is served by a TCP service, not HTTP; reach it with `warren access tcp \
             --hostname {host}`"
        ),
    )
}

/// Sends a request to a healthy origin of `pool`. When the origin cannot
/// be connected to (so nothing was sent), the failure counts against it
/// and the request goes once more to another healthy origin, body
/// included. The [`Outstanding`] guard must live as long as the exchange.
async fn pool_request(
    pool: &Arc<Pool>,
    idx: usize,
    rule: &Rule,
    head: &HttpHead,
    mut body_recv: Option<quinn::RecvStream>,
) -> Result<(Response<Incoming>, Outstanding), StreamResponse> {
    let facts = Facts {
        headers: &head.headers,
        client_addr: &head.client.addr,
    };
    let has_body = body_recv.is_some();
    let mut failed: Option<(usize, StreamResponse)> = None;
    for _attempt in 0..2 {
        let Some(pick) = pool.pick(&facts, failed.as_ref().map(|(i, _)| *i)) else {
            break;
        };
        let outstanding = pool.acquire(pick);
        let member = pool.member(pick);
        let Some(client) = &member.client else {
            return Err(error(ErrorCode::Internal, "the pool has no HTTP client"));
        };
        let (body, reclaim) = match body_recv.take() {
            Some(recv) => {
                let (body, reclaim) = ReclaimableBody::new(recv);
                (body.boxed_unsync(), Some(reclaim))
            }
            None => (empty(), None),
        };
        let req = build_request(head, &member.service, &rule.origin_request, body)
            .map_err(|e| error(ErrorCode::BadRequest, e))?;
        match client.request(req).await {
            Ok(resp) => return Ok((resp, outstanding)),
            Err(e) => {
                let (code, message) = classify(&e);
                tracing::info!(host = %head.host, rule = idx + 1, origin = %member.name, %message, "pool origin request failed");
                if !origin_error(&e).is_some_and(OriginError::is_connect_failure) {
                    return Err(error(code, message));
                }
                pool.record_failure(pick, &message);
                body_recv =
                    reclaim.and_then(|r| r.lock().unwrap_or_else(PoisonError::into_inner).take());
                if has_body && body_recv.is_none() {
                    return Err(error(code, message));
                }
                failed = Some((pick, error(code, message)));
            }
        }
    }
    Err(match failed {
        Some((_, answer)) => answer,
        None => error(ErrorCode::NoHealthyOrigin, pool.unavailable(&head.host)),
    })
}

/// Dials a healthy origin of a TCP `pool`, and once more another one if
/// that fails. The [`Outstanding`] guard must live as long as the
/// connection.
async fn pool_dial(
    pool: &Arc<Pool>,
    idx: usize,
    t: &TcpRequest,
) -> Result<(OriginStream, Outstanding), StreamResponse> {
    let facts = Facts {
        headers: &[],
        client_addr: &t.client.addr,
    };
    let mut failed: Option<(usize, StreamResponse)> = None;
    for _attempt in 0..2 {
        let Some(pick) = pool.pick(&facts, failed.as_ref().map(|(i, _)| *i)) else {
            break;
        };
        let outstanding = pool.acquire(pick);
        let member = pool.member(pick);
        match member.dialer.dial().await {
            Ok(stream) => return Ok((stream, outstanding)),
            Err(e) => {
                tracing::info!(host = %t.host, rule = idx + 1, origin = %member.name, error = %e, "pool TCP origin unreachable");
                pool.record_failure(pick, &e.to_string());
                failed = Some((pick, error(dial_error_code(&e), e.to_string())));
            }
        }
    }
    Err(match failed {
        Some((_, answer)) => answer,
        None => error(ErrorCode::NoHealthyOrigin, pool.unavailable(&t.host)),
    })
}

fn dial_error_code(e: &OriginError) -> ErrorCode {
    match e {
        OriginError::ConnectTimeout { .. } => ErrorCode::OriginTimeout,
        _ => ErrorCode::OriginUnreachable,
    }
}

/// A request body read from the tunnel stream that hands the stream back
/// (through the slot from [`ReclaimableBody::new`]) if it is dropped
/// before its first poll: a request that never reached its origin can then
/// be sent to another one, body and all.
struct ReclaimableBody {
    recv: Option<quinn::RecvStream>,
    body: Option<BoxBody>,
    slot: Arc<Mutex<Option<quinn::RecvStream>>>,
}

impl ReclaimableBody {
    fn new(recv: quinn::RecvStream) -> (Self, Arc<Mutex<Option<quinn::RecvStream>>>) {
        let slot = Arc::new(Mutex::new(None));
        let body = ReclaimableBody {
            recv: Some(recv),
            body: None,
            slot: slot.clone(),
        };
        (body, slot)
    }
}

impl Body for ReclaimableBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Some(recv) = this.recv.take() {
            this.body = Some(recv_body(recv));
        }
        match &mut this.body {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }
}

impl Drop for ReclaimableBody {
    fn drop(&mut self) {
        if let Some(recv) = self.recv.take() {
            *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(recv);
        }
    }
}

async fn serve_upgrade(
    rt: &Runtime,
    conn: &quinn::Connection,
    head: HttpHead,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let (idx, rule) = rt.ingress.find(&head.host, path_only(&head.path));
    let token = crate::access::http_assertion(&head.headers);
    if let Some(why) = access_refusal(rt, conn, idx, rule, &head.host, token).await {
        return respond_forbidden(send, why).await;
    }
    let no_upgrades = || {
        error(
            ErrorCode::NoService,
            format!(
                "the service for {} does not accept WebSocket upgrades",
                head.host
            ),
        )
    };
    if rule.origin_request.http2_origin {
        return respond_final(send, no_upgrades()).await;
    }
    let (mut resp, _outstanding) = match (&rule.service, rt.origin(idx)) {
        (Service::Http { .. } | Service::Unix { .. }, RuleOrigin::Single(single)) => {
            let req = match build_request(&head, &rule.service, &rule.origin_request, empty()) {
                Ok(r) => r,
                Err(e) => return respond_final(send, error(ErrorCode::BadRequest, e)).await,
            };
            match single.client.request(req).await {
                Ok(r) => (r, None),
                Err(e) => {
                    let (code, message) = classify(&e);
                    return respond_final(send, error(code, message)).await;
                }
            }
        }
        (Service::Pool(p), RuleOrigin::Pool(pool)) if !p.is_tcp() => {
            match pool_request(pool, idx, rule, &head, None).await {
                Ok((r, outstanding)) => (r, Some(outstanding)),
                Err(answer) => return respond_final(send, answer).await,
            }
        }
        _ => return respond_final(send, no_upgrades()).await,
    };
    let mut send = send;
    let status = resp.status().as_u16();
    respond(
        &mut send,
        StreamResponse::Http(HttpResponseHead {
            status,
            headers: headers_to_wire(resp.headers()),
        }),
    )
    .await;
    if status != 101 {
        let body = resp.into_body().map_err(|e| e.to_string());
        if send_body(body, &mut send).await.is_ok() {
            let _ = send.finish();
        }
        return;
    }
    match hyper::upgrade::on(&mut resp).await {
        Ok(upgraded) => {
            let mut origin = TokioIo::new(upgraded);
            let mut tunnel = QuicStream::new(send, recv);
            let _ = splice(&mut tunnel, &mut origin).await;
        }
        Err(e) => tracing::debug!(error = %e, "origin upgrade failed"),
    }
}

async fn serve_tcp(
    rt: &Runtime,
    conn: &quinn::Connection,
    t: TcpRequest,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let (idx, rule) = rt.ingress.find(&t.host, "/");
    let token = t.assertion.as_bytes();
    if let Some(why) = access_refusal(rt, conn, idx, rule, &t.host, token).await {
        // No HTTP answer on a TCP stream: the edge shows the message.
        return respond_final(send, error(ErrorCode::BadRequest, why)).await;
    }
    if let (Service::Postgres { .. }, RuleOrigin::Single(single)) = (&rule.service, rt.origin(idx))
    {
        let mut send = send;
        respond(&mut send, StreamResponse::Connected).await;
        let tunnel = QuicStream::new(send, recv);
        let pg = crate::postgres::PgCtx {
            host: &t.host,
            client: &t.client.addr,
            dialer: &single.dialer,
            certs: &rt.certs,
            conn,
            session: &t.session,
            statement_log: t.statement_log,
            edge_tls: t.client.scheme == "postgres+tls",
        };
        pg.serve(tunnel).await;
        return;
    }
    let (mut origin, _outstanding) = match (&rule.service, rt.origin(idx)) {
        (Service::Tcp { .. } | Service::Unix { tls: false, .. }, RuleOrigin::Single(single)) => {
            match single.dialer.dial().await {
                Ok(s) => (s, None),
                Err(e) => {
                    tracing::info!(host = %t.host, rule = idx + 1, error = %e, "TCP origin unreachable");
                    return respond_final(send, error(dial_error_code(&e), e.to_string())).await;
                }
            }
        }
        (Service::Pool(p), RuleOrigin::Pool(pool)) if p.is_tcp() => {
            match pool_dial(pool, idx, &t).await {
                Ok((s, outstanding)) => (s, Some(outstanding)),
                Err(answer) => return respond_final(send, answer).await,
            }
        }
        (svc, _) => {
            return respond_final(
                send,
                error(
                    ErrorCode::NoService,
                    format!("{} is served by {svc}, which is not a TCP service; add a tcp:// ingress rule for it", t.host),
                ),
            )
            .await
        }
    };
    if let Some(v) = rule.origin_request.proxy_protocol {
        if let (Ok(client), Some(dest)) = (t.client.addr.parse(), origin.peer_addr()) {
            let header = crate::proxy_protocol::header(v, client, dest);
            if let Err(e) = origin.write_all(&header).await {
                return respond_final(
                    send,
                    error(
                        ErrorCode::OriginUnreachable,
                        format!("writing the PROXY header: {e}"),
                    ),
                )
                .await;
            }
        }
    }
    let mut send = send;
    respond(&mut send, StreamResponse::Connected).await;
    let mut tunnel = QuicStream::new(send, recv);
    match splice(&mut tunnel, &mut origin).await {
        Ok(t) => tracing::debug!(up = t.a_to_b, down = t.b_to_a, "TCP stream ended"),
        Err(e) => tracing::debug!(error = %e, "TCP stream ended with an error"),
    }
}
