//! [`ClientFramer`]: a pooled client's stream as the statement rewriter
//! needs it: the few messages it edits whole, everything else as it
//! comes, never buffered (a `COPY` stream or a large `Query` passes in
//! pieces).

use bytes::{Buf, Bytes, BytesMut};

use crate::message::{tag, Message, MessageError, HEADER_LEN};

/// Largest `Parse`, `Bind`, `Describe` or `Close` the rewriter takes
/// whole.
pub const MAX_EDITED: usize = 64 << 20;

/// A piece of the client's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A whole message the rewriter may edit.
    Whole(Message),
    /// The header of a message that passes as it is: its tag, and the
    /// header's bytes. Its body follows as [`Piece::Body`]s.
    Header {
        /// The message's tag.
        tag: u8,
        /// The five header bytes.
        bytes: Bytes,
    },
    /// Body bytes of the message whose header came last.
    Body(Bytes),
}

/// Splits a client's stream; see the module doc.
#[derive(Debug, Default)]
pub struct ClientFramer {
    buf: BytesMut,
    /// Body bytes of a passing message still to come.
    passing: usize,
}

/// Whether the rewriter edits messages of this tag.
fn edited(t: u8) -> bool {
    matches!(t, tag::PARSE | b'B' | b'D' | b'C')
}

impl ClientFramer {
    /// Bytes from the client, in order.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether no message is cut off in the middle.
    pub fn at_boundary(&self) -> bool {
        self.buf.is_empty() && self.passing == 0
    }

    /// The next piece, if one is in.
    pub fn next_piece(&mut self) -> Result<Option<Piece>, MessageError> {
        if self.passing > 0 {
            if self.buf.is_empty() {
                return Ok(None);
            }
            let n = self.passing.min(self.buf.len());
            self.passing -= n;
            return Ok(Some(Piece::Body(self.buf.split_to(n).freeze())));
        }
        let [t, a, b, c, d, ..] = self.buf[..] else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        if len < 4 {
            return Err(MessageError::BadLength { tag: t, len });
        }
        if edited(t) {
            if len > MAX_EDITED {
                return Err(MessageError::TooLong {
                    tag: t,
                    len,
                    max: MAX_EDITED,
                });
            }
            if self.buf.len() < 1 + len {
                return Ok(None);
            }
            self.buf.advance(HEADER_LEN);
            let body = self.buf.split_to(len - 4).freeze();
            return Ok(Some(Piece::Whole(Message::new(t, body))));
        }
        let header = self.buf.split_to(HEADER_LEN).freeze();
        self.passing = len - 4;
        Ok(Some(Piece::Header {
            tag: t,
            bytes: header,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(t: u8, body: &[u8]) -> Vec<u8> {
        Message::new(t, body.to_vec()).encode().to_vec()
    }

    /// Reassembles what the framer gives, for every split of the input.
    #[test]
    fn pieces_rebuild_the_stream_however_it_is_cut() {
        let stream = [
            wire(b'P', b"s1\0SELECT 1\0\0\0"),
            wire(b'd', &[7u8; 100]),
            wire(b'B', b"\0s1\0\0\0\0\0\0\0"),
            wire(b'S', b""),
            wire(b'Q', b"SELECT 1\0"),
        ]
        .concat();
        for cut in 1..stream.len() {
            let mut f = ClientFramer::default();
            let mut rebuilt = Vec::new();
            let mut wholes = Vec::new();
            for piece in stream.chunks(cut) {
                f.push(piece);
                while let Some(p) = f.next_piece().unwrap() {
                    match p {
                        Piece::Whole(m) => {
                            wholes.push(m.tag);
                            rebuilt.extend_from_slice(&m.encode());
                        }
                        Piece::Header { bytes, .. } => rebuilt.extend_from_slice(&bytes),
                        Piece::Body(b) => rebuilt.extend_from_slice(&b),
                    }
                }
            }
            assert_eq!(rebuilt, stream, "cut {cut}");
            assert_eq!(wholes, b"PB");
            assert!(f.at_boundary());
        }
    }

    #[test]
    fn bad_and_huge_lengths_are_errors() {
        let mut f = ClientFramer::default();
        f.push(&[b'Q', 0, 0, 0, 3]);
        assert!(f.next_piece().is_err());
        let mut f = ClientFramer::default();
        f.push(&[b'P', 0x7f, 0, 0, 0]);
        assert!(matches!(f.next_piece(), Err(MessageError::TooLong { .. })));
        // A huge passing message is fine: it streams.
        let mut f = ClientFramer::default();
        f.push(&[b'd', 0x7f, 0, 0, 0, 1, 2, 3]);
        assert!(matches!(
            f.next_piece().unwrap(),
            Some(Piece::Header { tag: b'd', .. })
        ));
        assert_eq!(
            f.next_piece().unwrap(),
            Some(Piece::Body(Bytes::from_static(&[1, 2, 3])))
        );
        assert!(!f.at_boundary());
    }
}
