//! Frame IO over any `AsyncRead`/`AsyncWrite`.
//!
//! Reads are exact: the header, then exactly the payload, so whatever
//! follows a frame (raw bytes after a `Connected` answer) is left in the
//! stream for the next reader.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use warren_proto::frame::{parse_header, Frame, HEADER_LEN};
use warren_proto::DecodeError;

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer sent something that is not a valid frame or message.
    #[error("malformed frame: {0}")]
    Decode(#[from] DecodeError),
    /// The stream ended in the middle of a frame.
    #[error("stream ended in the middle of a frame")]
    UnexpectedEof,
    /// The stream failed (reset, connection lost).
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame. `Ok(None)` is a clean end of stream before any byte
/// of a new frame.
///
/// Not cancel-safe: dropping the future mid-frame loses the partial frame.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, FrameError> {
    let mut head = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = r.read(&mut head[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::UnexpectedEof)
            };
        }
        got += n;
    }
    // Type and length are checked from the header alone, so an oversized
    // frame is refused before any of its payload is buffered.
    let (kind, len) = parse_header(&head)?;
    let mut payload = BytesMut::zeroed(len);
    r.read_exact(&mut payload).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::UnexpectedEof
        } else {
            FrameError::Io(e)
        }
    })?;
    Ok(Some(Frame {
        kind,
        payload: payload.freeze(),
    }))
}

/// Reads one frame, treating end of stream as an error.
pub async fn expect_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Frame, FrameError> {
    read_frame(r).await?.ok_or(FrameError::UnexpectedEof)
}

/// Writes already-encoded frame bytes.
pub async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, bytes: &Bytes) -> std::io::Result<()> {
    w.write_all(bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_proto::frame::{encode, FrameType, MAX_HEADER_FRAME};

    #[tokio::test]
    async fn reads_frames_exactly_and_leaves_the_rest() {
        let mut data = encode(FrameType::Response, b"abc").to_vec();
        data.extend_from_slice(b"raw bytes");
        let mut r = &data[..];
        let f = read_frame(&mut r).await.unwrap().unwrap();
        assert_eq!(&f.payload[..], b"abc");
        assert_eq!(r, b"raw bytes");
    }

    #[tokio::test]
    async fn eof_cases() {
        let mut r: &[u8] = &[];
        assert!(read_frame(&mut r).await.unwrap().is_none());
        let mut r: &[u8] = &[0x11, 0, 0];
        assert!(matches!(
            read_frame(&mut r).await,
            Err(FrameError::UnexpectedEof)
        ));
        let mut r: &[u8] = &[0x11, 0, 0, 0, 9, 1];
        assert!(matches!(
            read_frame(&mut r).await,
            Err(FrameError::UnexpectedEof)
        ));
    }

    #[tokio::test]
    async fn oversized_is_refused_before_reading_payload() {
        let len = (MAX_HEADER_FRAME as u32 + 1).to_be_bytes();
        let data = [0x10, len[0], len[1], len[2], len[3]];
        let mut r = &data[..];
        assert!(matches!(
            read_frame(&mut r).await,
            Err(FrameError::Decode(DecodeError::TooLarge { .. }))
        ));
    }
}
