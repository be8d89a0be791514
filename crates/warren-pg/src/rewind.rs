//! [`Rewind`]: a stream with bytes already read put back in front.
//!
//! [`crate::read_first`] has to read a byte to tell a direct-TLS
//! ClientHello from a PostgreSQL message, and a QUIC stream cannot peek.
//! The TLS acceptor then reads from a `Rewind` holding that byte.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Reads `prefix` first, then `inner`; writes go straight to `inner`.
#[derive(Debug)]
pub struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    /// A stream reading `prefix`, then `inner`.
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }

    /// The part of the prefix not read yet, and the stream.
    pub fn into_parts(self) -> (Bytes, S) {
        (self.prefix, self.inner)
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream, to change.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() && buf.remaining() > 0 {
            let n = self.prefix.len().min(buf.remaining());
            let head = self.prefix.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::{read_first, FirstMessage, MAX_STARTUP_LEN, TLS_HANDSHAKE_BYTE};

    #[tokio::test]
    async fn replays_the_byte_read_first_took() {
        let (mut client, server) = tokio::io::duplex(64);
        client
            .write_all(&[TLS_HANDSHAKE_BYTE, 3, 1, 0, 5])
            .await
            .unwrap();
        let mut server = server;
        let first = read_first(&mut server, MAX_STARTUP_LEN).await.unwrap();
        assert_eq!(first.message, FirstMessage::DirectTls);

        let mut io = Rewind::new(first.raw, server);
        let mut got = [0u8; 5];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [TLS_HANDSHAKE_BYTE, 3, 1, 0, 5]);

        io.write_all(b"answer").await.unwrap();
        let mut back = [0u8; 6];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"answer");
        let (rest, _) = io.into_parts();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn a_small_buffer_takes_the_prefix_in_pieces() {
        let mut io = Rewind::new(Bytes::from_static(b"abc"), &b"de"[..]);
        let mut one = [0u8; 2];
        assert_eq!(io.read(&mut one).await.unwrap(), 2);
        assert_eq!(&one, b"ab");
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"cde");
    }
}
