//! [`Flow`]: what a pooled client's messages mean for the server
//! connection it is on: when the connection may go back to the pool,
//! what keeps it (the [`Pin`]s), and what must happen to it when the
//! client leaves ([`Cleanup`]).
//!
//! Bytes pass unchanged in both directions; the flow only follows them
//! (two [`Scanner`]s, nothing buffered but the text of `Query` and
//! `Parse` up to a limit). It counts the messages that will be answered
//! with a `ReadyForQuery` (`Query`, `Sync`, `FunctionCall`), notes an
//! extended-protocol batch not yet closed by its `Sync`, and takes the
//! transaction status from each `ReadyForQuery`. A connection is
//! released only at rest: every answer in, no open batch, the status
//! idle, no pin.

use thiserror::Error;

use super::pins::{drops_all_prepared, statement_pins, Pin, Pins};
use crate::message::{parse_body, query_text, ready_status, tag, MessageError};
use crate::scan::{Event, Scanner, TagSet};
use crate::TransactionStatus;

/// Longest `Query` or `Parse` text looked at; a longer one pins
/// ([`Pin::Uninspected`]).
pub const MAX_INSPECTED: usize = 64 * 1024;

/// Frontend messages whose text is read.
const CLIENT_READ: TagSet = TagSet::of(&[tag::QUERY, tag::PARSE]);
/// Frontend messages whose passing matters: `Sync`, `Terminate`,
/// `FunctionCall`, and the parts of an extended batch (`Bind`, `Execute`,
/// `Describe`, `Close`, `Flush`).
const CLIENT_NOTED: TagSet =
    TagSet::of(&[b'S', tag::TERMINATE, b'F', b'B', b'E', b'D', b'C', b'H']);
/// Backend messages read: `ReadyForQuery`.
const SERVER_READ: TagSet = TagSet::of(&[tag::READY_FOR_QUERY]);

/// A stream the flow cannot follow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlowError {
    /// The client sent a message that cannot be framed or read.
    #[error("a message from the client could not be read: {0}")]
    Client(MessageError),
    /// The server sent a message that cannot be framed or read.
    #[error("a message from the database could not be read: {0}")]
    Server(MessageError),
    /// The server sent more `ReadyForQuery` messages than were asked for.
    #[error("the database sent a ReadyForQuery nobody asked for")]
    UnexpectedReady,
}

/// What [`Flow::from_client`] found in a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FromClient {
    /// How many bytes of the chunk go to the server: all of it, or what
    /// came before a `Terminate` (which never reaches a pooled server).
    pub forward: usize,
    /// The client said `Terminate`.
    pub terminated: bool,
    /// Pins this chunk added.
    pub new_pins: Pins,
    /// A statement in it drops every prepared statement of the session
    /// (`DEALLOCATE ALL`, `DISCARD ALL`).
    pub drops_prepared: bool,
}

/// What the server connection needs once its client is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Nothing: back to the pool as it is.
    Reuse,
    /// Run these, in order, then back to the pool.
    Reset {
        /// `ROLLBACK` an abandoned transaction.
        rollback: bool,
        /// `DISCARD ALL`: the client pinned it, so it may hold session
        /// state.
        discard: bool,
    },
    /// Close it: a message or a batch was cut off, or a query may still be
    /// running, so its state is unknown.
    Close,
}

/// Follows one client's session on the server connections it uses; see
/// the module doc.
#[derive(Debug, Clone)]
pub struct Flow {
    client: Scanner,
    server: Scanner,
    /// `ReadyForQuery` messages still to come.
    pending: u32,
    /// An extended-protocol message went by since the last `Sync`.
    unsynced: bool,
    status: TransactionStatus,
    pins: Pins,
    /// A statement may have changed the session's settings since the
    /// driver last read them ([`Flow::settings_touched`]).
    touched: bool,
    /// A `Terminate` header arrived split across chunks (part of it was
    /// forwarded), or a stream could not be followed: the connection's
    /// state is unknown.
    cut: bool,
}

impl Flow {
    /// A client at rest; `session_mode` pins it for good.
    pub fn new(session_mode: bool) -> Self {
        let mut pins = Pins::NONE;
        if session_mode {
            pins.insert(Pin::SessionMode);
        }
        Self {
            client: Scanner::noting(CLIENT_READ, CLIENT_NOTED, MAX_INSPECTED),
            server: Scanner::new(SERVER_READ, 1),
            pending: 0,
            unsynced: false,
            status: TransactionStatus::Idle,
            pins,
            touched: false,
            cut: false,
        }
    }

    /// Follows a chunk from the client, in order.
    pub fn from_client(&mut self, chunk: &[u8]) -> Result<FromClient, FlowError> {
        let r = self.follow_client(chunk);
        if r.is_err() {
            // What went before the bad message may have gone out.
            self.cut = true;
        }
        r
    }

    fn follow_client(&mut self, chunk: &[u8]) -> Result<FromClient, FlowError> {
        let before = self.pins;
        let mut input = chunk;
        let mut out = FromClient {
            forward: chunk.len(),
            ..FromClient::default()
        };
        loop {
            let event = self.client.scan(&mut input).map_err(FlowError::Client)?;
            let consumed = chunk.len() - input.len();
            match event {
                None => break,
                Some(Event::Seen {
                    tag: tag::TERMINATE,
                    ..
                }) => {
                    // The event comes as soon as the header is in.
                    out.terminated = true;
                    match consumed.checked_sub(crate::message::HEADER_LEN) {
                        Some(start) => out.forward = start,
                        None => {
                            self.cut = true;
                            out.forward = 0;
                        }
                    }
                    break;
                }
                Some(Event::Seen { tag, .. }) => match tag {
                    b'S' => {
                        self.pending += 1;
                        self.unsynced = false;
                    }
                    b'F' => self.pending += 1,
                    _ => self.unsynced = true,
                },
                Some(Event::TooLong { tag, .. }) => {
                    self.pins.insert(Pin::Uninspected);
                    self.note_statement_start(tag);
                }
                Some(Event::Message { tag, body }) => {
                    let text = match tag {
                        tag::QUERY => query_text(body).map_err(FlowError::Client)?,
                        _ => parse_body(body).map_err(FlowError::Client)?.query,
                    };
                    let pins = statement_pins(&text);
                    out.drops_prepared |= tag == tag::QUERY && drops_all_prepared(&text);
                    self.judged(pins);
                    self.note_statement_start(tag);
                }
            }
        }
        out.new_pins = self.pins.since(before);
        Ok(out)
    }

    /// Settings changes are tracked, not pinned: the driver reads the
    /// session's settings back at rest and carries them to the client's
    /// next connection.
    fn judged(&mut self, mut pins: Pins) {
        for p in [Pin::Set, Pin::SetConfig] {
            if pins.contains(p) {
                self.touched = true;
                pins.remove(p);
            }
        }
        self.pins.extend(pins);
    }

    fn note_statement_start(&mut self, tag: u8) {
        if tag == tag::QUERY {
            self.pending += 1;
        } else {
            self.unsynced = true;
        }
    }

    /// Follows a chunk from the server, in order.
    pub fn from_server(&mut self, chunk: &[u8]) -> Result<(), FlowError> {
        let r = self.follow_server(chunk);
        if r.is_err() {
            self.cut = true;
        }
        r
    }

    fn follow_server(&mut self, chunk: &[u8]) -> Result<(), FlowError> {
        let mut input = chunk;
        while let Some(event) = self.server.scan(&mut input).map_err(FlowError::Server)? {
            match event {
                Event::Message { body, .. } => {
                    self.status = ready_status(body).map_err(FlowError::Server)?;
                    self.pending = self
                        .pending
                        .checked_sub(1)
                        .ok_or(FlowError::UnexpectedReady)?;
                }
                Event::TooLong { .. } => {
                    return Err(FlowError::Server(MessageError::Malformed {
                        what: "ReadyForQuery",
                        reason: "the body is not one byte",
                    }))
                }
                Event::Seen { .. } => {}
            }
        }
        Ok(())
    }

    /// Whether the server connection may go back to the pool now.
    pub fn releasable(&self) -> bool {
        self.at_rest() && self.status == TransactionStatus::Idle && self.pins.is_empty()
    }

    /// Every answer in, no batch open, both streams at a message boundary.
    fn at_rest(&self) -> bool {
        self.pending == 0
            && !self.unsynced
            && !self.cut
            && self.client.at_boundary()
            && self.server.at_boundary()
    }

    /// Whether the server is working for the client: an answer is still to
    /// come (what a cancel request may interrupt).
    pub fn busy(&self) -> bool {
        self.pending > 0
    }

    /// The transaction status of the last `ReadyForQuery`.
    pub fn status(&self) -> TransactionStatus {
        self.status
    }

    /// Why the client keeps its server connection.
    pub fn pins(&self) -> Pins {
        self.pins
    }

    /// Whether a statement since the last [`settings_read`](Self::settings_read)
    /// may have changed the session's settings (`SET`, `RESET`,
    /// `set_config`, `DISCARD`): the driver reads them back at rest,
    /// before the connection may go to another client.
    pub fn settings_touched(&self) -> bool {
        self.touched
    }

    /// The driver has read the settings back.
    pub fn settings_read(&mut self) {
        self.touched = false;
    }

    /// What the connection needs once the client is gone.
    pub fn cleanup(&self) -> Cleanup {
        if !self.at_rest() {
            return Cleanup::Close;
        }
        let rollback = self.status != TransactionStatus::Idle;
        let discard = !self.pins.is_empty() || self.touched;
        if rollback || discard {
            Cleanup::Reset { rollback, discard }
        } else {
            Cleanup::Reuse
        }
    }
}
