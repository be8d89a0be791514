//! A WebSocket as a byte stream, the carrier `warren access tcp` uses
//! between a person's machine and the edge.
//!
//! Conventions (both ends, see `docs/protocol.md`): binary messages carry
//! bytes; an empty binary message is end of stream in that direction (a
//! TCP half-close); a Close frame ends both directions and reads as an
//! error (the peer went away). Text, ping and pong messages carry no
//! stream bytes.

use std::io;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::copy::{ChunkRead, ChunkWrite, Side};

/// Largest WebSocket message accepted from a peer.
pub const MAX_MESSAGE: usize = 1024 * 1024;

/// WebSocket limits used on both ends of an `access tcp` stream.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// The reading half of a WebSocket byte stream.
pub struct WsRead<S> {
    inner: SplitStream<WebSocketStream<S>>,
}

/// The writing half of a WebSocket byte stream.
pub struct WsWrite<S> {
    inner: SplitSink<WebSocketStream<S>, Message>,
}

/// A WebSocket as a splice side.
pub fn side<S>(ws: WebSocketStream<S>) -> Side<WsRead<S>, WsWrite<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (tx, rx) = ws.split();
    Side::new(WsRead { inner: rx }, WsWrite { inner: tx })
}

impl<S> ChunkRead for WsRead<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn read_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            match self.inner.next().await {
                None => return Ok(None),
                Some(Ok(Message::Binary(b))) if b.is_empty() => return Ok(None),
                // A message's bytes share tungstenite's read buffer; a
                // tunnel stream holds what it sends until the peer
                // acknowledges it, so hand on a copy and let the read
                // buffer be reused.
                Some(Ok(Message::Binary(b))) => return Ok(Some(Bytes::copy_from_slice(&b))),
                Some(Ok(Message::Close(_))) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the peer closed the WebSocket",
                    ))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(io::Error::new(io::ErrorKind::ConnectionAborted, e)),
            }
        }
    }
}

impl<S> ChunkWrite for WsWrite<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn write_chunk(&mut self, chunk: Bytes) -> io::Result<()> {
        self.inner
            .send(Message::Binary(chunk))
            .await
            .map_err(io::Error::other)
    }

    async fn finish(&mut self) -> io::Result<()> {
        self.inner
            .send(Message::Binary(Bytes::new()))
            .await
            .map_err(io::Error::other)
    }

    async fn abort(&mut self) {
        let _ = self.inner.close().await;
    }

    async fn close(&mut self) {
        let _ = self.inner.close().await;
    }
}
