//! HTTP requests and upgrades: the pooled client of the rule's origin (or
//! of a healthy member of its pool), the response head as a typed answer,
//! the body as frames; an upgrade answered 101 becomes raw bytes.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Version};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use warren_proto::retry::{Failure, RetryBudget, RetryLimits, Verdict};
use warren_proto::stream::{ErrorCode, HttpHead, HttpResponseHead, StreamResponse};
use warren_transport::body::{
    empty, headers_from_wire, headers_to_wire, recv_body, send_body, BodyError, BoxBody,
};
use warren_transport::copy::{self, Traffic};
use warren_transport::{RecvStream, SendStream, TunnelConnection};

use super::respond::Answered;
use super::respond::{
    self, error, respond, respond_final, respond_forbidden, respond_page, tcp_only,
};
use super::{admit, Admitted, RuleOrigin, Runtime};
use crate::access::TokenRefusal;
use crate::ingress::{Rule, Service};
use crate::origin::{origin_error, OriginError};
use crate::pool::{Facts, Outstanding, Pool};

/// The request to the origin for `head`, or why it cannot be made.
fn build_request(
    head: &HttpHead,
    service: &Service,
    o: &crate::ingress::OriginRequest,
    body: BoxBody,
) -> Result<Request<BoxBody>, StreamResponse> {
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
        _ => {
            return Err(error(
                ErrorCode::Internal,
                "the rule is not an HTTP service",
            ))
        }
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
        .map_err(|e| respond::unforwardable(&e))?;
    *req.headers_mut() = headers_from_wire(head.headers.clone());
    let host = o.http_host_header.as_deref().unwrap_or(&head.host);
    if !o.http2_origin {
        if let Ok(v) = HeaderValue::from_str(host) {
            req.headers_mut().insert(http::header::HOST, v);
        }
    }
    Ok(req)
}

/// The admit phase for an HTTP request or upgrade: its token is the
/// assertion header the edge added.
async fn admit_http<'a>(
    rt: &'a Runtime,
    conn: &TunnelConnection,
    head: &HttpHead,
) -> Result<Admitted<'a>, TokenRefusal> {
    let token = crate::access::http_assertion(&head.headers);
    admit(rt, conn, &head.host, &head.path, token).await
}

/// An HTTP request: the origin's response head, then its body as frames.
pub(super) async fn serve_http(
    rt: &Runtime,
    conn: &TunnelConnection,
    head: HttpHead,
    send: SendStream,
    recv: RecvStream,
) -> Answered {
    let Admitted {
        index: idx,
        rule,
        origin,
    } = match admit_http(rt, conn, &head).await {
        Ok(a) => a,
        Err(refusal) => return respond_forbidden(send, &refusal).await,
    };
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
        Service::Unsupported(mode) => {
            return respond_final(send, error(ErrorCode::NoService, mode.answer(&head.host))).await
        }
        Service::Http { .. } | Service::Unix { .. } | Service::Pool(_) => {}
    }
    // Without a body, `recv` stays open (unread) until the answer is sent.
    let (body_recv, _idle_recv) = if head.has_body {
        (Some(recv), None)
    } else {
        (None, Some(recv))
    };
    let (resp, _outstanding) = match origin {
        RuleOrigin::Single(single) => {
            let body = body_recv.map_or_else(empty, recv_body);
            let req = match build_request(&head, &rule.service, &rule.origin_request, body) {
                Ok(r) => r,
                Err(answer) => return respond_final(send, answer).await,
            };
            match single.client.request(req).await {
                Ok(r) => (r, None),
                Err(e) => {
                    let (code, message) = respond::classify_request(&e);
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
    let answered = respond(
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
            send.reset(warren_proto::close::ResetCode::BodyIncomplete);
        }
    }
    answered
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
    mut body_recv: Option<RecvStream>,
) -> Result<(Response<Incoming>, Outstanding), StreamResponse> {
    let facts = Facts {
        headers: &head.headers,
        client_addr: &head.client.addr,
    };
    let has_body = body_recv.is_some();
    let mut budget = RetryBudget::new(RetryLimits::ORIGIN_POOL);
    let mut failed: Option<(usize, StreamResponse)> = None;
    while let Some(pick) = pool.pick(&facts, failed.as_ref().map(|(i, _)| *i)) {
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
        let req = build_request(head, &member.service, &rule.origin_request, body)?;
        match client.request(req).await {
            Ok(resp) => return Ok((resp, outstanding)),
            Err(e) => {
                let (code, message) = respond::classify_request(&e);
                tracing::info!(host = %head.host, rule = idx + 1, origin = %member.name, %message, "pool origin request failed");
                let answer = error(code, message.clone());
                // Nothing was sent to an origin that could not be
                // connected to: that one is marked and another tried.
                let failure = if origin_error(&e).is_some_and(OriginError::is_connect_failure) {
                    pool.record_failure(pick, &message);
                    Failure::Unreached
                } else {
                    Failure::Broken
                };
                body_recv =
                    reclaim.and_then(|r| r.lock().unwrap_or_else(PoisonError::into_inner).take());
                // A body already read cannot be sent again.
                if has_body && body_recv.is_none() {
                    return Err(answer);
                }
                match budget.on_failure(failure, false) {
                    Verdict::Retry(_) => failed = Some((pick, answer)),
                    Verdict::GiveUp(_) => return Err(answer),
                }
            }
        }
    }
    Err(match failed {
        Some((_, answer)) => answer,
        None => error(ErrorCode::NoHealthyOrigin, pool.unavailable(&head.host)),
    })
}

/// A request body read from the tunnel stream that hands the stream back
/// (through the slot from [`ReclaimableBody::new`]) if it is dropped
/// before its first poll: a request that never reached its origin can then
/// be sent to another one, body and all.
struct ReclaimableBody {
    recv: Option<RecvStream>,
    body: Option<BoxBody>,
    slot: Arc<Mutex<Option<RecvStream>>>,
}

impl ReclaimableBody {
    fn new(recv: RecvStream) -> (Self, Arc<Mutex<Option<RecvStream>>>) {
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

/// A WebSocket (any HTTP/1.1 upgrade): the origin's answer; on 101 raw
/// bytes both ways.
pub(super) async fn serve_upgrade(
    rt: &Runtime,
    conn: &TunnelConnection,
    head: HttpHead,
    send: SendStream,
    recv: RecvStream,
) -> Answered {
    let Admitted {
        index: idx,
        rule,
        origin,
    } = match admit_http(rt, conn, &head).await {
        Ok(a) => a,
        Err(refusal) => return respond_forbidden(send, &refusal).await,
    };
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
    let (mut resp, _outstanding) = match (&rule.service, origin) {
        (Service::Http { .. } | Service::Unix { .. }, RuleOrigin::Single(single)) => {
            let req = match build_request(&head, &rule.service, &rule.origin_request, empty()) {
                Ok(r) => r,
                Err(answer) => return respond_final(send, answer).await,
            };
            match single.client.request(req).await {
                Ok(r) => (r, None),
                Err(e) => return respond_final(send, respond::request_failed(&e)).await,
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
    let answered = respond(
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
        return answered;
    }
    match hyper::upgrade::on(&mut resp).await {
        Ok(upgraded) => {
            let origin = copy::io_side(TokioIo::new(upgraded));
            let tunnel = copy::stream_side(send, recv);
            let end =
                copy::splice(tunnel, origin, &Traffic::default(), std::future::pending()).await;
            tracing::debug!(?end, "upgraded connection ended");
        }
        Err(e) => tracing::debug!(error = %e, "origin upgrade failed"),
    }
    answered
}
