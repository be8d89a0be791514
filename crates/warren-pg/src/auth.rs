//! [`AuthRelay`]: the authentication exchange between a client and a
//! database, relayed message by message once the client's
//! `StartupMessage` has been forwarded, as a state machine without IO.
//!
//! Warren never answers for the client: every request of the database goes
//! to the client and every answer of the client to the database, so a
//! password proves itself end to end. One change is made on the way:
//! `AuthenticationSASL` loses its `-PLUS` mechanisms. Channel binding ties
//! SCRAM to the TLS session it runs in, and the client's TLS ends at Warren,
//! so it cannot pass through. A client on TLS that insists on it anyway
//! (its `SASLInitialResponse` says gs2 flag `y`: "I support channel
//! binding, the server did not offer it") would be refused by the database
//! as a downgrade, and the flag is signed, so the relay stops there with
//! [`AuthError::ChannelBinding`], whose sentence says what to change.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::message::{
    parse_fields, sqlstate, tag, ErrorFields, Message, MessageDecoder, MessageError, Severity,
};

/// Default limit of an authentication-phase message's length field: far
/// above any real SASL or GSS exchange.
pub const MAX_AUTH_MESSAGE_LEN: usize = 64 * 1024;

/// `AuthenticationOk`: the session is authenticated.
const AUTH_OK: u32 = 0;
/// `AuthenticationSASL`: the body lists mechanisms.
const AUTH_SASL: u32 = 10;
/// Requests the client answers with one message: cleartext password (3),
/// MD5 (5), GSS (7), SSPI (9), SASL (10), SASL continue (11).
const NEEDS_ANSWER: [u32; 6] = [3, 5, 7, 9, AUTH_SASL, 11];
/// What a SCRAM mechanism with channel binding ends with.
const PLUS: &[u8] = b"-PLUS";

/// One end of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The PostgreSQL client (psql, a driver, an application).
    Client,
    /// The database server.
    Database,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Database => "database",
        })
    }
}

/// What the driver must do next; see [`AuthRelay`] for the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes (one database message) to the client.
    ToClient(Bytes),
    /// Write these bytes (one client message) to the database.
    ToDatabase(Bytes),
    /// The database said `AuthenticationOk` (already sent with
    /// [`Action::ToClient`]): write `to_client` to the client and
    /// `to_database` to the database, then carry the session on.
    Authenticated {
        /// Database bytes read after `AuthenticationOk` (usually its
        /// `ParameterStatus`, `BackendKeyData` and `ReadyForQuery`).
        to_client: Bytes,
        /// Client bytes read and not yet passed on.
        to_database: Bytes,
    },
    /// Authentication failed: send [`AuthError::error_response`] to the
    /// client if there is one, then close both sides.
    Failed(AuthError),
}

/// Why an authentication relay ended without `AuthenticationOk`. Each text
/// is one sentence fit for the client's `ErrorResponse` and the log line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The database sent an `ErrorResponse` (already passed to the client).
    #[error("the database refused the session: {}", .0.message().unwrap_or("no reason given"))]
    Refused(ErrorFields),
    /// A client on TLS asked for channel binding the relay had removed.
    #[error("the database uses SCRAM with channel binding, which cannot pass through Warren because Warren terminates your TLS; add channel_binding=disable to the connection string (the tunnel and the link to the database stay encrypted and verified), or connect with sslmode=prefer")]
    ChannelBinding,
    /// A message could not be framed: a bad length, or over the limit.
    #[error("a message from the {side} during authentication could not be read: {error}")]
    Framing {
        /// Who sent it.
        side: Side,
        /// What was wrong with it.
        error: MessageError,
    },
    /// An `Authentication` message too short to hold its request code.
    #[error("the database sent an authentication message of {len} bytes, too short for its request code")]
    ShortAuthentication {
        /// The length of its body.
        len: usize,
    },
    /// One side closed the connection in the middle of authentication.
    #[error("the {side} closed the connection during authentication")]
    Closed {
        /// Who closed.
        side: Side,
    },
}

impl AuthError {
    /// The SQLSTATE to tell the client, or `None` when nothing should be
    /// sent (the database's own error went through, or the client left).
    pub fn sqlstate(&self) -> Option<&'static str> {
        match self {
            Self::Refused(_)
            | Self::Closed {
                side: Side::Client, ..
            } => None,
            Self::ChannelBinding => Some(sqlstate::INVALID_AUTHORIZATION),
            Self::Closed {
                side: Side::Database,
            } => Some(sqlstate::CONNECTION_FAILURE),
            Self::Framing { .. } | Self::ShortAuthentication { .. } => {
                Some(sqlstate::PROTOCOL_VIOLATION)
            }
        }
    }

    /// The FATAL `ErrorResponse` to send the client before closing, if any.
    pub fn error_response(&self) -> Option<Message> {
        let code = self.sqlstate()?;
        Some(ErrorFields::new(Severity::Fatal, code, &self.to_string()).to_error())
    }
}

/// Whose message the relay waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The database's next message.
    Database,
    /// The client's answer; `stripped`: it answers an `AuthenticationSASL`
    /// whose `-PLUS` mechanisms were removed.
    Client { stripped: bool },
    /// Ended.
    Done,
}

/// The authentication exchange between a client and a database: a state
/// machine without IO.
///
/// # Call order
///
/// 1. Forward the client's `StartupMessage` to the database, then
///    [`AuthRelay::new`], saying whether the client is on TLS (to Warren).
/// 2. Read from the side [`wants`](Self::wants) names and pass what came to
///    [`feed_database`](Self::feed_database) /
///    [`feed_client`](Self::feed_client), or call
///    [`database_eof`](Self::database_eof) /
///    [`client_eof`](Self::client_eof) when it closed.
/// 3. Call [`poll`](Self::poll) until it returns `None`, carrying out each
///    [`Action`] in order. [`Action::Authenticated`] and
///    [`Action::Failed`] end the relay; later polls return `None`.
/// 4. Go back to 2 while `wants` names a side.
///
/// Feeding the side not wanted is allowed (it is buffered and handed over
/// at the end), but a driver that reads only the wanted side never holds
/// more than one read beyond one message per side. Deadlines are the
/// driver's: this type has no clock.
#[derive(Debug)]
pub struct AuthRelay {
    client_tls: bool,
    state: State,
    /// An action to hand out before looking at the buffers again.
    pending: Option<Action>,
    from_database: MessageDecoder,
    from_client: MessageDecoder,
    database: BytesMut,
    client: BytesMut,
    database_eof: bool,
    client_eof: bool,
    stripped: bool,
}

impl AuthRelay {
    /// A relay for a client whose `StartupMessage` was just forwarded;
    /// `client_tls`: the client reached Warren over TLS. Messages may be up
    /// to [`MAX_AUTH_MESSAGE_LEN`].
    pub fn new(client_tls: bool) -> Self {
        Self {
            client_tls,
            state: State::Database,
            pending: None,
            from_database: MessageDecoder::new(MAX_AUTH_MESSAGE_LEN),
            from_client: MessageDecoder::new(MAX_AUTH_MESSAGE_LEN),
            database: BytesMut::new(),
            client: BytesMut::new(),
            database_eof: false,
            client_eof: false,
            stripped: false,
        }
    }

    /// Another limit for a message's length field, either side.
    pub fn with_max_message_len(mut self, max_len: usize) -> Self {
        self.from_database = MessageDecoder::new(max_len);
        self.from_client = MessageDecoder::new(max_len);
        self
    }

    /// Bytes read from the database. Ignored once the relay ended.
    pub fn feed_database(&mut self, bytes: &[u8]) {
        if self.state != State::Done {
            self.database.extend_from_slice(bytes);
        }
    }

    /// Bytes read from the client. Ignored once the relay ended.
    pub fn feed_client(&mut self, bytes: &[u8]) {
        if self.state != State::Done {
            self.client.extend_from_slice(bytes);
        }
    }

    /// The database closed the connection.
    pub fn database_eof(&mut self) {
        self.database_eof = true;
    }

    /// The client closed the connection.
    pub fn client_eof(&mut self) {
        self.client_eof = true;
    }

    /// The side to read from next, once [`poll`](Self::poll) returned
    /// `None`; `None` when the relay ended.
    pub fn wants(&self) -> Option<Side> {
        match self.state {
            State::Database => Some(Side::Database),
            State::Client { .. } => Some(Side::Client),
            State::Done => None,
        }
    }

    /// Whether a `-PLUS` mechanism was removed from what the database
    /// offered (for the session's log).
    pub fn stripped_channel_binding(&self) -> bool {
        self.stripped
    }

    /// The next thing to do, or `None` until more is fed.
    pub fn poll(&mut self) -> Option<Action> {
        if let Some(action) = self.pending.take() {
            return Some(action);
        }
        match self.state {
            State::Done => None,
            State::Database => self.database_message(),
            State::Client { stripped } => self.client_message(stripped),
        }
    }

    fn fail(&mut self, e: AuthError) -> Option<Action> {
        self.state = State::Done;
        Some(Action::Failed(e))
    }

    fn database_message(&mut self) -> Option<Action> {
        let m = match self.from_database.decode(&mut self.database) {
            Ok(Some(m)) => m,
            Ok(None) if self.database_eof => {
                return self.fail(AuthError::Closed {
                    side: Side::Database,
                })
            }
            Ok(None) => return None,
            Err(error) => {
                return self.fail(AuthError::Framing {
                    side: Side::Database,
                    error,
                })
            }
        };
        match m.tag {
            tag::AUTHENTICATION => {
                let Some(code) = m.body.get(..4) else {
                    return self.fail(AuthError::ShortAuthentication { len: m.body.len() });
                };
                let code = u32::from_be_bytes([code[0], code[1], code[2], code[3]]);
                if code == AUTH_OK {
                    self.state = State::Done;
                    self.pending = Some(Action::Authenticated {
                        to_client: self.database.split().freeze(),
                        to_database: self.client.split().freeze(),
                    });
                    return Some(Action::ToClient(m.encode()));
                }
                if code == AUTH_SASL {
                    let (out, stripped) = without_channel_binding(&m);
                    self.stripped |= stripped;
                    self.state = State::Client { stripped };
                    return Some(Action::ToClient(out));
                }
                if NEEDS_ANSWER.contains(&code) {
                    self.state = State::Client { stripped: false };
                }
                Some(Action::ToClient(m.encode()))
            }
            tag::ERROR_RESPONSE => {
                self.state = State::Done;
                // A database's ErrorResponse we cannot read still ends it.
                let fields = parse_fields(&m).unwrap_or_default();
                self.pending = Some(Action::Failed(AuthError::Refused(fields)));
                Some(Action::ToClient(m.encode()))
            }
            // NoticeResponse, NegotiateProtocolVersion: passed on.
            _ => Some(Action::ToClient(m.encode())),
        }
    }

    fn client_message(&mut self, stripped: bool) -> Option<Action> {
        let m = match self.from_client.decode(&mut self.client) {
            Ok(Some(m)) => m,
            Ok(None) if self.client_eof => {
                return self.fail(AuthError::Closed { side: Side::Client })
            }
            Ok(None) => return None,
            Err(error) => {
                return self.fail(AuthError::Framing {
                    side: Side::Client,
                    error,
                })
            }
        };
        if stripped && self.client_tls && gs2_flag(&m) == Some(b'y') {
            return self.fail(AuthError::ChannelBinding);
        }
        self.state = State::Database;
        Some(Action::ToDatabase(m.encode()))
    }
}

/// The mechanisms of an `AuthenticationSASL` body (after its code), each
/// NUL-terminated, the list ended by an empty one.
fn mechanisms(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.get(4..)
        .unwrap_or_default()
        .split(|&b| b == 0)
        .take_while(|name| !name.is_empty())
}

/// An `AuthenticationSASL` message without its `-PLUS` mechanisms, and
/// whether there were any; unchanged bytes when there were none.
fn without_channel_binding(m: &Message) -> (Bytes, bool) {
    if !mechanisms(&m.body).any(|name| name.ends_with(PLUS)) {
        return (m.encode(), false);
    }
    let mut body = BytesMut::with_capacity(m.body.len());
    body.put_slice(&m.body[..4]);
    for name in mechanisms(&m.body).filter(|name| !name.ends_with(PLUS)) {
        body.put_slice(name);
        body.put_u8(0);
    }
    body.put_u8(0);
    (Message::new(m.tag, body.freeze()).encode(), true)
}

/// The gs2 channel-binding flag (`n`, `y` or `p`) of a
/// `SASLInitialResponse`: mechanism name, NUL, `Int32` length, then the
/// client-first-message, which starts with the flag.
fn gs2_flag(m: &Message) -> Option<u8> {
    if m.tag != tag::PASSWORD {
        return None;
    }
    let nul = m.body.iter().position(|&b| b == 0)?;
    m.body.get(nul + 5).copied()
}

#[cfg(test)]
mod tests;
