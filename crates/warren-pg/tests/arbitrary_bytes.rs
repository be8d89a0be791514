//! The state machines driven through the public API with pseudo-random
//! bytes (a fixed seed, so a failure repeats), some starting with valid
//! messages to reach the later states: nothing may panic, what they hand
//! out must hold together, and how the bytes are cut must not change what
//! they say. `fuzz/fuzz_targets/pg_core.rs` does the same with a fuzzer,
//! through the same drivers (`drive`).

mod drive;

use drive::{negotiate, pool, relay, track};
use warren_pg::negotiate::Policy;
use warren_pg::{encode_cancel, encode_ssl_request, encode_startup, CancelKey, ProtocolVersion};

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
        assert_eq!(track(&s, s.len().max(1), 16), track(&s, chunk, 16));
        let (client, server) = s.split_at(s.len() / 2);
        assert_eq!(
            pool(client, server, s.len().max(1)),
            pool(client, server, chunk),
            "cutting changed the pool core: chunk {chunk} client {client:?}"
        );
    }
}
