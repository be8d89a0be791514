//! The in-memory hostname route table the request path reads.
//!
//! Routes live in the store; this is a read-mostly copy that the admin API
//! reloads after every change, so the data path never touches SQL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rand::Rng;
use warren_store::{Steering, Store, StoreError};

use crate::registry::TunnelStatus;

/// Where a hostname goes: one tunnel, or several with a steering policy
/// (a load balancer over tunnels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The hostname as routed (`*.example.com` for a wildcard): what
    /// metrics label the route with.
    pub name: Arc<str>,
    pub steering: Steering,
    /// By priority; never empty.
    pub tunnels: Vec<RouteTunnel>,
    /// Reachable when no access application covers the hostname.
    pub public: bool,
}

/// One tunnel of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTunnel {
    pub id: String,
    pub name: String,
    pub weight: u32,
}

impl Route {
    /// The name of the route's tunnel with this id (empty if none).
    pub fn tunnel_name(&self, id: &str) -> String {
        self.tunnels
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    }

    /// The route's tunnels in the order a new stream should try them,
    /// given each tunnel's status:
    /// - single: its tunnel;
    /// - failover: the active tunnels by priority, then the degraded ones
    ///   (a tunnel serving on fewer connections beats none);
    /// - weighted: the serving tunnels with weight > 0, in a random order
    ///   where each comes first with probability weight / total.
    ///
    /// Inactive tunnels are left out, except for a single route (so its
    /// error says that its one tunnel has no connector).
    pub fn candidates(
        &self,
        status: impl Fn(&str) -> TunnelStatus,
        rng: &mut impl Rng,
    ) -> Vec<&RouteTunnel> {
        match self.steering {
            Steering::Single => self.tunnels.iter().take(1).collect(),
            Steering::Failover => {
                let st: Vec<TunnelStatus> = self.tunnels.iter().map(|t| status(&t.id)).collect();
                let with = |want: TunnelStatus| {
                    self.tunnels
                        .iter()
                        .zip(st.iter())
                        .filter(move |(_, s)| **s == want)
                        .map(|(t, _)| t)
                };
                with(TunnelStatus::Active)
                    .chain(with(TunnelStatus::Degraded))
                    .collect()
            }
            Steering::Weighted => {
                let mut left: Vec<&RouteTunnel> = self
                    .tunnels
                    .iter()
                    .filter(|t| t.weight > 0 && status(&t.id) != TunnelStatus::Inactive)
                    .collect();
                let mut order = Vec::with_capacity(left.len());
                while !left.is_empty() {
                    let total: u32 = left.iter().map(|t| t.weight).sum();
                    let mut x = rng.random_range(0..total);
                    let i = left
                        .iter()
                        .position(|t| {
                            if x < t.weight {
                                true
                            } else {
                                x -= t.weight;
                                false
                            }
                        })
                        .unwrap_or(0);
                    order.push(left.remove(i));
                }
                order
            }
        }
    }
}

/// Hostname → tunnel, exact names and `*.suffix` wildcards.
#[derive(Clone, Default)]
pub struct RouteTable {
    inner: Arc<RwLock<Table>>,
}

#[derive(Default)]
struct Table {
    exact: HashMap<String, Route>,
    /// `*.example.com` is stored as `example.com`.
    wildcard: HashMap<String, Route>,
}

impl RouteTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the table with the store's routes.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let routes = store.list_routes().await?;
        let mut t = Table::default();
        for r in routes {
            let mut tunnels: Vec<RouteTunnel> = r
                .tunnels
                .into_iter()
                .map(|m| RouteTunnel {
                    id: m.tunnel_id,
                    name: m.tunnel_name,
                    weight: u32::try_from(m.weight).unwrap_or(0),
                })
                .collect();
            if tunnels.is_empty() {
                tunnels.push(RouteTunnel {
                    id: r.tunnel_id,
                    name: r.tunnel_name,
                    weight: 1,
                });
            }
            let route = Route {
                name: r.hostname.to_ascii_lowercase().into(),
                steering: r.steering,
                tunnels,
                public: r.public,
            };
            let host = r.hostname.to_ascii_lowercase();
            match host.strip_prefix("*.") {
                Some(suffix) => t.wildcard.insert(suffix.to_owned(), route),
                None => t.exact.insert(host, route),
            };
        }
        *self.inner.write().expect("route table lock") = t;
        Ok(())
    }

    /// The route for a hostname (lower-case, no port): an exact route wins,
    /// then the longest wildcard suffix.
    pub fn lookup(&self, host: &str) -> Option<Route> {
        let t = self.inner.read().expect("route table lock");
        if let Some(r) = t.exact.get(host) {
            return Some(r.clone());
        }
        let mut rest = host;
        while let Some((_, suffix)) = rest.split_once('.') {
            if let Some(r) = t.wildcard.get(suffix) {
                return Some(r.clone());
            }
            rest = suffix;
        }
        None
    }

    /// Whether any route covers the hostname (used to decide whether to
    /// issue a certificate for it).
    pub fn covers(&self, host: &str) -> bool {
        self.lookup(host).is_some()
    }
}

/// The names this edge answers for: its `--domain` and every name under
/// it, `localhost` names, and every routed hostname. The certificate
/// resolver mints certificates only for these, and the HTTP listener
/// redirects only these to HTTPS.
#[derive(Clone)]
pub(crate) struct ServedNames {
    domain: Option<String>,
    routes: RouteTable,
}

impl std::fmt::Debug for ServedNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedNames")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl ServedNames {
    pub(crate) fn new(domain: Option<String>, routes: RouteTable) -> Self {
        ServedNames { domain, routes }
    }

    /// Whether the edge serves `name` (lower-case, no port, no trailing
    /// dot).
    pub(crate) fn serves(&self, name: &str) -> bool {
        let under = |d: &str| name == d || name.strip_suffix(d).is_some_and(|p| p.ends_with('.'));
        self.domain.as_deref().is_some_and(under) || under("localhost") || self.routes.covers(name)
    }
}

/// Which hostnames the admin API may route: names under the edge's
/// `--domain` (and `localhost` names), or any name when the operator said
/// so with `--allow-routes-outside-domain`; never a wildcard over a public
/// suffix (`*.com`, `*.co.uk`, `*.test`), which would have the edge mint
/// certificates for names no one organisation owns.
#[derive(Clone, Debug, Default)]
pub(crate) struct RoutePolicy {
    pub(crate) domain: Option<String>,
    pub(crate) outside_domain: bool,
}

/// Why [`RoutePolicy::check`] refused a hostname. Each says what to do.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RouteRefusal {
    #[error("the route {host} would cover every name under {suffix}, a public suffix that no one organisation owns, and the edge would mint certificates for all of them; route names under your own domain, such as *.apps.example.com")]
    PublicSuffixWildcard { host: String, suffix: String },
    #[error("the route {host} is not under the edge's domain {domain}; use a name such as app.{domain}, or start the edge with --allow-routes-outside-domain if it serves other domains too")]
    OutsideDomain { host: String, domain: String },
    #[error("the route {host} needs the edge to have a domain: start it with --domain example.com (names under it get certificates), or with --allow-routes-outside-domain to route any name; names under localhost need neither")]
    NoDomain { host: String },
}

impl RoutePolicy {
    /// Checks `host` (normalised: lower-case, no trailing dot; `*.` for a
    /// wildcard).
    pub(crate) fn check(&self, host: &str) -> Result<(), RouteRefusal> {
        let name = host.strip_prefix("*.");
        if let Some(suffix) = name {
            if is_public_suffix(suffix) {
                return Err(RouteRefusal::PublicSuffixWildcard {
                    host: host.to_owned(),
                    suffix: suffix.to_owned(),
                });
            }
        }
        let name = name.unwrap_or(host);
        let under = |d: &str| name == d || name.strip_suffix(d).is_some_and(|p| p.ends_with('.'));
        if self.outside_domain || under("localhost") {
            return Ok(());
        }
        match &self.domain {
            Some(d) if under(d) => Ok(()),
            Some(d) => Err(RouteRefusal::OutsideDomain {
                host: host.to_owned(),
                domain: d.clone(),
            }),
            None => Err(RouteRefusal::NoDomain {
                host: host.to_owned(),
            }),
        }
    }
}

/// Whether `name` is a public suffix by the Public Suffix List (a name the
/// list does not know counts as a top-level domain, so `test` and
/// `internal` are suffixes too).
pub(crate) fn is_public_suffix(name: &str) -> bool {
    psl::suffix_str(name) == Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_must_be_under_the_domain_and_never_over_a_public_suffix() {
        let policy = RoutePolicy {
            domain: Some("example.com".into()),
            outside_domain: false,
        };
        for ok in [
            "example.com",
            "app.example.com",
            "*.example.com",
            "*.a.example.com",
            "hello.localhost",
        ] {
            assert_eq!(policy.check(ok), Ok(()), "{ok}");
        }
        assert!(matches!(
            policy.check("app.example.org"),
            Err(RouteRefusal::OutsideDomain { .. })
        ));
        assert!(matches!(
            policy.check("badexample.com"),
            Err(RouteRefusal::OutsideDomain { .. })
        ));
        let anything = RoutePolicy {
            domain: None,
            outside_domain: true,
        };
        assert_eq!(anything.check("app.example.org"), Ok(()));
        assert_eq!(anything.check("*.example.org"), Ok(()));
        for suffix in ["*.com", "*.test", "*.co.uk", "*.internal", "*.localhost"] {
            for p in [&policy, &anything] {
                assert!(
                    matches!(
                        p.check(suffix),
                        Err(RouteRefusal::PublicSuffixWildcard { .. })
                    ),
                    "{suffix}"
                );
            }
        }
        let none = RoutePolicy::default();
        assert!(matches!(
            none.check("app.example.com"),
            Err(RouteRefusal::NoDomain { .. })
        ));
        assert_eq!(none.check("app.localhost"), Ok(()));
    }

    fn single(tun: &str) -> Route {
        Route {
            name: "test.example.com".into(),
            steering: Steering::Single,
            public: false,
            tunnels: vec![RouteTunnel {
                id: tun.into(),
                name: tun.into(),
                weight: 1,
            }],
        }
    }

    fn table(entries: &[(&str, &str)]) -> RouteTable {
        let rt = RouteTable::new();
        {
            let mut t = rt.inner.write().unwrap();
            for (h, tun) in entries {
                let r = single(tun);
                match h.strip_prefix("*.") {
                    Some(s) => t.wildcard.insert(s.into(), r),
                    None => t.exact.insert(h.to_string(), r),
                };
            }
        }
        rt
    }

    #[test]
    fn exact_beats_wildcard_and_longest_suffix_wins() {
        let rt = table(&[
            ("app.example.com", "a"),
            ("*.example.com", "b"),
            ("*.dev.example.com", "c"),
        ]);
        let first = |h: &str| rt.lookup(h).unwrap().tunnels[0].id.clone();
        assert_eq!(first("app.example.com"), "a");
        assert_eq!(first("x.example.com"), "b");
        assert_eq!(first("x.dev.example.com"), "c");
        assert!(rt.lookup("example.com").is_none());
        assert!(rt.lookup("other.org").is_none());
    }

    fn pool(steering: Steering, weights: &[(&str, u32)]) -> Route {
        Route {
            name: "test.example.com".into(),
            steering,
            public: false,
            tunnels: weights
                .iter()
                .map(|(n, w)| RouteTunnel {
                    id: (*n).into(),
                    name: (*n).into(),
                    weight: *w,
                })
                .collect(),
        }
    }

    /// Tunnel statuses for a case; tunnels not listed are inactive.
    type Statuses = &'static [(&'static str, TunnelStatus)];

    fn statuses(s: Statuses) -> impl Fn(&str) -> TunnelStatus {
        move |id| {
            s.iter()
                .find(|(n, _)| *n == id)
                .map_or(TunnelStatus::Inactive, |(_, st)| *st)
        }
    }

    fn names(c: Vec<&RouteTunnel>) -> Vec<&str> {
        c.into_iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn failover_prefers_active_by_priority_then_degraded() {
        use TunnelStatus::*;
        let r = pool(Steering::Failover, &[("a", 1), ("b", 1), ("c", 1)]);
        let mut rng = rand::rng();
        let cases: &[(Statuses, &[&str])] = &[
            (
                &[("a", Active), ("b", Active), ("c", Active)],
                &["a", "b", "c"],
            ),
            (
                &[("a", Inactive), ("b", Active), ("c", Active)],
                &["b", "c"],
            ),
            (&[("a", Degraded), ("b", Active)], &["b", "a"]),
            (&[("a", Degraded), ("c", Degraded)], &["a", "c"]),
            (&[], &[]),
        ];
        for (st, want) in cases {
            assert_eq!(names(r.candidates(statuses(st), &mut rng)), *want, "{st:?}");
        }
    }

    #[test]
    fn single_routes_always_name_their_tunnel() {
        let r = single("a");
        let got = r.candidates(|_| TunnelStatus::Inactive, &mut rand::rng());
        assert_eq!(names(got), ["a"]);
    }

    #[test]
    fn weighted_follows_weights_and_skips_the_unusable() {
        use TunnelStatus::*;
        let r = pool(
            Steering::Weighted,
            &[("a", 3), ("b", 1), ("z", 0), ("off", 5)],
        );
        let st = statuses(&[
            ("a", Active),
            ("b", Degraded),
            ("z", Active),
            ("off", Inactive),
        ]);
        let mut rng = rand::rng();
        let mut first_a = 0;
        for _ in 0..4000 {
            let c = names(r.candidates(&st, &mut rng));
            assert_eq!(c.len(), 2, "{c:?}");
            assert!(c.contains(&"a") && c.contains(&"b"), "{c:?}");
            if c[0] == "a" {
                first_a += 1;
            }
        }
        // 3:1 → a first about 3000 times in 4000; a loose bound.
        assert!((2700..3300).contains(&first_a), "{first_a}");
    }
}
