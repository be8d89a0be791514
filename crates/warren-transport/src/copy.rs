//! The one byte copier: every spliced path (an `access tcp` WebSocket, a
//! native PostgreSQL session, an upgraded HTTP connection, a TCP origin,
//! the access client's local socket) moves bytes with [`splice`], counting
//! them as they go.
//!
//! Bytes move as [`Bytes`] chunks between a [`ChunkRead`] and a
//! [`ChunkWrite`]: a socket is read into a reused buffer ([`IoRead`], at
//! most [`CHUNK`] bytes a read), a tunnel stream hands on what it has
//! received ([`StreamRead`], joining the packets that are ready so a socket
//! gets one write for them, not one per packet). One chunk per direction
//! is in the copier's hands at a time, whatever the peers' speeds.
//!
//! End of stream on one side is passed on as a half-close of the other
//! (so protocols that half-close — PostgreSQL's Terminate, `ssh` — behave
//! as on a direct connection); an error on one side aborts the other's
//! write half, so the far peer sees an error rather than a clean end.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::conn::{RecvStream, SendStream};

/// Largest chunk read at once.
pub const CHUNK: usize = 64 * 1024;

/// Bytes moved so far on a spliced connection, readable while it runs
/// (an audit entry of a connection cut short still has them).
#[derive(Debug, Default)]
pub struct Traffic {
    up: AtomicU64,
    down: AtomicU64,
}

impl Traffic {
    /// Client → origin bytes so far.
    pub fn up(&self) -> u64 {
        self.up.load(Ordering::Relaxed)
    }

    /// Origin → client bytes so far.
    pub fn down(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }

    /// Counts bytes that moved outside [`splice`] (a first message the
    /// front end forwarded itself).
    pub fn add_up(&self, n: u64) {
        self.up.fetch_add(n, Ordering::Relaxed);
    }

    /// See [`Traffic::add_up`].
    pub fn add_down(&self, n: u64) {
        self.down.fetch_add(n, Ordering::Relaxed);
    }
}

/// A source of byte chunks.
pub trait ChunkRead: Send {
    /// The next chunk, `None` at a clean end of stream. Cancel-safe
    /// implementations are not required: the copier never drops a read
    /// it still needs.
    fn read_chunk(&mut self) -> impl Future<Output = io::Result<Option<Bytes>>> + Send;
}

/// A sink of byte chunks.
pub trait ChunkWrite: Send {
    /// Writes the whole chunk.
    fn write_chunk(&mut self, chunk: Bytes) -> impl Future<Output = io::Result<()>> + Send;
    /// Ends this direction cleanly (half-close).
    fn finish(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Ends this direction with an error the peer can tell from a clean
    /// end, where the carrier can say so.
    fn abort(&mut self) -> impl Future<Output = ()> + Send;
    /// Called once when both directions of a splice ended cleanly, for
    /// carriers with a closing handshake of their own (a WebSocket's Close).
    fn close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Looks at the chunks of one direction as they pass (a protocol tracker),
/// and may hold them up (back-pressure from a log that must not drop
/// anything).
pub trait Inspect: Send {
    /// Called with each chunk before it is written on.
    fn inspect(&mut self, chunk: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
}

/// Inspects nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoInspect;

impl Inspect for NoInspect {
    async fn inspect(&mut self, _chunk: &[u8]) -> io::Result<()> {
        Ok(())
    }
}

/// How one direction of a splice ended.
#[derive(Debug)]
pub enum Ended {
    /// The source ended cleanly and the sink was finished.
    Clean,
    /// Reading the source failed (the sink was aborted).
    ReadFailed(io::Error),
    /// Writing the sink failed.
    WriteFailed(io::Error),
}

impl Ended {
    /// Whether this direction ended cleanly.
    pub fn is_clean(&self) -> bool {
        matches!(self, Ended::Clean)
    }
}

/// How a whole splice ended.
#[derive(Debug)]
pub enum Spliced {
    /// Both directions ended; how each did.
    Done {
        /// Client → origin.
        up: Ended,
        /// Origin → client.
        down: Ended,
    },
    /// `stop` resolved first; both write halves were aborted.
    Stopped,
}

/// Copies `from` into `to` until `from` ends, adding what moved to `moved`
/// and showing each chunk to `inspect` first.
pub async fn copy<R, W, I>(from: &mut R, to: &mut W, moved: &AtomicU64, inspect: &mut I) -> Ended
where
    R: ChunkRead,
    W: ChunkWrite,
    I: Inspect,
{
    loop {
        match from.read_chunk().await {
            Ok(Some(chunk)) => {
                if let Err(e) = inspect.inspect(&chunk).await {
                    to.abort().await;
                    return Ended::ReadFailed(e);
                }
                let n = chunk.len() as u64;
                if let Err(e) = to.write_chunk(chunk).await {
                    return Ended::WriteFailed(e);
                }
                moved.fetch_add(n, Ordering::Relaxed);
            }
            Ok(None) => {
                return match to.finish().await {
                    Ok(()) => Ended::Clean,
                    Err(e) => Ended::WriteFailed(e),
                };
            }
            Err(e) => {
                to.abort().await;
                return Ended::ReadFailed(e);
            }
        }
    }
}

/// One side of a splice: its read half, its write half, and what looks at
/// the bytes read from it.
pub struct Side<R, W, I = NoInspect> {
    /// Where this side's bytes come from.
    pub read: R,
    /// Where bytes for this side go.
    pub write: W,
    /// What looks at the bytes read from this side.
    pub inspect: I,
}

impl<R, W> Side<R, W, NoInspect> {
    /// A side nobody inspects.
    pub fn new(read: R, write: W) -> Self {
        Side {
            read,
            write,
            inspect: NoInspect,
        }
    }
}

impl<R, W, I> Side<R, W, I> {
    /// The same side with `inspect` looking at what it sends.
    pub fn inspected<J>(self, inspect: J) -> Side<R, W, J> {
        Side {
            read: self.read,
            write: self.write,
            inspect,
        }
    }
}

/// Moves bytes both ways between `client` and `origin` until both
/// directions have ended, one of them failed, or `stop` resolves (both
/// write halves are then aborted). Counts into `traffic` as bytes move.
pub async fn splice<CR, CW, CI, OR, OW, OI>(
    client: Side<CR, CW, CI>,
    origin: Side<OR, OW, OI>,
    traffic: &Traffic,
    stop: impl Future<Output = ()>,
) -> Spliced
where
    CR: ChunkRead,
    CW: ChunkWrite,
    CI: Inspect,
    OR: ChunkRead,
    OW: ChunkWrite,
    OI: Inspect,
{
    let Side {
        read: mut client_r,
        write: mut client_w,
        inspect: mut client_i,
    } = client;
    let Side {
        read: mut origin_r,
        write: mut origin_w,
        inspect: mut origin_i,
    } = origin;
    let outcome = {
        let up = copy(&mut client_r, &mut origin_w, &traffic.up, &mut client_i);
        let down = copy(&mut origin_r, &mut client_w, &traffic.down, &mut origin_i);
        let (mut up, mut down) = (std::pin::pin!(up), std::pin::pin!(down));
        let mut stop = std::pin::pin!(stop);
        let (mut up_end, mut down_end) = (None, None);
        let stopped = loop {
            tokio::select! {
                e = &mut up, if up_end.is_none() => {
                    let failed = !e.is_clean();
                    up_end = Some(e);
                    if failed { break None; }
                }
                e = &mut down, if down_end.is_none() => {
                    let failed = !e.is_clean();
                    down_end = Some(e);
                    if failed { break None; }
                }
                () = &mut stop => break Some(Spliced::Stopped),
            }
            if up_end.is_some() && down_end.is_some() {
                break None;
            }
        };
        stopped.unwrap_or_else(|| {
            // A failed direction ends the splice: the other one could
            // wait forever on a peer that is gone.
            Spliced::Done {
                up: up_end.unwrap_or(Ended::WriteFailed(io::ErrorKind::ConnectionAborted.into())),
                down: down_end
                    .unwrap_or(Ended::WriteFailed(io::ErrorKind::ConnectionAborted.into())),
            }
        })
    };
    match &outcome {
        Spliced::Stopped => {
            client_w.abort().await;
            origin_w.abort().await;
        }
        Spliced::Done { up, down } => {
            if !up.is_clean() || !down.is_clean() {
                client_w.abort().await;
                origin_w.abort().await;
            } else {
                client_w.close().await;
                origin_w.close().await;
            }
        }
    }
    outcome
}

/// Any `AsyncRead` as a [`ChunkRead`], reading into a reused buffer.
pub struct IoRead<R> {
    inner: R,
    buf: BytesMut,
}

impl<R> IoRead<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        IoRead {
            inner,
            buf: BytesMut::new(),
        }
    }

    /// Wraps `inner`, handing out `already` (bytes read from it earlier)
    /// first.
    pub fn with_prefix(inner: R, already: &[u8]) -> Self {
        IoRead {
            inner,
            buf: BytesMut::from(already),
        }
    }
}

impl<R: AsyncRead + Unpin + Send> ChunkRead for IoRead<R> {
    async fn read_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if !self.buf.is_empty() {
            return Ok(Some(self.buf.split().freeze()));
        }
        if self.buf.capacity() < CHUNK / 4 {
            self.buf.reserve(CHUNK);
        }
        let n = self.inner.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(self.buf.split().freeze()))
    }
}

/// Any `AsyncWrite` as a [`ChunkWrite`]; finishing shuts it down.
pub struct IoWrite<W> {
    inner: W,
}

impl<W> IoWrite<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        IoWrite { inner }
    }
}

impl<W: AsyncWrite + Unpin + Send> ChunkWrite for IoWrite<W> {
    async fn write_chunk(&mut self, chunk: Bytes) -> io::Result<()> {
        self.inner.write_all(&chunk).await?;
        // A TLS writer may keep records back until flushed; a socket's
        // flush costs nothing.
        self.inner.flush().await
    }

    async fn finish(&mut self) -> io::Result<()> {
        self.inner.shutdown().await
    }

    async fn abort(&mut self) {
        // A socket has no way to say "error" but closing; the caller
        // drops it.
    }
}

/// An `AsyncRead + AsyncWrite` as the two halves of a splice side.
pub fn io_side<S: AsyncRead + AsyncWrite>(
    stream: S,
) -> Side<IoRead<tokio::io::ReadHalf<S>>, IoWrite<tokio::io::WriteHalf<S>>> {
    let (r, w) = tokio::io::split(stream);
    Side::new(IoRead::new(r), IoWrite::new(w))
}

/// How many received chunks one read of a tunnel stream gathers. A chunk
/// is what one packet carried (about 1200 bytes), so this many make one
/// write of about [`CHUNK`] bytes to a socket instead of one per packet.
const GATHER: usize = 48;

/// A tunnel stream as a [`ChunkRead`] that hands on, as one chunk, every
/// chunk that is ready when it reads: a single chunk as it came (no copy),
/// several joined into one buffer. Everything it holds was already
/// received, so memory stays within the stream's receive window.
pub struct StreamRead {
    inner: RecvStream,
    bufs: Vec<Bytes>,
}

impl StreamRead {
    /// Wraps `inner`.
    pub fn new(inner: RecvStream) -> Self {
        StreamRead {
            inner,
            bufs: vec![Bytes::new(); GATHER],
        }
    }
}

impl ChunkRead for StreamRead {
    async fn read_chunk(&mut self) -> io::Result<Option<Bytes>> {
        let Some(n) = self.inner.read_chunks(&mut self.bufs).await? else {
            return Ok(None);
        };
        let got = &mut self.bufs[..n];
        if n == 1 {
            return Ok(Some(std::mem::take(&mut got[0])));
        }
        let mut joined = BytesMut::with_capacity(got.iter().map(Bytes::len).sum());
        for b in got.iter_mut() {
            joined.extend_from_slice(&std::mem::take(b));
        }
        Ok(Some(joined.freeze()))
    }
}

impl ChunkWrite for SendStream {
    async fn write_chunk(&mut self, chunk: Bytes) -> io::Result<()> {
        Ok(SendStream::write_chunk(self, chunk).await?)
    }

    async fn finish(&mut self) -> io::Result<()> {
        Ok(SendStream::finish(self)?)
    }

    async fn abort(&mut self) {
        self.reset(warren_proto::close::ResetCode::Cancelled);
    }
}

/// A tunnel stream's halves as a splice side.
pub fn stream_side(send: SendStream, recv: RecvStream) -> Side<StreamRead, SendStream> {
    Side::new(StreamRead::new(recv), send)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplex_side(
        s: tokio::io::DuplexStream,
    ) -> Side<
        IoRead<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
        IoWrite<tokio::io::WriteHalf<tokio::io::DuplexStream>>,
    > {
        io_side(s)
    }

    #[tokio::test]
    async fn splice_passes_half_close_both_ways_and_counts() {
        let (mut client, a) = tokio::io::duplex(1024);
        let (b, mut origin) = tokio::io::duplex(1024);
        let traffic = std::sync::Arc::new(Traffic::default());
        let t = traffic.clone();
        let task = tokio::spawn(async move {
            splice(
                duplex_side(a),
                duplex_side(b),
                &t,
                std::future::pending::<()>(),
            )
            .await
        });
        client.write_all(b"ping").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        origin.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ping");
        // The other direction still works after the client's FIN.
        origin.write_all(b"pong!").await.unwrap();
        origin.shutdown().await.unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"pong!");
        let end = task.await.unwrap();
        assert!(matches!(
            end,
            Spliced::Done {
                up: Ended::Clean,
                down: Ended::Clean
            }
        ));
        assert_eq!((traffic.up(), traffic.down()), (4, 5));
    }

    #[tokio::test]
    async fn stop_ends_the_splice_and_keeps_the_counts() {
        let (mut client, a) = tokio::io::duplex(1024);
        let (b, mut origin) = tokio::io::duplex(1024);
        let traffic = Traffic::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let run = splice(duplex_side(a), duplex_side(b), &traffic, async {
            let _ = rx.await;
        });
        let drive = async {
            client.write_all(b"abc").await.unwrap();
            let mut three = [0u8; 3];
            origin.read_exact(&mut three).await.unwrap();
            tx.send(()).unwrap();
        };
        let (end, ()) = tokio::join!(run, drive);
        assert!(matches!(end, Spliced::Stopped));
        assert_eq!(traffic.up(), 3);
    }

    /// Counts the chunks it sees.
    struct Seen(usize);

    impl Inspect for Seen {
        async fn inspect(&mut self, chunk: &[u8]) -> io::Result<()> {
            self.0 += chunk.len();
            Ok(())
        }
    }

    #[tokio::test]
    async fn inspect_sees_every_byte_and_prefix_goes_first() {
        let (mut client, a) = tokio::io::duplex(1024);
        let (mut to, from) = tokio::io::duplex(1024);
        let mut seen = Seen(0);
        let mut reader = IoRead::with_prefix(tokio::io::split(a).0, b"first ");
        let moved = AtomicU64::new(0);
        let mut sink = IoWrite::new(&mut to);
        client.write_all(b"second").await.unwrap();
        drop(client);
        let end = copy(&mut reader, &mut sink, &moved, &mut seen).await;
        assert!(end.is_clean());
        drop(to);
        let mut out = Vec::new();
        let mut from = from;
        from.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"first second");
        assert_eq!(seen.0, 12);
        assert_eq!(moved.load(Ordering::Relaxed), 12);
    }
}
