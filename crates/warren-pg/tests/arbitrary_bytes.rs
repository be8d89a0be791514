//! The state machines driven through the public API with pseudo-random
//! bytes (a fixed seed, so a failure repeats), some starting with valid
//! messages to reach the later states: nothing may panic, what they hand
//! out must hold together, and how the bytes are cut must not change what
//! they say. `fuzz/fuzz_targets/pg_core.rs` does the same with a fuzzer.

use warren_pg::auth::{self, AuthRelay, Side};
use warren_pg::negotiate::{self, Negotiator, Policy};
use warren_pg::track::{BackendTracker, FrontendTracker};
use warren_pg::{
    encode_cancel, encode_ssl_request, encode_startup, parse_first, CancelKey, FirstMessage,
    ProtocolVersion,
};

/// xorshift64*: enough to make varied inputs, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Up to `max - 1` random bytes.
    fn noise(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
}

/// A regular-phase message with a random tag and body.
fn message(rng: &mut Rng) -> Vec<u8> {
    const TAGS: &[u8] = b"RRRSKZEQPXpDCTNv";
    let tag = TAGS[rng.below(TAGS.len())];
    let body = match rng.below(5) {
        0 => b"I".to_vec(),
        // An authentication request the relay acts on, if the tag is 'R'.
        4 => {
            let code = [0u32, 3, 5, 7, 10, 11, 12][rng.below(7)];
            let data: &[u8] = match rng.below(3) {
                0 => b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0",
                1 => b"n,,n=,r=x",
                _ => b"",
            };
            [&code.to_be_bytes()[..], data].concat()
        }
        1 => rng.bytes(4),
        2 => [&rng.bytes(3)[..], b"\0x\0\0"].concat(),
        _ => rng.noise(40),
    };
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend(body);
    m
}

/// Random bytes, or a run of random but well-framed messages, or a mix.
fn stream(rng: &mut Rng) -> Vec<u8> {
    let mut s = Vec::new();
    for _ in 0..rng.below(8) {
        if rng.below(6) == 0 {
            s.extend(rng.noise(12));
        } else {
            s.extend(message(rng));
        }
    }
    s
}

/// What a client might send first.
fn first_bytes(rng: &mut Rng) -> Vec<u8> {
    let startup = encode_startup(ProtocolVersion::V3_0, &[("user", "u")]).unwrap();
    let cancel = encode_cancel(7, &CancelKey::new(&b"abcd"[..]).unwrap());
    let mut s = Vec::new();
    for _ in 0..rng.below(4) {
        match rng.below(5) {
            0 if rng.below(3) == 0 => s.extend_from_slice(&cancel),
            0 => s.extend_from_slice(&encode_ssl_request()),
            1 => s.extend_from_slice(&startup),
            2 => s.push(0x16),
            3 => s.extend(&startup[..rng.below(startup.len())]),
            _ => s.extend(rng.noise(16)),
        }
    }
    s
}

/// Runs a negotiation; `chunk`: bytes per feed; `decisions`: TLS answers,
/// one bit each. Returns a transcript that does not depend on `chunk`
/// when every feed comes before the polls (`lazy`).
fn negotiate(
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
    for _ in 0..10_000 {
        while let Some(a) = n.poll() {
            match a {
                negotiate::Action::DecideTls { .. } => {
                    n.decide_tls(decisions & 1 == 1);
                    decisions >>= 1;
                    out.push("decide".into());
                }
                negotiate::Action::StartTls { replay } => {
                    assert!(replay.is_empty() || replay[0] == 0x16);
                    out.push(format!("tls {:?}", [&replay[..], stream].concat()));
                    n.tls_established();
                    stream = tls;
                    eof = false;
                }
                negotiate::Action::Startup(s) => {
                    let (m, len) = parse_first(&s.raw).unwrap().unwrap();
                    assert_eq!(len, s.raw.len());
                    assert_eq!(m, FirstMessage::Startup(s.startup.clone()));
                    out.push(format!(
                        "startup {:?} {:?}",
                        s.raw,
                        [&s.rest[..], stream].concat()
                    ));
                }
                negotiate::Action::Cancel(c) => {
                    assert_eq!(c.request.encode(), c.raw);
                    out.push(format!("cancel {:?}", c.raw));
                }
                negotiate::Action::Close(e) => {
                    let _ = e.error_response();
                    out.push(format!("close {e}"));
                }
                other => out.push(format!("{other:?}")),
            }
        }
        if n.is_finished() {
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

fn relay(client_tls: bool, database: &[u8], client: &[u8], chunk: usize) -> Vec<String> {
    let mut r = AuthRelay::new(client_tls);
    let (mut db, mut cl) = (database, client);
    let mut out = Vec::new();
    let mut eofs = (false, false);
    for _ in 0..100_000 {
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
        let (side, eof) = match r.wants() {
            None => return out,
            Some(Side::Database) => (&mut db, &mut eofs.0),
            Some(Side::Client) => (&mut cl, &mut eofs.1),
        };
        if side.is_empty() {
            assert!(!*eof, "an end of stream must end the relay");
            *eof = true;
            match r.wants() {
                Some(Side::Database) => r.database_eof(),
                _ => r.client_eof(),
            }
            continue;
        }
        let n = chunk.min(side.len());
        match r.wants() {
            Some(Side::Database) => r.feed_database(&side[..n]),
            _ => r.feed_client(&side[..n]),
        }
        *side = &side[n..];
    }
    panic!("the relay never ended");
}

fn track(stream: &[u8], chunk: usize) -> Vec<String> {
    let (mut b, mut f) = (
        BackendTracker::with_max_body(16),
        FrontendTracker::with_max_statement(16),
    );
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
        "{:?} {:?} {}",
        b.transaction_status(),
        b.key_data(),
        f.terminated()
    ));
    back
}

#[test]
fn arbitrary_bytes_never_panic_and_cutting_changes_nothing() {
    let mut rng = Rng(0x005e_ed0f_7a11_u64);
    for _ in 0..3_000 {
        let chunk = 1 + rng.below(9);
        let policy = Policy {
            plaintext_startup: rng.below(2) == 0,
            ..if rng.below(2) == 0 {
                Policy::EDGE
            } else {
                Policy::CONNECTOR
            }
        };
        let (plain, tls) = (first_bytes(&mut rng), first_bytes(&mut rng));
        let decisions = rng.next() as u32;
        let whole = negotiate(policy, &plain, &tls, usize::MAX, decisions, false);
        assert_eq!(
            whole,
            negotiate(policy, &plain, &tls, chunk, decisions, true)
        );
        let _ = negotiate(policy, &plain, &tls, chunk, decisions, false);

        let (database, client) = (stream(&mut rng), stream(&mut rng));
        let client_tls = rng.below(2) == 0;
        assert_eq!(
            relay(client_tls, &database, &client, usize::MAX),
            relay(client_tls, &database, &client, chunk)
        );

        let s = stream(&mut rng);
        assert_eq!(track(&s, s.len().max(1)), track(&s, chunk));
    }
}
