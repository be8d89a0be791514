//! Quick tunnels (`--quick-tunnels`, off by default): `POST
//! /.warren/quick-tunnel` on the HTTPS listener, with no admin token, makes
//! a tunnel and a public route for a random name under `--domain`, and
//! answers its token; `warren tunnel --url http://localhost:3000 --edge E`
//! asks for one and runs its connector. A quick tunnel is removed (with its
//! route) once it has had no connection for the idle time (5 minutes). One
//! address may make [`PER_MINUTE`] a minute.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use std::time::Instant;
use warren_proto::token::{hash_secret, TunnelToken};
use warren_store::Store;

use crate::registry::{Registry, TunnelStatus};
use crate::routes::RouteTable;
use crate::secrets::TunnelSecrets;

/// Where `warren tunnel --url` asks for a quick tunnel.
pub(crate) const QUICK_PATH: &str = "/.warren/quick-tunnel";

/// Quick tunnels one address may make per minute.
pub(crate) const PER_MINUTE: usize = 10;

/// Addresses the rate limiter remembers at most (the oldest are forgotten).
const MAX_TRACKED: usize = 10_000;

/// The secret generation of a new tunnel.
const FIRST_GENERATION: i64 = 1;

/// What a quick tunnel request gets.
#[derive(Debug, Serialize)]
pub(crate) struct QuickTunnel {
    pub hostname: String,
    pub url: String,
    pub token: String,
    /// Seconds without a connection after which it is removed.
    pub idle_removal_seconds: u64,
}

/// Why no quick tunnel was made; each says what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QuickError {
    #[error("this address asked for {PER_MINUTE} quick tunnels in the last minute; wait a minute and try again")]
    RateLimited,
    #[error("the edge could not make a quick tunnel: {0}; try again")]
    Store(#[from] warren_store::StoreError),
}

/// The quick tunnel service of one edge.
pub(crate) struct QuickTunnels {
    store: Store,
    secrets: Arc<TunnelSecrets>,
    routes: RouteTable,
    registry: Registry,
    /// Names are made under it.
    domain: String,
    /// The HTTPS port, for the URL (443 is left out).
    https_port: u16,
    token_edges: Vec<String>,
    ca_pin: String,
    /// How long a quick tunnel may go without a connection.
    idle: Duration,
    limit: PerMinute,
}

/// At most [`PER_MINUTE`] requests per address in any minute.
#[derive(Default)]
struct PerMinute {
    recent: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl QuickTunnels {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: Store,
        secrets: Arc<TunnelSecrets>,
        routes: RouteTable,
        registry: Registry,
        domain: String,
        https_port: u16,
        token_edges: Vec<String>,
        ca_pin: String,
        idle: Duration,
    ) -> QuickTunnels {
        QuickTunnels {
            store,
            secrets,
            routes,
            registry,
            domain,
            https_port,
            token_edges,
            ca_pin,
            idle,
            limit: PerMinute::default(),
        }
    }
}

impl PerMinute {
    /// Counts a request from `source`; false when it is over the limit.
    fn admit(&self, source: IpAddr, now: Instant) -> bool {
        let mut recent = self.recent.lock().expect("quick tunnel limiter");
        if recent.len() >= MAX_TRACKED && !recent.contains_key(&source) {
            recent.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60))
            });
            if recent.len() >= MAX_TRACKED {
                return false;
            }
        }
        let times = recent.entry(source).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            times.pop_front();
        }
        if times.len() >= PER_MINUTE {
            return false;
        }
        times.push_back(now);
        true
    }
}

impl QuickTunnels {
    /// Makes a quick tunnel for a request from `source`.
    pub(crate) async fn create(&self, source: IpAddr) -> Result<QuickTunnel, QuickError> {
        if !self.limit.admit(source, Instant::now()) {
            return Err(QuickError::RateLimited);
        }
        let label = random_label();
        let secrets = self.secrets.clone();
        let tunnel = self
            .store
            .create_tunnel_with(&format!("quick-{label}"), FIRST_GENERATION, |id| {
                hash_secret(&secrets.secret(id, FIRST_GENERATION))
            })
            .await?;
        self.store.mark_quick_tunnel(&tunnel.id).await?;
        let hostname = format!("{label}.{}", self.domain);
        self.store.add_route(&hostname, &tunnel.id, true).await?;
        self.routes.reload(&self.store).await?;
        let token = TunnelToken {
            tunnel_id: tunnel.id.clone(),
            secret: self.secrets.secret(&tunnel.id, FIRST_GENERATION),
            edges: self.token_edges.clone(),
            ca_pin: self.ca_pin.clone(),
        }
        .encode();
        let url = match self.https_port {
            443 => format!("https://{hostname}"),
            port => format!("https://{hostname}:{port}"),
        };
        tracing::info!(%source, tunnel = %tunnel.name, %hostname, "made a quick tunnel");
        Ok(QuickTunnel {
            hostname,
            url,
            token,
            idle_removal_seconds: self.idle.as_secs(),
        })
    }

    /// Removes quick tunnels that have gone without a connection for the
    /// idle time, checking a few times per idle time, until dropped.
    pub(crate) async fn sweep_forever(self: Arc<Self>) {
        let every = (self.idle / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
        // Since when each tunnel has had no connection (from this edge's
        // start, or its creation).
        let mut idle_since: HashMap<String, tokio::time::Instant> = HashMap::new();
        loop {
            tokio::time::sleep(every).await;
            let tunnels = match self.store.quick_tunnels().await {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!("cannot list quick tunnels to remove idle ones: {e}");
                    continue;
                }
            };
            let now = tokio::time::Instant::now();
            idle_since.retain(|id, _| tunnels.iter().any(|t| &t.id == id));
            let mut removed = false;
            for t in tunnels {
                if self.registry.status(&t.id) != TunnelStatus::Inactive {
                    idle_since.remove(&t.id);
                    continue;
                }
                let since = *idle_since.entry(t.id.clone()).or_insert(now);
                if now.duration_since(since) < self.idle {
                    continue;
                }
                match self.store.delete_tunnel(&t.id).await {
                    Ok(_) => {
                        tracing::info!(tunnel = %t.name, idle = ?self.idle, "removed a quick tunnel that had no connection");
                        idle_since.remove(&t.id);
                        removed = true;
                    }
                    Err(e) => {
                        tracing::error!(tunnel = %t.name, "cannot remove an idle quick tunnel: {e}")
                    }
                }
            }
            if removed {
                if let Err(e) = self.routes.reload(&self.store).await {
                    tracing::error!("cannot reload the routes after removing quick tunnels: {e}");
                }
            }
        }
    }
}

/// A random DNS label: three words from a small list and a number, like
/// `amber-fox-river-4821` (about 2^30 names).
fn random_label() -> String {
    const WORDS: &[&str] = &[
        "amber", "basil", "cedar", "delta", "ember", "fjord", "gale", "harbor", "iris", "juniper",
        "kite", "lumen", "maple", "nova", "opal", "pine", "quartz", "raven", "sage", "tidal",
        "umber", "vale", "willow", "xenon", "yarrow", "zephyr", "birch", "coral", "dune", "fern",
        "grove", "heath",
    ];
    let mut rng = rand::rng();
    let mut pick = || WORDS[rng.random_range(0..WORDS.len())];
    let (a, b, c) = (pick(), pick(), pick());
    format!("{a}-{b}-{c}-{}", rand::rng().random_range(1000..10_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_a_minute_per_address() {
        let limit = PerMinute::default();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..PER_MINUTE {
            assert!(
                limit.admit(a, t0 + Duration::from_secs(i as u64)),
                "request {i}"
            );
        }
        assert!(
            !limit.admit(a, t0 + Duration::from_secs(30)),
            "the 11th in a minute"
        );
        assert!(
            limit.admit(b, t0 + Duration::from_secs(30)),
            "another address"
        );
        assert!(
            limit.admit(a, t0 + Duration::from_secs(61)),
            "a minute after the first"
        );
    }

    #[test]
    fn labels_are_dns_labels() {
        for _ in 0..100 {
            let l = random_label();
            assert!(l.len() <= 63, "{l}");
            assert!(l
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        }
    }
}
