//! `postgres://` origins: the connector speaks the start of the PostgreSQL
//! protocol itself, so the link to the database is TLS with the checks
//! `originRequest.sslmode` asks for, whatever the client asked for.
//!
//! Every protocol decision is `warren_pg`'s sans-IO core; this module
//! drives it:
//! 1. **negotiate** (`warren_transport::pg::negotiate` with the
//!    connector's policy): GSSENCRequest is answered `N`; SSLRequest (and
//!    PG17 direct TLS) is answered `S` and the client's TLS is terminated
//!    with a certificate for the route's hostname issued by the edge's CA
//!    ([`CertCache`]) — or `N` when the edge will not issue one; a
//!    plaintext client works too (the tunnel is already encrypted); a
//!    CancelRequest is forwarded ([`db::forward_cancel`]);
//! 2. **dial** the database ([`db::connect`]: SSLRequest, certificate
//!    checks) and forward the client's StartupMessage unchanged;
//! 3. **relay authentication** ([`warren_pg::AuthRelay`]): message by
//!    message, with `-PLUS` mechanisms removed and the channel-binding
//!    rule; SCRAM still proves the password end to end;
//! 4. **splice** with the one copier, the statement log watching the
//!    client's messages when the application logs them ([`log`]); the edge
//!    is told about the session (user, database, application_name,
//!    upstream TLS) for its audit log.
//!
//! Anything that goes wrong before the splice reaches the client as an
//! `ErrorResponse` with a sentence ([`respond`]) and a log line; bad input
//! never takes more than this stream down.

mod db;
mod log;
mod respond;

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use warren_pg::auth::{Action as AuthAction, Side as AuthSide};
use warren_pg::negotiate::{NegotiationError, Policy, StartupReady};
use warren_pg::{AuthError, AuthRelay, FrontendTracker};
use warren_transport::copy::{self, IoRead, IoWrite, Side};
use warren_transport::pg::{Negotiated, PgStream};
use warren_transport::{TunnelConnection, TunnelStream};

use crate::certs::CertCache;
use crate::origin::{Dialer, PgTls};
use db::DbStream;
use respond::PgRefusal;

/// What serving one client connection to a postgres origin needs.
pub(crate) struct PgCtx<'a> {
    /// The route's hostname: the name of the certificate the client sees.
    pub host: &'a str,
    pub client: &'a str,
    pub dialer: &'a Dialer,
    pub certs: &'a CertCache,
    /// The tunnel connection, to ask the edge for a certificate.
    pub conn: &'a TunnelConnection,
    /// The edge's id for the session; empty: do not report.
    pub session: &'a str,
    /// Report every statement.
    pub statement_log: bool,
    /// The client's TLS ended at the edge (its native PostgreSQL
    /// listener): the stream is plaintext here, but libpq is on TLS.
    pub edge_tls: bool,
}

/// Most an authentication-phase read takes at once.
const READ_CHUNK: usize = 8 * 1024;

impl PgCtx<'_> {
    /// Serves one client connection over `tunnel` (the stream is already
    /// answered `Connected`). Each negotiation read has
    /// `originRequest.tlsTimeout` to arrive.
    pub(crate) async fn serve(&self, tunnel: TunnelStream) {
        let Some(pg) = &self.dialer.postgres else {
            return;
        };
        let (host, client) = (self.host, self.client);
        let negotiated = warren_transport::pg::negotiate(
            tunnel,
            Policy::CONNECTOR,
            |_direct| self.tls_config(),
            pg.tls_timeout,
        )
        .await;
        match negotiated {
            Negotiated::Startup(stream, ready) => {
                let client_tls = match stream.tls() {
                    Some(t) => t
                        .protocol_version()
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_default(),
                    None if self.edge_tls => "TLS to the edge".to_owned(),
                    None => "none".to_owned(),
                };
                self.session(stream, ready, pg, &client_tls).await;
            }
            Negotiated::Cancel(_, c) => db::forward_cancel(self.dialer, pg, &c.raw).await,
            Negotiated::Refused(_, NegotiationError::DirectTlsDeclined) => {
                tracing::info!(%host, %client, "direct-TLS PostgreSQL client but no certificate; closing");
            }
            Negotiated::Refused(mut stream, e) => {
                tracing::info!(%host, %client, error = %e, "bad PostgreSQL first message; closing");
                PgRefusal::Negotiation(e).send(&mut stream).await;
            }
            Negotiated::Gone(why) => {
                tracing::info!(%host, %client, "PostgreSQL client gone before its startup: {why}");
            }
        }
    }

    /// A server config with a certificate for the route's hostname from the
    /// edge's CA; `None` (logged) when the edge will not issue one.
    async fn tls_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        match self
            .certs
            .server_config(self.host, self.conn, &[warren_pg::ALPN])
            .await
        {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                tracing::warn!(host = %self.host, "no certificate for the client's TLS, answering N: {e}");
                None
            }
        }
    }

    /// Dials the database for the startup, relays authentication, splices.
    async fn session(
        &self,
        mut client_stream: PgStream<TunnelStream>,
        ready: StartupReady,
        pg: &PgTls,
        client_tls: &str,
    ) {
        let (host, client) = (self.host, self.client);
        let startup = &ready.startup;
        let target = self.dialer.target.to_string();
        let started = Instant::now();
        let mut db = match db::connect(self.dialer, pg, host).await {
            Ok(db) => db,
            Err(e) => {
                tracing::warn!(%host, %client, user = %startup.user(), database = %startup.database(), origin = %target, "PostgreSQL session refused: {e}");
                // The edge's audit entry says why (sent before the client
                // is answered, so it arrives while the session is open).
                self.report(vec![
                    ("pg_user".into(), startup.user().to_owned()),
                    ("pg_database".into(), startup.database().to_owned()),
                    ("upstream".into(), target.clone()),
                    ("error".into(), e.to_string()),
                ])
                .await;
                return PgRefusal::Database(e).send(&mut client_stream).await;
            }
        };
        let fields = log::log_start(host, client, &target, startup, pg, &db, client_tls);
        if !self.session.is_empty() {
            let (conn, session) = (self.conn.clone(), self.session.to_owned());
            tokio::spawn(async move {
                crate::report::send(
                    &conn,
                    warren_proto::control::SessionReport {
                        session,
                        fields,
                        statements: Vec::new(),
                    },
                )
                .await;
            });
        }
        if db.write_all(&ready.raw).await.is_err() {
            return PgRefusal::ClosedDuringStartup { target }
                .send(&mut client_stream)
                .await;
        }
        let client_on_tls = client_tls != "none";
        let (to_client, to_db) = match relay_authentication(
            &mut client_stream,
            &mut db,
            client_on_tls,
            &ready.rest,
        )
        .await
        {
            Ok(rest) => rest,
            Err(e) => {
                tracing::info!(%host, %client, user = %startup.user(), "PostgreSQL session ended during authentication: {e}");
                return PgRefusal::Auth(e).send(&mut client_stream).await;
            }
        };
        // What each side sent past authentication goes first.
        let (client_r, client_w) = tokio::io::split(client_stream);
        let client_side = Side::new(
            IoRead::with_prefix(client_r, &to_db),
            IoWrite::new(client_w),
        );
        let (db_r, db_w) = tokio::io::split(db);
        let db_side = Side::new(IoRead::with_prefix(db_r, &to_client), IoWrite::new(db_w));
        let traffic = copy::Traffic::default();
        let end = if self.statement_log && !self.session.is_empty() {
            let logger = log::StatementLog {
                tracker: FrontendTracker::new(),
                reporter: crate::report::Reporter::start(
                    self.conn.clone(),
                    self.session.to_owned(),
                ),
            };
            copy::splice(
                client_side.inspected(logger),
                db_side,
                &traffic,
                std::future::pending(),
            )
            .await
        } else {
            copy::splice(client_side, db_side, &traffic, std::future::pending()).await
        };
        let reason = match end {
            copy::Spliced::Done { up, down } if up.is_clean() && down.is_clean() => {
                "closed".to_owned()
            }
            other => format!("{other:?}"),
        };
        tracing::info!(%host, %client, user = %startup.user(), database = %startup.database(), bytes_up = traffic.up(), bytes_down = traffic.down(), duration_ms = started.elapsed().as_millis() as u64, end = %reason, "PostgreSQL session ended");
    }

    /// Tells the edge about the session, when it asked for reports.
    async fn report(&self, fields: Vec<(String, String)>) {
        if self.session.is_empty() {
            return;
        }
        crate::report::send(
            self.conn,
            warren_proto::control::SessionReport {
                session: self.session.to_owned(),
                fields,
                statements: Vec::new(),
            },
        )
        .await;
    }
}

/// Drives the authentication relay between the client and the database
/// until AuthenticationOk; returns what each side sent past it (for the
/// client, for the database).
async fn relay_authentication<C>(
    client: &mut C,
    db: &mut DbStream,
    client_on_tls: bool,
    pipelined: &Bytes,
) -> Result<(Bytes, Bytes), AuthError>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut relay = AuthRelay::new(client_on_tls);
    if !pipelined.is_empty() {
        relay.feed_client(pipelined);
    }
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        while let Some(action) = relay.poll() {
            match action {
                AuthAction::ToClient(b) => {
                    if client.write_all(&b).await.is_err() {
                        relay.client_eof();
                    }
                }
                AuthAction::ToDatabase(b) => {
                    if db.write_all(&b).await.is_err() {
                        relay.database_eof();
                    }
                }
                AuthAction::Authenticated {
                    to_client,
                    to_database,
                } => return Ok((to_client, to_database)),
                AuthAction::Failed(e) => return Err(e),
            }
        }
        buf.clear();
        match relay.wants() {
            Some(AuthSide::Database) => match db.read_buf(&mut buf).await {
                Ok(0) | Err(_) => relay.database_eof(),
                Ok(_) => relay.feed_database(&buf),
            },
            Some(AuthSide::Client) => match client.read_buf(&mut buf).await {
                Ok(0) | Err(_) => relay.client_eof(),
                Ok(_) => relay.feed_client(&buf),
            },
            // The relay is over; its last action was returned above.
            None => {
                return Err(AuthError::Closed {
                    side: AuthSide::Client,
                })
            }
        }
    }
}
