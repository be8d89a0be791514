//! Frames: a type byte, a `u32` big-endian payload length, the payload.
//!
//! [`FrameDecoder`] pulls complete frames out of a byte buffer and refuses
//! any frame whose announced length is above the limit for its type before
//! buffering it, so a peer cannot make us hold more than
//! [`MAX_DATA_FRAME`] bytes of one frame.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::codec::DecodeError;

/// Length of a frame header (type + length).
pub const HEADER_LEN: usize = 5;
/// Largest payload of a control or header frame.
pub const MAX_HEADER_FRAME: usize = 64 * 1024;
/// Largest payload of a body data frame.
pub const MAX_DATA_FRAME: usize = 1024 * 1024;

/// Frame types. Values are part of the wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    /// Control stream: a [`crate::control::ControlMessage`].
    Control = 0x01,
    /// Data stream, edge to connector: a [`crate::stream::StreamRequest`].
    Request = 0x10,
    /// Data stream, connector to edge: a [`crate::stream::StreamResponse`].
    Response = 0x11,
    /// HTTP body bytes.
    Data = 0x20,
    /// HTTP trailers; ends the body.
    Trailers = 0x21,
    /// End of an HTTP body without trailers.
    End = 0x22,
    /// The sender aborts the body; the payload is a UTF-8 reason.
    Abort = 0x23,
}

impl FrameType {
    /// The type for a type byte, refusing unknown ones.
    pub fn from_u8(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0x01 => Self::Control,
            0x10 => Self::Request,
            0x11 => Self::Response,
            0x20 => Self::Data,
            0x21 => Self::Trailers,
            0x22 => Self::End,
            0x23 => Self::Abort,
            tag => return Err(DecodeError::UnknownTag { what: "frame", tag }),
        })
    }

    /// The largest payload a frame of this type may carry.
    pub fn max_len(self) -> usize {
        match self {
            Self::Data => MAX_DATA_FRAME,
            _ => MAX_HEADER_FRAME,
        }
    }

    /// The type's name, for errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Request => "request",
            Self::Response => "response",
            Self::Data => "data",
            Self::Trailers => "trailers",
            Self::End => "end",
            Self::Abort => "abort",
        }
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame's type.
    pub kind: FrameType,
    /// The payload, at most `kind.max_len()` bytes.
    pub payload: Bytes,
}

impl Frame {
    /// Refuses a frame of another type than `kind`.
    pub fn expect(&self, kind: FrameType) -> Result<(), DecodeError> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(DecodeError::Unexpected {
                got: self.kind.name(),
                expected: kind.name(),
            })
        }
    }
}

/// Writes a frame header for a payload of `len` bytes.
pub fn encode_header(kind: FrameType, len: usize, dst: &mut BytesMut) {
    debug_assert!(len <= kind.max_len());
    dst.reserve(HEADER_LEN);
    dst.put_u8(kind as u8);
    dst.put_u32(len as u32);
}

/// Encodes a whole frame.
pub fn encode(kind: FrameType, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(HEADER_LEN + payload.len());
    encode_header(kind, payload.len(), &mut b);
    b.put_slice(payload);
    b.freeze()
}

/// Incremental frame decoder over a growing buffer.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    _priv: (),
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one complete frame off the front of `buf`, if there is one.
    /// An oversized or unknown frame is an error as soon as its header is
    /// seen, before its payload is buffered.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let (kind, len) = parse_header(buf)?;
        if buf.len() < HEADER_LEN + len {
            buf.reserve(HEADER_LEN + len - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let payload = buf.split_to(len).freeze();
        Ok(Some(Frame { kind, payload }))
    }
}

/// Parses and checks a frame header: its type and payload length, refusing
/// unknown types and lengths above the type's limit.
pub fn parse_header(buf: &[u8]) -> Result<(FrameType, usize), DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated("frame header"));
    }
    let kind = FrameType::from_u8(buf[0])?;
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > kind.max_len() {
        return Err(DecodeError::TooLarge {
            kind: kind as u8,
            len,
            max: kind.max_len(),
        });
    }
    Ok((kind, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_frames_split_anywhere() {
        let mut all = BytesMut::new();
        all.extend_from_slice(&encode(FrameType::Data, b"hello"));
        all.extend_from_slice(&encode(FrameType::End, b""));
        for split in 0..all.len() {
            let mut dec = FrameDecoder::new();
            let mut buf = BytesMut::from(&all[..split]);
            let mut got = Vec::new();
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                got.push(f);
            }
            buf.extend_from_slice(&all[split..]);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                got.push(f);
            }
            assert_eq!(got.len(), 2, "split at {split}");
            assert_eq!(got[0].payload, Bytes::from_static(b"hello"));
            assert_eq!(got[1].kind, FrameType::End);
        }
    }

    #[test]
    fn refuses_oversized_frame_from_header_alone() {
        let mut buf = BytesMut::new();
        buf.put_u8(FrameType::Request as u8);
        buf.put_u32((MAX_HEADER_FRAME + 1) as u32);
        let err = FrameDecoder::new().decode(&mut buf).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { .. }));
    }

    #[test]
    fn refuses_unknown_type() {
        let mut buf = BytesMut::from(&[0x7f, 0, 0, 0, 0][..]);
        assert_eq!(
            FrameDecoder::new().decode(&mut buf),
            Err(DecodeError::UnknownTag {
                what: "frame",
                tag: 0x7f
            })
        );
    }
}
