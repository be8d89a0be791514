//! Everything the connector answers on a stream it could not serve as
//! asked, in one place: [`StreamResponse::Error`] codes with the sentence
//! the edge shows the client, and the connector's own small pages (a 403
//! when `originRequest.access` refuses an HTTP request).

use bytes::Bytes;
use warren_proto::stream::{ErrorCode, Headers, HttpResponseHead, StreamResponse};
use warren_transport::SendStream;

use crate::access::TokenRefusal;
use crate::origin::{origin_error, OriginError};

/// How a stream was answered: what its metrics count it as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a stream's answer is what its metrics count"]
pub(crate) struct Answered(&'static str);

impl Answered {
    fn of(resp: &StreamResponse) -> Answered {
        Answered(match resp {
            StreamResponse::Connected => "connected",
            StreamResponse::Http(h) => warren_transport::metrics::status_class(h.status),
            StreamResponse::Error { code, .. } => code.as_str(),
            StreamResponse::ConfigStatus { applied: true, .. } => "applied",
            StreamResponse::ConfigStatus { applied: false, .. } => "not_applied",
        })
    }

    /// The `outcome` label.
    pub(crate) fn outcome(self) -> &'static str {
        self.0
    }
}

/// An error answer.
pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> StreamResponse {
    StreamResponse::Error {
        code,
        message: message.into(),
    }
}

/// Writes an answer; more follows on the stream.
pub(crate) async fn respond(send: &mut SendStream, resp: StreamResponse) -> Answered {
    let _ = send.write_all(&resp.encode()).await;
    Answered::of(&resp)
}

/// Writes an answer and ends the stream.
pub(crate) async fn respond_final(mut send: SendStream, resp: StreamResponse) -> Answered {
    let answered = respond(&mut send, resp).await;
    let _ = send.finish();
    answered
}

/// Sends a complete small HTTP response.
pub(crate) async fn respond_page(
    mut send: SendStream,
    status: u16,
    headers: Headers,
    body: Bytes,
) -> Answered {
    let answered = respond(
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
    answered
}

/// A 403 page from the connector itself, for HTTP and WebSocket requests
/// `originRequest.access` refused.
pub(crate) async fn respond_forbidden(send: SendStream, refusal: &TokenRefusal) -> Answered {
    let mut sentence = refusal.to_string();
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

/// The same refusal on a TCP stream, which has no page: the edge shows the
/// sentence.
pub(crate) fn token_refused(refusal: &TokenRefusal) -> StreamResponse {
    error(ErrorCode::BadRequest, refusal.to_string())
}

/// The answer to an HTTP request for a hostname served over TCP.
pub(crate) fn tcp_only(host: &str) -> StreamResponse {
    error(
        ErrorCode::NoService,
        format!(
            "{host} is served by a TCP service, not HTTP; reach it with `warren access tcp \
             --hostname {host}`"
        ),
    )
}

/// The code for an origin that could not be dialled.
fn dial_code(e: &OriginError) -> ErrorCode {
    match e {
        OriginError::ConnectTimeout { .. } | OriginError::TlsTimeout { .. } => {
            ErrorCode::OriginTimeout
        }
        OriginError::Tls { .. } | OriginError::TlsConfig(_) => ErrorCode::OriginTls,
        OriginError::Connect { .. } => ErrorCode::OriginUnreachable,
    }
}

/// The answer for an origin that could not be dialled.
pub(crate) fn dial_failed(e: &OriginError) -> StreamResponse {
    error(dial_code(e), e.to_string())
}

/// The code and sentence for an HTTP request the origin did not answer.
pub(crate) fn classify_request(e: &hyper_util::client::legacy::Error) -> (ErrorCode, String) {
    use std::error::Error as _;
    if let Some(oe) = origin_error(e) {
        return (dial_code(oe), oe.to_string());
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

/// The answer for an HTTP request the origin did not answer.
pub(crate) fn request_failed(e: &hyper_util::client::legacy::Error) -> StreamResponse {
    let (code, message) = classify_request(e);
    error(code, message)
}

/// The answer for a request that cannot be turned into one to the origin.
pub(crate) fn unforwardable(e: &::http::Error) -> StreamResponse {
    error(
        ErrorCode::BadRequest,
        format!("the request cannot be forwarded: {e}"),
    )
}
