//! The PostgreSQL wire-protocol pieces Warren needs to stand between a
//! client and a database: read what the client says first, answer the
//! encryption requests, record who is connecting, relay authentication,
//! and follow the session (cancel keys, transaction status, the statements
//! to log). Warren never implements a database: after the startup, bytes
//! are spliced and only looked at.
//!
//! # The core: state machines without IO
//!
//! A client connection is carried from its first byte to its end by four
//! state machines. Each takes bytes and the driver's decisions in and hands
//! out what to do; the driver (a thin tokio task in the edge or the
//! connector) reads, writes, runs TLS and keeps the deadlines. Each type's
//! doc lists its call order.
//!
//! - [`Negotiator`] ([`negotiate`]): the server side up to the startup.
//!   `feed`/`eof`, then `poll` → [`negotiate::Action`]: send an answer,
//!   decide on TLS, start TLS with the bytes to replay, and finally a
//!   startup, a cancel, or a close with a [`NegotiationError`]. A
//!   [`negotiate::Policy`] holds what the edge and the connector differ in.
//! - [`AuthRelay`] ([`auth`]): the authentication exchange between client
//!   and database, message by message, with `-PLUS` mechanisms removed and
//!   the channel-binding refusal; ends with the bytes already read from
//!   each side, or an [`AuthError`].
//! - [`BackendTracker`] and [`FrontendTracker`] ([`track`]), on
//!   [`scan::Scanner`]: observe the chunks of a session as they are
//!   forwarded unchanged, finding message boundaries without buffering
//!   messages; they report cancel keys, parameters, `ReadyForQuery`
//!   statuses, errors, and the `Query`/`Parse` texts for the statement log.
//!
//! **The core (`negotiate`, `auth`, `scan`, `track`) does no IO and reads
//! no clock**: no socket, no tokio, no `Instant::now` (the crate's
//! `clippy.toml` refuses the clock calls), so every path is a table test
//! and a fuzz target. Every length from the wire is checked against a
//! limit before anything is allocated for it.
//!
//! # The phases Warren sees on a client connection
//!
//! 1. **First message** ([`startup::parse_first`]). Untagged: an `Int32`
//!    length (counting itself) and an `Int32` code. It is one of
//!    - `SSLRequest` → answer [`SSL_ACCEPTED`] (`'S'`, then TLS) or
//!      [`ENCRYPTION_REFUSED`] (`'N'`, plaintext continues);
//!    - `GSSENCRequest` → Warren answers [`ENCRYPTION_REFUSED`];
//!    - direct TLS (PostgreSQL 17 `sslnegotiation=direct`): the first byte
//!      is a TLS ClientHello (`0x16`), ALPN [`ALPN`]; nothing is answered,
//!      TLS starts at once, with the bytes already read replayed;
//!    - `CancelRequest` on a fresh connection: process id and secret key of
//!      the session to cancel; no answer, the connection is closed;
//!    - `StartupMessage` (protocol 3.0 or 3.2): user, database and the other
//!      parameters.
//!
//!    After a refused request the client sends another first message on the
//!    same connection: libpq with `gssencmode=prefer` sends `GSSENCRequest`,
//!    gets `'N'`, then `SSLRequest`, then the startup. After TLS the next
//!    message is a `StartupMessage` or a `CancelRequest`, never another
//!    encryption request. The [`Negotiator`] enforces that order.
//! 2. **Optional TLS**, terminated by Warren.
//! 3. **Startup**: Warren reads the `StartupMessage`, records user, database
//!    and `application_name`, and forwards it to the database unchanged
//!    ([`negotiate::StartupReady::raw`] holds the exact bytes).
//! 4. **Authentication** is relayed ([`AuthRelay`]): Warren never sees a
//!    password it could use. The server's `BackendKeyData` names the key a
//!    later `CancelRequest` must carry ([`BackendTracker::key_data`]).
//! 5. **Regular phase**: tagged messages (`u8` tag, `Int32` length, body),
//!    followed by the trackers; [`message::MessageDecoder`] frames whole
//!    messages where a caller needs them.
//!
//! Warren's own refusals reach the client as an `ErrorResponse`
//! ([`message::error_response`]; the core's errors offer theirs with
//! `error_response()`).
//!
//! **This crate does no IO and reads no clock**: the edge and the
//! connector drive its state machines (the shared driver is
//! `warren_transport::pg`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod message;
pub mod negotiate;
pub mod pool;
pub mod scan;
pub mod startup;
pub mod track;

pub use auth::{AuthError, AuthRelay};
pub use message::{
    error_response, ErrorFields, Message, MessageDecoder, MessageError, Severity, TransactionStatus,
};
pub use negotiate::{NegotiationError, Negotiator};
pub use startup::{
    encode_cancel, encode_ssl_request, encode_startup, parse_first, parse_first_limited, CancelKey,
    CancelRequest, FirstMessage, ProtocolVersion, Startup, StartupError,
};
pub use track::{BackendTracker, FrontendTracker, TrackError};

/// First-message code of an `SSLRequest` (1234.5679).
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// First-message code of a `GSSENCRequest` (1234.5680).
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// First-message code of a `CancelRequest` (1234.5678).
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// Protocol code of a `StartupMessage` for protocol 3.0.
pub const PROTOCOL_3_0: u32 = 196_608;
/// Protocol code of a `StartupMessage` for protocol 3.2 (PostgreSQL 18).
pub const PROTOCOL_3_2: u32 = 196_610;

/// Largest first message accepted, length field included: the server's own
/// limit (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_LEN: usize = 10_000;
/// Shortest cancel secret key: protocol 3.0 keys are exactly 4 bytes.
pub const MIN_CANCEL_KEY_LEN: usize = 4;
/// Longest cancel secret key protocol 3.2 allows.
pub const MAX_CANCEL_KEY_LEN: usize = 256;

/// Default limit of a regular-phase message's length field: 1 GiB, about
/// what the server itself accepts.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 1 << 30;

/// First byte of a TLS record carrying a handshake: a client that starts
/// with it does direct TLS (PostgreSQL 17).
pub const TLS_HANDSHAKE_BYTE: u8 = 0x16;
/// ALPN protocol name a direct-TLS client must offer.
pub const ALPN: &[u8] = b"postgresql";

/// Answer to `SSLRequest`: go ahead with TLS.
pub const SSL_ACCEPTED: u8 = b'S';
/// Answer to `GSSENCRequest`: go ahead with GSSAPI encryption (Warren never
/// sends it; a database might).
pub const GSSENC_ACCEPTED: u8 = b'G';
/// Answer to either request: no encryption, continue in plaintext.
pub const ENCRYPTION_REFUSED: u8 = b'N';
