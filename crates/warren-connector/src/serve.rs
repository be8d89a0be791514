//! Serving one data stream: read the typed header, match the ingress
//! rule, reach the origin, answer, then carry bytes.
//!
//! Every failure is answered on the stream with a typed
//! [`StreamResponse::Error`] whose message the edge shows to the client;
//! nothing here can take down the connection or the process.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Version};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use warren_proto::stream::{
    ErrorCode, Headers, HttpHead, HttpResponseHead, StreamRequest, StreamResponse, TcpRequest,
};
use warren_transport::body::{
    empty, headers_from_wire, headers_to_wire, recv_body, send_body, BoxBody,
};
use warren_transport::framed::expect_frame;
use warren_transport::splice::{splice, QuicStream};

use crate::ingress::{IngressConfig, Service};
use crate::origin::{http_client, Dialer, HttpClient, OriginError};

/// How long the edge has to send a stream's header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A loaded ingress config with its dialers and pooled clients, swapped
/// whole on reload.
pub struct Runtime {
    pub ingress: IngressConfig,
    origins: Vec<Option<(Dialer, HttpClient)>>,
}

impl Runtime {
    /// Builds dialers and HTTP clients for every rule. `base_dir` resolves
    /// relative `caPool` paths (the config file's directory).
    pub fn new(ingress: IngressConfig, base_dir: &Path) -> Result<Runtime, OriginError> {
        let origins = ingress
            .rules
            .iter()
            .map(|r| {
                Ok(Dialer::for_rule(r, base_dir)?.map(|d| {
                    let client = http_client(d.clone(), &r.origin_request);
                    (d, client)
                }))
            })
            .collect::<Result<_, OriginError>>()?;
        Ok(Runtime { ingress, origins })
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
        StreamRequest::Http(head) => serve_http(&rt, head, send, recv).await,
        StreamRequest::WebSocket(head) => serve_upgrade(&rt, head, send, recv).await,
        StreamRequest::Tcp(t) => serve_tcp(&rt, t, send, recv).await,
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
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(oe) = s.downcast_ref::<OriginError>() {
            let code = match oe {
                OriginError::ConnectTimeout { .. } | OriginError::TlsTimeout { .. } => {
                    ErrorCode::OriginTimeout
                }
                OriginError::Connect { .. } => ErrorCode::OriginUnreachable,
                OriginError::Tls { .. } | OriginError::TlsConfig(_) => ErrorCode::OriginTls,
            };
            return (code, oe.to_string());
        }
        src = s.source();
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
    head: HttpHead,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let (idx, rule) = rt.ingress.find(&head.host, path_only(&head.path));
    match &rule.service {
        Service::HttpStatus(code) => return respond_page(send, *code, vec![], Bytes::new()).await,
        Service::HelloWorld => {
            let (status, headers, body) = crate::hello::respond(&head);
            return respond_page(send, status, headers, body).await;
        }
        Service::Tcp { .. } => {
            return respond_final(
                send,
                error(
                    ErrorCode::NoService,
                    format!("{} is served by a TCP service, not HTTP; reach it with `warren access tcp --hostname {}`", head.host, head.host),
                ),
            )
            .await
        }
        Service::Http { .. } | Service::Unix { .. } => {}
    }
    let Some((_, client)) = &rt.origins[idx] else {
        return respond_final(
            send,
            error(ErrorCode::Internal, "the rule has no origin client"),
        )
        .await;
    };
    let body = if head.has_body {
        recv_body(recv)
    } else {
        empty()
    };
    let req = match build_request(&head, &rule.service, &rule.origin_request, body) {
        Ok(r) => r,
        Err(e) => return respond_final(send, error(ErrorCode::BadRequest, e)).await,
    };
    let resp = match client.request(req).await {
        Ok(r) => r,
        Err(e) => {
            let (code, message) = classify(&e);
            tracing::info!(host = %head.host, rule = idx + 1, %message, "origin request failed");
            return respond_final(send, error(code, message)).await;
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

async fn serve_upgrade(
    rt: &Runtime,
    head: HttpHead,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let (idx, rule) = rt.ingress.find(&head.host, path_only(&head.path));
    let client = match (&rule.service, &rt.origins[idx]) {
        (Service::Http { .. } | Service::Unix { .. }, Some((_, c)))
            if !rule.origin_request.http2_origin =>
        {
            c
        }
        _ => {
            return respond_final(
                send,
                error(
                    ErrorCode::NoService,
                    format!(
                        "the service for {} does not accept WebSocket upgrades",
                        head.host
                    ),
                ),
            )
            .await
        }
    };
    let req = match build_request(&head, &rule.service, &rule.origin_request, empty()) {
        Ok(r) => r,
        Err(e) => return respond_final(send, error(ErrorCode::BadRequest, e)).await,
    };
    let mut resp = match client.request(req).await {
        Ok(r) => r,
        Err(e) => {
            let (code, message) = classify(&e);
            return respond_final(send, error(code, message)).await;
        }
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

async fn serve_tcp(rt: &Runtime, t: TcpRequest, send: quinn::SendStream, recv: quinn::RecvStream) {
    let (idx, rule) = rt.ingress.find(&t.host, "/");
    let dialer = match (&rule.service, &rt.origins[idx]) {
        (Service::Tcp { .. } | Service::Unix { tls: false, .. }, Some((d, _))) => d,
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
    let mut origin = match dialer.dial().await {
        Ok(s) => s,
        Err(e) => {
            let code = match e {
                OriginError::ConnectTimeout { .. } => ErrorCode::OriginTimeout,
                _ => ErrorCode::OriginUnreachable,
            };
            tracing::info!(host = %t.host, rule = idx + 1, error = %e, "TCP origin unreachable");
            return respond_final(send, error(code, e.to_string())).await;
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
