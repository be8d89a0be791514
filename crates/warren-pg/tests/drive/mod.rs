//! Drivers for warren-pg's state machines without IO: each runs one
//! machine over given bytes, cut into feeds of a given size, checks what it
//! hands out holds together (a startup re-parses to itself, a cancel
//! re-encodes to its bytes, a replay is a ClientHello's start, an end of
//! stream ends the machine) and returns a transcript to compare across
//! cuts. Shared by the seeded test `tests/arbitrary_bytes.rs` (`mod
//! drive;`) and the fuzz target `fuzz/fuzz_targets/pg_core.rs` (through
//! `#[path]`), so both drive the machines the same way.

use warren_pg::auth::{self, AuthRelay, Side};
use warren_pg::negotiate::{self, Negotiator, Policy};
use warren_pg::track::{BackendTracker, FrontendTracker};
use warren_pg::{parse_first, FirstMessage, TLS_HANDSHAKE_BYTE};

/// Runs a negotiation with `plain` before TLS and `tls` inside it, `chunk`
/// bytes per feed; `decisions`: the TLS answers, one bit each, lowest
/// first; `lazy`: every feed of a stream before the polls (then the
/// transcript does not depend on `chunk`).
///
/// Every round feeds a byte or ends a stream, and TLS starts at most once,
/// so a negotiation still going after `plain.len() + tls.len() + 3` rounds
/// never ends: that panics.
pub(crate) fn negotiate(
    policy: Policy,
    plain: &[u8],
    tls: &[u8],
    chunk: usize,
    mut decisions: u32,
    lazy: bool,
) -> Vec<String> {
    let mut n = Negotiator::new(policy);
    let mut stream = plain;
    let mut out = Vec::new();
    let mut eof = false;
    for _ in 0..plain.len() + tls.len() + 3 {
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
    panic!("the negotiation never ended");
}

/// Runs an authentication relay, reading the side it wants `chunk` bytes
/// at a time.
///
/// Every round feeds a byte or ends a side, so a relay still going after
/// `database.len() + client.len() + 3` rounds never ends: that panics.
pub(crate) fn relay(client_tls: bool, database: &[u8], client: &[u8], chunk: usize) -> Vec<String> {
    let mut r = AuthRelay::new(client_tls);
    let (mut db, mut cl) = (database, client);
    let mut out = Vec::new();
    let mut eofs = [false, false];
    for _ in 0..database.len() + client.len() + 3 {
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
    panic!("the relay never ended");
}

/// Both trackers over `stream`, `chunk` bytes at a time, bodies and
/// statements kept up to `max_body` bytes: every event with the stream
/// offset it ended at, then the state.
pub(crate) fn track(stream: &[u8], chunk: usize, max_body: usize) -> Vec<String> {
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

/// Runs the pooler's core over `client` and `server` bytes, `chunk` bytes
/// per feed: the flow follows both, the framer and the statement rewriter
/// take the client's bytes and the server's answers, and Warren's own
/// login reads the server's. Returns what each said, to compare across
/// cuts; an error stops that machine (as it ends the session).
pub(crate) fn pool(client: &[u8], server: &[u8], chunk: usize) -> Vec<String> {
    use warren_pg::pool::{
        ClientFramer, Flow, Login, Piece, Prepared, ServerLogin, StatementCache, Statements,
    };

    let (mut out, mut rw) = (Vec::new(), Vec::new());
    let mut flow = Flow::new(false);
    let mut framer = ClientFramer::default();
    let mut statements = Statements::default();
    let (mut cache, mut prepared) = (StatementCache::default(), Prepared::default());
    let (mut to_server, mut to_client) = (bytes::BytesMut::new(), bytes::BytesMut::new());
    let (mut flow_ok, mut rewrite_ok) = (true, true);
    // As the edge drives them: the flow sees every chunk first; what it
    // forwards goes to the framer; nothing after a Terminate or an error.
    for piece in client.chunks(chunk) {
        let f = match flow.from_client(piece) {
            Ok(f) => f,
            Err(e) => {
                out.push(format!("flow: {e}"));
                flow_ok = false;
                break;
            }
        };
        // (How much of a chunk goes depends on where a Terminate is cut,
        // by design: only that it came is compared.)
        assert!(f.forward <= piece.len());
        if rewrite_ok {
            framer.push(&piece[..f.forward]);
            loop {
                match framer.next_piece() {
                    Ok(None) => break,
                    Ok(Some(Piece::Whole(m))) => {
                        if let Err(e) =
                            statements.from_client(&m, &mut cache, &mut prepared, &mut to_server)
                        {
                            rw.push(format!("rewrite: {e}"));
                            rewrite_ok = false;
                            break;
                        }
                    }
                    Ok(Some(Piece::Header { tag, bytes })) => {
                        statements.passing(tag, &mut prepared);
                        to_server.extend_from_slice(&bytes);
                    }
                    Ok(Some(Piece::Body(b))) => to_server.extend_from_slice(&b),
                    Err(e) => {
                        rw.push(format!("frame: {e}"));
                        rewrite_ok = false;
                        break;
                    }
                }
                statements.due(&mut to_client);
            }
        }
        if f.terminated {
            out.push("terminated".to_owned());
            break;
        }
    }
    for piece in server.chunks(chunk) {
        if flow_ok {
            if let Err(e) = flow.from_server(piece) {
                out.push(format!("flow: {e}"));
                flow_ok = false;
            }
        }
        if rewrite_ok {
            if let Err(e) = statements.from_server(piece, &mut prepared, &mut to_client) {
                rw.push(format!("answers: {e}"));
                rewrite_ok = false;
            }
        }
    }
    if flow_ok {
        out.append(&mut rw);
    }
    out.push(format!(
        "flow releasable={} busy={} status={:?} pins={} cleanup={:?}",
        flow.releasable(),
        flow.busy(),
        flow.status(),
        flow.pins(),
        flow.cleanup()
    ));
    // After a client error, how much went out depends on the cut.
    if rewrite_ok && flow_ok {
        out.push(format!(
            "rewrite to_server={:?} to_client={:?} settled={} named={} prepared={}",
            to_server,
            to_client,
            statements.settled(),
            statements.len(),
            prepared.len()
        ));
    }
    // Warren's own login against the same server bytes.
    let (mut login, _) = ServerLogin::new("app", "app", "pw", &[]).unwrap();
    let mut done = false;
    for piece in server.chunks(chunk) {
        login.feed(piece);
        while let Some(step) = login.poll() {
            match step {
                // The SCRAM nonce is random: only the kind is compared.
                Login::Send(b) => out.push(format!("login sends '{}'", b[0] as char)),
                Login::Ready(e) => {
                    out.push(format!("login ready {e:?}"));
                    done = true;
                }
                Login::Failed(e) => {
                    out.push(format!("login failed: {e}"));
                    done = true;
                }
            }
        }
        if done {
            break;
        }
    }
    out
}
