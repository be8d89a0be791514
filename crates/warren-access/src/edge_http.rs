//! One HTTPS request to the edge for a hostname (`/.warren/...` paths),
//! with the caller's credentials: used by `access pg-cert` and by `access
//! tcp`'s check whether it must sign in first.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::{AccessError, Credentials};

/// Largest answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// An answer from the edge.
pub struct Answer {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The sentence of an edge error page.
    pub fn sentence(&self) -> String {
        crate::page_sentence(&String::from_utf8_lossy(&self.body))
    }
}

/// `method path` on `https://hostname/` through the edge at `edge`.
pub async fn request(
    hostname: &str,
    edge: &str,
    tls: Arc<rustls::ClientConfig>,
    credentials: &Credentials,
    method: http::Method,
    path: &str,
    body: Bytes,
) -> Result<Answer, AccessError> {
    let tcp = TcpStream::connect(edge)
        .await
        .map_err(|source| AccessError::Connect {
            edge: edge.to_owned(),
            source,
        })?;
    let name = ServerName::try_from(hostname.to_owned())
        .map_err(|_| AccessError::BadHostname(hostname.to_owned()))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|source| AccessError::Tls {
            edge: edge.to_owned(),
            source,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| AccessError::WebSocket(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, hostname)
        .body(Full::new(body))
        .map_err(|e| AccessError::Io(std::io::Error::other(e.to_string())))?;
    credentials.apply(req.headers_mut())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| AccessError::WebSocket(e.to_string()))?;
    let (parts, body) = resp.into_parts();
    let body = Limited::new(body, MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| AccessError::Io(std::io::Error::other(format!("reading the answer: {e}"))))?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
