//! Arbitrary bytes through the PostgreSQL core's state machines: the
//! negotiator (either policy, any TLS decisions), the authentication relay
//! (database and client bytes), the session trackers and the pooler's
//! core (flow, framer, statement rewriter, Warren's own login). None may panic,
//! what they hand out must hold together (a startup re-parses to itself, a
//! cancel re-encodes to its bytes, a replay is a ClientHello's start), and
//! how the bytes are cut into feeds must not change what they say.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_pg::negotiate::Policy;

/// The drivers, shared with the seeded test `arbitrary_bytes.rs`.
#[path = "../../crates/warren-pg/tests/drive/mod.rs"]
mod drive;

use drive::{negotiate, pool, relay, track};

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
    let decisions = u32::from(*decisions);
    let whole = negotiate(policy, plain, tls, usize::MAX, decisions, false);
    let lazy = negotiate(policy, plain, tls, chunk, decisions, true);
    assert_eq!(whole, lazy, "cutting changed the negotiation");
    let _ = negotiate(policy, plain, tls, chunk, decisions, false);

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

    // The pooler's core: the same split between client and server bytes.
    assert_eq!(
        pool(client, database, input.len().max(1)),
        pool(client, database, chunk),
        "cutting changed the pool core"
    );
});
