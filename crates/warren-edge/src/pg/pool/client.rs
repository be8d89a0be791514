//! One pooled client, from its decided identity to its end: the role its
//! identity maps to, the greeting in place of a login, then its bytes
//! relayed to whichever server connection it holds, checked out at its
//! first message and given back at rest ([`warren_pg::pool::Flow`]).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use warren_pg::pool::{self as core, Cleanup, ClientFramer, Flow, Piece, Statements};
use warren_pg::startup::{CancelKey, Startup};
use warren_pg::TransactionStatus;

use super::{PoolError, RolePool, ServerConn, READ_CHUNK};
use crate::databases::{DatabaseConfig, PoolMode};
use crate::pg::respond::PgRefusal;
use crate::pg::PgListener;
use crate::routes::Route;
use crate::session::{End, Session};

/// The cancel key of the backend a pooled client's query runs on, while
/// it holds one.
pub(crate) type CurrentKey = Arc<Mutex<Option<(u32, CancelKey)>>>;

/// The role for a client whose grant allows `allowed` and who asked for
/// `asked` (its startup's user name): that one if allowed, else the only
/// allowed one.
pub(crate) fn choose_role(allowed: &[String], asked: &str) -> Result<String, RoleRefusal> {
    if allowed.iter().any(|r| r == asked) {
        return Ok(asked.to_owned());
    }
    match allowed {
        [] => Err(RoleRefusal::NoneMapped),
        [only] => Ok(only.clone()),
        _ => Err(RoleRefusal::NotAllowed {
            asked: asked.to_owned(),
            allowed: allowed.to_vec(),
        }),
    }
}

/// Why a client gets no role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoleRefusal {
    /// The deciding policy names no role.
    NoneMapped,
    /// It names several, and not the one asked for.
    NotAllowed { asked: String, allowed: Vec<String> },
}

impl PgListener {
    /// Serves an authorized client of a pooled database, through to its
    /// audit entry.
    pub(crate) async fn pooled<S>(
        &self,
        mut tls: S,
        mut session: Session,
        startup: &Startup,
        rest: Bytes,
        db: Arc<DatabaseConfig>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let ctx = self.ctx.clone();
        let host = session.host.clone();
        let who = session.grant().who.label();
        let role = match choose_role(&session.grant().db_roles(), startup.user()) {
            Ok(r) => r,
            Err(why) => {
                let r = PgRefusal::NoRole {
                    database: db.name.clone(),
                    who,
                    why,
                };
                tracing::info!(%host, "pooled PostgreSQL session refused: {}", r.render().1);
                r.send(&mut tls).await;
                return session
                    .finish(&ctx, End::SetupFailed("no database role for the identity"))
                    .await;
            }
        };
        if !db.credentials.contains_key(&role) {
            let r = PgRefusal::NoCredential {
                database: db.name.clone(),
                role,
            };
            tracing::warn!(%host, "pooled PostgreSQL session refused: {}", r.render().1);
            r.send(&mut tls).await;
            return session
                .finish(&ctx, End::SetupFailed("no credential for the role"))
                .await;
        }
        let settings = match core::client_settings(startup.params()) {
            Ok(s) => s,
            Err(e) => {
                PgRefusal::StartupParam(e).send(&mut tls).await;
                return session
                    .finish(
                        &ctx,
                        End::SetupFailed("a startup parameter the pool cannot carry"),
                    )
                    .await;
            }
        };
        let pool = self.pools.get(&db, &role);
        session.watch(&ctx.access, "/");
        let counts = pool.counts.clone();
        counts.clients.fetch_add(1, Ordering::AcqRel);
        let _client = super::scopeguard(move || {
            counts.clients.fetch_sub(1, Ordering::AcqRel);
        });
        let mut relay = Relay {
            pool: &pool,
            listener: self,
            route: session.route.clone(),
            assertion: session.assertion(&ctx.access).unwrap_or_default(),
            settings,
            session_mode: db.mode == PoolMode::Session,
            server: None,
            current: CurrentKey::default(),
            flow: Flow::new(db.mode == PoolMode::Session),
            rewrite: (db.mode == PoolMode::Transaction).then(Rewrite::default),
            tunnel: None,
        };
        // The first connection tells the server's parameters; a session
        // pool's client keeps its connection for good.
        if pool.params().is_none() || relay.session_mode {
            if let Err(e) = relay.attach().await {
                let r = PgRefusal::Pool(e);
                tracing::warn!(%host, %role, "pooled PostgreSQL session refused: {}", r.render().1);
                r.send(&mut tls).await;
                return session
                    .finish(&ctx, End::SetupFailed("no server connection"))
                    .await;
            }
            if !relay.session_mode {
                relay.detach();
            }
        }
        // The server's reported parameters, as the client's settings
        // make them.
        let mut params = pool.params().unwrap_or_default();
        for (name, value) in &relay.settings {
            if let Some(p) = params
                .iter_mut()
                .find(|(p, _)| p.eq_ignore_ascii_case(name))
            {
                p.1.clone_from(value);
            }
        }
        let (pid, key) = self.cancels.fresh_key();
        let _cancel =
            self.cancels
                .remember_pooled(pid, key.as_bytes(), &host, relay.current.clone());
        let greeting = core::greeting(&params, pid, &key);
        if tls.write_all(&greeting).await.is_err() {
            relay.finish().await;
            return session.finish(&ctx, End::ClientGone).await;
        }
        session.traffic.add_down(greeting.len() as u64);
        tracing::info!(%host, identity = %session.grant().who.label(), %role, mode = ?db.mode, "pooled PostgreSQL session started");

        let end = relay.run(&mut tls, &mut session, rest).await;
        let pins = relay.flow.pins();
        session.detail = format!(
            "role={role} pool={}{}",
            if relay.session_mode {
                "session"
            } else {
                "transaction"
            },
            match pins.since(warren_pg::pool::Pin::SessionMode.into()) {
                p if p.is_empty() => String::new(),
                p => format!(" pinned=({p})"),
            }
        );
        relay.finish().await;
        if let Some(t) = relay.tunnel.take() {
            session.set_tunnel(t);
        }
        let _ = tls.shutdown().await;
        session.finish(&ctx, end).await;
    }
}

/// What came in while the relay waited.
enum Event {
    Revoked,
    Client(std::io::Result<usize>),
    Server(Result<Option<Bytes>, warren_transport::StreamError>),
}

/// A client's hold on the pool.
struct Relay<'a> {
    listener: &'a PgListener,
    pool: &'a Arc<RolePool>,
    route: Route,
    assertion: String,
    /// The client's startup settings, applied on each connection it uses.
    settings: Vec<(String, String)>,
    session_mode: bool,
    server: Option<ServerConn>,
    current: CurrentKey,
    flow: Flow,
    /// Transaction mode: the client's named statements, carried from one
    /// server connection to the next.
    rewrite: Option<Rewrite>,
    /// The tunnel of the last server connection it held, for the audit.
    tunnel: Option<String>,
}

/// A transaction-mode client's statements and the framing they need.
#[derive(Default)]
struct Rewrite {
    framer: ClientFramer,
    statements: Statements,
}

impl Rewrite {
    fn settled(&self) -> bool {
        self.framer.at_boundary() && self.statements.settled()
    }
}

impl Relay<'_> {
    /// Checks a connection out and gives it the client's settings.
    async fn attach(&mut self) -> Result<(), PoolError> {
        let ctx = &self.listener.ctx;
        let mut conn = self
            .pool
            .checkout(ctx, &self.route, &self.assertion)
            .await?;
        if conn.applied != self.settings {
            let mut sql = Vec::new();
            if !conn.applied.is_empty() {
                sql.extend(core::RESET_SETTINGS.map(str::to_owned));
            }
            sql.extend(core::set_statements(&self.settings));
            let sql: Vec<&str> = sql.iter().map(String::as_str).collect();
            if let Err(why) = conn.run(&sql).await {
                self.pool.discard(conn);
                return Err(PoolError::Settings(why));
            }
            conn.applied.clone_from(&self.settings);
        }
        *self.current.lock().expect("current key") = conn.key.clone();
        self.tunnel = Some(self.route.tunnel_name(conn.tunnel_id()));
        self.pool.counts.active.fetch_add(1, Ordering::AcqRel);
        self.server = Some(conn);
        Ok(())
    }

    /// After statements that may have changed the session's settings: reads
    /// them from the server, so they follow the client to its next
    /// connection and the next client of this one gets its own.
    async fn read_settings_back<W: AsyncWrite + Unpin>(
        &mut self,
        client_w: &mut W,
    ) -> Result<(), End> {
        if !self.flow.settings_touched() {
            return Ok(());
        }
        let conn = self.server.as_mut().expect("held while at rest");
        match conn.read_settings().await {
            Ok(settings) => {
                conn.applied.clone_from(&settings);
                self.settings = settings;
                self.flow.settings_read();
                Ok(())
            }
            Err(why) => {
                tracing::info!(role = %self.pool.role, "a client's settings could not be read back: {why}");
                if let Some(conn) = self.take() {
                    self.pool.discard(conn);
                }
                PgRefusal::ServerGone.write(client_w).await;
                Err(End::OriginClosed)
            }
        }
    }

    /// Gives the connection back at rest.
    fn detach(&mut self) {
        if let Some(conn) = self.take() {
            self.pool.give_back(conn);
        }
    }

    fn take(&mut self) -> Option<ServerConn> {
        let conn = self.server.take()?;
        *self.current.lock().expect("current key") = None;
        self.pool.counts.active.fetch_sub(1, Ordering::AcqRel);
        Some(conn)
    }

    /// Relays until the client leaves, access is withdrawn, or a stream
    /// fails; `rest` is what the client sent after its startup.
    async fn run<S>(&mut self, tls: &mut S, session: &mut Session, rest: Bytes) -> End
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (mut client_r, mut client_w) = tokio::io::split(tls);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        buf.extend_from_slice(&rest);
        loop {
            if !buf.is_empty() {
                if let Some(end) = self.client_chunk(&buf, &mut client_w, session).await {
                    return end;
                }
                buf.clear();
            }
            let event = {
                let server = self.server.as_mut();
                let from_server = async move {
                    match server {
                        Some(s) => s.recv.read_chunk(READ_CHUNK).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = session.revoked() => Event::Revoked,
                    r = client_r.read_buf(&mut buf) => Event::Client(r),
                    r = from_server => Event::Server(r),
                }
            };
            match event {
                Event::Revoked => {
                    PgRefusal::Revoked.write(&mut client_w).await;
                    return End::Revoked;
                }
                Event::Client(Ok(0) | Err(_)) => return End::ClientGone,
                Event::Client(Ok(_)) => {}
                Event::Server(Ok(Some(chunk))) => {
                    let conn = self.server.as_mut().expect("read from it");
                    let followed = self.flow.from_server(&chunk).map_err(|e| e.to_string());
                    let chunk = match (&mut self.rewrite, followed) {
                        (Some(r), Ok(())) => {
                            let mut out = BytesMut::with_capacity(chunk.len() + 16);
                            match r
                                .statements
                                .from_server(&chunk, &mut conn.prepared, &mut out)
                            {
                                Ok(()) => Ok(out.freeze()),
                                Err(e) => Err(e.to_string()),
                            }
                        }
                        (None, Ok(())) => Ok(chunk),
                        (_, Err(e)) => Err(e),
                    };
                    let chunk = match chunk {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(host = %session.host, "a pooled server connection sent what cannot be followed: {e}");
                            if let Some(conn) = self.take() {
                                self.pool.discard(conn);
                            }
                            PgRefusal::ServerGone.write(&mut client_w).await;
                            return End::OriginClosed;
                        }
                    };
                    if client_w.write_all(&chunk).await.is_err() {
                        return End::ClientGone;
                    }
                    session.traffic.add_down(chunk.len() as u64);
                    if !self.session_mode
                        && self.flow.releasable()
                        && self.rewrite.as_ref().is_none_or(Rewrite::settled)
                    {
                        if let Err(end) = self.read_settings_back(&mut client_w).await {
                            return end;
                        }
                        self.detach();
                    }
                }
                Event::Server(Ok(None) | Err(_)) => {
                    if let Some(conn) = self.take() {
                        self.pool.discard(conn);
                    }
                    let lost = self.session_mode
                        || self.flow.busy()
                        || self.flow.status() != TransactionStatus::Idle
                        || !self.flow.pins().is_empty();
                    if lost {
                        PgRefusal::ServerGone.write(&mut client_w).await;
                        return End::OriginClosed;
                    }
                    // At rest, nothing was lost: the next query gets
                    // another connection.
                }
            }
        }
    }

    /// One chunk from the client: followed, then forwarded to the
    /// connection it holds (checked out first if it holds none).
    async fn client_chunk<W: AsyncWrite + Unpin>(
        &mut self,
        chunk: &[u8],
        client_w: &mut W,
        session: &Session,
    ) -> Option<End> {
        let step = match self.flow.from_client(chunk) {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(host = %session.host, "a pooled client sent what cannot be followed: {e}");
                PgRefusal::Protocol(e).write(client_w).await;
                return Some(End::ClientGone);
            }
        };
        if step.forward > 0 {
            if self.server.is_none() {
                if let Err(e) = self.attach().await {
                    let r = PgRefusal::Pool(e);
                    tracing::info!(host = %session.host, "a pooled client got no server connection: {}", r.render().1);
                    r.write(client_w).await;
                    return Some(End::SetupFailed("no server connection"));
                }
            }
            let conn = self.server.as_mut().expect("attached above");
            let bytes = &chunk[..step.forward];
            let rewritten;
            let to_server = match &mut self.rewrite {
                None => bytes,
                Some(r) => {
                    let mut out = BytesMut::with_capacity(bytes.len() + 64);
                    let mut answers = BytesMut::new();
                    if let Err(e) = rewrite(
                        r,
                        bytes,
                        &self.pool.statements,
                        &mut conn.prepared,
                        &mut out,
                        &mut answers,
                    ) {
                        tracing::info!(host = %session.host, "a pooled client sent what cannot be rewritten: {e}");
                        PgRefusal::Protocol(warren_pg::pool::FlowError::Client(e))
                            .write(client_w)
                            .await;
                        return Some(End::ClientGone);
                    }
                    if step.drops_prepared {
                        r.statements.dropped_all(&mut conn.prepared);
                    }
                    if !answers.is_empty() && client_w.write_all(&answers).await.is_err() {
                        return Some(End::ClientGone);
                    }
                    rewritten = out;
                    &rewritten[..]
                }
            };
            if conn.send.write_all(to_server).await.is_err() {
                if let Some(conn) = self.take() {
                    self.pool.discard(conn);
                }
                PgRefusal::ServerGone.write(client_w).await;
                return Some(End::OriginClosed);
            }
            session.traffic.add_up(step.forward as u64);
        }
        step.terminated.then_some(End::Closed)
    }

    /// Leaves the connection it holds in a state fit for the next client,
    /// or closes it.
    async fn finish(&mut self) {
        let Some(mut conn) = self.take() else {
            return;
        };
        let cleanup = match &self.rewrite {
            Some(r) if !r.settled() => Cleanup::Close,
            _ => self.flow.cleanup(),
        };
        match cleanup {
            Cleanup::Reuse => self.pool.give_back(conn),
            Cleanup::Reset { rollback, discard } => {
                let mut sql = Vec::new();
                if rollback {
                    sql.push("ROLLBACK");
                }
                if discard {
                    sql.push("DISCARD ALL");
                }
                match conn.run(&sql).await {
                    Ok(()) => {
                        if discard {
                            conn.applied.clear();
                            conn.prepared.clear();
                        }
                        self.pool.give_back(conn);
                    }
                    Err(why) => {
                        tracing::info!(role = %self.pool.role, "a server connection was closed: its reset failed: {why}");
                        self.pool.discard(conn);
                    }
                }
            }
            Cleanup::Close => self.pool.discard(conn),
        }
    }
}

/// One chunk of a transaction-mode client's bytes, rewritten for the
/// server connection it goes to (`out`); Warren's own answers that are
/// due go to `answers`.
fn rewrite(
    r: &mut Rewrite,
    bytes: &[u8],
    cache: &Mutex<warren_pg::pool::StatementCache>,
    prepared: &mut warren_pg::pool::Prepared,
    out: &mut BytesMut,
    answers: &mut BytesMut,
) -> Result<(), warren_pg::MessageError> {
    r.framer.push(bytes);
    while let Some(piece) = r.framer.next_piece()? {
        match piece {
            Piece::Whole(m) => {
                let mut cache = cache.lock().expect("statement cache");
                r.statements.from_client(&m, &mut cache, prepared, out)?;
            }
            Piece::Header { tag, bytes } => {
                r.statements.passing(tag, prepared);
                out.extend_from_slice(&bytes);
            }
            Piece::Body(b) => out.extend_from_slice(&b),
        }
        r.statements.due(answers);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_role_is_the_mapping_whatever_the_client_asks() {
        assert_eq!(
            choose_role(&roles(&["analyst"]), "alice"),
            Ok("analyst".into())
        );
        assert_eq!(
            choose_role(&roles(&["analyst", "app"]), "app"),
            Ok("app".into())
        );
        assert_eq!(
            choose_role(&roles(&["analyst", "app"]), "postgres"),
            Err(RoleRefusal::NotAllowed {
                asked: "postgres".into(),
                allowed: roles(&["analyst", "app"])
            })
        );
        assert_eq!(choose_role(&[], "app"), Err(RoleRefusal::NoneMapped));
    }
}
