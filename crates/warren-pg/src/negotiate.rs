//! [`Negotiator`]: the server side of a client connection, from its first
//! byte to its `StartupMessage` or `CancelRequest`, as a state machine that
//! takes bytes in and gives [`Action`]s out.
//!
//! It answers the encryption requests (`GSSENCRequest` always `N`;
//! `SSLRequest` and PostgreSQL 17 direct TLS as its [`Policy`] says), counts
//! them, refuses plaintext that follows an accepted `SSLRequest`, and hands
//! over the startup (or cancel) with its exact bytes. It never touches a
//! socket or a clock: the driver reads, writes, runs the TLS handshake and
//! keeps the deadlines.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::message::{sqlstate, ErrorFields, Message, Severity};
use crate::startup::{parse_first_limited, CancelRequest, FirstMessage, Startup, StartupError};
use crate::{ENCRYPTION_REFUSED, MAX_STARTUP_LEN, SSL_ACCEPTED};

/// Encryption requests a client may send before its startup: libpq sends
/// at most a `GSSENCRequest`, then an `SSLRequest`.
pub const MAX_ENCRYPTION_REQUESTS: usize = 2;

/// Length of the length field that starts every first message.
const LEN_FIELD: usize = 4;
/// Length of a first message's length and code fields.
const FIRST_HEADER_LEN: usize = 8;

/// What to do when a client asks for TLS (`SSLRequest` or direct TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Accept at once: the driver always has a certificate (the edge).
    Accept,
    /// Ask the driver with [`Action::DecideTls`] and wait for
    /// [`Negotiator::decide_tls`] (the connector, which must first get a
    /// certificate from the edge).
    Ask,
}

/// What a [`Negotiator`] allows; fixed at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// What to do with an `SSLRequest` or a direct-TLS ClientHello.
    pub tls: TlsPolicy,
    /// Whether a `StartupMessage` outside TLS is accepted.
    pub plaintext_startup: bool,
    /// Largest first message, length field included.
    pub max_startup_len: usize,
}

impl Policy {
    /// The edge's native listener: TLS always, and only TLS.
    pub const EDGE: Self = Self {
        tls: TlsPolicy::Accept,
        plaintext_startup: false,
        max_startup_len: MAX_STARTUP_LEN,
    };
    /// The connector: TLS when the driver has a certificate, plaintext too
    /// (the tunnel is already encrypted).
    pub const CONNECTOR: Self = Self {
        tls: TlsPolicy::Ask,
        plaintext_startup: true,
        max_startup_len: MAX_STARTUP_LEN,
    };
}

/// A `StartupMessage`, ready to be authorized and forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupReady {
    /// The parsed message.
    pub startup: Startup,
    /// Exactly the bytes the client sent for it.
    pub raw: Bytes,
    /// Whether it came inside TLS.
    pub tls: bool,
    /// Bytes fed after it (a pipelining client's next messages): they
    /// belong to the session and must be forwarded after `raw`.
    pub rest: Bytes,
}

/// A `CancelRequest`: forward it, then close the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelReady {
    /// The parsed request: the process id and key it names.
    pub request: CancelRequest,
    /// Exactly the bytes the client sent for it.
    pub raw: Bytes,
    /// Whether it came inside TLS.
    pub tls: bool,
}

/// What the driver must do next; see [`Negotiator`] for the loop.
#[derive(Debug)]
pub enum Action {
    /// Write these bytes to the client (an answer to an encryption
    /// request, in plaintext).
    Send(Bytes),
    /// The client asks for TLS (`direct`: it started a TLS handshake
    /// without an `SSLRequest`). Find out whether TLS can be offered, then
    /// call [`Negotiator::decide_tls`]. Only with [`TlsPolicy::Ask`].
    DecideTls {
        /// Whether the client started TLS directly (PostgreSQL 17).
        direct: bool,
    },
    /// Run the TLS server handshake on the connection, reading `replay`
    /// before anything else from it (empty after an `SSLRequest`; for
    /// direct TLS every byte fed since the last message, the start of the
    /// ClientHello). Then call [`Negotiator::tls_established`] and feed what
    /// TLS decrypts.
    StartTls {
        /// Bytes that belong to the TLS handshake, already read.
        replay: Bytes,
    },
    /// The negotiation ended with a `StartupMessage`.
    Startup(StartupReady),
    /// The negotiation ended with a `CancelRequest`.
    Cancel(CancelReady),
    /// The negotiation failed: send [`NegotiationError::error_response`]
    /// if there is one, then close.
    Close(NegotiationError),
}

/// Why a negotiation ended without a startup or cancel. Each text is one
/// sentence fit for the client's `ErrorResponse` and the log line.
#[derive(Debug, Error)]
pub enum NegotiationError {
    /// The first message is malformed or too long, or the connection
    /// ended before it was complete ([`StartupError::Closed`],
    /// [`StartupError::Truncated`]).
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// A third encryption request before the startup.
    #[error("too many encryption requests before the startup message")]
    TooManyEncryptionRequests,
    /// A `StartupMessage` outside TLS, which the policy refuses.
    #[error("this server accepts PostgreSQL connections only over TLS: connect with sslmode=verify-full")]
    PlaintextRefused,
    /// Inside TLS, a message other than a startup or a cancel.
    #[error("expected a startup message inside TLS, got {got}")]
    UnexpectedInsideTls {
        /// What came instead ([`FirstMessage::name`]).
        got: &'static str,
    },
    /// Plaintext bytes after an accepted `SSLRequest`, before TLS: they
    /// could have been injected (the CVE-2021-23214 class), so they are
    /// refused, not read.
    #[error("received {count} bytes of unencrypted data after the SSL request")]
    UnencryptedAfterSslRequest {
        /// How many bytes came.
        count: usize,
    },
    /// A direct-TLS client, and the driver declined TLS: nothing can be
    /// said to it.
    #[error("the client started TLS directly, but TLS is not available")]
    DirectTlsDeclined,
}

impl NegotiationError {
    /// The SQLSTATE to tell the client, or `None` when nothing should be
    /// sent (it closed, or it speaks TLS that was not started).
    pub fn sqlstate(&self) -> Option<&'static str> {
        match self {
            Self::Startup(StartupError::Closed | StartupError::Truncated { .. })
            | Self::DirectTlsDeclined => None,
            Self::PlaintextRefused => Some(sqlstate::INVALID_AUTHORIZATION),
            Self::Startup(_)
            | Self::TooManyEncryptionRequests
            | Self::UnexpectedInsideTls { .. }
            | Self::UnencryptedAfterSslRequest { .. } => Some(sqlstate::PROTOCOL_VIOLATION),
        }
    }

    /// The FATAL `ErrorResponse` to send before closing, if any: the
    /// [`sqlstate`](Self::sqlstate) and this error's sentence. A driver
    /// may send its own instead (one with a hint naming its CLI).
    pub fn error_response(&self) -> Option<Message> {
        let code = self.sqlstate()?;
        Some(ErrorFields::new(Severity::Fatal, code, &self.to_string()).to_error())
    }
}

/// Where the negotiation is.
#[derive(Debug)]
enum State {
    /// Reading a first message outside TLS.
    Plain,
    /// Waiting for [`Negotiator::decide_tls`].
    Deciding { direct: bool },
    /// TLS was accepted; it starts at the next poll.
    Accepted { direct: bool },
    /// TLS was declined for an `SSLRequest`: `N` goes out at the next poll.
    Refused,
    /// `S` went out; [`Action::StartTls`] goes out at the next poll.
    SentSsl,
    /// Waiting for [`Negotiator::tls_established`].
    Handshake,
    /// Reading a first message inside TLS.
    Tls,
    /// About to end with this error.
    Closing(NegotiationError),
    /// Ended: nothing more to do.
    Done,
}

/// The server side of a PostgreSQL client connection up to its startup: a
/// state machine without IO.
///
/// # Call order
///
/// 1. [`Negotiator::new`] with the [`Policy`] of the listener.
/// 2. Read from the client and pass what came to [`feed`](Self::feed), or
///    call [`eof`](Self::eof) when it closed.
/// 3. Call [`poll`](Self::poll) until it returns `None`, carrying out each
///    [`Action`] in order:
///    - [`Action::Send`]: write the bytes to the client;
///    - [`Action::DecideTls`]: find out whether TLS can be offered, call
///      [`decide_tls`](Self::decide_tls), keep polling;
///    - [`Action::StartTls`]: run the TLS handshake over the connection
///      with `replay` read first, call
///      [`tls_established`](Self::tls_established) once it succeeds (or
///      close if it fails), and from then on read from the TLS stream;
///    - [`Action::Startup`], [`Action::Cancel`], [`Action::Close`]: the
///      negotiation is over; later polls return `None` and later feeds are
///      ignored.
/// 4. When `poll` returns `None` and the negotiation is not over, go back
///    to 2.
///
/// Read only after `poll` returned `None`: bytes fed while a TLS decision
/// is pending or between `StartTls` and `tls_established` are plaintext
/// the client sent before TLS, and are refused when TLS is accepted.
/// Deadlines are the driver's: this type has no clock.
#[derive(Debug)]
pub struct Negotiator {
    policy: Policy,
    state: State,
    /// Bytes fed and not yet taken by a message.
    buf: BytesMut,
    /// Encryption requests answered so far.
    requests: usize,
    /// The client closed its side.
    eof: bool,
}

impl Negotiator {
    /// A negotiator for a new connection, nothing read yet.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            state: State::Plain,
            buf: BytesMut::new(),
            requests: 0,
            eof: false,
        }
    }

    /// Bytes read from the client: plaintext before TLS, decrypted after
    /// [`tls_established`](Self::tls_established). Ignored once the
    /// negotiation is over.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.is_finished() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The client closed its side of the connection (or of TLS).
    pub fn eof(&mut self) {
        self.eof = true;
    }

    /// The answer to [`Action::DecideTls`]: whether to accept TLS. Ignored
    /// when no decision is pending.
    pub fn decide_tls(&mut self, accept: bool) {
        if let State::Deciding { direct } = self.state {
            self.state = match (accept, direct) {
                (true, _) => State::Accepted { direct },
                (false, false) => State::Refused,
                (false, true) => State::Closing(NegotiationError::DirectTlsDeclined),
            };
        }
    }

    /// The TLS handshake [`Action::StartTls`] asked for succeeded: what is
    /// fed from now on was decrypted. Ignored at any other time.
    pub fn tls_established(&mut self) {
        if matches!(self.state, State::Handshake) {
            self.state = match self.unencrypted() {
                Some(e) => State::Closing(e),
                None => State::Tls,
            };
        }
    }

    /// Whether the negotiation is over (a startup, a cancel or a close was
    /// handed out, or is the next action).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Closing(_))
    }

    /// The next thing to do, or `None` until more is fed or decided.
    pub fn poll(&mut self) -> Option<Action> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Done => None,
            State::Closing(e) => Some(Action::Close(e)),
            State::Plain => self.read_first(false),
            State::Tls => self.read_first(true),
            s @ State::Deciding { .. } => {
                self.state = s;
                None
            }
            State::Accepted { direct } => Some(self.accept(direct)),
            State::Refused => {
                self.state = State::Plain;
                Some(Action::Send(Bytes::from_static(&[ENCRYPTION_REFUSED])))
            }
            State::SentSsl => Some(match self.unencrypted() {
                Some(e) => Action::Close(e),
                None => {
                    self.state = State::Handshake;
                    Action::StartTls {
                        replay: Bytes::new(),
                    }
                }
            }),
            State::Handshake => match self.unencrypted() {
                Some(e) => Some(Action::Close(e)),
                None => {
                    self.state = State::Handshake;
                    None
                }
            },
        }
    }

    /// The refusal of plaintext fed after `S`, if any was.
    fn unencrypted(&self) -> Option<NegotiationError> {
        (!self.buf.is_empty()).then(|| NegotiationError::UnencryptedAfterSslRequest {
            count: self.buf.len(),
        })
    }

    /// TLS was accepted: answer `S` (or, for direct TLS, start at once
    /// with the bytes read so far).
    fn accept(&mut self, direct: bool) -> Action {
        if direct {
            self.state = State::Handshake;
            return Action::StartTls {
                replay: self.buf.split().freeze(),
            };
        }
        match self.unencrypted() {
            Some(e) => Action::Close(e),
            None => {
                self.state = State::SentSsl;
                Action::Send(Bytes::from_static(&[SSL_ACCEPTED]))
            }
        }
    }

    /// Parses the next first message (state `Plain` or `Tls`, now `Done`).
    fn read_first(&mut self, tls: bool) -> Option<Action> {
        let (message, n) = match parse_first_limited(&self.buf, self.policy.max_startup_len) {
            Ok(Some(parsed)) => parsed,
            Ok(None) if self.eof => return Some(Action::Close(self.truncated().into())),
            Ok(None) => {
                self.state = if tls { State::Tls } else { State::Plain };
                return None;
            }
            Err(e) => return Some(Action::Close(e.into())),
        };
        let close = |e| Some(Action::Close(e));
        match message {
            FirstMessage::Startup(startup) if tls || self.policy.plaintext_startup => {
                let raw = self.buf.split_to(n).freeze();
                let rest = self.buf.split().freeze();
                Some(Action::Startup(StartupReady {
                    startup,
                    raw,
                    tls,
                    rest,
                }))
            }
            FirstMessage::Startup(_) => close(NegotiationError::PlaintextRefused),
            FirstMessage::Cancel(request) => {
                let raw = self.buf.split_to(n).freeze();
                self.buf = BytesMut::new();
                Some(Action::Cancel(CancelReady { request, raw, tls }))
            }
            other if tls => close(NegotiationError::UnexpectedInsideTls { got: other.name() }),
            FirstMessage::SslRequest | FirstMessage::GssEncRequest
                if self.requests >= MAX_ENCRYPTION_REQUESTS =>
            {
                close(NegotiationError::TooManyEncryptionRequests)
            }
            FirstMessage::GssEncRequest => {
                self.requests += 1;
                let _ = self.buf.split_to(n);
                self.state = State::Plain;
                Some(Action::Send(Bytes::from_static(&[ENCRYPTION_REFUSED])))
            }
            // Direct TLS is not a request, and is not counted: a client may
            // start it after a refused GSSENCRequest.
            FirstMessage::SslRequest | FirstMessage::DirectTls => {
                let direct = matches!(message, FirstMessage::DirectTls);
                if !direct {
                    self.requests += 1;
                    let _ = self.buf.split_to(n);
                }
                match self.policy.tls {
                    TlsPolicy::Accept => Some(self.accept(direct)),
                    TlsPolicy::Ask => {
                        self.state = State::Deciding { direct };
                        Some(Action::DecideTls { direct })
                    }
                }
            }
        }
    }

    /// What an end of stream means for the bytes buffered now.
    fn truncated(&self) -> StartupError {
        let got = self.buf.len();
        if got == 0 {
            return StartupError::Closed;
        }
        let expected = match self.buf.get(..LEN_FIELD) {
            Some(len) => u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize,
            None => FIRST_HEADER_LEN,
        };
        StartupError::Truncated { got, expected }
    }
}

#[cfg(test)]
mod tests;
