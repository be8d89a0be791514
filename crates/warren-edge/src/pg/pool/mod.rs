//! The edge's PostgreSQL pool: clients of a pooled database
//! (`warren db add`) end at the native listener, and their queries run on
//! a few server connections the edge keeps warm, per (database, role).
//!
//! A server connection is a long-lived tunnel stream to the route's
//! connector, which dials the database as it does for any `postgres://`
//! client (verify-full TLS) and relays the login; the edge logs in as the
//! role with the credential it holds ([`warren_pg::pool::ServerLogin`]).
//! Why here and not at the connector: see `ARCHITECTURE.md`, "The
//! PostgreSQL pool".
//!
//! - [`Pools`]: every [`RolePool`], made on first use, settings updated in
//!   place on reload (clients keep their connections), and the
//!   maintenance tick (idle and lifetime limits, `min_idle`).
//! - [`RolePool::checkout`]: an idle connection (checked if it sat long),
//!   a new one while under `pool_size`, or a wait up to the checkout
//!   timeout, then [`PoolError::Exhausted`].
//! - [`client`]: one client's session over the pool.

pub(crate) mod client;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use thiserror::Error;
use tokio::sync::Notify;
use warren_pg::pool::{self as core, Established, Login, LoginError, ServerLogin};
use warren_pg::startup::CancelKey;
use warren_proto::stream::{ClientInfo, StreamRequest, StreamResponse, TcpRequest};
use warren_transport::{RecvStream, SendStream};

use crate::databases::DatabaseConfig;
use crate::registry::StreamGuard;
use crate::routes::Route;
use crate::session::EdgeCtx;
use crate::upstream::{Opened, UpstreamError};

/// Most bytes read from a server connection at once.
pub(crate) const READ_CHUNK: usize = 16 * 1024;
/// Longest message Warren's own queries on a server connection accept.
const INTERNAL_MESSAGE_LIMIT: usize = 1 << 20;
/// How long a login or a reset may take.
const SERVER_STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle connection older than this is checked (an empty query) before
/// a client gets it.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(30);
/// How long `min_idle` waits after a failed login before it tries again.
const TOP_UP_BACKOFF: Duration = Duration::from_secs(10);
/// How often idle connections are pruned and `min_idle` is topped up.
const MAINTENANCE_TICK: Duration = Duration::from_secs(1);

/// Why a server connection could not be had.
#[derive(Debug, Error)]
pub(crate) enum PoolError {
    /// Every connection was busy for the whole checkout timeout.
    #[error("all {size} server connections of role {role} on database {database} stayed busy for {waited_ms} ms; try again, or an administrator can raise --pool-size or --checkout-timeout with `warren db set {database}`")]
    Exhausted {
        database: String,
        role: String,
        size: u32,
        waited_ms: u128,
    },
    /// The tunnel stream could not be opened.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The connector answered with something else than a byte stream.
    #[error("the connector for {host} did not open a PostgreSQL stream; is the route's service postgres://?")]
    NotTcp { host: String },
    /// Warren's login failed.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// The client's startup settings were refused by the database.
    #[error("the database refused the connection's settings: {0}")]
    Settings(String),
    /// The stream broke or a step took too long.
    #[error("the server connection to {database} failed: {why}")]
    Broken { database: String, why: String },
}

/// A server connection: a tunnel stream logged in as a role.
pub(crate) struct ServerConn {
    pub(crate) send: SendStream,
    pub(crate) recv: RecvStream,
    /// The backend's cancel key, for a client's cancel request.
    pub(crate) key: Option<(u32, CancelKey)>,
    /// The client settings applied on it (`SET`), so a client asking for
    /// the same ones needs no round trip.
    pub(crate) applied: Vec<(String, String)>,
    /// The pool's statements prepared on it.
    pub(crate) prepared: warren_pg::pool::Prepared,
    created: Instant,
    idle_since: Instant,
    guard: StreamGuard,
    /// Counts it against its pool while it lives.
    _slot: Slot,
}

impl ServerConn {
    /// The id of the tunnel it goes through.
    pub(crate) fn tunnel_id(&self) -> &str {
        &self.guard.conn().tunnel_id
    }

    /// The tunnel connection under it is gone.
    fn dead(&self) -> bool {
        self.guard.conn().conn.is_closed() || self.guard.conn().is_draining()
    }

    /// Sends `sql` and drops what comes back up to the `ReadyForQuery`s;
    /// an `ErrorResponse` among them is returned as its message.
    pub(crate) async fn run(&mut self, sql: &[&str]) -> Result<(), String> {
        self.rows(sql).await.map(drop)
    }

    /// Sends `sql` (one simple query each) and reads the answers: the
    /// rows, as text; the first `ErrorResponse`'s message if there is one,
    /// or a transaction left open, is an error.
    pub(crate) async fn rows(&mut self, sql: &[&str]) -> Result<Vec<Vec<Option<String>>>, String> {
        let mut out = BytesMut::new();
        for q in sql {
            out.extend_from_slice(&core::query(q));
        }
        let work = async {
            self.send.write_all(&out).await.map_err(|e| e.to_string())?;
            let mut decoder = warren_pg::MessageDecoder::new(INTERNAL_MESSAGE_LIMIT);
            let mut buf = BytesMut::new();
            let (mut rows, mut error, mut status) = (Vec::new(), None, None);
            let mut pending = sql.len();
            while pending > 0 {
                let Some(m) = decoder.decode(&mut buf).map_err(|e| e.to_string())? else {
                    let chunk = self
                        .recv
                        .read_chunk(READ_CHUNK)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or("the server connection closed")?;
                    buf.extend_from_slice(&chunk);
                    continue;
                };
                match m.tag {
                    b'D' => rows.push(core::data_row(&m.body).map_err(|e| e.to_string())?),
                    b'E' => {
                        let f = warren_pg::message::parse_fields(&m).map_err(|e| e.to_string())?;
                        error.get_or_insert(f.message().unwrap_or("error").to_owned());
                    }
                    b'Z' => {
                        pending -= 1;
                        status = Some(
                            warren_pg::message::parse_ready_for_query(&m)
                                .map_err(|e| e.to_string())?,
                        );
                    }
                    _ => {}
                }
            }
            if !buf.is_empty() {
                return Err("the database sent more than was asked for".to_owned());
            }
            match (error, status) {
                (Some(e), _) => Err(e),
                (None, Some(warren_pg::TransactionStatus::Idle)) => Ok(rows),
                _ => Err("a transaction is still open".to_owned()),
            }
        };
        match tokio::time::timeout(SERVER_STEP_TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {SERVER_STEP_TIMEOUT:?}")),
        }
    }

    /// Reads back the session's settings (after a client changed them).
    pub(crate) async fn read_settings(&mut self) -> Result<Vec<(String, String)>, String> {
        let rows = self.rows(&[core::READ_SETTINGS]).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match &r[..] {
                [Some(n), Some(v)] => Some((n.clone(), v.clone())),
                _ => None,
            })
            .collect())
    }
}

/// One count of a pool's open connections; given back on drop.
struct Slot(Arc<Counts>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.wake.notify_one();
    }
}

/// What a pool counts; read by the pool view.
#[derive(Default)]
pub(crate) struct Counts {
    /// Server connections alive (idle, in use, or logging in).
    open: AtomicU32,
    /// Clients connected.
    pub(crate) clients: AtomicU32,
    /// Clients waiting for a server connection.
    pub(crate) waiting: AtomicU32,
    /// Clients holding a server connection.
    pub(crate) active: AtomicU32,
    /// Transactions (checkouts given back) served.
    pub(crate) transactions: AtomicU64,
    /// Checkouts.
    pub(crate) checkouts: AtomicU64,
    /// Time spent waiting for a connection, in microseconds, all
    /// checkouts together.
    pub(crate) wait_us: AtomicU64,
    /// Checkouts that ran out of time.
    pub(crate) timeouts: AtomicU64,
    /// Logins that failed.
    pub(crate) login_failures: AtomicU64,
    /// Connections closed rather than handed on (unknown state, a failed
    /// reset or check, lifetime or idle limits).
    pub(crate) closed: AtomicU64,
    wake: Notify,
}

/// The server connections of one role on one database.
pub(crate) struct RolePool {
    pub(crate) role: String,
    config: Mutex<Arc<DatabaseConfig>>,
    idle: Mutex<VecDeque<ServerConn>>,
    pub(crate) counts: Arc<Counts>,
    /// The server's parameters from the first login, told to clients in
    /// their greeting.
    params: Mutex<Option<Vec<(String, String)>>>,
    /// Ids for the named statements of its clients (transaction mode).
    pub(crate) statements: Mutex<warren_pg::pool::StatementCache>,
    /// Connections `min_idle` is opening now.
    warming: AtomicU32,
    /// When a `min_idle` login last failed.
    last_failure: Mutex<Option<Instant>>,
}

impl RolePool {
    fn new(config: Arc<DatabaseConfig>, role: &str) -> Self {
        Self {
            role: role.to_owned(),
            config: Mutex::new(config),
            idle: Mutex::default(),
            counts: Arc::default(),
            params: Mutex::default(),
            statements: Mutex::default(),
            warming: AtomicU32::new(0),
            last_failure: Mutex::new(None),
        }
    }

    /// The settings in force.
    pub(crate) fn config(&self) -> Arc<DatabaseConfig> {
        self.config.lock().expect("pool config").clone()
    }

    /// The server's parameters, once a connection has logged in.
    pub(crate) fn params(&self) -> Option<Vec<(String, String)>> {
        self.params.lock().expect("pool params").clone()
    }

    pub(crate) fn idle_count(&self) -> usize {
        self.idle.lock().expect("pool idle").len()
    }

    pub(crate) fn open_count(&self) -> u32 {
        self.counts.open.load(Ordering::Acquire)
    }

    /// A server connection for a client: idle, new, or after a wait of at
    /// most the checkout timeout. `assertion` goes to the connector with a
    /// new stream (the identity the connection is opened for).
    pub(crate) async fn checkout(
        &self,
        ctx: &EdgeCtx,
        route: &Route,
        assertion: &str,
    ) -> Result<ServerConn, PoolError> {
        let config = self.config();
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + config.pool.checkout_timeout);
        let counts = &self.counts;
        counts.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = scopeguard(|| {
            counts.waiting.fetch_sub(1, Ordering::AcqRel);
        });
        let got = loop {
            let notified = counts.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(conn) = self.take_idle().await {
                break Ok(conn);
            }
            let size = self.config().pool.size;
            if let Some(slot) = self.reserve(size) {
                break self.connect(ctx, route, assertion, slot).await;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                counts.timeouts.fetch_add(1, Ordering::Relaxed);
                break Err(PoolError::Exhausted {
                    database: config.name.clone(),
                    role: self.role.clone(),
                    size,
                    waited_ms: started.elapsed().as_millis(),
                });
            }
        };
        counts
            .wait_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        if got.is_ok() {
            counts.checkouts.fetch_add(1, Ordering::Relaxed);
        }
        got
    }

    /// A slot for one more connection, if under `size`.
    fn reserve(&self, size: u32) -> Option<Slot> {
        self.counts
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < size).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.counts.clone()))
    }

    /// The freshest usable idle connection; stale ones are closed, and one
    /// that sat long is checked first.
    async fn take_idle(&self) -> Option<ServerConn> {
        loop {
            let conn = self.idle.lock().expect("pool idle").pop_back()?;
            let config = self.config();
            if conn.dead() || conn.created.elapsed() >= config.pool.max_lifetime {
                self.counts.closed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let mut conn = conn;
            if conn.idle_since.elapsed() >= CHECK_AFTER_IDLE {
                if let Err(why) = conn.run(&[""]).await {
                    tracing::info!(database = %config.name, role = %self.role, "an idle server connection failed its check and was closed: {why}");
                    self.counts.closed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            return Some(conn);
        }
    }

    /// Takes a connection back at rest.
    pub(crate) fn give_back(&self, mut conn: ServerConn) {
        self.counts.transactions.fetch_add(1, Ordering::Relaxed);
        let config = self.config();
        if conn.dead()
            || conn.created.elapsed() >= config.pool.max_lifetime
            || self.open_count() > config.pool.size
        {
            self.counts.closed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        conn.idle_since = Instant::now();
        self.idle.lock().expect("pool idle").push_back(conn);
        self.counts.wake.notify_one();
    }

    /// A connection that cannot be handed on.
    pub(crate) fn discard(&self, conn: ServerConn) {
        self.counts.closed.fetch_add(1, Ordering::Relaxed);
        drop(conn);
    }

    /// Opens a tunnel stream and logs in.
    async fn connect(
        &self,
        ctx: &EdgeCtx,
        route: &Route,
        assertion: &str,
        slot: Slot,
    ) -> Result<ServerConn, PoolError> {
        let config = self.config();
        let result = self.login(ctx, route, assertion, &config, slot).await;
        if let Err(e) = &result {
            self.counts.login_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(database = %config.name, role = %self.role, "a server connection could not be opened: {e}");
        }
        result
    }

    async fn login(
        &self,
        ctx: &EdgeCtx,
        route: &Route,
        assertion: &str,
        config: &DatabaseConfig,
        slot: Slot,
    ) -> Result<ServerConn, PoolError> {
        let password =
            config
                .credentials
                .get(&self.role)
                .cloned()
                .ok_or_else(|| PoolError::Broken {
                    database: config.name.clone(),
                    why: format!("no credential is stored for role {}", self.role),
                })?;
        let header = StreamRequest::Tcp(TcpRequest {
            host: config.hostname.clone(),
            client: ClientInfo {
                addr: "warren pool".into(),
                scheme: "postgres".into(),
            },
            session: String::new(),
            statement_log: false,
            assertion: assertion.to_owned(),
        });
        let Opened {
            answer,
            mut send,
            mut recv,
            guard,
        } = ctx.upstream.exchange(route, &header, true).await?;
        if answer != StreamResponse::Connected {
            return Err(PoolError::NotTcp {
                host: config.hostname.clone(),
            });
        }
        let extra = [("application_name".to_owned(), "warren pool".to_owned())];
        let (mut login, startup) =
            ServerLogin::new(&self.role, &config.database, password.expose(), &extra)?;
        let broken = |why: String| PoolError::Broken {
            database: config.name.clone(),
            why,
        };
        let work = async {
            send.write_all(&startup)
                .await
                .map_err(|e| broken(e.to_string()))?;
            loop {
                while let Some(step) = login.poll() {
                    match step {
                        Login::Send(b) => send
                            .write_all(&b)
                            .await
                            .map_err(|e| broken(e.to_string()))?,
                        Login::Ready(e) => return Ok(e),
                        Login::Failed(e) => return Err(PoolError::Login(e)),
                    }
                }
                match recv.read_chunk(READ_CHUNK).await {
                    Ok(Some(b)) => login.feed(&b),
                    Ok(None) | Err(_) => login.eof(),
                }
            }
        };
        let Established {
            params, key, rest, ..
        } = match tokio::time::timeout(SERVER_STEP_TIMEOUT, work).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(broken(format!(
                    "the login took over {SERVER_STEP_TIMEOUT:?}"
                )))
            }
        };
        if !rest.is_empty() {
            return Err(broken(
                "the database sent bytes after its ReadyForQuery".into(),
            ));
        }
        self.params
            .lock()
            .expect("pool params")
            .get_or_insert(params);
        let now = Instant::now();
        Ok(ServerConn {
            send,
            recv,
            key,
            applied: Vec::new(),
            prepared: Default::default(),
            created: now,
            idle_since: now,
            guard,
            _slot: slot,
        })
    }

    /// Closes idle connections past their idle time or lifetime (keeping
    /// `min_idle`), and those of a pool that shrank.
    fn prune(&self) {
        let config = self.config();
        let mut idle = self.idle.lock().expect("pool idle");
        let min = config.pool.min_idle as usize;
        let before = idle.len();
        let mut kept = VecDeque::with_capacity(before);
        // Oldest first: the freshest are at the back.
        let mut left = before;
        for conn in idle.drain(..) {
            let open = self.counts.open.load(Ordering::Acquire) as usize;
            let stale = conn.dead()
                || conn.created.elapsed() >= config.pool.max_lifetime
                || (left > min && conn.idle_since.elapsed() >= config.pool.idle_timeout)
                || open > config.pool.size as usize;
            left -= 1;
            if stale {
                drop(conn);
            } else {
                kept.push_back(conn);
            }
        }
        let closed = before - kept.len();
        if closed > 0 {
            self.counts
                .closed
                .fetch_add(closed as u64, Ordering::Relaxed);
        }
        *idle = kept;
    }
}

impl RolePool {
    /// Opens connections until `min_idle` are idle (within `pool_size`),
    /// in the background.
    fn top_up(self: &Arc<Self>, ctx: &Arc<EdgeCtx>, config: &DatabaseConfig) {
        let warming = self.warming.load(Ordering::Acquire) as usize;
        let have = self.idle_count() + warming;
        let want = config.pool.min_idle as usize;
        if have >= want {
            return;
        }
        // After a failed login, wait before the next try.
        let failed = *self.last_failure.lock().expect("pool failure");
        if failed.is_some_and(|t| t.elapsed() < TOP_UP_BACKOFF) {
            return;
        }
        let Some(route) = ctx.routes.lookup(&config.hostname) else {
            return;
        };
        for _ in have..want {
            let Some(slot) = self.reserve(config.pool.size) else {
                return;
            };
            self.warming.fetch_add(1, Ordering::AcqRel);
            let (pool, ctx, route) = (self.clone(), ctx.clone(), route.clone());
            tokio::spawn(async move {
                // The connections min_idle keeps are opened for no one in
                // particular: they carry no identity assertion.
                match pool.connect(&ctx, &route, "", slot).await {
                    Ok(mut conn) => {
                        conn.idle_since = Instant::now();
                        pool.idle.lock().expect("pool idle").push_back(conn);
                        pool.counts.wake.notify_one();
                    }
                    Err(_) => {
                        *pool.last_failure.lock().expect("pool failure") = Some(Instant::now());
                    }
                }
                pool.warming.fetch_sub(1, Ordering::AcqRel);
            });
        }
    }
}

/// Runs `f` on drop.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f()
            }
        }
    }
    Guard(Some(f))
}

/// Every pool of the edge.
#[derive(Default)]
pub(crate) struct Pools {
    pools: Mutex<HashMap<(String, String), Arc<RolePool>>>,
}

impl Pools {
    /// The pool of `role` on `config`'s database, made on first use; its
    /// settings follow `config` (a reload changes them in place).
    pub(crate) fn get(&self, config: &Arc<DatabaseConfig>, role: &str) -> Arc<RolePool> {
        let mut pools = self.pools.lock().expect("pools");
        let pool = pools
            .entry((config.name.clone(), role.to_owned()))
            .or_insert_with(|| {
                if config.cache.is_some() {
                    // Stored for when it exists; said at every new pool so
                    // nobody counts on it.
                    tracing::warn!(database = %config.name, "the result cache is not built yet: queries to {} are not cached (its cache settings are kept for it)", config.name);
                }
                Arc::new(RolePool::new(config.clone(), role))
            })
            .clone();
        let mut current = pool.config.lock().expect("pool config");
        if current.generation != config.generation {
            *current = config.clone();
            pool.counts.wake.notify_waiters();
        }
        drop(current);
        pool
    }

    /// Every pool, sorted by database and role.
    pub(crate) fn all(&self) -> Vec<Arc<RolePool>> {
        let mut v: Vec<_> = self
            .pools
            .lock()
            .expect("pools")
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            (a.config().name.clone(), &a.role).cmp(&(b.config().name.clone(), &b.role))
        });
        v
    }

    /// Keeps the pools in shape until the task is dropped: settings from
    /// the database table, idle and lifetime limits.
    pub(crate) async fn maintain(self: Arc<Self>, ctx: Arc<EdgeCtx>) {
        let mut tick = tokio::time::interval(MAINTENANCE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // A database that keeps connections warm has its pools before
            // its first client.
            let databases = ctx.databases.all();
            for config in &databases {
                if config.pool.min_idle > 0 {
                    for role in config.credentials.keys() {
                        self.get(config, role);
                    }
                }
            }
            let pools: Vec<_> = self
                .pools
                .lock()
                .expect("pools")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for ((name, role), pool) in pools {
                match databases.iter().find(|d| d.name == name) {
                    Some(config) if config.credentials.contains_key(&role) => {
                        self.get(config, &role);
                        pool.prune();
                        pool.top_up(&ctx, config);
                    }
                    // Removed, or its credential is: no new connection,
                    // the idle ones close; clients on one keep it.
                    _ => {
                        let n = {
                            let mut idle = pool.idle.lock().expect("pool idle");
                            let n = idle.len();
                            idle.clear();
                            n
                        };
                        pool.counts.closed.fetch_add(n as u64, Ordering::Relaxed);
                        if pool.counts.clients.load(Ordering::Acquire) == 0
                            && pool.open_count() == 0
                        {
                            self.pools.lock().expect("pools").remove(&(name, role));
                        }
                    }
                }
            }
        }
    }
}

/// One pool as operators see it (`GET /v1/pools`, `warren db pools`,
/// `/metrics`): like PgBouncer's `SHOW POOLS` and `SHOW STATS` together.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct PoolView {
    /// The pooled database's name (`warren db add NAME`).
    pub(crate) database: String,
    /// The role its server connections log in as.
    pub(crate) role: String,
    /// `transaction` or `session`.
    pub(crate) mode: &'static str,
    /// Most server connections.
    pub(crate) pool_size: u32,
    /// Clients connected.
    pub(crate) clients: u32,
    /// Clients holding a server connection now.
    pub(crate) clients_active: u32,
    /// Clients waiting for one.
    pub(crate) clients_waiting: u32,
    /// Server connections open (idle, in use, or logging in).
    pub(crate) servers: u32,
    /// Server connections idle in the pool.
    pub(crate) servers_idle: u32,
    /// Transactions served (a server connection given back).
    pub(crate) transactions: u64,
    /// Server connections handed to clients.
    pub(crate) checkouts: u64,
    /// Mean time a checkout waited, in microseconds.
    pub(crate) avg_wait_us: u64,
    /// Checkouts that waited out the checkout timeout.
    pub(crate) checkout_timeouts: u64,
    /// Logins to the database that failed.
    pub(crate) login_failures: u64,
    /// Server connections closed instead of handed on.
    pub(crate) servers_closed: u64,
    /// Distinct named statements its clients prepared.
    pub(crate) statements: usize,
}

impl RolePool {
    /// What the pool looks like now.
    pub(crate) fn view(&self) -> PoolView {
        let c = &self.counts;
        let config = self.config();
        let checkouts = c.checkouts.load(Ordering::Relaxed);
        PoolView {
            database: config.name.clone(),
            role: self.role.clone(),
            mode: config.mode.as_str(),
            pool_size: config.pool.size,
            clients: c.clients.load(Ordering::Relaxed),
            clients_active: c.active.load(Ordering::Relaxed),
            clients_waiting: c.waiting.load(Ordering::Relaxed),
            servers: self.open_count(),
            servers_idle: self.idle_count() as u32,
            transactions: c.transactions.load(Ordering::Relaxed),
            checkouts,
            avg_wait_us: c.wait_us.load(Ordering::Relaxed) / checkouts.max(1),
            checkout_timeouts: c.timeouts.load(Ordering::Relaxed),
            login_failures: c.login_failures.load(Ordering::Relaxed),
            servers_closed: c.closed.load(Ordering::Relaxed),
            statements: self.statements.lock().expect("statement cache").len(),
        }
    }
}
