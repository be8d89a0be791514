//! Steering's pure core: which healthy origin serves a request or
//! connection (round robin, least outstanding, rendezvous hash), given
//! the candidates, a turn counter and the hash key. No clock, no socket,
//! no randomness.

use std::net::{IpAddr, SocketAddr};

use super::Facts;
use crate::ingress::{HashOn, Steering};

/// A healthy origin as steering sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate<'a> {
    /// Index in the pool.
    pub index: usize,
    /// URL, hashed by `steering: hash`.
    pub name: &'a str,
    /// Requests or connections in flight.
    pub outstanding: usize,
}

/// Steering's pure core: which of the (healthy) `candidates` serves a
/// request. `turn` is a counter that advances on every pick (round robin
/// and tie breaks); `key` is the hash key of `steering: hash` (`None`:
/// served in turn). Returns the candidate's pool index.
pub(crate) fn select(
    steering: &Steering,
    candidates: &[Candidate<'_>],
    turn: usize,
    key: Option<&[u8]>,
) -> Option<usize> {
    if candidates.is_empty() {
        return None;
    }
    let in_turn = |among: &[&Candidate<'_>]| among[turn % among.len()].index;
    match (steering, key) {
        (Steering::LeastOutstanding, _) => {
            let least = candidates.iter().map(|c| c.outstanding).min()?;
            let tied: Vec<&Candidate<'_>> = candidates
                .iter()
                .filter(|c| c.outstanding == least)
                .collect();
            Some(in_turn(&tied))
        }
        (Steering::Hash(_), Some(key)) => candidates
            .iter()
            .max_by_key(|c| (rendezvous_score(key, c.name), std::cmp::Reverse(c.index)))
            .map(|c| c.index),
        (Steering::RoundRobin | Steering::Hash(_), _) => {
            Some(in_turn(&candidates.iter().collect::<Vec<_>>()))
        }
    }
}

/// The key `steering: hash` hashes for a request: the header's first
/// value, the cookie's value, or the client's IP; `None` when the request
/// has no such header or cookie.
pub(crate) fn hash_key(on: &HashOn, facts: &Facts<'_>) -> Option<Vec<u8>> {
    match on {
        HashOn::Header(name) => facts
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone()),
        HashOn::Cookie(name) => facts
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(|b| *b == b';'))
            .find_map(|pair| {
                let pair = pair.trim_ascii();
                let eq = pair.iter().position(|b| *b == b'=')?;
                (&pair[..eq] == name.as_bytes()).then(|| pair[eq + 1..].to_vec())
            }),
        HashOn::ClientIp => {
            let addr = facts.client_addr;
            let ip = addr
                .parse::<SocketAddr>()
                .map(|a| a.ip())
                .or_else(|_| addr.parse::<IpAddr>());
            match ip {
                Ok(ip) => Some(ip.to_canonical().to_string().into_bytes()),
                Err(_) if !addr.is_empty() => Some(addr.as_bytes().to_vec()),
                Err(_) => None,
            }
        }
    }
}

/// A fixed, well-mixed 64-bit hash of (key, origin): FNV-1a over both with a
/// separator, finished with SplitMix64's mixer. The same on every
/// connector and every build, unlike `std`'s hasher.
fn rendezvous_score(key: &[u8], origin: &str) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.iter().chain(&[0xff]).chain(origin.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: usize, name: &str, outstanding: usize) -> Candidate<'_> {
        Candidate {
            index,
            name,
            outstanding,
        }
    }

    /// (steering, healthy candidates, turn, key, expected pick)
    type Case<'a> = (
        &'a Steering,
        Vec<Candidate<'a>>,
        usize,
        Option<&'a [u8]>,
        Option<usize>,
    );

    fn hash() -> Steering {
        Steering::Hash(HashOn::ClientIp)
    }

    #[test]
    fn select_table() {
        let a = "http://10.0.0.5:8000";
        let b = "http://10.0.0.6:8000";
        let d = "http://10.0.0.7:8000";
        let rr = Steering::RoundRobin;
        let lo = Steering::LeastOutstanding;
        let h = hash();
        // (steering, candidates, turn, key, expected)
        let cases: Vec<Case<'_>> = vec![
            // Nobody healthy: nothing, whatever the steering.
            (&rr, vec![], 0, None, None),
            (&lo, vec![], 3, None, None),
            (&h, vec![], 0, Some(b"alice"), None),
            // Round robin walks the healthy ones (indexes 0 and 2: 1 is down).
            (&rr, vec![c(0, a, 0), c(2, d, 0)], 0, None, Some(0)),
            (&rr, vec![c(0, a, 0), c(2, d, 0)], 1, None, Some(2)),
            (&rr, vec![c(0, a, 0), c(2, d, 0)], 2, None, Some(0)),
            (&rr, vec![c(1, b, 9)], 7, None, Some(1)),
            // Least outstanding: the idle one, whatever the turn.
            (
                &lo,
                vec![c(0, a, 3), c(1, b, 0), c(2, d, 5)],
                0,
                None,
                Some(1),
            ),
            (
                &lo,
                vec![c(0, a, 3), c(1, b, 0), c(2, d, 5)],
                1,
                None,
                Some(1),
            ),
            // ... ties in turn among the least loaded only.
            (
                &lo,
                vec![c(0, a, 1), c(1, b, 4), c(2, d, 1)],
                0,
                None,
                Some(0),
            ),
            (
                &lo,
                vec![c(0, a, 1), c(1, b, 4), c(2, d, 1)],
                1,
                None,
                Some(2),
            ),
            (
                &lo,
                vec![c(0, a, 1), c(1, b, 4), c(2, d, 1)],
                2,
                None,
                Some(0),
            ),
            // Hash without a key is served in turn.
            (&h, vec![c(0, a, 0), c(1, b, 0)], 0, None, Some(0)),
            (&h, vec![c(0, a, 0), c(1, b, 0)], 1, None, Some(1)),
            // A single healthy origin takes every key.
            (&h, vec![c(1, b, 0)], 0, Some(b"alice"), Some(1)),
        ];
        for (i, (steering, candidates, turn, key, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                select(steering, &candidates, turn, key),
                want,
                "case {i}: {steering} over {candidates:?}, turn {turn}"
            );
        }
    }

    #[test]
    fn hash_is_stable_and_ignores_turn_and_load() {
        let names = ["http://10.0.0.5:8000", "http://10.0.0.6:8000"];
        let all = [c(0, names[0], 0), c(1, names[1], 7)];
        for user in ["alice", "bob", "carol", "dave"] {
            let first = select(&hash(), &all, 0, Some(user.as_bytes()));
            for turn in 1..20 {
                assert_eq!(select(&hash(), &all, turn, Some(user.as_bytes())), first);
            }
        }
        // Fixed values: the same on every connector and build.
        assert_eq!(rendezvous_score(b"", ""), rendezvous_score(b"", ""));
        assert_ne!(rendezvous_score(b"a", "x"), rendezvous_score(b"a", "y"));
        assert_ne!(rendezvous_score(b"ab", "c"), rendezvous_score(b"a", "bc"));
    }

    #[test]
    fn hash_spreads_keys_and_removing_an_origin_moves_only_its_keys() {
        let names = [
            "http://10.0.0.5:8000",
            "http://10.0.0.6:8000",
            "http://10.0.0.7:8000",
        ];
        let all: Vec<Candidate<'_>> = names.iter().enumerate().map(|(i, n)| c(i, n, 0)).collect();
        let without_1: Vec<Candidate<'_>> = all.iter().copied().filter(|c| c.index != 1).collect();
        let mut per_origin = [0usize; 3];
        for user in 0..3000 {
            let key = format!("user-{user}");
            let before = select(&hash(), &all, 0, Some(key.as_bytes())).unwrap();
            per_origin[before] += 1;
            let after = select(&hash(), &without_1, 0, Some(key.as_bytes())).unwrap();
            if before != 1 {
                assert_eq!(after, before, "{key} moved although its origin stayed");
            }
        }
        for n in per_origin {
            assert!((800..=1200).contains(&n), "uneven spread: {per_origin:?}");
        }
    }

    #[test]
    fn hash_keys() {
        let headers: Vec<(String, Vec<u8>)> = vec![
            ("x-user".into(), b"alice".to_vec()),
            ("x-user".into(), b"bob".to_vec()),
            ("cookie".into(), b"theme=dark; session=s1".to_vec()),
            ("cookie".into(), b"other=1;sid=s2".to_vec()),
        ];
        let facts = Facts {
            headers: &headers,
            client_addr: "192.0.2.7:51000",
        };
        let key = |on: HashOn| hash_key(&on, &facts);
        let cases: Vec<(HashOn, Option<&[u8]>)> = vec![
            (HashOn::Header("x-user".into()), Some(b"alice")),
            (HashOn::Header("x-missing".into()), None),
            (HashOn::Cookie("session".into()), Some(b"s1")),
            (HashOn::Cookie("sid".into()), Some(b"s2")),
            (HashOn::Cookie("Session".into()), None),
            (HashOn::Cookie("ses".into()), None),
            (HashOn::ClientIp, Some(b"192.0.2.7")),
        ];
        for (on, want) in cases {
            assert_eq!(key(on.clone()).as_deref(), want, "{on}");
        }
        let ip = |addr: &str| {
            hash_key(
                &HashOn::ClientIp,
                &Facts {
                    headers: &[],
                    client_addr: addr,
                },
            )
        };
        assert_eq!(
            ip("[::ffff:192.0.2.7]:1").as_deref(),
            Some(&b"192.0.2.7"[..])
        );
        assert_eq!(
            ip("[2001:db8::1]:443").as_deref(),
            Some(&b"2001:db8::1"[..])
        );
        assert_eq!(ip("2001:db8::1").as_deref(), Some(&b"2001:db8::1"[..]));
        assert_eq!(ip(""), None);
    }
}
