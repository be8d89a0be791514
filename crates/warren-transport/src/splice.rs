//! Raw byte streams: a QUIC bidirectional stream as one IO object, and
//! splicing two IO objects with half-close and bounded buffers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Buffer size for each direction of a splice. Two of these per proxied
/// connection is all the memory a splice holds, whatever the peers' speeds.
pub const SPLICE_BUF: usize = 64 * 1024;

/// A QUIC bidirectional stream as a single `AsyncRead + AsyncWrite`.
/// Shutting down the write half sends FIN (`finish`).
pub struct QuicStream {
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
}

impl QuicStream {
    pub fn new(send: quinn::SendStream, recv: quinn::RecvStream) -> Self {
        Self { send, recv }
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_shutdown(cx)
    }
}

/// Bytes carried by a finished splice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transferred {
    /// From `a` to `b`.
    pub a_to_b: u64,
    /// From `b` to `a`.
    pub b_to_a: u64,
}

/// Copies both ways until both directions have ended. End of stream on one
/// side is passed on as a half-close (FIN) of the other, so protocols that
/// half-close (PostgreSQL's Terminate, `ssh`) behave as on a direct
/// connection. Memory is bounded by two [`SPLICE_BUF`] buffers.
pub async fn splice<A, B>(a: &mut A, b: &mut B) -> io::Result<Transferred>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let (a_to_b, b_to_a) =
        tokio::io::copy_bidirectional_with_sizes(a, b, SPLICE_BUF, SPLICE_BUF).await?;
    Ok(Transferred { a_to_b, b_to_a })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn splice_passes_half_close_both_ways() {
        let (mut client, mut a) = tokio::io::duplex(1024);
        let (mut b, mut origin) = tokio::io::duplex(1024);
        let task = tokio::spawn(async move { splice(&mut a, &mut b).await });
        client.write_all(b"ping").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        origin.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ping");
        // The other direction still works after the client's FIN.
        origin.write_all(b"pong").await.unwrap();
        origin.shutdown().await.unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"pong");
        let t = task.await.unwrap().unwrap();
        assert_eq!(
            t,
            Transferred {
                a_to_b: 4,
                b_to_a: 4
            }
        );
    }
}
