//! Origin pools at run time: the origins behind a `service: pool` rule,
//! their health, and which one serves each request or connection.
//!
//! ```yaml
//! - hostname: api.example.com
//!   service: pool
//!   originPool:
//!     origins: [http://10.0.0.5:8000, http://10.0.0.6:8000]  # or all tcp://
//!     steering: least_outstanding  # round_robin (default) | least_outstanding | hash
//!     hashOn: header:X-User        # with hash: header:NAME | cookie:NAME | client_ip (default)
//!     healthCheck: { path: /healthz, interval: 5s, timeout: 2s, unhealthyAfter: 2, healthyAfter: 2 }
//! ```
//!
//! - **Steering** ([`Pool::pick`], pure core in [`select`]) only ever
//!   picks healthy origins. `round_robin` takes them in turn;
//!   `least_outstanding` the one with the fewest requests or connections
//!   in flight ([`Outstanding`] guards), ties in turn; `hash` scores each
//!   healthy origin by a fixed hash of (key, origin URL) and takes the
//!   highest (rendezvous hashing: the same key lands on the same origin
//!   on every connector, and an origin leaving moves only its own keys).
//!   A request without the key (no such header or cookie) is served in turn.
//! - **Health**: origins start healthy, so a fresh connector serves at
//!   once, and the first round of checks runs immediately. An origin
//!   leaves the pool after `unhealthyAfter` consecutive failures and comes
//!   back after `healthyAfter` consecutive successful checks. Failures
//!   count whether they come from a check or from a request that could not
//!   connect; only checks count successes. HTTP pools `GET` the check path
//!   (2xx and 3xx pass) through the origin's pooled client; TCP pools
//!   connect. Every check is bounded by `timeout`. Transitions are logged
//!   (warn when an origin leaves, info when it returns) with its URL.
//! - **Failover**: a request or connection that cannot connect to its
//!   origin (nothing was sent) is retried once on another healthy origin
//!   ([`crate::serve`]); when no origin is healthy the stream is answered
//!   [`ErrorCode::NoHealthyOrigin`](warren_proto::stream::ErrorCode) with
//!   [`Pool::unavailable`]'s sentence.
//! - **Lifetime**: one checker task ([`Pool::check_forever`]) per pool per
//!   [`Runtime`](crate::serve::Runtime), aborted when that Runtime is
//!   dropped. A reload builds a new Runtime whose pools start over.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use http::{header, Request, Version};
use http_body_util::{BodyExt, Limited};
use tokio::time::MissedTickBehavior;
use warren_transport::body::empty;

use crate::ingress::{HashOn, HealthCheck, OriginPool, Rule, Service, Steering};
use crate::origin::{http_client, origin_error, Dialer, HttpClient, OriginError};

/// Most of a health check answer's body that is read (so the connection
/// can be reused); the rest is dropped with the connection.
const CHECK_BODY_LIMIT: usize = 64 * 1024;

/// The origins of one `service: pool` rule with their health and load.
pub struct Pool {
    /// 1-based rule number, for logs.
    rule: usize,
    steering: Steering,
    check: HealthCheck,
    /// Host header of HTTP checks: `httpHostHeader`, else the rule's
    /// hostname unless it is a wildcard, else the origin's authority.
    check_host: Option<String>,
    http2: bool,
    members: Vec<Member>,
    /// Round-robin position, advanced on every pick.
    turn: AtomicUsize,
    /// Orders failures, to report the most recent one.
    failures_seen: AtomicU64,
}

/// One origin of a pool.
pub struct Member {
    /// The origin (`Service::Http` or `Service::Tcp`).
    pub service: Service,
    /// Its URL, for logs and hashing.
    pub name: String,
    /// Dials it with the rule's origin settings.
    pub dialer: Dialer,
    /// Its pooled HTTP client (HTTP pools only).
    pub client: Option<HttpClient>,
    outstanding: AtomicUsize,
    healthy: AtomicBool,
    streak: Mutex<Streak>,
}

/// Consecutive check results of one origin.
#[derive(Debug, Default)]
struct Streak {
    successes: u32,
    failures: u32,
    /// The last failure, with its [`Pool::failures_seen`] number.
    last_error: Option<(u64, String)>,
}

/// What steering may look at for one request or connection.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Request headers, names lower-case (empty for TCP).
    pub headers: &'a [(String, Vec<u8>)],
    /// The client's `ip:port` as the edge saw it.
    pub client_addr: &'a str,
}

impl Pool {
    /// Builds a pool's dialers and clients. `number` is the rule's 1-based
    /// number; `base_dir` resolves a relative `caPool`.
    pub fn new(
        number: usize,
        rule: &Rule,
        pool: &OriginPool,
        base_dir: &Path,
    ) -> Result<Pool, OriginError> {
        let o = &rule.origin_request;
        let mut members = Vec::with_capacity(pool.origins.len());
        for service in &pool.origins {
            // Validated configs hold only HTTP and TCP origins, which
            // always have a dialer.
            let Some(dialer) = Dialer::for_service(service, o, base_dir)? else {
                continue;
            };
            let client =
                matches!(service, Service::Http { .. }).then(|| http_client(dialer.clone(), o));
            members.push(Member {
                service: service.clone(),
                name: service.to_string(),
                dialer,
                client,
                outstanding: AtomicUsize::new(0),
                healthy: AtomicBool::new(true),
                streak: Mutex::new(Streak::default()),
            });
        }
        let check_host = o
            .http_host_header
            .clone()
            .or_else(|| rule.hostname.clone().filter(|h| !h.starts_with('*')));
        Ok(Pool {
            rule: number,
            steering: pool.steering.clone(),
            check: pool.health_check.clone(),
            check_host,
            http2: o.http2_origin,
            members,
            turn: AtomicUsize::new(0),
            failures_seen: AtomicU64::new(0),
        })
    }

    /// The origin at `index` (from [`Pool::pick`]).
    pub fn member(&self, index: usize) -> &Member {
        &self.members[index]
    }

    /// Whether origin `index` is in the pool now.
    pub fn is_healthy(&self, index: usize) -> bool {
        self.members[index].healthy.load(Ordering::Relaxed)
    }

    /// The healthy origin that should serve a request with these `facts`,
    /// never `exclude` (the origin that just failed); `None` when no
    /// healthy origin is left.
    pub fn pick(&self, facts: &Facts<'_>, exclude: Option<usize>) -> Option<usize> {
        let candidates: Vec<Candidate<'_>> = self
            .members
            .iter()
            .enumerate()
            .filter(|(i, m)| Some(*i) != exclude && m.healthy.load(Ordering::Relaxed))
            .map(|(index, m)| Candidate {
                index,
                name: &m.name,
                outstanding: m.outstanding.load(Ordering::Relaxed),
            })
            .collect();
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let key = match &self.steering {
            Steering::Hash(on) => hash_key(on, facts),
            _ => None,
        };
        select(&self.steering, &candidates, turn, key.as_deref())
    }

    /// Counts a request or connection on origin `index` until the guard
    /// drops.
    pub fn acquire(self: &Arc<Self>, index: usize) -> Outstanding {
        self.members[index]
            .outstanding
            .fetch_add(1, Ordering::Relaxed);
        Outstanding {
            pool: self.clone(),
            index,
        }
    }

    /// Records that origin `index` failed (a check, or a request that could
    /// not connect); takes it out of the pool after `unhealthyAfter` in a
    /// row.
    pub fn record_failure(&self, index: usize, error: &str) {
        let m = &self.members[index];
        let seen = self.failures_seen.fetch_add(1, Ordering::Relaxed);
        let mut streak = m.streak.lock().unwrap_or_else(PoisonError::into_inner);
        streak.successes = 0;
        streak.failures = streak.failures.saturating_add(1);
        streak.last_error = Some((seen, error.to_string()));
        if streak.failures >= self.check.unhealthy_after && m.healthy.swap(false, Ordering::Relaxed)
        {
            tracing::warn!(
                rule = self.rule,
                "origin {} is unhealthy after {} failures in a row; taking it out of the pool: {error}",
                m.name,
                streak.failures
            );
        } else {
            tracing::debug!(rule = self.rule, origin = %m.name, failures = streak.failures, "origin failed: {error}");
        }
    }

    /// Records a passed check of origin `index`; brings it back after
    /// `healthyAfter` in a row.
    fn record_success(&self, index: usize) {
        let m = &self.members[index];
        let mut streak = m.streak.lock().unwrap_or_else(PoisonError::into_inner);
        streak.failures = 0;
        streak.successes = streak.successes.saturating_add(1);
        if streak.successes >= self.check.healthy_after && !m.healthy.swap(true, Ordering::Relaxed)
        {
            tracing::info!(
                rule = self.rule,
                "origin {} is healthy again after {} passed checks; back in the pool",
                m.name,
                streak.successes
            );
        }
    }

    /// The sentence for a request that finds no healthy origin: "no healthy
    /// origin in the pool for HOST: all 2 origins failed their health
    /// checks (last error: ...)".
    pub fn unavailable(&self, host: &str) -> String {
        let last = self
            .members
            .iter()
            .filter_map(|m| {
                m.streak
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .last_error
                    .clone()
            })
            .max_by_key(|(seen, _)| *seen)
            .map(|(_, e)| format!(" (last error: {e})"))
            .unwrap_or_default();
        let who = match self.members.len() {
            1 => "its only origin failed its health checks".to_string(),
            n => format!("all {n} origins failed their health checks"),
        };
        format!("no healthy origin in the pool for {host}: {who}{last}")
    }

    /// Checks every origin each `interval`, forever; a round's checks run
    /// concurrently, each bounded by `timeout`, and the first round starts
    /// at once. Meant to be spawned and aborted.
    pub async fn check_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.check.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let round = self.members.iter().map(|m| self.check_one(m));
            let results = futures_util::future::join_all(round).await;
            for (index, result) in results.into_iter().enumerate() {
                match result {
                    Ok(()) => self.record_success(index),
                    Err(e) => self.record_failure(index, &format!("health check: {e}")),
                }
            }
        }
    }

    async fn check_one(&self, m: &Member) -> Result<(), String> {
        let timeout = self.check.timeout;
        match (&self.check.path, &m.client, &m.service) {
            (
                Some(path),
                Some(client),
                Service::Http {
                    scheme_https,
                    authority,
                    ..
                },
            ) => {
                let scheme = if *scheme_https { "https" } else { "http" };
                let mut req = Request::get(format!("{scheme}://{authority}{path}")).header(
                    header::USER_AGENT,
                    concat!("warren-health-check/", env!("CARGO_PKG_VERSION")),
                );
                if self.http2 {
                    req = req.version(Version::HTTP_2);
                } else if let Some(host) = &self.check_host {
                    req = req.header(header::HOST, host);
                }
                let req = req
                    .body(empty())
                    .map_err(|e| format!("GET {path} cannot be sent: {e}"))?;
                let exchange = async {
                    let resp = client
                        .request(req)
                        .await
                        .map_err(|e| match origin_error(&e) {
                            Some(oe) => oe.to_string(),
                            None => format!("GET {path} failed: {}", source_text(&e)),
                        })?;
                    let status = resp.status();
                    let _ = Limited::new(resp.into_body(), CHECK_BODY_LIMIT)
                        .collect()
                        .await;
                    if status.is_success() || status.is_redirection() {
                        Ok(())
                    } else {
                        Err(format!("GET {path} answered {status}"))
                    }
                };
                tokio::time::timeout(timeout, exchange)
                    .await
                    .map_err(|_| format!("GET {path} got no answer within {timeout:?}"))?
            }
            _ => match tokio::time::timeout(timeout, m.dialer.dial()).await {
                Ok(Ok(_connection)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "connecting to {} took longer than {timeout:?}",
                    m.dialer.target
                )),
            },
        }
    }
}

/// The innermost cause's text, which says more than hyper's "client error".
fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// Counts one request or connection as in flight on an origin, until
/// dropped.
pub struct Outstanding {
    pool: Arc<Pool>,
    index: usize,
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.pool.members[self.index]
            .outstanding
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// A healthy origin as steering sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
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
pub fn select(
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
pub fn hash_key(on: &HashOn, facts: &Facts<'_>) -> Option<Vec<u8>> {
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

    fn pool(yaml_pool: &str) -> Arc<Pool> {
        let config = crate::ingress::IngressConfig::from_yaml(&format!(
            "ingress:\n  - hostname: api.example.com\n    service: pool\n    originPool: {yaml_pool}\n  - service: http_status:404\n"
        ))
        .unwrap();
        let rule = &config.rules[0];
        let Service::Pool(p) = &rule.service else {
            panic!("not a pool: {}", rule.service)
        };
        Arc::new(Pool::new(1, rule, p, Path::new(".")).unwrap())
    }

    const NO_FACTS: Facts<'static> = Facts {
        headers: &[],
        client_addr: "",
    };

    #[test]
    fn health_needs_streaks_both_ways() {
        let p = pool("{ origins: [tcp://127.0.0.1:1, tcp://127.0.0.1:2], healthCheck: { unhealthyAfter: 2, healthyAfter: 3 } }");
        assert!(p.is_healthy(0) && p.is_healthy(1), "origins start healthy");
        p.record_failure(0, "refused");
        assert!(p.is_healthy(0), "one failure is not enough");
        p.record_success(0);
        p.record_failure(0, "refused");
        assert!(p.is_healthy(0), "a success resets the failures");
        p.record_failure(0, "refused again");
        assert!(!p.is_healthy(0));
        for _ in 0..10 {
            assert_eq!(p.pick(&NO_FACTS, None), Some(1), "only the healthy one");
        }
        assert_eq!(p.pick(&NO_FACTS, Some(1)), None, "the other one is down");
        p.record_success(0);
        p.record_success(0);
        p.record_failure(0, "flap");
        p.record_success(0);
        p.record_success(0);
        assert!(!p.is_healthy(0), "a failure resets the successes");
        p.record_success(0);
        assert!(p.is_healthy(0));
    }

    #[test]
    fn unavailable_names_the_last_error() {
        let p = pool("{ origins: [tcp://127.0.0.1:1, tcp://127.0.0.1:2] }");
        for i in 0..2 {
            p.record_failure(i, &format!("error {i}"));
            p.record_failure(i, &format!("error {i}"));
        }
        assert_eq!(p.pick(&NO_FACTS, None), None);
        assert_eq!(
            p.unavailable("api.example.com"),
            "no healthy origin in the pool for api.example.com: all 2 origins failed their \
             health checks (last error: error 1)"
        );
        let one = pool("{ origins: [tcp://127.0.0.1:1] }");
        assert_eq!(
            one.unavailable("db.example.com"),
            "no healthy origin in the pool for db.example.com: its only origin failed its \
             health checks"
        );
    }

    #[test]
    fn outstanding_guards_steer_least_outstanding() {
        let p = pool(
            "{ origins: [tcp://127.0.0.1:1, tcp://127.0.0.1:2], steering: least_outstanding }",
        );
        let busy = p.acquire(0);
        for _ in 0..5 {
            assert_eq!(p.pick(&NO_FACTS, None), Some(1));
        }
        let busier = p.acquire(1);
        let also_busier = p.acquire(1);
        assert_eq!(p.pick(&NO_FACTS, None), Some(0));
        drop((busier, also_busier));
        drop(busy);
        let picks: Vec<_> = (0..4).filter_map(|_| p.pick(&NO_FACTS, None)).collect();
        assert!(picks.contains(&0) && picks.contains(&1), "{picks:?}");
    }

    #[tokio::test]
    async fn tcp_checks_find_a_dead_origin_and_stop_with_the_task() {
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let p = pool(&format!(
            "{{ origins: [tcp://{}, tcp://{dead_addr}], healthCheck: {{ interval: 10ms, timeout: 1s, unhealthyAfter: 2 }} }}",
            live.local_addr().unwrap()
        ));
        let task = tokio::spawn(p.clone().check_forever());
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while p.is_healthy(1) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the closed port is found unhealthy");
        assert!(p.is_healthy(0));
        assert!(p.unavailable("x").contains(&dead_addr.to_string()));
        // Aborting the task releases its reference to the pool.
        task.abort();
        let _ = task.await;
        assert_eq!(Arc::strong_count(&p), 1);
    }
}
