//! Hostname routes: one tunnel, or a load balancer over several
//! (`route_tunnels`, failover or weighted steering); public or not.

use serde::{Deserialize, Serialize};

use crate::store::{now, one_write};
use crate::{validate, Store, StoreError, StoreTx};

/// How a route chooses among its tunnels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Steering {
    /// One tunnel.
    Single,
    /// Every new stream goes to the first tunnel (by priority) that is
    /// serving; the next one only when it is not.
    Failover,
    /// New streams are shared among the serving tunnels by weight.
    Weighted,
}

impl Steering {
    pub fn as_str(self) -> &'static str {
        match self {
            Steering::Single => "single",
            Steering::Failover => "failover",
            Steering::Weighted => "weighted",
        }
    }

    fn from_db(s: &str) -> Steering {
        match s {
            "failover" => Steering::Failover,
            "weighted" => Steering::Weighted,
            _ => Steering::Single,
        }
    }
}

/// One tunnel of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RouteMember {
    pub tunnel_id: String,
    pub tunnel_name: String,
    /// 1 is first under failover.
    pub priority: i64,
    /// Share of new streams under weighted steering.
    pub weight: i64,
}

/// A hostname route, with the name of the tunnel it points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RouteRow {
    /// Lower-case; `*.example.com` for a wildcard.
    pub hostname: String,
    /// The first tunnel (the only one unless `steering` says otherwise).
    pub tunnel_id: String,
    pub tunnel_name: String,
    /// Unix seconds.
    pub created_at: i64,
    pub steering: Steering,
    /// Every tunnel of the route, by priority (one for a single route).
    pub tunnels: Vec<RouteMember>,
    /// Reachable without an access application.
    #[serde(default)]
    pub public: bool,
}

type RouteTuple = (String, String, String, i64, String, bool);

fn route_from(
    (hostname, tunnel_id, tunnel_name, created_at, steering, public): RouteTuple,
) -> RouteRow {
    let steering = Steering::from_db(&steering);
    let tunnels = if steering == Steering::Single {
        vec![RouteMember {
            tunnel_id: tunnel_id.clone(),
            tunnel_name: tunnel_name.clone(),
            priority: 1,
            weight: 1,
        }]
    } else {
        Vec::new()
    };
    RouteRow {
        hostname,
        tunnel_id,
        tunnel_name,
        created_at,
        steering,
        tunnels,
        public,
    }
}

impl Store {
    /// All routes with their tunnels, by hostname.
    pub async fn list_routes(&self) -> Result<Vec<RouteRow>, StoreError> {
        let rows: Vec<RouteTuple> = sqlx::query_as(
            "SELECT r.hostname, r.tunnel_id, t.name, r.created_at, r.steering, r.public
             FROM routes r JOIN tunnels t ON t.id = r.tunnel_id ORDER BY r.hostname",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        let members: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT rt.hostname, rt.tunnel_id, t.name, rt.priority, rt.weight
             FROM route_tunnels rt JOIN tunnels t ON t.id = rt.tunnel_id
             ORDER BY rt.hostname, rt.priority",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        let mut routes: Vec<RouteRow> = rows.into_iter().map(route_from).collect();
        for (hostname, tunnel_id, tunnel_name, priority, weight) in members {
            if let Ok(i) = routes.binary_search_by(|r| r.hostname.as_str().cmp(&hostname)) {
                routes[i].tunnels.push(RouteMember {
                    tunnel_id,
                    tunnel_name,
                    priority,
                    weight,
                });
            }
        }
        Ok(routes)
    }
}

one_write! {
    /// Routes `hostname` to a tunnel (see [`StoreTx::add_route`]).
    pub async fn add_route(&self, hostname: &str, tunnel_id: &str, public: bool) -> RouteRow;
    /// Routes `hostname` to several tunnels (see [`StoreTx::add_pool_route`]).
    pub async fn add_pool_route(
        &self,
        hostname: &str,
        steering: Steering,
        members: &[(String, i64)],
        public: bool
    ) -> RouteRow;
    /// Makes a route public or not (see [`StoreTx::set_route_public`]).
    pub async fn set_route_public(&self, hostname: &str, public: bool) -> bool;
    /// Deletes a route (see [`StoreTx::delete_route`]).
    pub async fn delete_route(&self, hostname: &str) -> bool;
}

impl StoreTx {
    /// Routes `hostname` (lower-cased, validated) to a tunnel. A `public`
    /// route is reachable without an access application.
    pub async fn add_route(
        &mut self,
        hostname: &str,
        tunnel_id: &str,
        public: bool,
    ) -> Result<RouteRow, StoreError> {
        let host = validate::normalize_hostname(hostname)
            .ok_or_else(|| StoreError::InvalidHostname(hostname.to_owned()))?;
        let tunnel_name = self.tunnel_name_in(tunnel_id).await?;
        self.ensure_no_route(&host).await?;
        let row = RouteRow {
            tunnels: vec![RouteMember {
                tunnel_id: tunnel_id.to_owned(),
                tunnel_name: tunnel_name.clone(),
                priority: 1,
                weight: 1,
            }],
            hostname: host,
            tunnel_id: tunnel_id.to_owned(),
            tunnel_name,
            created_at: now(),
            steering: Steering::Single,
            public,
        };
        sqlx::query(
            "INSERT INTO routes (hostname, tunnel_id, created_at, public) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(&row.hostname)
        .bind(&row.tunnel_id)
        .bind(row.created_at)
        .bind(public)
        .execute(self.conn())
        .await
        .map_err(self.db())?;
        Ok(row)
    }

    /// The name of tunnel `id`, inside a write transaction.
    async fn tunnel_name_in(&mut self, id: &str) -> Result<String, StoreError> {
        let name: Option<String> = sqlx::query_scalar("SELECT name FROM tunnels WHERE id = ?1")
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .map_err(self.db())?;
        name.ok_or_else(|| StoreError::UnknownTunnel(id.into()))
    }

    /// `RouteExists` if `host` (normalized) is already routed.
    async fn ensure_no_route(&mut self, host: &str) -> Result<(), StoreError> {
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT t.name FROM routes r JOIN tunnels t ON t.id = r.tunnel_id
             WHERE r.hostname = ?1",
        )
        .bind(host)
        .fetch_optional(self.conn())
        .await
        .map_err(self.db())?;
        match existing {
            Some(tunnel_name) => Err(StoreError::RouteExists {
                hostname: host.to_owned(),
                tunnel_name,
            }),
            None => Ok(()),
        }
    }

    /// Routes `hostname` to several tunnels (a load balancer over
    /// tunnels): `members` are `(tunnel id, weight)` in priority order.
    pub async fn add_pool_route(
        &mut self,
        hostname: &str,
        steering: Steering,
        members: &[(String, i64)],
        public: bool,
    ) -> Result<RouteRow, StoreError> {
        let host = validate::normalize_hostname(hostname)
            .ok_or_else(|| StoreError::InvalidHostname(hostname.to_owned()))?;
        let invalid = |m: &str| Err(StoreError::InvalidPool(m.to_owned()));
        if steering == Steering::Single {
            return invalid("a load-balanced route needs steering failover or weighted; use `warren tunnel route dns` for one tunnel");
        }
        if members.len() < 2 {
            return invalid("a load-balanced route needs at least two tunnels; use `warren tunnel route dns` for one");
        }
        if members.len() > 32 {
            return invalid("a load-balanced route can have at most 32 tunnels");
        }
        for (i, (id, w)) in members.iter().enumerate() {
            if members[..i].iter().any(|(o, _)| o == id) {
                return invalid("a tunnel appears twice in the route; list each tunnel once");
            }
            if !(0..=1000).contains(w) {
                return invalid("tunnel weights must be between 0 and 1000");
            }
        }
        if steering == Steering::Weighted && members.iter().all(|(_, w)| *w == 0) {
            return invalid("every weight is 0, so no tunnel would get traffic; give at least one tunnel a weight above 0");
        }
        self.ensure_no_route(&host).await?;
        let mut tunnels = Vec::with_capacity(members.len());
        for (i, (id, weight)) in members.iter().enumerate() {
            tunnels.push(RouteMember {
                tunnel_id: id.clone(),
                tunnel_name: self.tunnel_name_in(id).await?,
                priority: i as i64 + 1,
                weight: *weight,
            });
        }
        let first = &tunnels[0];
        let row = RouteRow {
            hostname: host,
            tunnel_id: first.tunnel_id.clone(),
            tunnel_name: first.tunnel_name.clone(),
            created_at: now(),
            steering,
            tunnels,
            public,
        };
        sqlx::query(
            "INSERT INTO routes (hostname, tunnel_id, created_at, steering, public) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&row.hostname)
        .bind(&row.tunnel_id)
        .bind(row.created_at)
        .bind(steering.as_str())
        .bind(public)
        .execute(self.conn())
        .await
        .map_err(self.db())?;
        for m in &row.tunnels {
            sqlx::query(
                "INSERT INTO route_tunnels (hostname, tunnel_id, priority, weight) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(&row.hostname)
            .bind(&m.tunnel_id)
            .bind(m.priority)
            .bind(m.weight)
            .execute(self.conn())
            .await
            .map_err(self.db())?;
        }
        Ok(row)
    }

    /// Makes the route for `hostname` public or not; `false` if there is
    /// no such route.
    pub async fn set_route_public(
        &mut self,
        hostname: &str,
        public: bool,
    ) -> Result<bool, StoreError> {
        let host = hostname.trim().to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host);
        let done = sqlx::query("UPDATE routes SET public = ?2 WHERE hostname = ?1")
            .bind(host)
            .bind(public)
            .execute(self.conn())
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the route for `hostname` (compared lower-case). `false` if
    /// there was none.
    pub async fn delete_route(&mut self, hostname: &str) -> Result<bool, StoreError> {
        let host = hostname.trim().to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host);
        let done = sqlx::query("DELETE FROM routes WHERE hostname = ?1")
            .bind(host)
            .execute(self.conn())
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }
}
