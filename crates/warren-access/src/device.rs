//! `warren access login --device`: signing in from a host without a
//! browser.
//!
//! Where the identity provider offers the device authorization grant (RFC
//! 8628), the edge runs it: [`login`] asks `POST /.warren/device/start`
//! for a user code and where to enter it, shows them, and polls `POST
//! /.warren/device/poll` at the interval the edge gives until the user has
//! signed in elsewhere (or refused, or the code expired). Where it does
//! not, [`login`] falls back to a URL to open on any machine,
//! `https://HOST/.warren/login?cli=paste`, whose last page shows a
//! one-time code; the user pastes it here and it is exchanged at `POST
//! /.warren/device/redeem` for the token. Either way the token is cached
//! like the browser sign-in's ([`crate::login::store`]) and never printed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncBufRead;

use crate::edge_http::{self, Answer};
use crate::login::{parse_url, store, LoginError};
use crate::Credentials;

/// Where the device sign-in starts.
pub const START_PATH: &str = "/.warren/device/start";
/// Where it is polled.
pub const POLL_PATH: &str = "/.warren/device/poll";
/// Where a pasted code is exchanged for the token.
pub const REDEEM_PATH: &str = "/.warren/device/redeem";
/// How long one request to the edge may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pasted line read.
const MAX_PASTE: usize = 1024;

/// What to show the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Enter `user_code` at `verification_uri` (or open
    /// `verification_uri_complete`, which carries it).
    Device {
        user_code: String,
        verification_uri: String,
        verification_uri_complete: Option<String>,
        expires_in: Duration,
    },
    /// The provider has no device grant: open `url` anywhere, then paste
    /// the code its last page shows.
    Paste { url: String },
}

/// One answer of the poll endpoint, read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Poll {
    /// Not yet; ask again after this long.
    Wait(Duration),
    /// Signed in.
    Token(String),
}

/// The sentence of an edge's JSON error answer, or of whatever came.
fn refused(a: &Answer) -> LoginError {
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
    let message = v["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| a.sentence());
    LoginError::Refused {
        status: a.status.as_u16(),
        message,
    }
}

/// Reads a poll (or redeem) answer.
pub(crate) fn read_poll(a: &Answer) -> Result<Poll, LoginError> {
    if !a.status.is_success() {
        return Err(refused(a));
    }
    let v: serde_json::Value = serde_json::from_slice(&a.body)
        .map_err(|e| LoginError::BadAnswer(format!("the answer is not JSON ({e})")))?;
    let interval = || Duration::from_secs(v["interval"].as_u64().unwrap_or(5).clamp(1, 60));
    match v["status"].as_str() {
        Some("pending" | "slow_down") => Ok(Poll::Wait(interval())),
        Some("signed_in") => v["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(|t| Poll::Token(t.to_owned()))
            .ok_or_else(|| LoginError::BadAnswer("the sign-in answer has no token".into())),
        other => Err(LoginError::BadAnswer(format!(
            "the answer's status is {other:?}"
        ))),
    }
}

/// The edge at `edge`, for `host`.
struct Edge<'a> {
    host: &'a str,
    edge: &'a str,
    tls: Arc<rustls::ClientConfig>,
}

impl Edge<'_> {
    async fn post(&self, path: &str, body: serde_json::Value) -> Result<Answer, LoginError> {
        let fut = edge_http::request(
            self.host,
            self.edge,
            self.tls.clone(),
            &Credentials::None,
            http::Method::POST,
            path,
            Bytes::from(body.to_string()),
        );
        match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(r) => r.map_err(LoginError::Edge),
            Err(_) => Err(LoginError::EdgeTimeout {
                edge: self.edge.to_owned(),
                after: REQUEST_TIMEOUT,
            }),
        }
    }
}

/// Signs in to `url` without a browser here, through the edge at `edge`
/// (`host:port`) with `tls`: `show` is called once with what to tell the
/// user; `paste` is where a pasted code is read from (stdin) if the
/// fallback is needed. Waits up to `timeout`; caches and returns the
/// token.
pub async fn login<R: AsyncBufRead + Unpin>(
    url: &str,
    edge: &str,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    show: impl FnOnce(&Prompt),
    paste: R,
) -> Result<String, LoginError> {
    let (host, authority) = parse_url(url)?;
    let edge = Edge {
        host: &host,
        edge,
        tls,
    };
    let run = async {
        let started = edge.post(START_PATH, serde_json::json!({})).await?;
        if started.header("warren-error") == Some("device-sign-in-unavailable") {
            show(&Prompt::Paste {
                url: format!("https://{authority}/.warren/login?cli=paste"),
            });
            return redeem(&edge, paste).await;
        }
        if !started.status.is_success() {
            return Err(refused(&started));
        }
        let v: serde_json::Value = serde_json::from_slice(&started.body)
            .map_err(|e| LoginError::BadAnswer(format!("the answer is not JSON ({e})")))?;
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        let (Some(handle), Some(user_code), Some(verification_uri)) =
            (text("handle"), text("user_code"), text("verification_uri"))
        else {
            return Err(LoginError::BadAnswer(
                "the device sign-in answer lacks its handle, user code or verification URI".into(),
            ));
        };
        show(&Prompt::Device {
            user_code,
            verification_uri,
            verification_uri_complete: text("verification_uri_complete"),
            expires_in: Duration::from_secs(v["expires_in"].as_u64().unwrap_or(0)),
        });
        let mut wait = Duration::from_secs(v["interval"].as_u64().unwrap_or(5).clamp(1, 60));
        loop {
            tokio::time::sleep(wait).await;
            let a = edge
                .post(POLL_PATH, serde_json::json!({ "handle": handle }))
                .await?;
            match read_poll(&a)? {
                Poll::Wait(w) => wait = w,
                Poll::Token(t) => return Ok(t),
            }
        }
    };
    let token = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| LoginError::Timeout(timeout))??;
    store(&host, &token)?;
    Ok(token)
}

/// Reads the pasted code and exchanges it for the token.
async fn redeem<R: AsyncBufRead + Unpin>(edge: &Edge<'_>, paste: R) -> Result<String, LoginError> {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    let mut limited = tokio::io::AsyncReadExt::take(paste, MAX_PASTE as u64);
    let n = limited
        .read_line(&mut line)
        .await
        .map_err(|e| LoginError::Paste(e.to_string()))?;
    let code = line.trim();
    if n == 0 || code.is_empty() {
        return Err(LoginError::Paste(
            "no code was pasted (standard input ended)".into(),
        ));
    }
    let a = edge
        .post(REDEEM_PATH, serde_json::json!({ "code": code }))
        .await?;
    match read_poll(&a)? {
        Poll::Token(t) => Ok(t),
        Poll::Wait(_) => Err(LoginError::BadAnswer(
            "the edge answered a pasted code with pending".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: http::StatusCode::from_u16(status).unwrap(),
            headers: http::HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn poll_answers() {
        assert_eq!(
            read_poll(&answer(200, r#"{"status":"pending","interval":5}"#)).unwrap(),
            Poll::Wait(Duration::from_secs(5))
        );
        assert_eq!(
            read_poll(&answer(200, r#"{"status":"slow_down","interval":10}"#)).unwrap(),
            Poll::Wait(Duration::from_secs(10))
        );
        // A hostile interval is kept within bounds.
        assert_eq!(
            read_poll(&answer(200, r#"{"status":"pending","interval":0}"#)).unwrap(),
            Poll::Wait(Duration::from_secs(1))
        );
        assert_eq!(
            read_poll(&answer(200, r#"{"status":"signed_in","token":"t.o.k"}"#)).unwrap(),
            Poll::Token("t.o.k".into())
        );
        assert!(read_poll(&answer(200, r#"{"status":"signed_in"}"#)).is_err());
        let e = read_poll(&answer(
            403,
            r#"{"error":"access-denied","message":"Access to app was denied."}"#,
        ))
        .unwrap_err();
        assert_eq!(e.to_string(), "Access to app was denied.");
    }

    #[tokio::test]
    async fn nothing_pasted_is_a_sentence() {
        let edge = Edge {
            host: "app.example.com",
            edge: "127.0.0.1:9",
            tls: Arc::new(
                warren_transport::tls::client_config(
                    &warren_transport::tls::Trust::WebPki,
                    &[b"http/1.1"],
                )
                .unwrap(),
            ),
        };
        let e = redeem(&edge, &b""[..]).await.unwrap_err();
        assert!(e.to_string().contains("no code was pasted"), "{e}");
    }
}
