//! [`ServerLogin`]: Warren logs in to the database itself, as the role a
//! pooled client is mapped to, with the credential the edge holds; the
//! client never sees the password or the exchange.
//!
//! Call order: [`ServerLogin::new`] gives the `StartupMessage` to send;
//! then [`feed`](ServerLogin::feed) what the database sends (or
//! [`eof`](ServerLogin::eof)) and [`poll`](ServerLogin::poll) until it
//! returns [`Login::Ready`] or [`Login::Failed`], sending every
//! [`Login::Send`] in order. SCRAM-SHA-256 (through `postgres-protocol`),
//! MD5 and a cleartext password request are answered; channel binding is
//! not offered, since the database's TLS ends at the connector.

use std::collections::VecDeque;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use thiserror::Error;

use crate::message::{
    key_data, parameter_status, parse_fields, ready_status, tag, ErrorFields, Message,
    MessageDecoder, MessageError,
};
use crate::startup::{CancelKey, ProtocolVersion, Startup, StartupError};
use crate::TransactionStatus;

/// Longest message accepted while logging in.
const MAX_LOGIN_MESSAGE: usize = 64 * 1024;
/// Most parameters a server may report at login.
const MAX_PARAMETERS: usize = 256;

/// Why Warren could not log in to the database. Each text names the role
/// and says what to change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoginError {
    /// The startup message could not be built.
    #[error("the startup message for role {role} could not be built: {error}")]
    Startup {
        /// The role.
        role: String,
        /// Why.
        error: StartupError,
    },
    /// The database sent an `ErrorResponse`.
    #[error("the database refused Warren's login as role {role}: {}", .fields.message().unwrap_or("no reason given"))]
    Refused {
        /// The role.
        role: String,
        /// What the database said.
        fields: ErrorFields,
    },
    /// A method Warren does not speak.
    #[error("the database asks role {role} for {method} authentication, which Warren's pool cannot do; use scram-sha-256 (or md5) for this role in pg_hba.conf")]
    Unsupported {
        /// The role.
        role: String,
        /// The method's name.
        method: &'static str,
    },
    /// SCRAM failed on Warren's side (a bad server message, or the
    /// server's proof did not verify).
    #[error("the SCRAM exchange for role {role} failed: {reason}")]
    Scram {
        /// The role.
        role: String,
        /// What went wrong.
        reason: String,
    },
    /// A message could not be framed or read.
    #[error("a message from the database during Warren's login could not be read: {0}")]
    Framing(MessageError),
    /// A message that has no place in a login.
    #[error("the database sent a '{}' message during Warren's login", .0.escape_ascii())]
    Unexpected(u8),
    /// The database closed the connection.
    #[error("the database closed the connection during Warren's login as role {role}")]
    Closed {
        /// The role.
        role: String,
    },
}

impl LoginError {
    /// Whether trying again later might work (the database was busy or
    /// going away) rather than needing a change of configuration.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Refused { fields, .. } => {
                matches!(fields.sqlstate(), Some(s) if s.starts_with("53") || s.starts_with("57"))
            }
            Self::Closed { .. } | Self::Framing(_) => true,
            _ => false,
        }
    }
}

/// A server connection ready for queries.
#[derive(Clone, PartialEq, Eq)]
pub struct Established {
    /// Every `ParameterStatus` the server sent, in order.
    pub params: Vec<(String, String)>,
    /// The backend's cancel key.
    pub key: Option<(u32, CancelKey)>,
    /// The status of its first `ReadyForQuery` (idle).
    pub status: TransactionStatus,
    /// Bytes the server sent after it (none, from a conforming server).
    pub rest: Bytes,
}

impl fmt::Debug for Established {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Established")
            .field("params", &self.params)
            .field("pid", &self.key.as_ref().map(|k| k.0))
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Write these bytes to the database.
    Send(Bytes),
    /// Logged in.
    Ready(Established),
    /// The login failed; close the connection.
    Failed(LoginError),
}

enum State {
    /// Waiting for an authentication request or result.
    Auth,
    /// SCRAM: the client-first message went out.
    Scram(Box<ScramSha256>),
    /// Authenticated; collecting parameters until `ReadyForQuery`.
    Params,
    Done,
}

/// Warren's own login to a database; see the module doc.
pub struct ServerLogin {
    role: String,
    password: Vec<u8>,
    decoder: MessageDecoder,
    buf: BytesMut,
    state: State,
    params: Vec<(String, String)>,
    key: Option<(u32, CancelKey)>,
    out: VecDeque<Login>,
}

impl fmt::Debug for ServerLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerLogin")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Drop for ServerLogin {
    fn drop(&mut self) {
        self.password.fill(0);
    }
}

impl ServerLogin {
    /// A login as `role` to `database` with these extra startup
    /// parameters; returns the `StartupMessage` to send first.
    pub fn new(
        role: &str,
        database: &str,
        password: &str,
        extra: &[(String, String)],
    ) -> Result<(Self, Bytes), LoginError> {
        let mut params = vec![
            ("user".to_owned(), role.to_owned()),
            ("database".to_owned(), database.to_owned()),
        ];
        params.extend(extra.iter().cloned());
        let startup =
            Startup::new(ProtocolVersion::V3_0, params).map_err(|error| LoginError::Startup {
                role: role.to_owned(),
                error,
            })?;
        let login = Self {
            role: role.to_owned(),
            password: password.as_bytes().to_vec(),
            decoder: MessageDecoder::new(MAX_LOGIN_MESSAGE),
            buf: BytesMut::new(),
            state: State::Auth,
            params: Vec::new(),
            key: None,
            out: VecDeque::new(),
        };
        Ok((login, startup.encode()))
    }

    /// Bytes from the database.
    pub fn feed(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Done) {
            return;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            let m = match self.decoder.decode(&mut self.buf) {
                Ok(Some(m)) => m,
                Ok(None) => return,
                Err(e) => return self.fail(LoginError::Framing(e)),
            };
            if let Err(e) = self.message(m) {
                return self.fail(e);
            }
            if matches!(self.state, State::Done) {
                return;
            }
        }
    }

    /// The database closed the connection.
    pub fn eof(&mut self) {
        if !matches!(self.state, State::Done) {
            let role = self.role.clone();
            self.fail(LoginError::Closed { role });
        }
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Login> {
        self.out.pop_front()
    }

    fn fail(&mut self, e: LoginError) {
        self.state = State::Done;
        self.out.push_back(Login::Failed(e));
    }

    fn message(&mut self, m: Message) -> Result<(), LoginError> {
        match m.tag {
            tag::ERROR_RESPONSE => Err(LoginError::Refused {
                role: self.role.clone(),
                fields: parse_fields(&m).map_err(LoginError::Framing)?,
            }),
            tag::NOTICE_RESPONSE | tag::NEGOTIATE_PROTOCOL_VERSION => Ok(()),
            tag::AUTHENTICATION if !matches!(self.state, State::Params) => {
                self.authentication(&m.body)
            }
            tag::PARAMETER_STATUS if matches!(self.state, State::Params) => {
                let (name, value) = parameter_status(&m.body).map_err(LoginError::Framing)?;
                if self.params.len() < MAX_PARAMETERS {
                    self.params.push((name.into_owned(), value.into_owned()));
                }
                Ok(())
            }
            tag::BACKEND_KEY_DATA if matches!(self.state, State::Params) => {
                self.key = Some(key_data(&m.body).map_err(LoginError::Framing)?);
                Ok(())
            }
            tag::READY_FOR_QUERY if matches!(self.state, State::Params) => {
                let status = ready_status(&m.body).map_err(LoginError::Framing)?;
                self.state = State::Done;
                let rest = std::mem::take(&mut self.buf).freeze();
                self.out.push_back(Login::Ready(Established {
                    params: std::mem::take(&mut self.params),
                    key: self.key.take(),
                    status,
                    rest,
                }));
                Ok(())
            }
            other => Err(LoginError::Unexpected(other)),
        }
    }

    fn authentication(&mut self, body: &[u8]) -> Result<(), LoginError> {
        let Some((code, data)) = body.split_first_chunk::<4>() else {
            return Err(LoginError::Framing(MessageError::Malformed {
                what: "Authentication",
                reason: "the request code is missing",
            }));
        };
        let unsupported = |method| LoginError::Unsupported {
            role: self.role.clone(),
            method,
        };
        match (u32::from_be_bytes(*code), &self.state) {
            (0, _) => {
                self.state = State::Params;
                Ok(())
            }
            (3, State::Auth) => {
                let mut b = BytesMut::new();
                b.put_slice(&self.password);
                b.put_u8(0);
                self.send(tag::PASSWORD, b.freeze());
                Ok(())
            }
            (5, State::Auth) => {
                let salt: [u8; 4] = data.try_into().map_err(|_| {
                    LoginError::Framing(MessageError::Malformed {
                        what: "AuthenticationMD5Password",
                        reason: "the salt is not 4 bytes",
                    })
                })?;
                let mut b = BytesMut::new();
                b.put_slice(md5_hash(self.role.as_bytes(), &self.password, salt).as_bytes());
                b.put_u8(0);
                self.send(tag::PASSWORD, b.freeze());
                Ok(())
            }
            (10, State::Auth) => {
                let offered = data
                    .split(|&b| b == 0)
                    .any(|m| m == SCRAM_SHA_256.as_bytes());
                if !offered {
                    return Err(unsupported("a SASL mechanism other than SCRAM-SHA-256"));
                }
                let scram = ScramSha256::new(&self.password, ChannelBinding::unsupported());
                let first = scram.message();
                let mut b = BytesMut::new();
                b.put_slice(SCRAM_SHA_256.as_bytes());
                b.put_u8(0);
                b.put_i32(first.len() as i32);
                b.put_slice(first);
                self.send(tag::PASSWORD, b.freeze());
                self.state = State::Scram(Box::new(scram));
                Ok(())
            }
            (11, State::Scram(_)) => {
                let State::Scram(scram) = &mut self.state else {
                    unreachable!("matched above")
                };
                scram.update(data).map_err(|e| LoginError::Scram {
                    role: self.role.clone(),
                    reason: e.to_string(),
                })?;
                let msg = Bytes::copy_from_slice(scram.message());
                self.send(tag::PASSWORD, msg);
                Ok(())
            }
            (12, State::Scram(_)) => {
                let State::Scram(scram) = &mut self.state else {
                    unreachable!("matched above")
                };
                scram.finish(data).map_err(|e| LoginError::Scram {
                    role: self.role.clone(),
                    reason: e.to_string(),
                })?;
                self.state = State::Auth;
                Ok(())
            }
            (2, _) => Err(unsupported("Kerberos")),
            (7 | 8, _) => Err(unsupported("GSSAPI")),
            (9, _) => Err(unsupported("SSPI")),
            (code, _) => Err(LoginError::Scram {
                role: self.role.clone(),
                reason: format!("authentication request {code} came out of order"),
            }),
        }
    }

    fn send(&mut self, tag: u8, body: Bytes) {
        self.out
            .push_back(Login::Send(Message::new(tag, body).encode()));
    }
}
