//! Named prepared statements in transaction mode: a client's statements
//! outlive the server connection it prepared them on.
//!
//! - One [`StatementCache`] per pool gives each distinct statement (query
//!   text and parameter types) an id; on a server it is prepared as
//!   `__warren_<id>`, so clients preparing the same statement share it.
//! - Each client keeps its own names ([`Statements`]): `Parse` of `s1`
//!   maps `s1` to an id; `Bind` and `Describe` of `s1` are rewritten to
//!   the id's name, preceded by a `Parse` of it when the server
//!   connection they land on does not have it yet ([`Prepared`], bounded,
//!   least recently used closed first); `Close` of `s1` is answered by
//!   Warren.
//! - The answers are kept in order ([`Statements::from_server`]): what
//!   Warren injected is answered to Warren and dropped; what Warren
//!   answered itself is inserted where the server's answer would have
//!   been. An error makes the server skip to the next `Sync`, and the
//!   queue does the same.
//!
//! Unnamed statements and everything else pass unchanged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::message::{tag, take_cstr, Message, MessageError, HEADER_LEN};

/// Most distinct statements a pool's cache remembers.
pub const CACHE_CAPACITY: usize = 10_000;
/// Most statements a server connection keeps prepared.
pub const PREPARED_PER_SERVER: usize = 500;
/// Most named statements one client may hold.
pub const PER_CLIENT: usize = 10_000;
/// The prefix of Warren's statement names on a server.
pub const NAME_PREFIX: &str = "__warren_";

/// A statement as a server prepares it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatementText {
    /// The query.
    pub query: Bytes,
    /// The parameter type OIDs the client gave.
    pub types: Bytes,
}

/// Ids for the statements of one pool's clients.
#[derive(Debug, Default)]
pub struct StatementCache {
    ids: HashMap<Arc<StatementText>, u64>,
    order: VecDeque<Arc<StatementText>>,
    next: u64,
}

impl StatementCache {
    /// The id of `text`, new if it has none. When the cache is full the
    /// oldest statement is forgotten: a client that still holds it keeps
    /// its id, a new one gets another.
    pub fn id(&mut self, text: Arc<StatementText>) -> u64 {
        if let Some(id) = self.ids.get(&text) {
            return *id;
        }
        if self.order.len() >= CACHE_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.next += 1;
        self.ids.insert(text.clone(), self.next);
        self.order.push_back(text);
        self.next
    }

    /// How many statements it holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The statements one server connection has prepared, least recently
/// used first.
#[derive(Debug, Default, Clone)]
pub struct Prepared {
    ids: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Prepared {
    /// Whether `id` is prepared there.
    pub fn has(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }

    fn touch(&mut self, id: u64) {
        if let Some(i) = self.order.iter().position(|x| *x == id) {
            self.order.remove(i);
        }
        self.order.push_back(id);
    }

    /// Records `id` as prepared; the one to close first if it is full.
    fn add(&mut self, id: u64) -> Option<u64> {
        self.ids.insert(id);
        self.touch(id);
        if self.order.len() > PREPARED_PER_SERVER {
            let old = self.order.pop_front()?;
            self.ids.remove(&old);
            return Some(old);
        }
        None
    }

    fn remove(&mut self, id: u64) {
        self.ids.remove(&id);
        self.order.retain(|x| *x != id);
    }

    /// The server's statements are gone (`DISCARD ALL`, `DEALLOCATE
    /// ALL`).
    pub fn clear(&mut self) {
        self.ids.clear();
        self.order.clear();
    }

    /// How many it holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The server's answers that end the answer to each kind of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// `Parse` → `ParseComplete`.
    Parse,
    /// `Bind` → `BindComplete`.
    Bind,
    /// `Close` → `CloseComplete`.
    Close,
    /// `Describe` → `RowDescription` or `NoData`.
    Describe,
    /// `Execute` → `CommandComplete`, `EmptyQueryResponse` or
    /// `PortalSuspended`.
    Execute,
    /// `Sync`, `Query`, `FunctionCall` → `ReadyForQuery`.
    Ready,
}

impl Answer {
    fn ends_with(self, t: u8) -> bool {
        match self {
            Answer::Parse => t == b'1',
            Answer::Bind => t == b'2',
            Answer::Close => t == b'3',
            Answer::Describe => t == b'T' || t == b'n',
            Answer::Execute => matches!(t, b'C' | b'I' | b's'),
            Answer::Ready => t == tag::READY_FOR_QUERY,
        }
    }

    /// Whether an error ends the answer (and the server then skips to the
    /// next `Sync`); `Ready` answers go on to their `ReadyForQuery`.
    fn error_ends(self) -> bool {
        self != Answer::Ready
    }
}

/// One message's place in the queue of answers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// The client's message went to the server: its answer passes.
    Pass {
        answer: Answer,
        /// A `Parse` of this id and client name: forgotten if it fails.
        parsed: Option<(u64, String)>,
    },
    /// Warren's own message: its answer is dropped.
    Drop { answer: Answer, parsed: Option<u64> },
    /// Warren answers the client's message itself, with these bytes, once
    /// every answer before it has passed.
    Answer {
        bytes: Bytes,
        /// The client name to forget if the server skips it.
        forget: Option<String>,
    },
}

/// One client's named statements and the order of the answers it waits
/// for; see the module doc.
#[derive(Debug)]
pub struct Statements {
    names: HashMap<String, (u64, Arc<StatementText>)>,
    queue: VecDeque<Entry>,
    /// Bytes of the answer being dropped still to come.
    dropping: usize,
    /// Bytes of the answer being passed still to come.
    passing: usize,
    /// After an error, before the client's `Sync` was queued: what comes
    /// is skipped by the server up to it.
    skipping: bool,
    /// The first bytes of an answer's header, held back until its tag
    /// says whether it passes.
    held: BytesMut,
}

impl Default for Statements {
    fn default() -> Self {
        Self {
            names: HashMap::new(),
            queue: VecDeque::new(),
            dropping: 0,
            passing: 0,
            skipping: false,
            held: BytesMut::new(),
        }
    }
}

/// The name a statement id has on a server.
pub fn server_name(id: u64) -> String {
    format!("{NAME_PREFIX}{id}")
}

impl Statements {
    /// How many named statements the client holds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether every answer has come (the connection may be let go).
    pub fn settled(&self) -> bool {
        self.queue.is_empty() && self.dropping == 0 && self.passing == 0 && self.held.is_empty()
    }

    /// Rewrites one whole client message for the server it goes to,
    /// appending what to send to `out`.
    pub fn from_client(
        &mut self,
        m: &Message,
        cache: &mut StatementCache,
        server: &mut Prepared,
        out: &mut BytesMut,
    ) -> Result<(), MessageError> {
        match m.tag {
            tag::PARSE => self.parse(m, cache, server, out),
            b'B' => {
                let mut rest = &m.body[..];
                let portal = take_cstr(&mut rest, "Bind")?;
                let name = take_cstr(&mut rest, "Bind")?;
                match self.lookup(name) {
                    None => self.pass(m, Answer::Bind, server, out),
                    Some((id, text)) => {
                        self.ensure(id, &text, server, out);
                        let mut body = BytesMut::with_capacity(m.body.len() + 16);
                        body.put_slice(portal);
                        body.put_u8(0);
                        body.put_slice(server_name(id).as_bytes());
                        body.put_u8(0);
                        body.put_slice(rest);
                        self.pass(
                            &Message::new(b'B', body.freeze()),
                            Answer::Bind,
                            server,
                            out,
                        );
                    }
                }
                Ok(())
            }
            b'D' | b'C' => {
                let (&kind, mut rest) = m.body.split_first().ok_or(MessageError::Malformed {
                    what: "Describe or Close",
                    reason: "the body is empty",
                })?;
                let name = take_cstr(&mut rest, "Describe or Close")?;
                let answer = if m.tag == b'D' {
                    Answer::Describe
                } else {
                    Answer::Close
                };
                if kind != b'S' || name.is_empty() {
                    self.pass(m, answer, server, out);
                    return Ok(());
                }
                let key = String::from_utf8_lossy(name).into_owned();
                if m.tag == b'C' {
                    // Closing a statement that is not there is no error.
                    self.names.remove(&key);
                    self.answer(Message::new(b'3', Bytes::new()).encode(), None, server);
                    return Ok(());
                }
                match self.names.get(&key).cloned() {
                    None => self.pass(m, answer, server, out),
                    Some((id, text)) => {
                        self.ensure(id, &text, server, out);
                        let mut body = BytesMut::new();
                        body.put_u8(b'S');
                        body.put_slice(server_name(id).as_bytes());
                        body.put_u8(0);
                        self.pass(&Message::new(b'D', body.freeze()), answer, server, out);
                    }
                }
                Ok(())
            }
            b'E' => {
                self.pass(m, Answer::Execute, server, out);
                Ok(())
            }
            b'S' | tag::QUERY | b'F' => {
                if m.tag == tag::QUERY
                    && super::pins::drops_all_prepared(&crate::message::query_text(&m.body)?)
                {
                    self.dropped_all(server);
                }
                self.pass(m, Answer::Ready, server, out);
                Ok(())
            }
            // Flush, copy data, anything else: no answer of its own.
            _ => {
                m.encode_into(out);
                Ok(())
            }
        }
    }

    /// A message that passes as it is ([`Piece::Header`](super::Piece)):
    /// its place in the queue of answers.
    pub fn passing(&mut self, t: u8, server: &mut Prepared) {
        let answer = match t {
            b'E' => Answer::Execute,
            b'S' | tag::QUERY | b'F' => Answer::Ready,
            _ => return,
        };
        self.push(
            Entry::Pass {
                answer,
                parsed: None,
            },
            server,
        );
    }

    /// The session's statements were all dropped (`DEALLOCATE ALL`,
    /// `DISCARD ALL` from the client).
    pub fn dropped_all(&mut self, server: &mut Prepared) {
        server.clear();
        self.names.clear();
    }

    fn lookup(&self, name: &[u8]) -> Option<(u64, Arc<StatementText>)> {
        if name.is_empty() {
            return None;
        }
        self.names
            .get(String::from_utf8_lossy(name).as_ref())
            .cloned()
    }

    fn parse(
        &mut self,
        m: &Message,
        cache: &mut StatementCache,
        server: &mut Prepared,
        out: &mut BytesMut,
    ) -> Result<(), MessageError> {
        let mut rest = &m.body[..];
        let name = take_cstr(&mut rest, "Parse")?;
        if name.is_empty() {
            self.pass(m, Answer::Parse, server, out);
            return Ok(());
        }
        let query = take_cstr(&mut rest, "Parse")?;
        let text = Arc::new(StatementText {
            query: Bytes::copy_from_slice(query),
            types: Bytes::copy_from_slice(rest),
        });
        let key = String::from_utf8_lossy(name).into_owned();
        let id = cache.id(text.clone());
        if self.names.contains_key(&key) {
            // The server's own answer: prepare it twice so it says the
            // statement exists (42P05), as it would to a direct client.
            self.ensure(id, &text, server, out);
            let dup = parse_message(&server_name(id), &text);
            self.pass(&dup, Answer::Parse, server, out);
            return Ok(());
        }
        if self.names.len() >= PER_CLIENT {
            return Err(MessageError::Malformed {
                what: "Parse",
                reason: "the client holds too many prepared statements",
            });
        }
        self.names.insert(key.clone(), (id, text.clone()));
        if server.has(id) {
            server.touch(id);
            self.answer(Message::new(b'1', Bytes::new()).encode(), Some(key), server);
            return Ok(());
        }
        let old = server.add(id);
        self.evict(old, server, out);
        parse_message(&server_name(id), &text).encode_into(out);
        self.push(
            Entry::Pass {
                answer: Answer::Parse,
                parsed: Some((id, key)),
            },
            server,
        );
        Ok(())
    }

    /// Prepares `id` on the server first if it is not there yet.
    fn ensure(&mut self, id: u64, text: &StatementText, server: &mut Prepared, out: &mut BytesMut) {
        if server.has(id) {
            server.touch(id);
            return;
        }
        let old = server.add(id);
        self.evict(old, server, out);
        parse_message(&server_name(id), text).encode_into(out);
        self.push(
            Entry::Drop {
                answer: Answer::Parse,
                parsed: Some(id),
            },
            server,
        );
    }

    /// Closes the statement the server connection no longer keeps.
    fn evict(&mut self, old: Option<u64>, server: &mut Prepared, out: &mut BytesMut) {
        if let Some(old) = old {
            let mut body = BytesMut::new();
            body.put_u8(b'S');
            body.put_slice(server_name(old).as_bytes());
            body.put_u8(0);
            Message::new(b'C', body.freeze()).encode_into(out);
            self.push(
                Entry::Drop {
                    answer: Answer::Close,
                    parsed: None,
                },
                server,
            );
        }
    }

    fn pass(&mut self, m: &Message, answer: Answer, server: &mut Prepared, out: &mut BytesMut) {
        m.encode_into(out);
        self.push(
            Entry::Pass {
                answer,
                parsed: None,
            },
            server,
        );
    }

    fn answer(&mut self, bytes: Bytes, forget: Option<String>, server: &mut Prepared) {
        self.push(Entry::Answer { bytes, forget }, server);
    }

    fn push(&mut self, e: Entry, server: &mut Prepared) {
        if self.skipping {
            // The server skips what follows an error up to its Sync.
            if !matches!(
                e,
                Entry::Pass {
                    answer: Answer::Ready,
                    ..
                }
            ) {
                self.skipped(e, server);
                return;
            }
            self.skipping = false;
        }
        self.queue.push_back(e);
    }

    /// A message the server skipped: what it would have prepared is not
    /// there, and nothing is answered for it.
    fn skipped(&mut self, e: Entry, server: &mut Prepared) {
        match e {
            Entry::Pass {
                parsed: Some((id, name)),
                ..
            } => {
                server.remove(id);
                self.names.remove(&name);
            }
            Entry::Drop {
                parsed: Some(id), ..
            } => server.remove(id),
            Entry::Answer {
                forget: Some(name), ..
            } => {
                self.names.remove(&name);
            }
            _ => {}
        }
    }

    fn pop(&mut self) -> Option<Entry> {
        self.queue.pop_front()
    }

    /// Warren's own answers that are due now (every answer before them
    /// has passed), to send to the client.
    pub fn due(&mut self, out: &mut BytesMut) {
        while let Some(Entry::Answer { .. }) = self.queue.front() {
            if let Some(Entry::Answer { bytes, .. }) = self.pop() {
                out.extend_from_slice(&bytes);
            }
        }
    }

    /// Follows a chunk of the server's answers and appends what the
    /// client gets to `out`: the chunk less the answers to Warren's own
    /// messages, with Warren's answers in their places.
    pub fn from_server(
        &mut self,
        chunk: &[u8],
        server: &mut Prepared,
        out: &mut BytesMut,
    ) -> Result<(), MessageError> {
        let mut input = chunk;
        loop {
            // The rest of the body of the message in hand.
            if self.dropping > 0 {
                let n = self.dropping.min(input.len());
                self.dropping -= n;
                input = &input[n..];
            } else if self.passing > 0 {
                let n = self.passing.min(input.len());
                out.extend_from_slice(&input[..n]);
                self.passing -= n;
                input = &input[n..];
            }
            if self.dropping == 0 && self.passing == 0 && self.held.is_empty() {
                // Between messages: Warren's own answers that are due.
                self.due(out);
            }
            if input.is_empty() {
                return Ok(());
            }
            let take = (HEADER_LEN - self.held.len()).min(input.len());
            self.held.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.held.len() < HEADER_LEN {
                // A header cut off by the end of the chunk: held back
                // until its tag says whether it passes.
                return Ok(());
            }
            let t = self.held[0];
            let len = u32::from_be_bytes([self.held[1], self.held[2], self.held[3], self.held[4]])
                as usize;
            if len < 4 {
                return Err(MessageError::BadLength { tag: t, len });
            }
            if self.on_answer(t, server) {
                self.dropping = len - 4;
            } else {
                out.extend_from_slice(&self.held);
                self.passing = len - 4;
            }
            self.held.clear();
        }
    }

    /// One answer message from the server: whether Warren drops it.
    fn on_answer(&mut self, t: u8, server: &mut Prepared) -> bool {
        // Asynchronous messages belong to no entry.
        if matches!(t, b'N' | b'A' | b'S') {
            return false;
        }
        if t == tag::READY_FOR_QUERY {
            // Whatever is still before the Sync's entry was skipped.
            while let Some(e) = self.queue.front() {
                if let Entry::Pass {
                    answer: Answer::Ready,
                    ..
                } = e
                {
                    self.pop();
                    break;
                }
                if let Some(e) = self.pop() {
                    self.skipped(e, server);
                }
            }
            self.skipping = false;
            return false;
        }
        let Some(head) = self.queue.front() else {
            return false;
        };
        let (answer, dropping) = match head {
            Entry::Pass { answer, .. } => (*answer, false),
            Entry::Drop { answer, .. } => (*answer, true),
            Entry::Answer { .. } => return false,
        };
        if t == tag::ERROR_RESPONSE && answer.error_ends() {
            if let Some(e) = self.pop() {
                self.skipped(e, server);
            }
            // The server now skips to the next Sync.
            loop {
                match self.queue.front() {
                    Some(Entry::Pass {
                        answer: Answer::Ready,
                        ..
                    }) => break,
                    Some(_) => {
                        if let Some(e) = self.pop() {
                            self.skipped(e, server);
                        }
                    }
                    None => {
                        self.skipping = true;
                        break;
                    }
                }
            }
            // An error is always shown: it may be about the client's own
            // statement (a Parse Warren injected for its Bind).
            return false;
        }
        if answer.ends_with(t) {
            self.pop();
        }
        dropping
    }
}

fn parse_message(name: &str, text: &StatementText) -> Message {
    let mut body = BytesMut::with_capacity(name.len() + text.query.len() + text.types.len() + 2);
    body.put_slice(name.as_bytes());
    body.put_u8(0);
    body.put_slice(&text.query);
    body.put_u8(0);
    body.put_slice(&text.types);
    Message::new(tag::PARSE, body.freeze())
}

#[cfg(test)]
mod tests;
