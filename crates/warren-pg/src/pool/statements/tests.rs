//! The rewriter against a model server: the same client conversations
//! run against one server directly and through [`Statements`] over
//! servers that change at every `Sync`, and the client must see the same
//! answers, byte for byte, chunked any way.

use std::collections::{HashMap, HashSet};

use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::message::MessageDecoder;

/// A server that knows just enough of the extended protocol: named and
/// unnamed statements, portals, errors that skip to `Sync`.
#[derive(Default)]
struct Model {
    statements: HashMap<Vec<u8>, Vec<u8>>,
    portals: HashSet<Vec<u8>>,
    failed: bool,
    /// Every statement name it was asked to parse (what Warren sent).
    parsed: Vec<String>,
}

fn m(tag: u8, body: impl Into<Bytes>) -> Message {
    Message::new(tag, body.into())
}

fn error(code: &str) -> Message {
    let mut b = BytesMut::new();
    b.put_u8(b'C');
    b.put_slice(code.as_bytes());
    b.put_u8(0);
    b.put_u8(0);
    m(b'E', b.freeze())
}

fn cstrs(body: &[u8]) -> Vec<Vec<u8>> {
    body.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
}

impl Model {
    /// Answers one message.
    fn answer(&mut self, msg: &Message, out: &mut BytesMut) {
        if msg.tag == b'S' {
            self.failed = false;
            self.portals.clear();
            m(b'Z', &b"I"[..]).encode_into(out);
            return;
        }
        if self.failed {
            return;
        }
        let fail = |code: &str, out: &mut BytesMut| {
            error(code).encode_into(out);
            true
        };
        let parts = cstrs(&msg.body);
        let failed = match msg.tag {
            b'P' => {
                let (name, query) = (parts[0].clone(), parts[1].clone());
                self.parsed
                    .push(String::from_utf8_lossy(&name).into_owned());
                if query.starts_with(b"BAD") {
                    fail("42601", out)
                } else if !name.is_empty() && self.statements.contains_key(&name) {
                    fail("42P05", out)
                } else {
                    self.statements.insert(name, query);
                    m(b'1', Bytes::new()).encode_into(out);
                    false
                }
            }
            b'B' => {
                let (portal, stmt) = (parts[0].clone(), parts[1].clone());
                if self.statements.contains_key(&stmt) {
                    self.portals.insert(portal);
                    m(b'2', Bytes::new()).encode_into(out);
                    false
                } else {
                    fail("26000", out)
                }
            }
            b'D' => {
                let (kind, name) = (msg.body[0], msg.body[1..msg.body.len() - 1].to_vec());
                match kind {
                    b'S' if self.statements.contains_key(&name) => {
                        m(b't', &b"\0\0"[..]).encode_into(out);
                        m(b'T', &b"\0\0"[..]).encode_into(out);
                        false
                    }
                    b'P' if self.portals.contains(&name) => {
                        m(b'n', Bytes::new()).encode_into(out);
                        false
                    }
                    _ => fail("26000", out),
                }
            }
            b'E' => {
                if self.portals.contains(&parts[0]) {
                    // A long row, so answers span chunks.
                    m(b'D', vec![b'x'; 300]).encode_into(out);
                    m(b'C', &b"SELECT 1\0"[..]).encode_into(out);
                    false
                } else {
                    fail("34000", out)
                }
            }
            b'C' => {
                let name = msg.body[1..msg.body.len() - 1].to_vec();
                if msg.body[0] == b'S' {
                    self.statements.remove(&name);
                } else {
                    self.portals.remove(&name);
                }
                m(b'3', Bytes::new()).encode_into(out);
                false
            }
            b'H' => false,
            b'Q' => {
                if msg.body.starts_with(b"DEALLOCATE ALL") {
                    self.statements.retain(|k, _| k.is_empty());
                }
                m(b'N', &b"SNOTICE\0\0"[..]).encode_into(out);
                m(b'C', &b"SELECT 1\0"[..]).encode_into(out);
                m(b'Z', &b"I"[..]).encode_into(out);
                false
            }
            other => panic!("the model got '{}'", other as char),
        };
        self.failed = failed;
    }
}

fn parse(name: &str, query: &str) -> Message {
    let mut b = BytesMut::new();
    b.put_slice(name.as_bytes());
    b.put_u8(0);
    b.put_slice(query.as_bytes());
    b.put_u8(0);
    b.put_u16(1);
    b.put_u32(23);
    m(b'P', b.freeze())
}

fn bind(portal: &str, stmt: &str) -> Message {
    let mut b = BytesMut::new();
    for s in [portal, stmt] {
        b.put_slice(s.as_bytes());
        b.put_u8(0);
    }
    b.put_slice(&[0, 0, 0, 0, 0, 0]);
    m(b'B', b.freeze())
}

fn describe(kind: u8, name: &str) -> Message {
    let mut b = BytesMut::new();
    b.put_u8(kind);
    b.put_slice(name.as_bytes());
    b.put_u8(0);
    m(b'D', b.freeze())
}

fn close(name: &str) -> Message {
    let mut b = describe(b'S', name).body.to_vec();
    b[0] = b'S';
    m(b'C', b)
}

fn execute(portal: &str) -> Message {
    let mut b = BytesMut::new();
    b.put_slice(portal.as_bytes());
    b.put_u8(0);
    b.put_u32(0);
    m(b'E', b.freeze())
}

fn sync() -> Message {
    m(b'S', Bytes::new())
}

/// Runs `batches` (each ends with a Sync or a Query) against one model
/// directly: what the client reads.
fn direct(batches: &[Vec<Message>]) -> Vec<u8> {
    let mut server = Model::default();
    let mut out = BytesMut::new();
    for batch in batches {
        for msg in batch {
            server.answer(msg, &mut out);
        }
    }
    out.to_vec()
}

/// Runs `batches` through one client's [`Statements`] over `servers`
/// models, moving to the next one at every batch, with the server's
/// answers cut into `cut`-byte chunks.
fn pooled(batches: &[Vec<Message>], servers: usize, cut: usize) -> (Vec<u8>, Vec<Model>) {
    let mut models: Vec<Model> = (0..servers).map(|_| Model::default()).collect();
    let mut prepared: Vec<Prepared> = vec![Prepared::default(); servers];
    let mut cache = StatementCache::default();
    let mut client = Statements::default();
    let mut seen = BytesMut::new();
    for (i, batch) in batches.iter().enumerate() {
        let k = i % servers;
        let mut to_server = BytesMut::new();
        for msg in batch {
            client
                .from_client(msg, &mut cache, &mut prepared[k], &mut to_server)
                .unwrap();
            client.due(&mut seen);
        }
        // The model reads what Warren sent, message by message.
        let mut answers = BytesMut::new();
        let mut d = MessageDecoder::default();
        while let Some(msg) = d.decode(&mut to_server).unwrap() {
            models[k].answer(&msg, &mut answers);
        }
        for chunk in answers.chunks(cut) {
            client
                .from_server(chunk, &mut prepared[k], &mut seen)
                .unwrap();
        }
        assert!(client.settled(), "batch {i}: the queue is not empty");
    }
    (seen.to_vec(), models)
}

fn same_answers(batches: &[Vec<Message>]) -> Vec<Model> {
    let want = direct(batches);
    let mut last = Vec::new();
    for servers in [1, 2, 3] {
        for cut in [1, 2, 3, 5, 7, 64, 100_000] {
            let (got, models) = pooled(batches, servers, cut);
            assert_eq!(
                got, want,
                "{servers} servers, chunks of {cut}: the client saw other answers"
            );
            last = models;
        }
    }
    last
}

#[test]
fn named_statements_follow_the_client_across_servers() {
    let batches = vec![
        vec![parse("s1", "SELECT $1"), sync()],
        vec![bind("", "s1"), execute(""), sync()],
        vec![bind("", "s1"), describe(b'P', ""), execute(""), sync()],
        vec![describe(b'S', "s1"), sync()],
        vec![parse("s2", "SELECT 2"), bind("", "s2"), execute(""), sync()],
        vec![
            bind("", "s1"),
            execute(""),
            bind("", "s2"),
            execute(""),
            sync(),
        ],
    ];
    let models = same_answers(&batches);
    // Warren's names only ever reached the servers.
    for model in &models {
        assert!(
            model.parsed.iter().all(|n| n.starts_with(NAME_PREFIX)),
            "{:?}",
            model.parsed
        );
    }
}

#[test]
fn unnamed_statements_pass_unchanged() {
    let batches = vec![
        vec![parse("", "SELECT 1"), bind("", ""), execute(""), sync()],
        vec![parse("", "SELECT 2"), bind("p", ""), execute("p"), sync()],
    ];
    same_answers(&batches);
}

#[test]
fn errors_skip_to_the_sync_as_on_a_direct_connection() {
    let batches = vec![
        // A bad statement: its name is not kept.
        vec![
            parse("bad", "BAD SQL"),
            bind("", "bad"),
            execute(""),
            sync(),
        ],
        vec![bind("", "bad"), sync()],
        // An error before a Parse Warren would answer itself.
        vec![parse("s1", "SELECT 1"), sync()],
        vec![bind("", "nope"), parse("s2", "SELECT 1"), sync()],
        vec![bind("", "s2"), execute(""), sync()],
        // A statement prepared twice.
        vec![parse("s1", "SELECT 1"), sync()],
        vec![bind("", "s1"), execute(""), sync()],
    ];
    same_answers(&batches);
}

#[test]
fn close_is_answered_and_forgets_the_name() {
    let batches = vec![
        vec![parse("s1", "SELECT 1"), sync()],
        vec![close("s1"), sync()],
        vec![bind("", "s1"), execute(""), sync()],
        vec![close("never"), sync()],
        vec![parse("s1", "SELECT 3"), bind("", "s1"), execute(""), sync()],
    ];
    same_answers(&batches);
}

#[test]
fn simple_queries_and_notices_pass_between_batches() {
    let q = |sql: &str| {
        let mut b = sql.as_bytes().to_vec();
        b.push(0);
        m(b'Q', b)
    };
    let batches = vec![
        vec![parse("s1", "SELECT 1"), sync()],
        vec![q("SELECT 1")],
        vec![bind("", "s1"), execute(""), sync()],
        vec![q("DEALLOCATE ALL")],
        vec![bind("", "s1"), execute(""), sync()],
    ];
    same_answers(&batches);
}

#[test]
fn clients_share_statements_and_servers_close_the_oldest() {
    let mut cache = StatementCache::default();
    let mut server = Prepared::default();
    let (mut a, mut b) = (Statements::default(), Statements::default());
    let mut out = BytesMut::new();
    a.from_client(&parse("x", "SELECT 1"), &mut cache, &mut server, &mut out)
        .unwrap();
    b.from_client(&parse("y", "SELECT 1"), &mut cache, &mut server, &mut out)
        .unwrap();
    assert_eq!(cache.len(), 1, "one statement, one id");
    assert_eq!(server.len(), 1);
    // b's Parse was answered by Warren: the server has it.
    let mut seen = BytesMut::new();
    b.due(&mut seen);
    assert_eq!(&seen[..], &m(b'1', Bytes::new()).encode()[..]);

    let mut c = Statements::default();
    for i in 0..=PREPARED_PER_SERVER {
        let mut out = BytesMut::new();
        c.from_client(
            &parse(&format!("s{i}"), &format!("SELECT {i} + 1")),
            &mut cache,
            &mut server,
            &mut out,
        )
        .unwrap();
    }
    assert_eq!(server.len(), PREPARED_PER_SERVER);
    assert!(!server.has(1), "the least recently used was closed");
}
