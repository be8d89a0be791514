//! [`Scanner`]: follows the message boundaries of a regular-phase byte
//! stream (either direction) as it passes, without buffering messages.
//!
//! The caller forwards each chunk as it is and shows it to the scanner,
//! which keeps at most a partial five-byte header and, for the message
//! types it was asked to watch ([`TagSet`]), the body, up to a limit. Every
//! other body is counted past, never copied, however long it is, so the
//! scanner can sit on the data path: following a chunk allocates nothing
//! unless a watched body is collected.

use crate::message::{MessageError, HEADER_LEN, MAX_WIRE_LEN};

/// Collected-body capacity kept between messages; a larger buffer, left by
/// one long message, is given back before the next short one.
const KEEP_CAPACITY: usize = 16 * 1024;

/// A set of message tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TagSet([u64; 4]);

impl TagSet {
    /// The set of these tags.
    pub const fn of(tags: &[u8]) -> Self {
        let mut set = [0u64; 4];
        let mut i = 0;
        while i < tags.len() {
            let t = tags[i] as usize;
            set[t / 64] |= 1 << (t % 64);
            i += 1;
        }
        Self(set)
    }

    /// Whether `tag` is in the set.
    pub const fn contains(&self, tag: u8) -> bool {
        let t = tag as usize;
        self.0[t / 64] & (1 << (t % 64)) != 0
    }
}

/// What the scanner found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A watched message, complete: its tag and body.
    Message {
        /// The message's tag.
        tag: u8,
        /// Its body (after the length field).
        body: &'a [u8],
    },
    /// A watched message whose body is over the limit: it passes without
    /// being collected. Reported as soon as its header is read.
    TooLong {
        /// The message's tag.
        tag: u8,
        /// The length of its body.
        len: usize,
    },
    /// A noted message's header (see [`Scanner::noting`]): its body passes
    /// without being collected.
    Seen {
        /// The message's tag.
        tag: u8,
        /// The length of its body.
        len: usize,
    },
}

/// Where the scanner is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `got` bytes of a header are in `Scanner::header`.
    Header { got: usize },
    /// Passing over a body: `left` bytes to go.
    Skip { left: usize },
    /// Collecting a watched body: `left` bytes to go.
    Collect { tag: u8, left: usize },
    /// A length could not be framed; nothing more is followed.
    Broken,
}

/// Follows message boundaries in a byte stream; see the module doc.
///
/// Call [`scan`](Self::scan) with each chunk, in stream order, until it
/// returns `Ok(None)`: it consumes the chunk from the front and stops after
/// each [`Event`], so what is left of the chunk then starts right after the
/// message (or, for [`Event::TooLong`], the header) that caused it.
#[derive(Debug, Clone)]
pub struct Scanner {
    watched: TagSet,
    noted: TagSet,
    max_body: usize,
    state: State,
    header: [u8; HEADER_LEN],
    body: Vec<u8>,
}

impl Scanner {
    /// A scanner at the start of a message, collecting the bodies of the
    /// `watched` message types up to `max_body` bytes.
    pub fn new(watched: TagSet, max_body: usize) -> Self {
        Self::noting(watched, TagSet::default(), max_body)
    }

    /// Like [`new`](Self::new), and also reports the header of each message
    /// of the `noted` types ([`Event::Seen`]) without collecting its body:
    /// for a caller that needs to know a message went by, not what it said.
    pub fn noting(watched: TagSet, noted: TagSet, max_body: usize) -> Self {
        Self {
            watched,
            noted,
            max_body,
            state: State::Header { got: 0 },
            header: [0; HEADER_LEN],
            body: Vec::new(),
        }
    }

    /// Whether the bytes seen so far end exactly at a message boundary.
    pub fn at_boundary(&self) -> bool {
        self.state == State::Header { got: 0 }
    }

    /// Whether the stream could not be framed (a length below 4 or above
    /// the protocol's limit): nothing after it is followed.
    pub fn is_broken(&self) -> bool {
        self.state == State::Broken
    }

    /// The capacity of the collected-body buffer, for tests that check
    /// what was allocated.
    #[cfg(test)]
    pub(crate) fn collected_capacity(&self) -> usize {
        self.body.capacity()
    }

    /// Consumes `input` from the front up to the next event, or all of it.
    ///
    /// `Ok(None)`: `input` is used up. `Err`: a length that cannot be
    /// framed; `input` is used up and from then on the scanner only
    /// consumes ([`is_broken`](Self::is_broken)).
    pub fn scan<'s>(&'s mut self, input: &mut &[u8]) -> Result<Option<Event<'s>>, MessageError> {
        loop {
            match self.state {
                State::Broken => {
                    *input = &[];
                    return Ok(None);
                }
                State::Header { got } => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = (HEADER_LEN - got).min(input.len());
                    self.header[got..got + n].copy_from_slice(&input[..n]);
                    *input = &input[n..];
                    if got + n < HEADER_LEN {
                        self.state = State::Header { got: got + n };
                        return Ok(None);
                    }
                    if let Some(event) = self.start()? {
                        return Ok(Some(event));
                    }
                }
                State::Skip { left } => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = left.min(input.len());
                    *input = &input[n..];
                    self.state = match left - n {
                        0 => State::Header { got: 0 },
                        left => State::Skip { left },
                    };
                }
                State::Collect { tag, left } => {
                    let n = left.min(input.len());
                    self.body.extend_from_slice(&input[..n]);
                    *input = &input[n..];
                    if n < left {
                        self.state = State::Collect {
                            tag,
                            left: left - n,
                        };
                        return Ok(None);
                    }
                    self.state = State::Header { got: 0 };
                    return Ok(Some(Event::Message {
                        tag,
                        body: &self.body,
                    }));
                }
            }
        }
    }

    /// A whole header is in: decide what to do with the body.
    fn start(&mut self) -> Result<Option<Event<'static>>, MessageError> {
        let [tag, a, b, c, d] = self.header;
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        let error = match len {
            0..4 => Some(MessageError::BadLength { tag, len }),
            _ if len > MAX_WIRE_LEN => Some(MessageError::TooLong {
                tag,
                len,
                max: MAX_WIRE_LEN,
            }),
            _ => None,
        };
        if let Some(e) = error {
            self.state = State::Broken;
            self.body = Vec::new();
            return Err(e);
        }
        let body = len - 4;
        let skip = match body {
            0 => State::Header { got: 0 },
            left => State::Skip { left },
        };
        if !self.watched.contains(tag) {
            self.state = skip;
            return Ok(self
                .noted
                .contains(tag)
                .then_some(Event::Seen { tag, len: body }));
        }
        if body > self.max_body {
            self.state = skip;
            return Ok(Some(Event::TooLong { tag, len: body }));
        }
        if self.body.capacity() > KEEP_CAPACITY && body <= KEEP_CAPACITY {
            self.body = Vec::new();
        }
        self.body.clear();
        self.body.reserve(body);
        self.state = State::Collect { tag, left: body };
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
