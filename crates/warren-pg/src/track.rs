//! Session tracking after authentication: what a statement log, the cancel
//! routing and a pooler need to know of a session, read off the bytes as
//! they pass.
//!
//! [`BackendTracker`] follows the database → client stream: the cancel key
//! (`BackendKeyData`), the run-time parameters (`ParameterStatus`), the
//! transaction status of the latest `ReadyForQuery`, and `ErrorResponse`s.
//! [`FrontendTracker`] follows the client → database stream: simple `Query`
//! and extended `Parse` texts for the statement log, and `Terminate`.
//!
//! Both only observe: the caller forwards each chunk unchanged and shows
//! it to the tracker, whose [`Scanner`] keeps a partial header and the
//! bodies of the few messages it watches, never the rest. A statement body
//! over the limit is reported as too long rather than collected.

use thiserror::Error;

use crate::message::{
    fields_of, key_data, parameter_status, parse_body, query_text, ready_status, tag, ErrorFields,
    MessageError, TransactionStatus,
};
use crate::scan::{Event, Scanner, TagSet};
use crate::startup::CancelKey;

/// Default limit of a collected backend body (`ParameterStatus`,
/// `ErrorResponse`, ...).
pub const DEFAULT_MAX_BACKEND_BODY: usize = 64 * 1024;
/// Default limit of a statement collected for the log.
pub const DEFAULT_MAX_STATEMENT: usize = 1024 * 1024;
/// Most run-time parameters remembered; a server reports a few dozen.
const MAX_PARAMETERS: usize = 256;

/// Backend messages the tracker reads.
const BACKEND_WATCHED: TagSet = TagSet::of(&[
    tag::BACKEND_KEY_DATA,
    tag::PARAMETER_STATUS,
    tag::READY_FOR_QUERY,
    tag::ERROR_RESPONSE,
]);
/// Frontend messages the tracker reads.
const FRONTEND_WATCHED: TagSet = TagSet::of(&[tag::QUERY, tag::PARSE, tag::TERMINATE]);

/// What went wrong following a stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TrackError {
    /// The stream can no longer be framed; the tracker follows nothing more
    /// (the bytes still pass).
    #[error("the message stream can no longer be followed: {0}")]
    Framing(MessageError),
    /// A watched message does not have its layout; tracking goes on.
    #[error("a message could not be read: {0}")]
    Malformed(MessageError),
}

/// What the database said that matters to Warren.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendEvent {
    /// `BackendKeyData`: the key a `CancelRequest` for this session must
    /// carry.
    KeyData {
        /// The backend's process id.
        pid: u32,
        /// The secret key.
        key: CancelKey,
    },
    /// `ParameterStatus`: a run-time parameter's current value.
    Parameter {
        /// The parameter's name.
        name: String,
        /// Its value.
        value: String,
    },
    /// `ReadyForQuery`: the session is ready for a new query.
    Ready(TransactionStatus),
    /// `ErrorResponse`.
    Error(ErrorFields),
    /// A watched message over the body limit, passed without being read.
    TooLong {
        /// Its tag.
        tag: u8,
        /// The length of its body.
        len: usize,
    },
}

/// Which statement message a [`FrontendEvent::TooLong`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// A simple `Query`.
    Query,
    /// An extended-protocol `Parse`.
    Parse,
}

/// What the client said that matters to Warren.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendEvent {
    /// A simple `Query`'s text (possibly empty).
    Query(String),
    /// An extended-protocol `Parse`.
    Parse {
        /// The prepared statement's name; empty for the unnamed one.
        statement: String,
        /// The query text.
        query: String,
    },
    /// A statement too long to log: it passed without being read.
    TooLong {
        /// `Query` or `Parse`.
        kind: StatementKind,
        /// The length of its body.
        len: usize,
    },
    /// `Terminate`: the client ends the session.
    Terminate,
}

/// Follows the database → client stream after authentication (or from
/// the first byte after the `StartupMessage`: authentication messages are
/// passed over).
///
/// Show it every chunk, in order, with [`observe`](Self::observe), and go
/// through the events; the state ([`key_data`](Self::key_data),
/// [`transaction_status`](Self::transaction_status),
/// [`parameters`](Self::parameters)) is kept whether or not the events are
/// looked at.
#[derive(Debug, Clone)]
pub struct BackendTracker {
    scanner: Scanner,
    session: Session,
}

/// What a [`BackendTracker`] keeps of the session.
#[derive(Debug, Clone, Default)]
struct Session {
    key: Option<(u32, CancelKey)>,
    status: Option<TransactionStatus>,
    parameters: Vec<(String, String)>,
}

impl Default for BackendTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl BackendTracker {
    /// A tracker at the start of a message, reading bodies up to
    /// [`DEFAULT_MAX_BACKEND_BODY`].
    pub fn new() -> Self {
        Self::with_max_body(DEFAULT_MAX_BACKEND_BODY)
    }

    /// A tracker reading watched bodies up to `max_body` bytes.
    pub fn with_max_body(max_body: usize) -> Self {
        Self {
            scanner: Scanner::new(BACKEND_WATCHED, max_body),
            session: Session::default(),
        }
    }

    /// The events in the next chunk of the stream. The chunk is followed to
    /// its end even if the iterator is dropped early.
    pub fn observe<'t, 'c>(&'t mut self, chunk: &'c [u8]) -> BackendEvents<'t, 'c> {
        BackendEvents {
            tracker: self,
            input: chunk,
            len: chunk.len(),
        }
    }

    /// The latest `BackendKeyData`: process id and key.
    pub fn key_data(&self) -> Option<(u32, &CancelKey)> {
        self.session.key.as_ref().map(|(pid, key)| (*pid, key))
    }

    /// The status of the latest `ReadyForQuery`; `None` before the first
    /// (the session is not ready yet).
    pub fn transaction_status(&self) -> Option<TransactionStatus> {
        self.session.status
    }

    /// Every run-time parameter reported, with its latest value, in the
    /// order first reported.
    pub fn parameters(&self) -> &[(String, String)] {
        &self.session.parameters
    }

    /// A run-time parameter's latest value.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.session
            .parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the bytes seen so far end at a message boundary.
    pub fn at_boundary(&self) -> bool {
        self.scanner.at_boundary()
    }

    /// Whether the stream could not be framed and is no longer followed.
    pub fn is_lost(&self) -> bool {
        self.scanner.is_broken()
    }
}

impl Session {
    /// Reads a watched message and keeps what it says.
    fn event(&mut self, tag: u8, body: &[u8]) -> Result<BackendEvent, MessageError> {
        Ok(match tag {
            tag::BACKEND_KEY_DATA => {
                let (pid, key) = key_data(body)?;
                self.key = Some((pid, key.clone()));
                BackendEvent::KeyData { pid, key }
            }
            tag::PARAMETER_STATUS => {
                let (name, value) = parameter_status(body)?;
                let (name, value) = (name.into_owned(), value.into_owned());
                let full = self.parameters.len() >= MAX_PARAMETERS;
                match self.parameters.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, v)) => v.clone_from(&value),
                    None if !full => self.parameters.push((name.clone(), value.clone())),
                    None => {}
                }
                BackendEvent::Parameter { name, value }
            }
            tag::READY_FOR_QUERY => {
                let status = ready_status(body)?;
                self.status = Some(status);
                BackendEvent::Ready(status)
            }
            _ => BackendEvent::Error(fields_of(body, "ErrorResponse")?),
        })
    }
}

/// The events in one chunk of the database → client stream; see
/// [`BackendTracker::observe`].
#[derive(Debug)]
pub struct BackendEvents<'t, 'c> {
    tracker: &'t mut BackendTracker,
    input: &'c [u8],
    len: usize,
}

impl BackendEvents<'_, '_> {
    /// How much of the chunk has been followed: after an event, the offset
    /// just past the message (or, for a too-long one, its header).
    pub fn consumed(&self) -> usize {
        self.len - self.input.len()
    }
}

impl Iterator for BackendEvents<'_, '_> {
    type Item = Result<BackendEvent, TrackError>;

    fn next(&mut self) -> Option<Self::Item> {
        let t = &mut *self.tracker;
        Some(match t.scanner.scan(&mut self.input) {
            Ok(None) => return None,
            Err(e) => Err(TrackError::Framing(e)),
            Ok(Some(Event::TooLong { tag, len } | Event::Seen { tag, len })) => {
                Ok(BackendEvent::TooLong { tag, len })
            }
            Ok(Some(Event::Message { tag, body })) => {
                t.session.event(tag, body).map_err(TrackError::Malformed)
            }
        })
    }
}

impl Drop for BackendEvents<'_, '_> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

/// Follows the client → database stream after authentication.
///
/// Show it every chunk, in order, with [`observe`](Self::observe), and go
/// through the events.
#[derive(Debug, Clone)]
pub struct FrontendTracker {
    scanner: Scanner,
    terminated: bool,
}

impl Default for FrontendTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl FrontendTracker {
    /// A tracker at the start of a message, reading statements up to
    /// [`DEFAULT_MAX_STATEMENT`].
    pub fn new() -> Self {
        Self::with_max_statement(DEFAULT_MAX_STATEMENT)
    }

    /// A tracker reading statement bodies up to `max_statement` bytes;
    /// longer ones are reported as [`FrontendEvent::TooLong`].
    pub fn with_max_statement(max_statement: usize) -> Self {
        Self {
            scanner: Scanner::new(FRONTEND_WATCHED, max_statement),
            terminated: false,
        }
    }

    /// The events in the next chunk of the stream. The chunk is followed to
    /// its end even if the iterator is dropped early.
    pub fn observe<'t, 'c>(&'t mut self, chunk: &'c [u8]) -> FrontendEvents<'t, 'c> {
        FrontendEvents {
            tracker: self,
            input: chunk,
            len: chunk.len(),
        }
    }

    /// Whether the client sent `Terminate`.
    pub fn terminated(&self) -> bool {
        self.terminated
    }

    /// Whether the bytes seen so far end at a message boundary.
    pub fn at_boundary(&self) -> bool {
        self.scanner.at_boundary()
    }

    /// Whether the stream could not be framed and is no longer followed.
    pub fn is_lost(&self) -> bool {
        self.scanner.is_broken()
    }
}

/// The events in one chunk of the client → database stream; see
/// [`FrontendTracker::observe`].
#[derive(Debug)]
pub struct FrontendEvents<'t, 'c> {
    tracker: &'t mut FrontendTracker,
    input: &'c [u8],
    len: usize,
}

impl FrontendEvents<'_, '_> {
    /// How much of the chunk has been followed: after an event, the offset
    /// just past the message (or, for a too-long one, its header).
    pub fn consumed(&self) -> usize {
        self.len - self.input.len()
    }
}

impl Iterator for FrontendEvents<'_, '_> {
    type Item = Result<FrontendEvent, TrackError>;

    fn next(&mut self) -> Option<Self::Item> {
        let t = &mut *self.tracker;
        let (tag, body) = match t.scanner.scan(&mut self.input) {
            Ok(None) => return None,
            Err(e) => return Some(Err(TrackError::Framing(e))),
            Ok(Some(Event::TooLong { tag, len })) if tag != tag::TERMINATE => {
                let kind = if tag == tag::QUERY {
                    StatementKind::Query
                } else {
                    StatementKind::Parse
                };
                return Some(Ok(FrontendEvent::TooLong { kind, len }));
            }
            Ok(Some(Event::TooLong { tag, .. } | Event::Seen { tag, .. })) => (tag, &[][..]),
            Ok(Some(Event::Message { tag, body })) => (tag, body),
        };
        let event = match tag {
            tag::QUERY => query_text(body).map(|q| FrontendEvent::Query(q.into_owned())),
            tag::PARSE => parse_body(body).map(|p| FrontendEvent::Parse {
                statement: p.statement.into_owned(),
                query: p.query.into_owned(),
            }),
            _ => {
                t.terminated = true;
                Ok(FrontendEvent::Terminate)
            }
        };
        Some(event.map_err(TrackError::Malformed))
    }
}

impl Drop for FrontendEvents<'_, '_> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

#[cfg(test)]
mod tests;
