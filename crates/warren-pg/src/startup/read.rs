//! [`read_first`]: one first message read from a tokio stream, never a
//! byte past it. The only reading this crate does; the
//! [`Negotiator`](crate::Negotiator) parses the same messages from bytes
//! its driver reads.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{check_code, check_len, parse_body, FirstMessage, FirstRead, StartupError, HEADER_LEN};
use crate::TLS_HANDSHAKE_BYTE;

/// Fills `buf` from `r`; `got` bytes of a message of `expected` came
/// before, for the error if the stream ends.
async fn fill<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    got: usize,
    expected: usize,
) -> Result<(), StartupError> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match r.read(rest).await? {
            0 if got + filled == 0 => return Err(StartupError::Closed),
            0 => {
                return Err(StartupError::Truncated {
                    got: got + filled,
                    expected,
                })
            }
            n => filled += n,
        }
    }
    Ok(())
}

/// Reads exactly one first message from `r`, refusing it as soon as its
/// header shows it is invalid or longer than `max_len` (use
/// [`MAX_STARTUP_LEN`](crate::MAX_STARTUP_LEN)). Never reads past the message, so whatever follows
/// (a TLS handshake, the next message) is still in `r`.
///
/// Not cancel-safe: dropping it loses the bytes read so far. Give it a
/// deadline, and close the connection when the deadline passes.
pub async fn read_first<R: AsyncRead + Unpin>(
    r: &mut R,
    max_len: usize,
) -> Result<FirstRead, StartupError> {
    let mut head = [0u8; HEADER_LEN];
    fill(r, &mut head[..1], 0, HEADER_LEN).await?;
    if head[0] == TLS_HANDSHAKE_BYTE {
        return Ok(FirstRead {
            message: FirstMessage::DirectTls,
            raw: Bytes::copy_from_slice(&head[..1]),
        });
    }
    fill(r, &mut head[1..4], 1, HEADER_LEN).await?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    check_len(len, max_len)?;
    fill(r, &mut head[4..], 4, len).await?;
    let kind = check_code(
        u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
        len,
    )?;
    // `len` is at most `max_len` now, so this allocation is bounded.
    let mut raw = BytesMut::zeroed(len);
    let (raw_head, body) = raw.split_at_mut(HEADER_LEN);
    raw_head.copy_from_slice(&head);
    fill(r, body, HEADER_LEN, len).await?;
    let message = parse_body(kind, body)?;
    Ok(FirstRead {
        message,
        raw: raw.freeze(),
    })
}
