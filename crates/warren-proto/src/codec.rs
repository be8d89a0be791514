//! Primitive encoders and a bounds-checked reader for message payloads.
//!
//! Integers are big-endian. Strings and byte strings are a `u32` length and
//! the bytes; lists are a `u16` count and the items. Every length is checked
//! against what is left in the payload before anything is allocated, so a
//! hostile length can never make the reader allocate more than the frame
//! that carried it.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Why a frame or payload could not be decoded. Any of these closes the one
/// stream it arrived on; none of them is fatal to the process or connection.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The payload ended before a field was complete.
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    /// A frame announced a length above the limit for its type.
    #[error("frame of type {kind:#04x} is {len} bytes, above the limit of {max}")]
    TooLarge {
        /// The frame type byte.
        kind: u8,
        /// The announced payload length.
        len: usize,
        /// The limit for that type.
        max: usize,
    },
    /// A type byte or enum tag that this version does not know.
    #[error("unknown {what} tag {tag:#04x}")]
    UnknownTag {
        /// What the tag was for.
        what: &'static str,
        /// The value that arrived.
        tag: u8,
    },
    /// A string field was not UTF-8.
    #[error("field {0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// A field held a value outside its range.
    #[error("field {0} has an invalid value")]
    InvalidValue(&'static str),
    /// Bytes were left over after the last field.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// A frame arrived that is not allowed at this point of the stream.
    #[error("unexpected {got} frame, expected {expected}")]
    Unexpected {
        /// The frame type that arrived.
        got: &'static str,
        /// What was allowed instead.
        expected: &'static str,
    },
}

/// Appends fields to a payload.
#[derive(Default)]
pub struct Writer {
    buf: BytesMut,
}

impl Writer {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.put_u8(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.put_u16(v);
        self
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.put_u32(v);
        self
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.put_u64(v);
        self
    }

    /// Appends a bool as one byte, 0 or 1.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }

    /// Appends a byte string: a `u32` length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // Payloads are bounded far below 4 GiB by the frame limits, so the
        // length always fits.
        self.buf.put_u32(v.len() as u32);
        self.buf.put_slice(v);
        self
    }

    /// Appends a string, as a byte string of its UTF-8.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// Appends an optional string: a bool, then the string if present.
    pub fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) => self.u8(1).str(s),
            None => self.u8(0),
        }
    }

    /// Appends a list count as a `u16` (saturating).
    pub fn count(&mut self, n: usize) -> &mut Self {
        self.u16(u16::try_from(n).unwrap_or(u16::MAX))
    }

    /// The payload written so far.
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }
}

/// Reads fields from a payload, never past its end.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads one byte; `what` names the field in errors (as below).
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Reads a bool; any byte but 0 or 1 is an error.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue(what)),
        }
    }

    /// Reads a byte string, checking its length against what is left.
    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    /// Reads a UTF-8 string.
    pub fn str(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes(what)?).map_err(|_| DecodeError::InvalidUtf8(what))
    }

    /// Reads a UTF-8 string into an owned `String`.
    pub fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        self.str(what).map(str::to_owned)
    }

    /// Reads an optional string written by [`Writer::opt_str`].
    pub fn opt_string(&mut self, what: &'static str) -> Result<Option<String>, DecodeError> {
        if self.bool(what)? {
            Ok(Some(self.string(what)?))
        } else {
            Ok(None)
        }
    }

    /// Reads a list count, refusing counts that could not possibly fit in
    /// what is left (each item takes at least `min_item` bytes).
    pub fn count(&mut self, what: &'static str, min_item: usize) -> Result<usize, DecodeError> {
        let n = self.u16(what)? as usize;
        if n.saturating_mul(min_item.max(1)) > self.buf.len() {
            return Err(DecodeError::Truncated(what));
        }
        Ok(n)
    }

    /// Checks that nothing is left after the last field.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }
}

/// Encodes a header list (name, value) as a count and pairs.
pub fn write_headers(w: &mut Writer, headers: &[(String, Vec<u8>)]) {
    w.count(headers.len());
    for (name, value) in headers {
        w.str(name).bytes(value);
    }
}

/// Decodes a header list written by [`write_headers`].
pub fn read_headers(r: &mut Reader<'_>) -> Result<Vec<(String, Vec<u8>)>, DecodeError> {
    let n = r.count("header count", 8)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("header name")?;
        let value = r.bytes("header value")?.to_vec();
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_primitives() {
        let mut w = Writer::new();
        w.u8(7)
            .u16(513)
            .u32(70000)
            .u64(1 << 40)
            .bool(true)
            .str("héllo")
            .opt_str(None)
            .opt_str(Some("x"));
        let buf = w.finish();
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u16("b").unwrap(), 513);
        assert_eq!(r.u32("c").unwrap(), 70000);
        assert_eq!(r.u64("d").unwrap(), 1 << 40);
        assert!(r.bool("e").unwrap());
        assert_eq!(r.str("f").unwrap(), "héllo");
        assert_eq!(r.opt_string("g").unwrap(), None);
        assert_eq!(r.opt_string("h").unwrap().as_deref(), Some("x"));
        r.finish().unwrap();
    }

    #[test]
    fn hostile_lengths_are_refused_without_allocating() {
        let buf = [0xff, 0xff, 0xff, 0xff, 1, 2];
        assert_eq!(
            Reader::new(&buf).bytes("blob"),
            Err(DecodeError::Truncated("blob"))
        );
        let buf = [0xff, 0xff, 0];
        assert_eq!(
            Reader::new(&buf).count("list", 8),
            Err(DecodeError::Truncated("list"))
        );
    }

    #[test]
    fn invalid_bool_and_utf8() {
        assert_eq!(
            Reader::new(&[2]).bool("flag"),
            Err(DecodeError::InvalidValue("flag"))
        );
        assert_eq!(
            Reader::new(&[0, 0, 0, 1, 0xff]).str("name"),
            Err(DecodeError::InvalidUtf8("name"))
        );
    }
}
