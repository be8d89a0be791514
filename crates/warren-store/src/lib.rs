//! Warren's control-plane store: tunnels, hostname routes and admin API
//! tokens, in SQLite (`<data-dir>/warren.db`) through sqlx.
//!
//! [`Store`] is the only type; it is cheap to clone (it wraps a connection
//! pool). **Only this crate knows SQL**: callers get typed rows
//! ([`Tunnel`], [`RouteRow`]) and typed errors ([`StoreError`], each one a
//! sentence saying what was wrong and what to do).
//!
//! **The store never holds a secret**, only SHA-256 hashes that the caller
//! computed; a tunnel's secret hash is kept out of [`Tunnel`] so that it
//! cannot be serialized by accident ([`Store::tunnel_secret_hash`] reads it).
//!
//! Writes that take more than one statement run in one `BEGIN IMMEDIATE`
//! transaction, so they neither half-apply nor fail on a lock upgrade.

#![forbid(unsafe_code)]

mod access;
mod audit;
mod validate;

pub use access::{AppRow, IdpRow, ServiceTokenRow, SessionRow, SigningKeyRow};
pub use audit::{AuditEntry, AuditFilter, AuditRecord, AuditVerdict};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use thiserror::Error;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "warren.db";

/// How long a statement waits for another writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Why a store operation failed. Each message is one sentence that says
/// what was wrong and what to do about it.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The data directory or the database file could not be created.
    #[error("cannot create {path} ({source}); check that the data directory's parent exists and is writable by warren's user")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database file could not be opened, or a statement on it failed.
    #[error("the control-plane database {path} failed ({source}); check that the file and its directory are readable and writable by warren's user and that the disk is not full")]
    Database { path: PathBuf, source: sqlx::Error },
    /// The schema could not be brought up to date.
    #[error("cannot update the schema of the control-plane database {path} ({source}); if a newer warren wrote it, run that version, otherwise restore the file from a backup")]
    Migrate { path: PathBuf, source: MigrateError },
    /// A tunnel with that name already exists.
    #[error("a tunnel named {0:?} already exists; pick another name or delete it with `warren tunnel delete {0}`")]
    TunnelExists(String),
    /// The tunnel name is not allowed.
    #[error("{0:?} is not a valid tunnel name; use 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit (and not shaped like a tunnel id)")]
    InvalidName(String),
    /// No tunnel has that id.
    #[error("no tunnel has the id {0:?}; list tunnels with `warren tunnel list`")]
    UnknownTunnel(String),
    /// The route hostname is not a DNS name.
    #[error("{0:?} is not a valid route hostname; use a DNS name such as app.example.com, or *.example.com for a wildcard, without scheme or port")]
    InvalidHostname(String),
    /// A load-balanced route's tunnel list is not usable.
    #[error("{0}")]
    InvalidPool(String),
    /// The hostname already routes to a tunnel.
    #[error("the hostname {hostname} already routes to tunnel {tunnel_name}; delete that route first with `warren tunnel route delete {hostname}`")]
    RouteExists {
        hostname: String,
        tunnel_name: String,
    },
    /// An access application with that name already exists.
    #[error("an access application named {0:?} already exists; pick another name or delete it with `warren access app delete {0}`")]
    AppExists(String),
    /// No access application has that name.
    #[error("there is no access application named {0:?}; list them with `warren access app list`")]
    UnknownApp(String),
    /// The application or one of its policies is not usable.
    #[error("{0}")]
    InvalidApp(String),
    /// A service token with that name already exists.
    #[error("a service token named {0:?} already exists; pick another name, or rotate its secret with `warren access service-token rotate {0}`")]
    ServiceTokenExists(String),
    /// The service token name is not allowed.
    #[error("{0:?} is not a valid service token name; use 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit")]
    InvalidServiceTokenName(String),
    /// No service token has that name or client id.
    #[error(
        "there is no service token named {0:?}; list them with `warren access service-token list`"
    )]
    UnknownServiceToken(String),
    /// A revoked token cannot be rotated.
    #[error("the service token {0:?} is revoked; create a new one with `warren access service-token create NAME`")]
    ServiceTokenRevoked(String),
    /// Some other input is not usable; the message says what.
    #[error("{0}")]
    InvalidInput(String),
    /// A stored row does not parse.
    #[error("{0}; the database was changed outside warren, restore it from a backup")]
    Corrupt(String),
}

/// A named tunnel. Its secret hash is deliberately not a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tunnel {
    /// UUID v4.
    pub id: String,
    pub name: String,
    /// Bumped by every secret rotation; the secret is derived from it.
    pub secret_generation: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// How a route chooses among its tunnels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteMember {
    pub tunnel_id: String,
    pub tunnel_name: String,
    /// 1 is first under failover.
    pub priority: i64,
    /// Share of new streams under weighted steering.
    pub weight: i64,
}

/// A hostname route, with the name of the tunnel it points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

type TunnelTuple = (String, String, i64, i64);
type RouteTuple = (String, String, String, i64, String, bool);

fn tunnel_from((id, name, secret_generation, created_at): TunnelTuple) -> Tunnel {
    Tunnel {
        id,
        name,
        secret_generation,
        created_at,
    }
}

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

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Creates an empty database file readable only by its owner, so SQLite
/// (which gives its -wal and -shm files the same mode) never makes a
/// world-readable one. An existing file is left alone.
fn create_private_db_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The control-plane store. Clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: Arc<PathBuf>,
}

impl Store {
    /// Opens (creating if missing) `<data_dir>/warren.db` in WAL mode with
    /// foreign keys on, and applies pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        create_private_db_file(&path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Database {
                path: path.clone(),
                source,
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.clone(),
                source,
            })?;
        Ok(Store {
            pool,
            path: Arc::new(path),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for in-flight statements and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn db(&self) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        move |source| StoreError::Database {
            path: self.path.to_path_buf(),
            source,
        }
    }

    // ---- tunnels ----

    /// Creates a tunnel with a new UUID. The caller derives the secret and
    /// passes only its hash. When the secret depends on the tunnel id, use
    /// [`Store::create_tunnel_with`] instead.
    pub async fn create_tunnel(
        &self,
        name: &str,
        secret_hash: &[u8; 32],
        generation: i64,
    ) -> Result<Tunnel, StoreError> {
        self.create_tunnel_with(name, generation, |_| *secret_hash)
            .await
    }

    /// Creates a tunnel with a new UUID, asking `secret_hash` for the hash
    /// of its secret given that id, so that the tunnel is written once and
    /// complete (no placeholder hash, no second statement).
    pub async fn create_tunnel_with(
        &self,
        name: &str,
        generation: i64,
        secret_hash: impl FnOnce(&str) -> [u8; 32],
    ) -> Result<Tunnel, StoreError> {
        if !validate::is_valid_tunnel_name(name) {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        let tunnel = Tunnel {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            secret_generation: generation,
            created_at: now(),
        };
        let hash = secret_hash(&tunnel.id);
        let result = sqlx::query(
            "INSERT INTO tunnels (id, name, secret_hash, secret_generation, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&tunnel.id)
        .bind(&tunnel.name)
        .bind(&hash[..])
        .bind(tunnel.secret_generation)
        .bind(tunnel.created_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(tunnel),
            Err(e) if is_unique_violation(&e) => Err(StoreError::TunnelExists(name.to_owned())),
            Err(e) => Err(self.db()(e)),
        }
    }

    /// All tunnels, by name.
    pub async fn list_tunnels(&self) -> Result<Vec<Tunnel>, StoreError> {
        let rows: Vec<TunnelTuple> = sqlx::query_as(
            "SELECT id, name, secret_generation, created_at FROM tunnels ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(rows.into_iter().map(tunnel_from).collect())
    }

    /// The tunnel with this id, or else with this name.
    pub async fn get_tunnel(&self, name_or_id: &str) -> Result<Option<Tunnel>, StoreError> {
        let row: Option<TunnelTuple> = sqlx::query_as(
            "SELECT id, name, secret_generation, created_at FROM tunnels
             WHERE id = ?1 OR name = ?1 ORDER BY id = ?1 DESC LIMIT 1",
        )
        .bind(name_or_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(row.map(tunnel_from))
    }

    /// Deletes a tunnel and (by cascade) its routes; a load-balanced route
    /// loses only this tunnel, unless it was the last one. `false` if there
    /// was no such tunnel.
    pub async fn delete_tunnel(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.db())?;
        // Pool routes that name this tunnel first move to their next one.
        sqlx::query(
            "UPDATE routes SET tunnel_id = (
                 SELECT rt.tunnel_id FROM route_tunnels rt
                 WHERE rt.hostname = routes.hostname AND rt.tunnel_id != ?1
                 ORDER BY rt.priority LIMIT 1)
             WHERE tunnel_id = ?1 AND steering != 'single' AND EXISTS (
                 SELECT 1 FROM route_tunnels rt
                 WHERE rt.hostname = routes.hostname AND rt.tunnel_id != ?1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(self.db())?;
        let done = sqlx::query("DELETE FROM tunnels WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        tx.commit().await.map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces a tunnel's secret hash and generation (secret rotation).
    pub async fn set_tunnel_secret(
        &self,
        id: &str,
        secret_hash: &[u8; 32],
        generation: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE tunnels SET secret_hash = ?2, secret_generation = ?3 WHERE id = ?1",
        )
        .bind(id)
        .bind(&secret_hash[..])
        .bind(generation)
        .execute(&self.pool)
        .await
        .map_err(self.db())?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownTunnel(id.to_owned()));
        }
        Ok(())
    }

    /// The stored SHA-256 of a tunnel's current secret.
    pub async fn tunnel_secret_hash(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT secret_hash FROM tunnels WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.db())
    }

    // ---- routes ----

    /// Routes `hostname` (lower-cased, validated) to a tunnel. A `public`
    /// route is reachable without an access application.
    pub async fn add_route(
        &self,
        hostname: &str,
        tunnel_id: &str,
        public: bool,
    ) -> Result<RouteRow, StoreError> {
        let host = validate::normalize_hostname(hostname)
            .ok_or_else(|| StoreError::InvalidHostname(hostname.to_owned()))?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.db())?;
        let tunnel_name = self.tunnel_name_in(&mut tx, tunnel_id).await?;
        self.ensure_no_route(&mut tx, &host).await?;
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
        .execute(&mut *tx)
        .await
        .map_err(self.db())?;
        tx.commit().await.map_err(self.db())?;
        Ok(row)
    }

    /// The name of tunnel `id`, inside a write transaction.
    async fn tunnel_name_in(
        &self,
        tx: &mut sqlx::SqliteConnection,
        id: &str,
    ) -> Result<String, StoreError> {
        let name: Option<String> = sqlx::query_scalar("SELECT name FROM tunnels WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.db())?;
        name.ok_or_else(|| StoreError::UnknownTunnel(id.into()))
    }

    /// `RouteExists` if `host` (normalized) is already routed.
    async fn ensure_no_route(
        &self,
        tx: &mut sqlx::SqliteConnection,
        host: &str,
    ) -> Result<(), StoreError> {
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT t.name FROM routes r JOIN tunnels t ON t.id = r.tunnel_id
             WHERE r.hostname = ?1",
        )
        .bind(host)
        .fetch_optional(&mut *tx)
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
        &self,
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
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.db())?;
        self.ensure_no_route(&mut tx, &host).await?;
        let mut tunnels = Vec::with_capacity(members.len());
        for (i, (id, weight)) in members.iter().enumerate() {
            tunnels.push(RouteMember {
                tunnel_id: id.clone(),
                tunnel_name: self.tunnel_name_in(&mut tx, id).await?,
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
        .execute(&mut *tx)
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
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        }
        tx.commit().await.map_err(self.db())?;
        Ok(row)
    }

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

    /// Makes the route for `hostname` public or not; `false` if there is
    /// no such route.
    pub async fn set_route_public(&self, hostname: &str, public: bool) -> Result<bool, StoreError> {
        let host = hostname.trim().to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host);
        let done = sqlx::query("UPDATE routes SET public = ?2 WHERE hostname = ?1")
            .bind(host)
            .bind(public)
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the route for `hostname` (compared lower-case). `false` if
    /// there was none.
    pub async fn delete_route(&self, hostname: &str) -> Result<bool, StoreError> {
        let host = hostname.trim().to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host);
        let done = sqlx::query("DELETE FROM routes WHERE hostname = ?1")
            .bind(host)
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }

    // ---- admin tokens ----

    /// Stores the SHA-256 of a new admin API token.
    pub async fn add_admin_token_hash(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO admin_tokens (id, token_hash, created_at) VALUES (?1, ?2, ?3)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&token_hash[..])
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(())
    }

    /// Hashes of every admin API token.
    pub async fn admin_token_hashes(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT token_hash FROM admin_tokens")
            .fetch_all(&self.pool)
            .await
            .map_err(self.db())
    }

    /// Whether any admin API token exists.
    pub async fn has_admin_token(&self) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM admin_tokens)")
            .fetch_one(&self.pool)
            .await
            .map_err(self.db())
    }
}

#[cfg(test)]
mod tests;
