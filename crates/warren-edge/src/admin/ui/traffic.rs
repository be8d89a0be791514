//! Per-tunnel traffic over the last hour, for the dashboard's plots: a
//! ring of samples per tunnel, filled every [`PERIOD`] from the counters
//! the edge keeps anyway (`metrics.rs`: each route's sessions, errors and
//! bytes, [`EdgeMetrics::route_totals`]).
//!
//! A sample is what a tunnel's routes carried since the one before,
//! divided by the time between them: requests (and connections) per
//! second, bytes per second, errors per second. A route balanced over
//! several tunnels counts under each of them (the counters are per route;
//! which tunnel carried which request is not counted anywhere). A route
//! made since the last sample counts from zero; one deleted and made
//! again (the edge's counters of it went on) from where it was when it
//! went, so it never shows as a spike of what it carried before.
//!
//! **Bounded**: at most [`CAPACITY`] samples per tunnel (an hour and one)
//! and [`MAX_TUNNELS`] tunnels; a deleted tunnel's ring goes at the next
//! sample; the totals of at most [`MAX_RETIRED`] deleted routes are kept. [`Traffic::record`] takes the time as an argument, so tests
//! give it explicit sample times.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use warren_store::Store;

use crate::metrics::{EdgeMetrics, RouteTotals};

/// How often a sample is taken.
pub(crate) const PERIOD: Duration = Duration::from_secs(10);
/// How far back the plots go, in seconds.
pub(crate) const WINDOW: u64 = 3600;
/// Samples kept per tunnel: the window, and the sample at its start.
pub(crate) const CAPACITY: usize = (WINDOW / PERIOD.as_secs()) as usize + 1;
/// Tunnels sampled at most (the ring of one is a few kilobytes).
pub(crate) const MAX_TUNNELS: usize = 1000;
/// Deleted routes whose totals are kept, should they be made again.
pub(crate) const MAX_RETIRED: usize = 1000;

/// One interval's traffic of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Sample {
    /// Unix seconds at the end of the interval.
    pub(crate) at: u64,
    /// Requests and connections per second.
    pub(crate) requests: f64,
    /// Bytes per second, both directions.
    pub(crate) bytes: f64,
    /// Errors per second (see `metrics::ERROR_OUTCOMES`).
    pub(crate) errors: f64,
}

/// What a route carried so far, and the tunnels it goes to, at one
/// sample.
#[derive(Debug, Clone)]
pub(crate) struct RouteReading {
    /// The hostname as routed.
    pub(crate) route: String,
    /// Ids of the tunnels it goes to.
    pub(crate) tunnels: Vec<String>,
    pub(crate) totals: RouteTotals,
}

/// A tunnel's samples, oldest first, as the plots draw them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Series {
    /// Seconds between samples.
    pub(crate) period: u64,
    /// Seconds the plots span: the last sample and this long before it.
    pub(crate) window: u64,
    /// Unix seconds of each sample.
    pub(crate) t: Vec<u64>,
    pub(crate) requests: Vec<f64>,
    pub(crate) bytes: Vec<f64>,
    pub(crate) errors: Vec<f64>,
}

#[derive(Default)]
struct State {
    /// When the previous sample was taken.
    last: Option<u64>,
    /// Each route's totals then.
    totals: HashMap<String, RouteTotals>,
    /// The last totals of routes deleted since.
    retired: HashMap<String, RouteTotals>,
    rings: HashMap<String, VecDeque<Sample>>,
}

/// Every tunnel's ring. Cheap to share.
#[derive(Default)]
pub(crate) struct Traffic {
    state: Mutex<State>,
}

impl Traffic {
    /// Takes the sample at `now` (Unix seconds): `tunnels` are the ids of
    /// every tunnel, `routes` what each route has carried so far. The
    /// first call only notes where the counters start.
    pub(crate) fn record(&self, now: u64, tunnels: &[String], routes: &[RouteReading]) {
        let mut guard = self.state.lock().expect("traffic rings");
        let state = &mut *guard;
        // Routes gone since the last sample keep their totals, should they
        // be made again.
        let gone: Vec<String> = state
            .totals
            .keys()
            .filter(|r| !routes.iter().any(|x| &x.route == *r))
            .cloned()
            .collect();
        for r in gone {
            if let Some(t) = state.totals.remove(&r) {
                if state.retired.len() >= MAX_RETIRED {
                    let any = state.retired.keys().next().cloned();
                    if let Some(k) = any {
                        state.retired.remove(&k);
                    }
                }
                state.retired.insert(r, t);
            }
        }
        // The first sample only notes where the counters start; a clock
        // that went back starts again from here.
        let interval = state.last.filter(|before| now > *before).map(|b| now - b);
        let mut carried: HashMap<&str, RouteTotals> = HashMap::new();
        for r in routes {
            let prev = state
                .totals
                .get(&r.route)
                .or_else(|| state.retired.get(&r.route))
                .copied()
                .unwrap_or_default();
            let delta = RouteTotals {
                sessions: r.totals.sessions.saturating_sub(prev.sessions),
                errors: r.totals.errors.saturating_sub(prev.errors),
                bytes: r.totals.bytes.saturating_sub(prev.bytes),
            };
            for t in &r.tunnels {
                let sum = carried.entry(t.as_str()).or_default();
                sum.sessions = sum.sessions.saturating_add(delta.sessions);
                sum.errors = sum.errors.saturating_add(delta.errors);
                sum.bytes = sum.bytes.saturating_add(delta.bytes);
            }
        }
        for r in routes {
            state.retired.remove(&r.route);
            state.totals.insert(r.route.clone(), r.totals);
        }
        state.last = Some(now);
        let Some(seconds) = interval else {
            return;
        };
        let seconds = seconds as f64;
        let live: HashSet<&str> = tunnels.iter().map(String::as_str).collect();
        state.rings.retain(|id, _| live.contains(id.as_str()));
        for id in tunnels {
            if !state.rings.contains_key(id) && state.rings.len() >= MAX_TUNNELS {
                continue;
            }
            let c = carried.get(id.as_str()).copied().unwrap_or_default();
            let ring = state.rings.entry(id.clone()).or_default();
            if ring.len() >= CAPACITY {
                ring.pop_front();
            }
            ring.push_back(Sample {
                at: now,
                requests: c.sessions as f64 / seconds,
                bytes: c.bytes as f64 / seconds,
                errors: c.errors as f64 / seconds,
            });
        }
    }

    /// The samples of tunnel `id` within the [`WINDOW`] before `now`.
    pub(crate) fn series(&self, id: &str, now: u64) -> Series {
        let state = self.state.lock().expect("traffic rings");
        let mut s = Series {
            period: PERIOD.as_secs(),
            window: WINDOW,
            ..Series::default()
        };
        let from = now.saturating_sub(WINDOW);
        for sample in state.rings.get(id).into_iter().flatten() {
            if sample.at < from {
                continue;
            }
            s.t.push(sample.at);
            s.requests.push(sample.requests);
            s.bytes.push(sample.bytes);
            s.errors.push(sample.errors);
        }
        s
    }
}

/// Samples every [`PERIOD`], forever: the tunnels and routes from the
/// store, each route's totals from `metrics`.
pub(crate) async fn sample_forever(traffic: Arc<Traffic>, store: Store, metrics: Arc<EdgeMetrics>) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (tunnels, routes) = match (store.list_tunnels().await, store.list_routes().await) {
            (Ok(t), Ok(r)) => (t, r),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "the dashboard's traffic sample could not read the tunnels and routes; trying again at the next one");
                continue;
            }
        };
        let tunnels: Vec<String> = tunnels.into_iter().map(|t| t.id).collect();
        let readings: Vec<RouteReading> = routes
            .into_iter()
            .map(|r| RouteReading {
                totals: metrics.route_totals(&r.hostname),
                tunnels: r.tunnels.into_iter().map(|m| m.tunnel_id).collect(),
                route: r.hostname,
            })
            .collect();
        let now = u64::try_from(crate::audit::now()).unwrap_or(0);
        traffic.record(now, &tunnels, &readings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(
        route: &str,
        tunnels: &[&str],
        sessions: u64,
        errors: u64,
        bytes: u64,
    ) -> RouteReading {
        RouteReading {
            route: route.into(),
            tunnels: tunnels.iter().map(|t| (*t).to_owned()).collect(),
            totals: RouteTotals {
                sessions,
                errors,
                bytes,
            },
        }
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn rates_are_what_was_carried_between_samples_per_second() {
        let t = Traffic::default();
        let tunnels = ids(&["a", "b"]);
        // The first sample only notes where the counters are.
        t.record(
            1000,
            &tunnels,
            &[reading("x.example.com", &["a"], 50, 5, 5000)],
        );
        assert_eq!(t.series("a", 1000).t, Vec::<u64>::new());
        t.record(
            1010,
            &tunnels,
            &[reading("x.example.com", &["a"], 60, 6, 6000)],
        );
        // Twenty seconds later (a late tick): averaged over twenty.
        t.record(
            1030,
            &tunnels,
            &[reading("x.example.com", &["a"], 80, 6, 8000)],
        );
        let a = t.series("a", 1030);
        assert_eq!(a.period, 10);
        assert_eq!(a.t, vec![1010, 1030]);
        assert_eq!(a.requests, vec![1.0, 1.0]);
        assert_eq!(a.errors, vec![0.1, 0.0]);
        assert_eq!(a.bytes, vec![100.0, 100.0]);
        // A tunnel without traffic has zeros, not gaps.
        let b = t.series("b", 1030);
        assert_eq!(b.t, vec![1010, 1030]);
        assert_eq!(b.requests, vec![0.0, 0.0]);
        assert_eq!(
            t.series("nope", 1030),
            Series {
                period: 10,
                window: WINDOW,
                ..Series::default()
            }
        );
    }

    #[test]
    fn the_ring_keeps_an_hour_and_no_more() {
        let t = Traffic::default();
        let tunnels = ids(&["a"]);
        let start = 10_000;
        for i in 0..1000u64 {
            t.record(
                start + i * 10,
                &tunnels,
                &[reading("x", &["a"], i, 0, i * 3)],
            );
        }
        let end = start + 999 * 10;
        let a = t.series("a", end);
        assert_eq!(a.t.len(), CAPACITY);
        assert_eq!(*a.t.last().unwrap(), end);
        assert_eq!(a.t[0], end - WINDOW);
        assert!(
            a.requests.iter().all(|r| (r - 0.1).abs() < 1e-9),
            "{:?}",
            a.requests
        );
        assert!(a.bytes.iter().all(|b| (b - 0.3).abs() < 1e-9));
        // Asked for later, without new samples: only what is in the window.
        assert_eq!(t.series("a", end + 600).t.len(), CAPACITY - 60);
        assert!(t.series("a", end + WINDOW + 1).t.is_empty());
    }

    #[test]
    fn a_new_route_counts_from_zero_a_remade_one_from_where_it_was_and_a_balanced_one_for_each_tunnel(
    ) {
        let t = Traffic::default();
        let tunnels = ids(&["a", "b"]);
        t.record(0, &tunnels, &[]);
        // x is made and carries 20 before the next sample.
        t.record(10, &tunnels, &[reading("x", &["a", "b"], 20, 0, 0)]);
        for id in ["a", "b"] {
            assert_eq!(t.series(id, 10).requests, vec![2.0], "{id}");
        }
        // x is deleted, then made again: its counters went on from 20.
        t.record(20, &tunnels, &[]);
        t.record(30, &tunnels, &[reading("x", &["a"], 30, 0, 0)]);
        assert_eq!(t.series("a", 30).requests, vec![2.0, 0.0, 1.0]);
        assert_eq!(t.series("b", 30).requests, vec![2.0, 0.0, 0.0]);
        // Counters never go back; if they did, it would be no traffic.
        t.record(40, &tunnels, &[reading("x", &["a"], 5, 0, 0)]);
        assert_eq!(t.series("a", 40).requests, vec![2.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn deleted_tunnels_lose_their_ring_and_tunnels_are_bounded() {
        let t = Traffic::default();
        let many: Vec<String> = (0..MAX_TUNNELS + 10).map(|i| format!("t{i}")).collect();
        t.record(0, &many, &[]);
        t.record(10, &many, &[]);
        assert_eq!(t.state.lock().unwrap().rings.len(), MAX_TUNNELS);
        let kept = ids(&["t0"]);
        t.record(20, &kept, &[]);
        assert_eq!(t.state.lock().unwrap().rings.len(), 1);
        assert_eq!(t.series("t0", 20).t, vec![10, 20]);
        assert!(t.series("t1", 20).t.is_empty());
        // A clock that goes back starts over rather than dividing by it.
        t.record(5, &kept, &[]);
        t.record(15, &kept, &[]);
        assert_eq!(t.series("t0", 20).t, vec![10, 20, 15]);
    }
}
