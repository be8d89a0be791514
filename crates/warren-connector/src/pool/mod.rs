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
//!
//! `steering` holds the pure pick, `health` the checks and the streaks
//! that move an origin out of the pool and back.

mod health;
mod steering;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::ingress::{HealthCheck, OriginPool, Rule, Service, Steering};
use crate::origin::{http_client, Dialer, HttpClient, OriginError};

use health::Streak;
pub(crate) use steering::{hash_key, select, Candidate};

/// The origins of one `service: pool` rule with their health and load.
pub(crate) struct Pool {
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
pub(crate) struct Member {
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

/// What steering may look at for one request or connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    /// Request headers, names lower-case (empty for TCP).
    pub headers: &'a [(String, Vec<u8>)],
    /// The client's `ip:port` as the edge saw it.
    pub client_addr: &'a str,
}

impl Pool {
    /// Builds a pool's dialers and clients. `number` is the rule's 1-based
    /// number; `base_dir` resolves a relative `caPool`.
    pub(crate) fn new(
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
    pub(crate) fn member(&self, index: usize) -> &Member {
        &self.members[index]
    }

    /// Whether origin `index` is in the pool now.
    #[cfg(test)]
    pub(crate) fn is_healthy(&self, index: usize) -> bool {
        self.members[index].healthy.load(Ordering::Relaxed)
    }

    /// The healthy origin that should serve a request with these `facts`,
    /// never `exclude` (the origin that just failed); `None` when no
    /// healthy origin is left.
    pub(crate) fn pick(&self, facts: &Facts<'_>, exclude: Option<usize>) -> Option<usize> {
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
    pub(crate) fn acquire(self: &Arc<Self>, index: usize) -> Outstanding {
        self.members[index]
            .outstanding
            .fetch_add(1, Ordering::Relaxed);
        Outstanding {
            pool: self.clone(),
            index,
        }
    }

    /// The sentence for a request that finds no healthy origin: "no healthy
    /// origin in the pool for HOST: all 2 origins failed their health
    /// checks (last error: ...)".
    pub(crate) fn unavailable(&self, host: &str) -> String {
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
}

/// Counts one request or connection as in flight on an origin, until
/// dropped.
pub(crate) struct Outstanding {
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
