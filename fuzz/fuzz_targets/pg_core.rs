//! Arbitrary bytes through the PostgreSQL core's state machines: the
//! negotiator (either policy, any TLS decisions), the authentication relay
//! (database and client bytes) and the session trackers. None may panic,
//! what they hand out must hold together (a startup re-parses to itself, a
//! cancel re-encodes to its bytes, a replay is a ClientHello's start), and
//! how the bytes are cut into feeds must not change what they say.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_pg::auth::{self, AuthRelay, Side};
use warren_pg::negotiate::{self, Negotiator, Policy};
use warren_pg::track::{BackendTracker, FrontendTracker};
use warren_pg::{parse_first, FirstMessage, TLS_HANDSHAKE_BYTE};

/// Runs a negotiation with `plain` before TLS and `tls` inside it, `chunk`
/// bytes per feed; `lazy`: every feed of a stream before the polls (then
/// the transcript does not depend on `chunk`).
fn negotiate(
    policy: Policy,
    plain: &[u8],
    tls: &[u8],
    chunk: usize,
    mut decisions: u8,
    lazy: bool,
) -> Vec<String> {
    let mut n = Negotiator::new(policy);
    let mut stream = plain;
    let mut out = Vec::new();
    let mut eof = false;
    loop {
        while let Some(a) = n.poll() {
            match a {
                negotiate::Action::DecideTls { direct } => {
                    n.decide_tls(decisions & 1 == 1);
                    decisions >>= 1;
                    out.push(format!("decide {direct}"));
                }
                negotiate::Action::StartTls { replay } => {
                    assert!(replay.is_empty() || replay[0] == TLS_HANDSHAKE_BYTE);
                    out.push(format!("tls {:?}", [&replay[..], stream].concat()));
                    n.tls_established();
                    stream = tls;
                    eof = false;
                }
                negotiate::Action::Startup(s) => {
                    let (m, len) = parse_first(&s.raw).unwrap().unwrap();
                    assert_eq!(len, s.raw.len());
                    assert_eq!(m, FirstMessage::Startup(s.startup.clone()));
                    let rest = [&s.rest[..], stream].concat();
                    out.push(format!("startup {:?} {} {rest:?}", s.raw, s.tls));
                }
                negotiate::Action::Cancel(c) => {
                    assert_eq!(c.request.encode(), c.raw);
                    out.push(format!("cancel {:?} {}", c.raw, c.tls));
                }
                negotiate::Action::Close(e) => {
                    let _ = e.error_response();
                    out.push(format!("close {e}"));
                }
                other => out.push(format!("{other:?}")),
            }
        }
        if n.is_finished() {
            assert!(n.poll().is_none());
            return out;
        }
        if stream.is_empty() {
            assert!(!eof, "an end of stream must end the negotiation");
            eof = true;
            n.eof();
            continue;
        }
        let take = if lazy {
            stream.len()
        } else {
            chunk.min(stream.len())
        };
        for piece in stream[..take].chunks(chunk) {
            n.feed(piece);
        }
        stream = &stream[take..];
    }
}

/// Runs an authentication relay, reading the side it wants `chunk` bytes
/// at a time.
fn relay(client_tls: bool, database: &[u8], client: &[u8], chunk: usize) -> Vec<String> {
    let mut r = AuthRelay::new(client_tls);
    let (mut db, mut cl) = (database, client);
    let mut out = Vec::new();
    let mut eofs = [false, false];
    loop {
        while let Some(a) = r.poll() {
            match a {
                auth::Action::Authenticated {
                    to_client,
                    to_database,
                } => out.push(format!(
                    "ok {:?} {:?}",
                    [&to_client[..], db].concat(),
                    [&to_database[..], cl].concat()
                )),
                auth::Action::Failed(e) => {
                    let _ = e.error_response();
                    out.push(format!("failed {e}"));
                }
                other => out.push(format!("{other:?}")),
            }
        }
        let Some(side) = r.wants() else {
            return out;
        };
        let (stream, eof) = match side {
            Side::Database => (&mut db, &mut eofs[0]),
            Side::Client => (&mut cl, &mut eofs[1]),
        };
        if stream.is_empty() {
            assert!(!*eof, "an end of stream must end the relay");
            *eof = true;
            match side {
                Side::Database => r.database_eof(),
                Side::Client => r.client_eof(),
            }
            continue;
        }
        let n = chunk.min(stream.len());
        match side {
            Side::Database => r.feed_database(&stream[..n]),
            Side::Client => r.feed_client(&stream[..n]),
        }
        *stream = &stream[n..];
    }
}

/// Both trackers over `stream`, `chunk` bytes at a time: every event with
/// the stream offset it ended at, then the state.
fn track(stream: &[u8], chunk: usize, max_body: usize) -> Vec<String> {
    let mut b = BackendTracker::with_max_body(max_body);
    let mut f = FrontendTracker::with_max_statement(max_body);
    let (mut back, mut front) = (Vec::new(), Vec::new());
    let mut offset = 0;
    for piece in stream.chunks(chunk) {
        let mut events = b.observe(piece);
        while let Some(e) = events.next() {
            back.push(format!("{} {e:?}", offset + events.consumed()));
        }
        drop(events);
        let mut events = f.observe(piece);
        while let Some(e) = events.next() {
            front.push(format!("{} {e:?}", offset + events.consumed()));
        }
        offset += piece.len();
    }
    back.extend(front);
    back.push(format!(
        "{:?} {:?} {:?} {} {}",
        b.transaction_status(),
        b.key_data(),
        b.parameters(),
        b.at_boundary(),
        f.terminated()
    ));
    back
}

/// `data` cut at a point chosen by `at` (0 to 255: its share of the length).
fn split(data: &[u8], at: u8) -> (&[u8], &[u8]) {
    data.split_at(data.len() * usize::from(at) / 255)
}

fuzz_target!(|data: &[u8]| {
    let [control, chunk, at_tls, at_client, decisions, input @ ..] = data else {
        return;
    };
    let chunk = usize::from(*chunk).max(1);
    let base = if control & 1 == 0 {
        Policy::EDGE
    } else {
        Policy::CONNECTOR
    };
    let policy = Policy {
        plaintext_startup: control & 2 != 0,
        ..base
    };

    let (plain, tls) = split(input, *at_tls);
    let whole = negotiate(policy, plain, tls, usize::MAX, *decisions, false);
    let lazy = negotiate(policy, plain, tls, chunk, *decisions, true);
    assert_eq!(whole, lazy, "cutting changed the negotiation");
    let _ = negotiate(policy, plain, tls, chunk, *decisions, false);

    let (database, client) = split(input, *at_client);
    let client_tls = control & 4 != 0;
    assert_eq!(
        relay(client_tls, database, client, usize::MAX),
        relay(client_tls, database, client, chunk),
        "cutting changed the relay"
    );

    let max_body = usize::from(control >> 3) * 8;
    assert_eq!(
        track(input, input.len().max(1), max_body),
        track(input, chunk, max_body),
        "cutting changed the trackers"
    );
});
