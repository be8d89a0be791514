//! Regular-phase messages: a tag byte, an `Int32` length counting itself
//! but not the tag, and a body.
//!
//! [`MessageDecoder`] takes whole messages off a growing buffer and refuses
//! a length above its limit from the five header bytes, before the body is
//! buffered. The `parse_*` helpers read the few messages Warren looks at:
//! simple `Query` and extended `Parse` for the statement log,
//! `BackendKeyData` for cancellation, `ReadyForQuery`, and
//! `ErrorResponse`/`NoticeResponse` fields. [`error_response`] and
//! [`ErrorFields`] build the `ErrorResponse` Warren sends when it refuses a
//! session.
//!
//! Text fields are decoded as UTF-8 with invalid sequences replaced: a
//! client may use another `client_encoding`, and a log line is better
//! slightly wrong than missing.

use std::borrow::Cow;
use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::startup::CancelKey;
use crate::{DEFAULT_MAX_MESSAGE_LEN, ENCRYPTION_REFUSED, GSSENC_ACCEPTED, SSL_ACCEPTED};

/// Length of a message header: tag and length.
pub const HEADER_LEN: usize = 5;
/// Largest length field the protocol can carry (a positive `Int32`).
pub const MAX_WIRE_LEN: usize = i32::MAX as usize;
/// Most the decoder reserves at once for a message still arriving, so a
/// header announcing a huge message does not allocate it up front.
const RESERVE_CHUNK: usize = 64 * 1024;

/// Message tags Warren looks at. Frontend and backend tags overlap (`'E'` is
/// `Execute` from a client and `ErrorResponse` from a server), so a tag
/// means something only with its direction.
pub mod tag {
    /// Frontend: simple query.
    pub const QUERY: u8 = b'Q';
    /// Frontend: extended-protocol `Parse`.
    pub const PARSE: u8 = b'P';
    /// Frontend: password, SASL or GSS response (never logged).
    pub const PASSWORD: u8 = b'p';
    /// Frontend: end of session.
    pub const TERMINATE: u8 = b'X';
    /// Backend: an authentication request or result.
    pub const AUTHENTICATION: u8 = b'R';
    /// Backend: the process id and secret key for cancelling.
    pub const BACKEND_KEY_DATA: u8 = b'K';
    /// Backend: a run-time parameter's value.
    pub const PARAMETER_STATUS: u8 = b'S';
    /// Backend: the server speaks an older minor version or lacks options.
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    /// Backend: ready for a new query.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// Backend: an error.
    pub const ERROR_RESPONSE: u8 = b'E';
    /// Backend: a notice.
    pub const NOTICE_RESPONSE: u8 = b'N';
}

/// SQLSTATE codes Warren uses in its own `ErrorResponse`s.
pub mod sqlstate {
    /// `connection_exception`.
    pub const CONNECTION_EXCEPTION: &str = "08000";
    /// `sqlclient_unable_to_establish_sqlconnection`: the database could not
    /// be reached.
    pub const UNABLE_TO_CONNECT: &str = "08001";
    /// `connection_failure`.
    pub const CONNECTION_FAILURE: &str = "08006";
    /// `protocol_violation`: a malformed message.
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    /// `feature_not_supported`.
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    /// `invalid_authorization_specification`: Warren's access check failed.
    pub const INVALID_AUTHORIZATION: &str = "28000";
    /// `insufficient_privilege`: a policy denies the identity.
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    /// `too_many_connections`.
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    /// `admin_shutdown`: Warren is shutting down.
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    /// `cannot_connect_now`.
    pub const CANNOT_CONNECT_NOW: &str = "57P03";
    /// `internal_error`.
    pub const INTERNAL_ERROR: &str = "XX000";
}

/// Why a message could not be framed or read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum MessageError {
    /// A length field below the 4 bytes of the field itself.
    #[error("a '{}' message claims length {len}, less than the 4 bytes of the length itself", tag.escape_ascii())]
    BadLength {
        /// The message's tag.
        tag: u8,
        /// The length field.
        len: usize,
    },
    /// A length field above the decoder's limit.
    #[error("a '{}' message claims {len} bytes, more than the {max} allowed", tag.escape_ascii())]
    TooLong {
        /// The message's tag.
        tag: u8,
        /// The length field.
        len: usize,
        /// The limit it is over.
        max: usize,
    },
    /// A helper was handed a message of another type.
    #[error("expected a '{}' message, got a '{}' one", expected.escape_ascii(), got.escape_ascii())]
    WrongTag {
        /// The tag the helper reads.
        expected: u8,
        /// The tag of the message it was handed.
        got: u8,
    },
    /// The body does not have the message's layout.
    #[error("malformed {what} message: {reason}")]
    Malformed {
        /// The message type.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn malformed(what: &'static str, reason: &'static str) -> MessageError {
    MessageError::Malformed { what, reason }
}

/// One regular-phase message. `Debug` shows the tag and the body's length,
/// never the body: it may carry a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The type of message.
    pub tag: u8,
    /// What follows the length field.
    pub body: Bytes,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Message {{ tag: '{}', body: <{} bytes> }}",
            self.tag.escape_ascii(),
            self.body.len()
        )
    }
}

impl Message {
    /// A message of type `tag` with this body.
    pub fn new(tag: u8, body: impl Into<Bytes>) -> Self {
        Self {
            tag,
            body: body.into(),
        }
    }

    /// Bytes on the wire: tag, length, body.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Appends the message to `dst`.
    ///
    /// # Panics
    /// If the body is longer than the protocol can carry (2 GiB less 5
    /// bytes); a decoded message never is.
    pub fn encode_into(&self, dst: &mut BytesMut) {
        let len = self.body.len() + 4;
        assert!(
            len <= MAX_WIRE_LEN,
            "message body too long for the protocol"
        );
        dst.reserve(HEADER_LEN + self.body.len());
        dst.put_u8(self.tag);
        dst.put_u32(len as u32);
        dst.put_slice(&self.body);
    }

    /// The message as it travels: tag, length, body.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        self.encode_into(&mut b);
        b.freeze()
    }
}

/// Incremental decoder of regular-phase messages, either direction.
#[derive(Debug, Clone)]
pub struct MessageDecoder {
    max_len: usize,
}

impl Default for MessageDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_LEN)
    }
}

impl MessageDecoder {
    /// A decoder refusing messages whose length field (which counts itself,
    /// not the tag) is above `max_len`, kept within 4 and
    /// [`MAX_WIRE_LEN`].
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len: max_len.clamp(4, MAX_WIRE_LEN),
        }
    }

    /// The largest length field accepted.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Takes one complete message off the front of `buf`, if there is one.
    /// A bad length is an error as soon as the header is there; the error
    /// is final, since the stream can no longer be framed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, MessageError> {
        let [tag, a, b, c, d, ..] = buf[..] else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        if len < 4 {
            return Err(MessageError::BadLength { tag, len });
        }
        if len > self.max_len {
            return Err(MessageError::TooLong {
                tag,
                len,
                max: self.max_len,
            });
        }
        let total = 1 + len;
        if buf.len() < total {
            buf.reserve((total - buf.len()).min(RESERVE_CHUNK));
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let body = buf.split_to(len - 4).freeze();
        Ok(Some(Message { tag, body }))
    }
}

/// Reads a NUL-terminated string off the front of `buf`.
pub(crate) fn take_cstr<'a>(
    buf: &mut &'a [u8],
    what: &'static str,
) -> Result<&'a [u8], MessageError> {
    let nul = buf
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| malformed(what, "a string lacks its NUL terminator"))?;
    let (s, rest) = buf.split_at(nul);
    *buf = rest.get(1..).unwrap_or_default();
    Ok(s)
}

fn expect_tag(m: &Message, expected: u8) -> Result<(), MessageError> {
    if m.tag == expected {
        Ok(())
    } else {
        Err(MessageError::WrongTag {
            expected,
            got: m.tag,
        })
    }
}

fn expect_end(rest: &[u8], what: &'static str) -> Result<(), MessageError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(malformed(what, "bytes follow its last field"))
    }
}

/// The text of a simple `Query` (`'Q'`).
pub fn parse_query(m: &Message) -> Result<Cow<'_, str>, MessageError> {
    expect_tag(m, tag::QUERY)?;
    query_text(&m.body)
}

/// The text of a simple `Query`, from its body.
pub(crate) fn query_text(body: &[u8]) -> Result<Cow<'_, str>, MessageError> {
    let mut rest = body;
    let text = take_cstr(&mut rest, "Query")?;
    expect_end(rest, "Query")?;
    Ok(String::from_utf8_lossy(text))
}

/// What the statement log keeps of an extended-protocol `Parse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMessage<'a> {
    /// The prepared statement's name; empty for the unnamed statement.
    pub statement: Cow<'a, str>,
    /// The query text.
    pub query: Cow<'a, str>,
    /// How many parameter types the client specified.
    pub param_types: u16,
}

/// Reads a `Parse` (`'P'`): statement name, query, parameter type OIDs.
pub fn parse_parse(m: &Message) -> Result<ParseMessage<'_>, MessageError> {
    expect_tag(m, tag::PARSE)?;
    parse_body(&m.body)
}

/// A `Parse`, from its body.
pub(crate) fn parse_body(body: &[u8]) -> Result<ParseMessage<'_>, MessageError> {
    const WHAT: &str = "Parse";
    let mut rest = body;
    let statement = take_cstr(&mut rest, WHAT)?;
    let query = take_cstr(&mut rest, WHAT)?;
    let [a, b, ref oids @ ..] = *rest else {
        return Err(malformed(WHAT, "the parameter type count is missing"));
    };
    let param_types = u16::from_be_bytes([a, b]);
    if oids.len() != usize::from(param_types) * 4 {
        return Err(malformed(
            WHAT,
            "the parameter types do not match their count",
        ));
    }
    Ok(ParseMessage {
        statement: String::from_utf8_lossy(statement),
        query: String::from_utf8_lossy(query),
        param_types,
    })
}

/// Reads `BackendKeyData` (`'K'`): process id and cancel key (4 bytes in
/// protocol 3.0, up to 256 in 3.2).
pub fn parse_backend_key_data(m: &Message) -> Result<(u32, CancelKey), MessageError> {
    expect_tag(m, tag::BACKEND_KEY_DATA)?;
    key_data(&m.body)
}

/// `BackendKeyData`, from its body.
pub(crate) fn key_data(body: &[u8]) -> Result<(u32, CancelKey), MessageError> {
    const WHAT: &str = "BackendKeyData";
    let [a, b, c, d, ref key @ ..] = *body else {
        return Err(malformed(WHAT, "the process id is missing"));
    };
    let key = CancelKey::new(Bytes::copy_from_slice(key))
        .map_err(|_| malformed(WHAT, "the secret key is not 4 to 256 bytes long"))?;
    Ok((u32::from_be_bytes([a, b, c, d]), key))
}

/// A `BackendKeyData` message.
pub fn backend_key_data(pid: u32, key: &CancelKey) -> Message {
    let mut b = BytesMut::with_capacity(4 + key.as_bytes().len());
    b.put_u32(pid);
    b.put_slice(key.as_bytes());
    Message::new(tag::BACKEND_KEY_DATA, b.freeze())
}

/// Reads a `ParameterStatus` (`'S'`): a run-time parameter's name and
/// value.
pub fn parse_parameter_status(m: &Message) -> Result<(Cow<'_, str>, Cow<'_, str>), MessageError> {
    expect_tag(m, tag::PARAMETER_STATUS)?;
    parameter_status(&m.body)
}

/// A `ParameterStatus`, from its body.
pub(crate) fn parameter_status(body: &[u8]) -> Result<(Cow<'_, str>, Cow<'_, str>), MessageError> {
    const WHAT: &str = "ParameterStatus";
    let mut rest = body;
    let name = take_cstr(&mut rest, WHAT)?;
    let value = take_cstr(&mut rest, WHAT)?;
    expect_end(rest, WHAT)?;
    Ok((
        String::from_utf8_lossy(name),
        String::from_utf8_lossy(value),
    ))
}

/// The transaction status a `ReadyForQuery` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `'I'`: not in a transaction.
    Idle,
    /// `'T'`: in a transaction block.
    InTransaction,
    /// `'E'`: in a failed transaction block.
    Failed,
}

impl TransactionStatus {
    /// The status byte of a `ReadyForQuery`.
    pub fn as_byte(self) -> u8 {
        match self {
            Self::Idle => b'I',
            Self::InTransaction => b'T',
            Self::Failed => b'E',
        }
    }
}

/// A `ReadyForQuery` message.
pub fn ready_for_query(status: TransactionStatus) -> Message {
    Message::new(tag::READY_FOR_QUERY, vec![status.as_byte()])
}

/// Reads a `ReadyForQuery` (`'Z'`).
pub fn parse_ready_for_query(m: &Message) -> Result<TransactionStatus, MessageError> {
    expect_tag(m, tag::READY_FOR_QUERY)?;
    ready_status(&m.body)
}

/// The status of a `ReadyForQuery`, from its body.
pub(crate) fn ready_status(body: &[u8]) -> Result<TransactionStatus, MessageError> {
    const WHAT: &str = "ReadyForQuery";
    match *body {
        [b'I'] => Ok(TransactionStatus::Idle),
        [b'T'] => Ok(TransactionStatus::InTransaction),
        [b'E'] => Ok(TransactionStatus::Failed),
        [_] => Err(malformed(WHAT, "unknown transaction status")),
        _ => Err(malformed(WHAT, "the body is not one byte")),
    }
}

/// A server's one-byte answer to an `SSLRequest` or `GSSENCRequest`.
///
/// Read exactly one byte for it: bytes buffered past it before the TLS
/// handshake would be injected into the session (CVE-2021-23222).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptionAnswer {
    /// `'S'`: TLS follows.
    SslAccepted,
    /// `'G'`: GSSAPI encryption follows.
    GssEncAccepted,
    /// `'N'`: plaintext continues.
    Refused,
    /// `'E'`: the server sent an `ErrorResponse` instead (this byte is its
    /// tag); it closes the connection after it.
    Error,
}

impl EncryptionAnswer {
    /// `None` for any other byte: not a PostgreSQL server.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            SSL_ACCEPTED => Some(Self::SslAccepted),
            GSSENC_ACCEPTED => Some(Self::GssEncAccepted),
            ENCRYPTION_REFUSED => Some(Self::Refused),
            tag::ERROR_RESPONSE => Some(Self::Error),
            _ => None,
        }
    }
}

mod fields;
pub(crate) use fields::fields_of;
pub use fields::{error_response, parse_fields, ErrorFields, Severity};

#[cfg(test)]
mod tests;
