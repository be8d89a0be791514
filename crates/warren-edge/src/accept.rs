//! What every TCP listener of the edge does before it hands a connection
//! over: respect the connection limits, and survive `accept()` failures.
//!
//! - **A global cap** ([`ConnLimits`], `--max-connections`): at most that
//!   many client connections across all listeners, set below the process's
//!   file-descriptor limit, so the edge never runs out of descriptors for
//!   its store and its tunnels. At the cap, listeners stop accepting (the
//!   kernel's backlog holds newcomers) until a connection closes.
//! - **A per-source cap on unauthenticated connections**
//!   (`--max-unauthenticated-per-source`): connections from one address on
//!   one listener that have not yet shown they are a client (finished the
//!   TLS handshake and sent their first bytes; for PostgreSQL, their
//!   startup): one address cannot hold every slot with silent sockets.
//! - **`accept()` failures** (mostly `EMFILE`): waited out by
//!   `warren_transport::accept`, with one log line per interval.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use warren_transport::accept::{accept, AcceptBackoff, LogEvery};

/// The edge's connection caps, shared by all its listeners.
#[derive(Clone)]
pub(crate) struct ConnLimits {
    global: Arc<Semaphore>,
    max: usize,
    per_source: usize,
    full: Arc<Mutex<LogEvery>>,
    /// TCP keep-alive on every accepted connection: idle this long, the
    /// kernel probes the client, and closes the socket of one that is gone
    /// (a laptop suspended mid-session) after a few unanswered probes.
    keepalive: Duration,
}

/// Between two keep-alive probes, and how many go unanswered before the
/// kernel gives up on the client.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 5;

impl ConnLimits {
    pub(crate) fn new(max: usize, per_source: usize, keepalive: Duration) -> Self {
        ConnLimits {
            global: Arc::new(Semaphore::new(max)),
            max,
            per_source,
            full: Arc::default(),
            keepalive,
        }
    }
}

impl ConnLimits {
    /// A count of unauthenticated connections per source address for one
    /// listener (an [`Acceptor`]'s, or the QUIC access listener's), with
    /// the cap `--max-unauthenticated-per-source`.
    pub(crate) fn sources(&self) -> Arc<Sources> {
        Arc::new(Sources {
            max: self.per_source,
            counts: Mutex::default(),
            log: Mutex::default(),
        })
    }

    /// A place under the global cap for a connection that arrived by
    /// other means than an [`Acceptor`] (a QUIC access client), if there
    /// is one now; `None` (logged, at most every so often) when the edge
    /// is full.
    pub(crate) fn try_slot(&self, what: &'static str) -> Option<OwnedSemaphorePermit> {
        let slot = self.global.clone().try_acquire_owned().ok();
        if slot.is_none() {
            self.log_full(what, "refusing new ones until one closes");
        }
        slot
    }

    /// Says, at most every so often, that `what` found the edge full and
    /// what it does about it.
    fn log_full(&self, what: &'static str, then: &str) {
        let due = self.full.lock().expect("log lock").due(Instant::now());
        if let Some(times) = due {
            tracing::warn!(
                listener = what,
                max = self.max,
                times,
                "the edge holds as many connections as --max-connections allows; {then} (raise it, and `ulimit -n`, if this is normal load)"
            );
        }
    }
}

/// One listener's accept loop.
pub(crate) struct Acceptor {
    listener: TcpListener,
    /// Which listener, for log lines.
    what: &'static str,
    backoff: AcceptBackoff,
    limits: ConnLimits,
    sources: Arc<Sources>,
}

/// A connection the limits let in.
pub(crate) struct Accepted {
    pub(crate) tcp: TcpStream,
    pub(crate) peer: SocketAddr,
    /// Its place under the global cap: keep it as long as the connection.
    pub(crate) slot: OwnedSemaphorePermit,
    /// Its place among its address's unauthenticated connections: drop it
    /// once the client has shown it is one.
    pub(crate) unauthenticated: Unauthenticated,
}

impl Acceptor {
    pub(crate) fn new(listener: TcpListener, what: &'static str, limits: ConnLimits) -> Self {
        let sources = limits.sources();
        Acceptor {
            listener,
            what,
            backoff: AcceptBackoff::new(),
            limits,
            sources,
        }
    }

    /// The next connection within the limits, waiting out failures and a
    /// full edge.
    pub(crate) async fn next(&mut self) -> Accepted {
        loop {
            let slot = match self.limits.global.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    self.limits
                        .log_full(self.what, "new ones wait until one closes");
                    self.limits
                        .global
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("the connection semaphore is never closed")
                }
            };
            let (tcp, peer) = self.accept().await;
            let probes = socket2::TcpKeepalive::new()
                .with_time(self.limits.keepalive)
                .with_interval(KEEPALIVE_INTERVAL)
                .with_retries(KEEPALIVE_RETRIES);
            if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_keepalive(&probes) {
                tracing::debug!(%peer, error = %e, "cannot set TCP keep-alive");
            }
            match Sources::enter(&self.sources, peer.ip()) {
                Some(unauthenticated) => {
                    return Accepted {
                        tcp,
                        peer,
                        slot,
                        unauthenticated,
                    }
                }
                None => {
                    let due = self
                        .sources
                        .log
                        .lock()
                        .expect("log lock")
                        .due(Instant::now());
                    if let Some(times) = due {
                        tracing::warn!(
                            listener = self.what,
                            source = %peer.ip(),
                            max = self.sources.max,
                            times,
                            "an address holds as many connections that have not yet sent anything as --max-unauthenticated-per-source allows; closing its new ones"
                        );
                    }
                    drop(tcp);
                }
            }
        }
    }

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        accept(&self.listener, &mut self.backoff, self.what).await
    }
}

/// Unauthenticated connections per source address on one listener.
pub(crate) struct Sources {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
    log: Mutex<LogEvery>,
}

impl Sources {
    /// A place among `ip`'s unauthenticated connections, if it has fewer
    /// than the cap.
    pub(crate) fn enter(this: &Arc<Sources>, ip: IpAddr) -> Option<Unauthenticated> {
        let mut counts = this.counts.lock().expect("source counts lock");
        let n = counts.entry(ip).or_insert(0);
        if *n >= this.max {
            return None;
        }
        *n += 1;
        Some(Unauthenticated {
            sources: Some(this.clone()),
            ip,
        })
    }
}

/// One connection counted against its address until it drops.
pub(crate) struct Unauthenticated {
    sources: Option<Arc<Sources>>,
    ip: IpAddr,
}

impl Drop for Unauthenticated {
    fn drop(&mut self) {
        let Some(sources) = self.sources.take() else {
            return;
        };
        let mut counts = sources.counts.lock().expect("source counts lock");
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The descriptors a process may have open (its soft `RLIMIT_NOFILE`),
/// if the system says.
pub(crate) fn fd_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// Descriptors kept out of `--max-connections`' default: the store, the
/// tunnel socket, log files, certificates being read.
pub(crate) const FD_RESERVE: u64 = 256;

/// `--max-connections` when it is not given: the descriptor limit less
/// [`FD_RESERVE`], at least 64 (and 16 384 when the limit is unknown).
pub(crate) fn default_max_connections(fd_limit: Option<u64>) -> usize {
    let n = fd_limit.map_or(16_384, |l| l.saturating_sub(FD_RESERVE).max(64));
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_cap_and_its_slots_back_as_connections_drop() {
        let sources = Arc::new(Sources {
            max: 2,
            counts: Mutex::default(),
            log: Mutex::default(),
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = Sources::enter(&sources, a).unwrap();
        let _second = Sources::enter(&sources, a).unwrap();
        assert!(Sources::enter(&sources, a).is_none(), "a third from a");
        let _other = Sources::enter(&sources, b).expect("another address is not affected");
        drop(first);
        assert!(Sources::enter(&sources, a).is_some());
    }

    #[test]
    fn the_default_cap_stays_below_the_descriptor_limit() {
        assert_eq!(default_max_connections(Some(1024)), 768);
        assert_eq!(default_max_connections(Some(100)), 64);
        assert_eq!(default_max_connections(None), 16_384);
    }

    #[tokio::test]
    async fn accepted_connections_get_tcp_keepalive_probes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let keepalive = Duration::from_secs(42);
        let mut acceptor = Acceptor::new(listener, "test", ConnLimits::new(4, 4, keepalive));
        let _client = TcpStream::connect(addr).await.unwrap();
        let accepted = acceptor.next().await;
        let sock = socket2::SockRef::from(&accepted.tcp);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), keepalive);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), KEEPALIVE_RETRIES);
    }

    #[tokio::test]
    async fn at_the_global_cap_the_next_connection_waits_for_a_slot() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut acceptor = Acceptor::new(
            listener,
            "test",
            ConnLimits::new(1, 8, Duration::from_secs(60)),
        );
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let first = acceptor.next().await;
        let waiting = tokio::time::timeout(Duration::from_millis(200), acceptor.next()).await;
        assert!(
            waiting.is_err(),
            "a second connection while the only slot is held"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(10), acceptor.next())
            .await
            .expect("the slot came back");
        assert_eq!(second.peer.ip(), addr.ip());
    }
}
