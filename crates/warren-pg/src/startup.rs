//! The client's first message: the only untagged messages of the protocol.
//!
//! Every first message is an `Int32` length (counting itself), an `Int32`
//! code and a body; [`parse_first`] recognises the encryption requests, a
//! `CancelRequest`, a `StartupMessage` (3.0 or 3.2) and a direct-TLS
//! ClientHello, and refuses everything else with a [`StartupError`] whose
//! text can be shown to the client.
//!
//! Checks run as soon as the bytes they need are there: a length is refused
//! from the first four bytes, an unknown protocol from the first eight, so a
//! hostile client cannot make Warren wait for or buffer a body it will
//! refuse.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::{
    CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, MAX_CANCEL_KEY_LEN, MAX_STARTUP_LEN,
    MIN_CANCEL_KEY_LEN, SSL_REQUEST_CODE, TLS_HANDSHAKE_BYTE,
};

/// Length of the length and code fields every first message starts with.
pub(crate) const HEADER_LEN: usize = 8;
/// Length of a `CancelRequest` without its key: length, code, process id.
const CANCEL_FIXED_LEN: usize = 12;

/// Why a first message was refused. Each text is one sentence fit for the
/// client's ErrorResponse and the log line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StartupError {
    /// The client closed the connection without sending a byte.
    #[error("the client closed the connection before sending its first message")]
    Closed,
    /// The length field is 0.
    #[error("the client's first message has length 0, which no PostgreSQL client sends")]
    ZeroLength,
    /// The length field is below the 8 bytes of length and code.
    #[error(
        "the client's first message claims {len} bytes, fewer than the 8 every first message has"
    )]
    TooShort {
        /// The length field.
        len: usize,
    },
    /// The length field is above the limit.
    #[error("the startup message claims {len} bytes, more than the {max} Warren accepts: send fewer or shorter parameters")]
    TooLong {
        /// The length field.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The connection ended in the middle of the message.
    #[error("the client closed the connection after {got} bytes of a first message that needs {expected}")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes the message needs (8 while its length is not known).
        expected: usize,
    },
    /// A protocol version (or request code) Warren does not speak.
    #[error("unsupported frontend protocol {major}.{minor}: Warren speaks 3.0 and 3.2")]
    UnsupportedProtocol {
        /// The code's upper half.
        major: u16,
        /// The code's lower half.
        minor: u16,
    },
    /// An `SSLRequest` or `GSSENCRequest` with a body.
    #[error("the client's {request} is {len} bytes long instead of 8")]
    BadRequestLength {
        /// Which request.
        request: &'static str,
        /// Its length field.
        len: usize,
    },
    /// A `CancelRequest` whose key is not 4 to 256 bytes long.
    #[error("the client's CancelRequest is {len} bytes long, but one with a 4- to 256-byte secret key is 16 to 268")]
    BadCancelLength {
        /// Its length field.
        len: usize,
    },
    /// No `user` parameter, or an empty one.
    #[error(
        "the startup message names no user: set the PostgreSQL user (psql -U NAME, or PGUSER)"
    )]
    MissingUser,
    /// The parameters are not NUL-terminated pairs ending with an extra NUL.
    #[error(
        "the startup parameters are not NUL-terminated name/value pairs followed by a final NUL"
    )]
    UnterminatedParams,
    /// Bytes follow the NUL that ends the parameter list.
    #[error("the startup message has {count} bytes after the NUL that ends its parameters")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A parameter name or value is not UTF-8.
    #[error(
        "a startup parameter is not valid UTF-8: Warren needs parameter names and values in UTF-8"
    )]
    NotUtf8,
    /// Building a startup message: a parameter with an empty name.
    #[error("a startup parameter has an empty name, which would end the parameter list early")]
    EmptyParamName,
    /// Building a startup message: a NUL byte inside a name or value.
    #[error("startup parameter {name:?} contains a NUL byte, which the protocol cannot carry")]
    NulInParam {
        /// The parameter's name.
        name: String,
    },
    /// Building a cancel key of the wrong length.
    #[error("a cancel secret key is {len} bytes long, outside the 4 to 256 the protocol allows")]
    BadCancelKey {
        /// The key's length.
        len: usize,
    },
}

/// A protocol version, as `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolVersion {
    /// 3 for every version Warren speaks.
    pub major: u16,
    /// 0 or 2.
    pub minor: u16,
}

impl ProtocolVersion {
    /// Protocol 3.0, spoken by every client since PostgreSQL 7.4.
    pub const V3_0: Self = Self { major: 3, minor: 0 };
    /// Protocol 3.2 (PostgreSQL 18): longer cancel keys.
    pub const V3_2: Self = Self { major: 3, minor: 2 };

    /// Splits a first-message code into major and minor halves.
    pub fn from_code(code: u32) -> Self {
        Self {
            major: (code >> 16) as u16,
            minor: (code & 0xffff) as u16,
        }
    }

    /// The code as it travels in a `StartupMessage`.
    pub fn code(self) -> u32 {
        (u32::from(self.major) << 16) | u32::from(self.minor)
    }

    /// Whether Warren speaks this version.
    pub fn is_supported(self) -> bool {
        self == Self::V3_0 || self == Self::V3_2
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The secret key of a session, which a `CancelRequest` must repeat: 4 bytes
/// in protocol 3.0, up to 256 in 3.2. `Debug` shows only its length and
/// equality takes the same time wherever the keys differ.
#[derive(Clone, Eq)]
pub struct CancelKey(Bytes);

impl CancelKey {
    /// A key of 4 to 256 bytes.
    pub fn new(key: impl Into<Bytes>) -> Result<Self, StartupError> {
        let key = key.into();
        if (MIN_CANCEL_KEY_LEN..=MAX_CANCEL_KEY_LEN).contains(&key.len()) {
            Ok(Self(key))
        } else {
            Err(StartupError::BadCancelKey { len: key.len() })
        }
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for CancelKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && std::hint::black_box(
                self.0
                    .iter()
                    .zip(other.0.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b)),
            ) == 0
    }
}

impl fmt::Debug for CancelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CancelKey(<{} bytes>)", self.0.len())
    }
}

/// A `CancelRequest`: cancel what the session with this process id and key
/// is running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    /// The process id of the session's backend.
    pub pid: u32,
    /// The session's secret key.
    pub key: CancelKey,
}

impl CancelRequest {
    /// The request as it travels.
    pub fn encode(&self) -> Bytes {
        encode_cancel(self.pid, &self.key)
    }
}

/// A `StartupMessage`: the protocol version and the connection parameters,
/// in the order the client sent them. Always names a non-empty user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup {
    version: ProtocolVersion,
    params: Vec<(String, String)>,
}

impl Startup {
    /// A startup message to send; refuses what could not be encoded
    /// faithfully or what a server would refuse (no user, over the size
    /// limit).
    pub fn new(
        version: ProtocolVersion,
        params: Vec<(String, String)>,
    ) -> Result<Self, StartupError> {
        if !version.is_supported() {
            return Err(StartupError::UnsupportedProtocol {
                major: version.major,
                minor: version.minor,
            });
        }
        for (name, value) in &params {
            if name.is_empty() {
                return Err(StartupError::EmptyParamName);
            }
            if name.contains('\0') || value.contains('\0') {
                return Err(StartupError::NulInParam { name: name.clone() });
            }
        }
        let startup = Self { version, params };
        if startup.user().is_empty() {
            return Err(StartupError::MissingUser);
        }
        let len = startup.encoded_len();
        if len > MAX_STARTUP_LEN {
            return Err(StartupError::TooLong {
                len,
                max: MAX_STARTUP_LEN,
            });
        }
        Ok(startup)
    }

    /// The protocol version the client asks for.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Every parameter, in the client's order, to forward as they came.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The parameters, taken out.
    pub fn into_params(self) -> Vec<(String, String)> {
        self.params
    }

    /// A parameter's value. When a name repeats the last one counts, as it
    /// does for the server, so Warren records what the server will use.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The PostgreSQL user; never empty.
    pub fn user(&self) -> &str {
        self.param("user").unwrap_or("")
    }

    /// The database: the `database` parameter, or the user's name when it is
    /// missing or empty, as the server decides.
    pub fn database(&self) -> &str {
        match self.param("database") {
            Some(db) if !db.is_empty() => db,
            _ => self.user(),
        }
    }

    /// The `application_name` parameter.
    pub fn application_name(&self) -> Option<&str> {
        self.param("application_name")
    }

    /// Command-line options for the server process (`-c name=value ...`).
    pub fn options(&self) -> Option<&str> {
        self.param("options")
    }

    fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .params
                .iter()
                .map(|(n, v)| n.len() + v.len() + 2)
                .sum::<usize>()
            + 1
    }

    /// The message as bytes: for a parsed message, exactly what the client
    /// sent.
    pub fn encode(&self) -> Bytes {
        let len = self.encoded_len();
        let mut b = BytesMut::with_capacity(len);
        // `new` and the parser both keep the length under MAX_STARTUP_LEN.
        b.put_u32(len as u32);
        b.put_u32(self.version.code());
        for (name, value) in &self.params {
            b.put_slice(name.as_bytes());
            b.put_u8(0);
            b.put_slice(value.as_bytes());
            b.put_u8(0);
        }
        b.put_u8(0);
        b.freeze()
    }
}

/// What a client can say first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstMessage {
    /// Asks for TLS; answer [`crate::SSL_ACCEPTED`] or
    /// [`crate::ENCRYPTION_REFUSED`].
    SslRequest,
    /// Asks for GSSAPI encryption; Warren answers
    /// [`crate::ENCRYPTION_REFUSED`].
    GssEncRequest,
    /// Cancels a running query of another session.
    Cancel(CancelRequest),
    /// Starts a session.
    Startup(Startup),
    /// A TLS ClientHello with no `SSLRequest` before it (PostgreSQL 17
    /// direct TLS). Nothing of it is consumed by [`parse_first`]: the
    /// bytes belong to the TLS handshake.
    DirectTls,
}

impl FirstMessage {
    /// The message as bytes; for a parsed message exactly what the client
    /// sent. Empty for [`FirstMessage::DirectTls`], which belongs to TLS.
    pub fn encode(&self) -> Bytes {
        match self {
            Self::SslRequest => encode_ssl_request(),
            Self::GssEncRequest => encode_request(GSSENC_REQUEST_CODE),
            Self::Cancel(c) => c.encode(),
            Self::Startup(s) => s.encode(),
            Self::DirectTls => Bytes::new(),
        }
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SslRequest => "SSLRequest",
            Self::GssEncRequest => "GSSENCRequest",
            Self::Cancel(_) => "CancelRequest",
            Self::Startup(_) => "StartupMessage",
            Self::DirectTls => "direct TLS",
        }
    }
}

/// The kinds of first message, known from the header alone.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Ssl,
    GssEnc,
    Cancel,
    Startup(ProtocolVersion),
}

/// Checks a length field against the limit.
pub(crate) fn check_len(len: usize, max_len: usize) -> Result<(), StartupError> {
    match len {
        0 => Err(StartupError::ZeroLength),
        1..HEADER_LEN => Err(StartupError::TooShort { len }),
        _ if len > max_len => Err(StartupError::TooLong { len, max: max_len }),
        _ => Ok(()),
    }
}

/// Tells the kind of message from its code and checks the length fits it.
pub(crate) fn check_code(code: u32, len: usize) -> Result<Kind, StartupError> {
    let kind = match code {
        SSL_REQUEST_CODE => Kind::Ssl,
        GSSENC_REQUEST_CODE => Kind::GssEnc,
        CANCEL_REQUEST_CODE => Kind::Cancel,
        _ => {
            let version = ProtocolVersion::from_code(code);
            if !version.is_supported() {
                return Err(StartupError::UnsupportedProtocol {
                    major: version.major,
                    minor: version.minor,
                });
            }
            Kind::Startup(version)
        }
    };
    match kind {
        Kind::Ssl | Kind::GssEnc if len != HEADER_LEN => Err(StartupError::BadRequestLength {
            request: if matches!(kind, Kind::Ssl) {
                "SSLRequest"
            } else {
                "GSSENCRequest"
            },
            len,
        }),
        Kind::Cancel
            if !(CANCEL_FIXED_LEN + MIN_CANCEL_KEY_LEN..=CANCEL_FIXED_LEN + MAX_CANCEL_KEY_LEN)
                .contains(&len) =>
        {
            Err(StartupError::BadCancelLength { len })
        }
        _ => Ok(kind),
    }
}

fn be_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// Parses the client's first message from the front of `buf`, with the
/// server's size limit ([`MAX_STARTUP_LEN`]).
///
/// `Ok(None)`: not enough bytes yet. `Ok(Some((message, n)))`: the message
/// took the first `n` bytes (0 for [`FirstMessage::DirectTls`], whose bytes
/// all belong to TLS).
pub fn parse_first(buf: &[u8]) -> Result<Option<(FirstMessage, usize)>, StartupError> {
    parse_first_limited(buf, MAX_STARTUP_LEN)
}

/// [`parse_first`] with a caller-chosen size limit, length field included.
pub fn parse_first_limited(
    buf: &[u8],
    max_len: usize,
) -> Result<Option<(FirstMessage, usize)>, StartupError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first == TLS_HANDSHAKE_BYTE {
        // A length starting with 0x16 would be over 350 MB: never valid.
        return Ok(Some((FirstMessage::DirectTls, 0)));
    }
    let Some(len) = be_u32(buf) else {
        return Ok(None);
    };
    let len = len as usize;
    check_len(len, max_len)?;
    let Some(code) = buf.get(4..).and_then(be_u32) else {
        return Ok(None);
    };
    let kind = check_code(code, len)?;
    let Some(body) = buf.get(HEADER_LEN..len) else {
        return Ok(None);
    };
    Ok(Some((parse_body(kind, body)?, len)))
}

/// Parses the body of a message whose header passed [`check_code`].
pub(crate) fn parse_body(kind: Kind, body: &[u8]) -> Result<FirstMessage, StartupError> {
    Ok(match kind {
        Kind::Ssl => FirstMessage::SslRequest,
        Kind::GssEnc => FirstMessage::GssEncRequest,
        Kind::Cancel => {
            let (pid, key) = match (be_u32(body), body.get(4..)) {
                (Some(pid), Some(key)) => (pid, key),
                _ => {
                    return Err(StartupError::BadCancelLength {
                        len: HEADER_LEN + body.len(),
                    })
                }
            };
            FirstMessage::Cancel(CancelRequest {
                pid,
                key: CancelKey::new(Bytes::copy_from_slice(key))?,
            })
        }
        Kind::Startup(version) => {
            let startup = Startup {
                version,
                params: parse_params(body)?,
            };
            if startup.user().is_empty() {
                return Err(StartupError::MissingUser);
            }
            FirstMessage::Startup(startup)
        }
    })
}

/// Splits a NUL-terminated string off the front of `buf`.
fn split_cstr(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = buf.iter().position(|&b| b == 0)?;
    let (s, rest) = buf.split_at(nul);
    Some((s, rest.get(1..)?))
}

fn utf8(b: &[u8]) -> Result<String, StartupError> {
    std::str::from_utf8(b)
        .map(str::to_owned)
        .map_err(|_| StartupError::NotUtf8)
}

/// Name/value pairs, each NUL-terminated, then one more NUL as the last
/// byte (the server refuses anything after it; so does Warren).
fn parse_params(mut rest: &[u8]) -> Result<Vec<(String, String)>, StartupError> {
    let mut params = Vec::new();
    loop {
        let (name, after) = split_cstr(rest).ok_or(StartupError::UnterminatedParams)?;
        if name.is_empty() {
            if !after.is_empty() {
                return Err(StartupError::TrailingBytes { count: after.len() });
            }
            return Ok(params);
        }
        let (value, after) = split_cstr(after).ok_or(StartupError::UnterminatedParams)?;
        params.push((utf8(name)?, utf8(value)?));
        rest = after;
    }
}

/// A `StartupMessage` with these parameters, for a client or a test.
pub fn encode_startup(
    version: ProtocolVersion,
    params: &[(&str, &str)],
) -> Result<Bytes, StartupError> {
    let params = params
        .iter()
        .map(|&(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    Ok(Startup::new(version, params)?.encode())
}

fn encode_request(code: u32) -> Bytes {
    let mut b = BytesMut::with_capacity(HEADER_LEN);
    b.put_u32(HEADER_LEN as u32);
    b.put_u32(code);
    b.freeze()
}

/// An `SSLRequest`, as Warren sends it to a database before TLS.
pub fn encode_ssl_request() -> Bytes {
    encode_request(SSL_REQUEST_CODE)
}

/// A `CancelRequest` for the session with this process id and key.
pub fn encode_cancel(pid: u32, key: &CancelKey) -> Bytes {
    let len = CANCEL_FIXED_LEN + key.as_bytes().len();
    let mut b = BytesMut::with_capacity(len);
    // A key is at most 256 bytes, so the length fits.
    b.put_u32(len as u32);
    b.put_u32(CANCEL_REQUEST_CODE);
    b.put_u32(pid);
    b.put_slice(key.as_bytes());
    b.freeze()
}

#[cfg(test)]
mod tests;
