//! The native PostgreSQL listener (`--listen-postgres`), a front end of
//! the session pipeline (`session.rs`): psql connects to the edge itself
//! with standard libpq options.
//!
//! 1. **negotiate**: `SSLRequest` is answered `S` (PostgreSQL 17 direct
//!    TLS with ALPN `postgresql` is accepted too), `GSSENCRequest` `N`; a
//!    plaintext startup is refused with a sentence; a plaintext
//!    `CancelRequest` (what psql ≤ 16 sends) is routed by its key
//!    ([`cancel`]).
//! 2. TLS with a certificate for the SNI hostname from the edge's CA; the
//!    client may present a certificate from `warren access pg-cert`
//!    ([`verifier`], [`crate::access::pgcert`]), which carries its identity.
//! 3. The startup message inside TLS; then **identify** (the SNI
//!    hostname), **authorize** on the certificate's identity, **open** a
//!    `Tcp` stream to the route's connector (which speaks PostgreSQL to the
//!    database: verify-full TLS, authentication passed through), **proxy**
//!    (noting the `BackendKeyData` so a later cancel finds its way) and
//!    **finish**.
//!
//! Every refusal is an ErrorResponse psql prints ([`respond`]).

pub(crate) mod cancel;
pub(crate) mod pool;
pub(crate) mod respond;
pub(crate) mod verifier;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use warren_pg::negotiate::Policy;
use warren_pg::track::BackendEvent;
use warren_pg::{BackendTracker, NegotiationError};
use warren_proto::stream::{ClientInfo, StreamRequest, StreamResponse, TcpRequest};
use warren_transport::copy::{self, Inspect};
use warren_transport::pg::Negotiated;

use crate::session::{Certificate, EdgeCtx, End, Front, Presented, Session};
use crate::upstream::Opened;
pub(crate) use cancel::{CancelKeyGuard, CancelKeys};
use respond::PgRefusal;
pub(crate) use verifier::OptionalClientCert;
pub use verifier::VerifierError;

/// What the listener needs.
pub(crate) struct PgListener {
    pub(crate) ctx: Arc<EdgeCtx>,
    pub(crate) tls: Arc<rustls::ServerConfig>,
    pub(crate) startup_timeout: Duration,
    cancels: CancelKeys,
    /// Server connections of pooled databases (`warren db add`).
    pub(crate) pools: Arc<pool::Pools>,
}

impl PgListener {
    pub(crate) fn new(
        ctx: Arc<EdgeCtx>,
        tls: Arc<rustls::ServerConfig>,
        startup_timeout: Duration,
        pools: Arc<pool::Pools>,
    ) -> Arc<Self> {
        Arc::new(PgListener {
            ctx,
            tls,
            startup_timeout,
            cancels: CancelKeys::default(),
            pools,
        })
    }
}

/// Accepts PostgreSQL clients until the task is dropped.
pub(crate) async fn serve(mut listener: crate::accept::Acceptor, pg: Arc<PgListener>) {
    let maintenance = tokio::spawn(pg.pools.clone().maintain(pg.ctx.clone()));
    let _maintenance = AbortOnDrop(maintenance);
    loop {
        let accepted = listener.next().await;
        let _ = accepted.tcp.set_nodelay(true);
        let pg = pg.clone();
        tokio::spawn(async move {
            let _slot = accepted.slot;
            pg.handle(accepted.tcp, accepted.peer, accepted.unauthenticated)
                .await
        });
    }
}

impl PgListener {
    /// A fresh connection: negotiation (the sans-IO core, driven by
    /// `warren_transport::pg`), then the session.
    /// `unauthenticated` counts the client against its address until its
    /// startup has arrived.
    async fn handle(
        self: Arc<Self>,
        tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        unauthenticated: crate::accept::Unauthenticated,
    ) {
        let tls = self.tls.clone();
        let negotiated = warren_transport::pg::negotiate(
            tcp,
            Policy::EDGE,
            |_direct| {
                let tls = tls.clone();
                async move { Some(tls) }
            },
            self.startup_timeout,
        )
        .await;
        drop(unauthenticated);
        let (mut stream, ready) = match negotiated {
            Negotiated::Startup(stream, ready) => (stream, ready),
            Negotiated::Cancel(_, c) => return self.cancel(c.request, c.raw, peer).await,
            Negotiated::Refused(mut stream, e) => {
                tracing::info!(%peer, error = %e, "PostgreSQL client refused at negotiation");
                let refusal = match e {
                    NegotiationError::PlaintextRefused => PgRefusal::PlaintextStartup,
                    other => PgRefusal::Negotiation(other),
                };
                return refusal.send(&mut stream).await;
            }
            Negotiated::Gone(why) => {
                tracing::debug!(%peer, "PostgreSQL client gone during negotiation: {why}");
                return;
            }
        };
        let (sni, cert) = match stream.tls() {
            Some(c) => (
                c.server_name().map(|s| s.to_ascii_lowercase()),
                c.peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(|c| c.as_ref().to_vec()),
            ),
            None => (None, None),
        };
        let Some(host) = sni else {
            return PgRefusal::NoServerName.send(&mut stream).await;
        };
        let certificate = match cert.as_deref().map(crate::access::pgcert::read) {
            None => Certificate::None,
            Some(Ok(p)) if p.not_after <= crate::audit::now() => Certificate::Expired(p.who),
            Some(Ok(p)) => Certificate::Valid(p.who),
            Some(Err(e)) => Certificate::Invalid(e),
        };
        let had_cert = !matches!(certificate, Certificate::None);
        let refuse = |host: &str, failure| PgRefusal::Session {
            host: host.to_owned(),
            failure,
            had_cert,
        };
        let ctx = &self.ctx;
        let mut session = match Session::identify(ctx, Front::Postgres, host.clone(), peer) {
            Ok(s) => s,
            Err(f) => return refuse(&host, f).send(&mut stream).await,
        };
        if let Err(f) = session
            .authorize(&ctx.access, Presented::Certificate(certificate))
            .await
        {
            let r = refuse(&host, f);
            tracing::info!(%peer, %host, "PostgreSQL connection refused: {}", r.render().1);
            return r.send(&mut stream).await;
        }
        let startup = &ready.startup;
        tracing::info!(%peer, %host, identity = %session.grant().who.label(), user = %startup.user(), database = %startup.database(), "PostgreSQL session allowed at the edge");
        match ctx.databases.for_host(&host) {
            Some(db) if db.auth == crate::databases::AuthMode::Identity => {
                self.pooled(stream, session, startup, ready.rest.clone(), db)
                    .await
            }
            Some(db) => {
                tracing::debug!(%host, auth = db.auth.as_str(), "a passthrough database: its session is spliced, not pooled");
                self.session(stream, session, ready.raw, ready.rest).await
            }
            None => self.session(stream, session, ready.raw, ready.rest).await,
        }
    }

    /// Open, proxy and finish for an allowed session.
    async fn session<S>(&self, mut tls: S, mut session: Session, startup: Bytes, rest: Bytes)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let ctx = &self.ctx;
        let host = session.host.clone();
        let header = session.tcp_request(&ctx.access);
        let Opened {
            answer,
            mut send,
            recv,
            guard,
        } = match session.open(ctx, &header, true).await {
            Ok(o) => o,
            Err(f) => {
                return PgRefusal::Session {
                    host,
                    failure: f,
                    had_cert: true,
                }
                .send(&mut tls)
                .await
            }
        };
        let _guard = guard;
        if answer != StreamResponse::Connected {
            PgRefusal::NotTcp { host }.send(&mut tls).await;
            return session
                .finish(ctx, End::SetupFailed("not a TCP service"))
                .await;
        }
        if send.write_all(&startup).await.is_err() {
            PgRefusal::TunnelClosedDuringStartup.send(&mut tls).await;
            return session
                .finish(ctx, End::SetupFailed("the tunnel closed during startup"))
                .await;
        }
        session.traffic.add_up(startup.len() as u64);
        let notes = BackendNotes {
            tracker: BackendTracker::new(),
            session: &session,
            cancels: &self.cancels,
        };
        // Bytes the client sent after its startup go first.
        let (client_r, client_w) = tokio::io::split(tls);
        let client = copy::Side::new(
            copy::IoRead::with_prefix(client_r, &rest),
            copy::IoWrite::new(client_w),
        );
        let tunnel = copy::stream_side(send, recv).inspected(notes);
        let end = session.splice(client, tunnel).await;
        session.finish(ctx, end).await;
    }

    /// Sends a `CancelRequest` to the connector of the session it names.
    async fn cancel(&self, c: warren_pg::CancelRequest, _raw: Bytes, peer: SocketAddr) {
        let Some(target) = self.cancels.target_of(c.pid, &c.key) else {
            tracing::info!(%peer, "a PostgreSQL cancel request for an unknown or idle session was dropped");
            return;
        };
        let host = target.host;
        let raw = warren_pg::encode_cancel(target.pid, &target.key);
        let Some(route) = self.ctx.routes.lookup(&host) else {
            return;
        };
        let header = StreamRequest::Tcp(TcpRequest {
            host: host.clone(),
            client: ClientInfo {
                addr: peer.to_string(),
                scheme: "postgres".into(),
            },
            session: String::new(),
            statement_log: false,
            assertion: String::new(),
        });
        match self.ctx.upstream.exchange(&route, &header, true).await {
            Ok(Opened {
                answer: StreamResponse::Connected,
                mut send,
                mut recv,
                ..
            }) => {
                let _ = send.write_all(&raw).await;
                let _ = send.finish();
                // The connector closes once it has forwarded it.
                let _ = tokio::time::timeout(Duration::from_secs(5), recv.read_to_end(64)).await;
                tracing::info!(%host, "PostgreSQL cancel request forwarded");
            }
            Ok(_) | Err(_) => {
                tracing::info!(%host, "a PostgreSQL cancel request could not be forwarded")
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches what the database sends for the session's cancel key
/// (`BackendKeyData`).
struct BackendNotes<'a> {
    tracker: BackendTracker,
    session: &'a Session,
    cancels: &'a CancelKeys,
}

impl Inspect for BackendNotes<'_> {
    async fn inspect(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if self.tracker.transaction_status().is_some() || self.tracker.is_lost() {
            // Ready for queries: the key, if any, came before.
            return Ok(());
        }
        for event in self.tracker.observe(chunk) {
            match event {
                Ok(BackendEvent::KeyData { pid, key }) => {
                    let guard = self
                        .cancels
                        .remember(pid, key.as_bytes(), &self.session.host);
                    *self.session.cancel_key.lock().expect("cancel key") = Some(guard);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "the database's messages could not be followed")
                }
            }
        }
        Ok(())
    }
}
