//! HTTP bodies over a data stream, as [`warren_proto::stream::BodyFrame`]s.
//!
//! [`send_body`] pulls frames from any `http_body::Body` and writes them,
//! one at a time, awaiting each write: a slow reader on the far side
//! stalls the QUIC stream's flow control, which stalls this loop, which
//! stops pulling from the source. [`recv_body`] is the mirror image: a
//! `Body` that reads one frame per poll. Neither ever holds more than one
//! frame, so memory stays bounded whatever the speeds at either end.

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use warren_proto::frame::MAX_DATA_FRAME;
use warren_proto::stream::{BodyFrame, Headers};

use crate::framed::{read_frame, FrameError};

/// The body type both ends hand to hyper.
pub type BoxBody = UnsyncBoxBody<Bytes, BodyError>;

/// Why a body could not be carried to the end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The tunnel stream broke or carried a bad frame.
    #[error("tunnel stream: {0}")]
    Frame(#[from] FrameError),
    /// The far side aborted the body (its own peer reset it).
    #[error("the body was aborted upstream: {0}")]
    Aborted(String),
    /// Writing to the tunnel stream failed.
    #[error("writing to the tunnel stream: {0}")]
    Write(#[from] std::io::Error),
    /// The source body failed.
    #[error("reading the body: {0}")]
    Source(String),
}

/// An empty body.
pub fn empty() -> BoxBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body holding the given bytes.
pub fn full(b: impl Into<Bytes>) -> BoxBody {
    http_body_util::Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Writes a body as frames, ending with `Trailers` or `End`. If the source
/// fails, an `Abort` frame is sent and the error returned.
pub async fn send_body<B, W>(body: B, w: &mut W) -> Result<u64, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
    W: AsyncWrite + Unpin,
{
    let mut body = std::pin::pin!(body);
    let mut sent = 0u64;
    loop {
        match body.frame().await {
            None => {
                w.write_all(&BodyFrame::encode_end()).await?;
                return Ok(sent);
            }
            Some(Err(e)) => {
                let reason = e.to_string();
                let _ = w.write_all(&BodyFrame::encode_abort(&reason)).await;
                return Err(BodyError::Source(reason));
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    for chunk in data.chunks(MAX_DATA_FRAME) {
                        if chunk.is_empty() {
                            continue;
                        }
                        w.write_all(&BodyFrame::data_header(chunk.len())).await?;
                        w.write_all(chunk).await?;
                        sent += chunk.len() as u64;
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        w.write_all(&BodyFrame::encode_trailers(&headers_to_wire(&trailers)))
                            .await?;
                        return Ok(sent);
                    }
                }
            },
        }
    }
}

/// A body read from frames on `r`. The stream must end with `Trailers`,
/// `End` or `Abort`; a bare end of stream is an error (the body was cut).
pub fn recv_body<R>(r: R) -> BoxBody
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let frames = stream::unfold(Some(r), |state| async move {
        let mut r = state?;
        let item = match read_frame(&mut r).await {
            Ok(Some(f)) => match BodyFrame::decode(f) {
                Ok(BodyFrame::Data(b)) => return Some((Ok(Frame::data(b)), Some(r))),
                Ok(BodyFrame::Trailers(h)) => Ok(Frame::trailers(headers_from_wire(h))),
                Ok(BodyFrame::End) => return None,
                Ok(BodyFrame::Abort(reason)) => Err(BodyError::Aborted(reason)),
                Err(e) => Err(BodyError::Frame(e.into())),
            },
            Ok(None) => Err(BodyError::Frame(FrameError::UnexpectedEof)),
            Err(e) => Err(BodyError::Frame(e)),
        };
        Some((item, None))
    });
    StreamBody::new(frames).boxed_unsync()
}

/// Header map → wire header list.
pub fn headers_to_wire(h: &HeaderMap) -> Headers {
    h.iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

/// Wire header list → header map, dropping entries that are not valid
/// HTTP (the peer is trusted, but never enough to panic on).
pub fn headers_from_wire(h: Headers) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(h.len());
    for (k, v) in h {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(&v),
        ) {
            map.append(k, v);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn body_with_trailers_round_trips() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = vec![
            Ok(Frame::data(Bytes::from(vec![7u8; 1000]))),
            Ok(Frame::data(Bytes::from_static(b"tail"))),
            Ok(Frame::trailers(trailers.clone())),
        ];
        let src = StreamBody::new(stream::iter(frames));
        let writer = tokio::spawn(async move { send_body(src, &mut w).await.unwrap() });
        let collected = recv_body(r).collect().await.unwrap();
        assert_eq!(writer.await.unwrap(), 1004);
        assert_eq!(collected.trailers(), Some(&trailers));
        let bytes = collected.to_bytes();
        assert_eq!(bytes.len(), 1004);
        assert_eq!(&bytes[1000..], b"tail");
    }

    #[tokio::test]
    async fn cut_body_is_an_error() {
        let (mut w, r) = tokio::io::duplex(64);
        w.write_all(&BodyFrame::data_header(2)).await.unwrap();
        w.write_all(b"ab").await.unwrap();
        drop(w);
        assert!(recv_body(r).collect().await.is_err());
    }

    #[tokio::test]
    async fn abort_is_reported() {
        let (mut w, r) = tokio::io::duplex(64);
        w.write_all(&BodyFrame::encode_abort("origin reset"))
            .await
            .unwrap();
        let err = recv_body(r).collect().await.unwrap_err();
        assert!(err.to_string().contains("origin reset"));
    }
}
