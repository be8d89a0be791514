//! The edge's session pipeline: one client request or connection, from the
//! front end that accepted it to its audit entry, in named phases.
//!
//! ```text
//!  front end         identify      authorize        route + open        proxy          finish
//!  (http/, tcp.rs,  ─▶ hostname ─▶ access policy ─▶ tunnel, stream,  ─▶ bodies or  ─▶ one audit
//!   pg/)              → Route      → Grant, audited  typed answer       spliced        entry; guards
//!                                                    (upstream.rs)      bytes, counted dropped
//! ```
//!
//! A [`Session`] is made once by [`Session::identify`] and carries
//! everything later phases need: hostname, route, grant, tunnel, session
//! id, live byte counters, start time. Dropping it — whichever way the
//! connection ended — closes what it registered: the live-session entry
//! that connector reports are merged into, the revocation watch, and (for
//! PostgreSQL) the cancel key.
//!
//! A front end is a thin adapter: it turns its protocol into a hostname and
//! presented credentials, calls the phases in order, and renders failures
//! on its own surface (`pages.rs` for HTTP, `pg/respond.rs` for
//! PostgreSQL). A new front end (SOCKS5, UDP, pooled PostgreSQL) adds a
//! [`Front`] variant and calls the same phases.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderMap;
use warren_proto::stream::{ClientInfo, StreamRequest, TcpRequest};
use warren_store::AuditEntry;
use warren_transport::copy::{self, ChunkRead, ChunkWrite, Ended, Inspect, Side, Spliced, Traffic};

use crate::access::{self, Access, Grant, LiveHandle, Refusal, Watched, Who};
use crate::audit::AuditSink;
use crate::ca::Ca;
use crate::metrics::EdgeMetrics;
use crate::routes::{Route, RouteTable};
use crate::upstream::{Opened, Upstream, UpstreamError};

/// What every front end needs.
pub(crate) struct EdgeCtx {
    pub(crate) routes: RouteTable,
    pub(crate) upstream: Upstream,
    /// Where finished connections are recorded.
    pub(crate) audit: AuditSink,
    /// Access decisions.
    pub(crate) access: Access,
    /// Signs client certificates for the native PostgreSQL listener.
    pub(crate) ca: Arc<Ca>,
    /// The native PostgreSQL listener's port, told to `access pg-cert`.
    pub(crate) postgres_port: Option<u16>,
    /// A spliced connection that carries no byte either way this long is
    /// closed (`--idle-timeout`; `None`: never).
    pub(crate) idle_timeout: Option<Duration>,
    /// Every session is counted here (`metrics.rs`).
    pub(crate) metrics: Arc<EdgeMetrics>,
    /// `--quick-tunnels`: made on request without an admin token.
    pub(crate) quick: Option<Arc<crate::quick::QuickTunnels>>,
    /// Pooled PostgreSQL databases by hostname, with their credentials
    /// (`databases.rs`); reloaded with the routes.
    pub(crate) databases: crate::databases::Databases,
}

/// The front end a session came in through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Front {
    /// An HTTP request (or an upgrade to an HTTP origin).
    Http,
    /// One of the edge's own endpoints that needs a decision
    /// (`/.warren/pg-cert`).
    EdgeEndpoint,
    /// `warren access tcp`: a byte stream over a WebSocket.
    Tcp,
    /// `warren access tcp`: a byte stream as one stream of the client's
    /// QUIC connection (`tcp_quic.rs`).
    TcpQuic,
    /// The native PostgreSQL listener.
    Postgres,
}

impl Front {
    /// The audit entry kind of its access decisions.
    fn decision_kind(self) -> &'static str {
        match self {
            Front::Http => "request",
            Front::EdgeEndpoint | Front::Tcp | Front::TcpQuic | Front::Postgres => "decision",
        }
    }

    /// Whether the session is a connection with an entry of its own at
    /// the end (and reports from the connector).
    fn is_connection(self) -> bool {
        matches!(self, Front::Tcp | Front::TcpQuic | Front::Postgres)
    }

    /// What its connection entries name as the destination.
    fn destination(self) -> &'static str {
        match self {
            Front::Tcp | Front::TcpQuic => "tcp",
            Front::Postgres => "postgres",
            Front::Http | Front::EdgeEndpoint => "",
        }
    }

    /// The scheme the connector is told the client used.
    fn scheme(self) -> &'static str {
        match self {
            Front::Http | Front::EdgeEndpoint => "https",
            Front::Tcp => "wss",
            Front::TcpQuic => "quic",
            // The client is on TLS (to the native listener).
            Front::Postgres => "postgres+tls",
        }
    }
}

/// How a client tried to prove who it is.
pub(crate) enum Presented<'a> {
    /// Credentials in request headers (service token, identity token,
    /// session cookie), for a request to `path`.
    Headers {
        headers: &'a HeaderMap,
        path: &'a str,
    },
    /// A client certificate from `warren access pg-cert`.
    Certificate(Certificate),
}

/// What a client certificate said, as far as the edge could read it.
pub(crate) enum Certificate {
    /// None was presented.
    None,
    /// One the edge issued, still valid.
    Valid(Who),
    /// One the edge issued, expired.
    Expired(Who),
    /// One the edge cannot use.
    Invalid(crate::access::pgcert::CertificateError),
}

/// Why a session could not go on, for the front end to render.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No route for the hostname.
    UnknownHost,
    /// The access decision said no (already audited).
    Refused(Refusal),
    /// The client certificate was expired (already audited).
    CertificateExpired,
    /// The client certificate cannot be used (already audited).
    CertificateInvalid(crate::access::pgcert::CertificateError),
    /// No stream to a connector could be had, or it failed.
    Upstream(UpstreamError),
    /// The audit log cannot be written, and this session would need an
    /// entry (`--audit-on-failure refuse`).
    AuditUnavailable,
}

impl From<UpstreamError> for Failure {
    fn from(e: UpstreamError) -> Self {
        Failure::Upstream(e)
    }
}

/// Resolves once `traffic` has not moved for `timeout` (never for `None`).
async fn idle_for(traffic: &Traffic, timeout: Option<Duration>) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    let moved = || traffic.up() + traffic.down();
    let mut last = (moved(), tokio::time::Instant::now());
    loop {
        let left = timeout.saturating_sub(last.1.elapsed());
        if left.is_zero() {
            return;
        }
        // Check at least a few times per timeout, so a connection closes
        // within a quarter of it past the mark.
        tokio::time::sleep(left.min(timeout / 4).max(Duration::from_millis(10))).await;
        let now = moved();
        if now != last.0 {
            last = (now, tokio::time::Instant::now());
        }
    }
}

/// How a proxied connection ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Both sides finished cleanly.
    Closed,
    /// Access was withdrawn while it was open.
    Revoked,
    /// The client side failed or went away.
    ClientGone,
    /// The origin side stopped taking bytes.
    OriginClosed,
    /// The tunnel stream broke.
    TunnelReset,
    /// Set up failed after the stream was open (named for the log).
    SetupFailed(&'static str),
    /// Nothing moved either way for the idle timeout.
    Idle(Duration),
}

impl End {
    /// Its label in metrics.
    fn outcome(&self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::Revoked => "revoked",
            End::ClientGone => "client_gone",
            End::OriginClosed => "origin_closed",
            End::TunnelReset => "tunnel_reset",
            End::SetupFailed(_) => "setup_failed",
            End::Idle(_) => "idle",
        }
    }

    fn from_splice(s: Spliced) -> End {
        match s {
            Spliced::Stopped => End::Revoked,
            Spliced::Done { up, down } => match (up, down) {
                (Ended::Clean, Ended::Clean) => End::Closed,
                (Ended::ReadFailed(_), _) | (_, Ended::WriteFailed(_)) => End::ClientGone,
                (Ended::WriteFailed(_), _) => End::OriginClosed,
                (_, Ended::ReadFailed(_)) => End::TunnelReset,
            },
        }
    }
}

/// One request or connection at the edge. See the module doc.
pub(crate) struct Session {
    /// The edge's id for it (what connector reports name).
    pub(crate) id: String,
    pub(crate) front: Front,
    pub(crate) host: String,
    pub(crate) source: SocketAddr,
    pub(crate) route: Route,
    pub(crate) started: Instant,
    /// Bytes moved so far, counted as they move.
    pub(crate) traffic: Traffic,
    grant: Option<Grant>,
    tunnel: String,
    live: Option<LiveHandle>,
    registration: Option<Registration>,
    /// What the front end adds to the audit entry's destination (a
    /// pooled session's role, mode and pins).
    pub(crate) detail: String,
    /// A PostgreSQL session's cancel key, once the database sent it.
    pub(crate) cancel_key: Mutex<Option<crate::pg::CancelKeyGuard>>,
    /// This session may write audit entries until it drops; shutdown
    /// waits for it (see [`AuditSink::drain`]).
    _owed: crate::audit::Owed,
    /// See [`EdgeCtx::idle_timeout`].
    idle_timeout: Option<Duration>,
    metrics: Arc<EdgeMetrics>,
    /// How it ended, for metrics: set by the phase that ended it, or by
    /// the front end ([`Session::answered`]).
    outcome: Option<&'static str>,
}

impl Session {
    /// Phase 1, identify: the session for a request to `host` from
    /// `source`, if the hostname is routed.
    pub(crate) fn identify(
        ctx: &EdgeCtx,
        front: Front,
        host: String,
        source: SocketAddr,
    ) -> Result<Session, Failure> {
        let Some(route) = ctx.routes.lookup(&host) else {
            ctx.metrics.count_session(front, "", "unknown_host");
            return Err(Failure::UnknownHost);
        };
        // A connection always gets an entry, and a request to a route
        // that is not public may (its access decision): refused while the
        // audit log cannot be written, rather than served unaudited.
        if (front.is_connection() || !route.public) && !ctx.audit.admits() {
            ctx.metrics
                .count_session(front, &route.name, "audit_unavailable");
            return Err(Failure::AuditUnavailable);
        }
        ctx.metrics.session_opened(front);
        Ok(Session {
            id: uuid::Uuid::new_v4().simple().to_string(),
            front,
            host,
            source,
            route,
            started: Instant::now(),
            traffic: Traffic::default(),
            grant: None,
            tunnel: String::new(),
            live: None,
            registration: None,
            detail: String::new(),
            cancel_key: Mutex::new(None),
            _owed: ctx.audit.owe(),
            idle_timeout: ctx.idle_timeout,
            metrics: ctx.metrics.clone(),
            outcome: None,
        })
    }

    /// Records how an HTTP request was answered (its status class is the
    /// session's outcome in metrics).
    pub(crate) fn answered(&mut self, status: u16) {
        self.outcome = Some(warren_transport::metrics::status_class(status));
    }

    /// A byte counter of this session's route, for bodies counted as they
    /// move (`direction`: `to_origin` or `to_client`).
    pub(crate) fn bytes_counter(
        &self,
        direction: &'static str,
    ) -> prometheus_client::metrics::counter::Counter {
        self.metrics
            .bytes_counter(self.front, &self.route.name, direction)
    }

    /// The grant, once [`Session::authorize`] allowed the session.
    pub(crate) fn grant(&self) -> &Grant {
        self.grant
            .as_ref()
            .expect("phases run in order: authorize before later phases")
    }

    /// Phase 2, authorize: the access decision for what the client
    /// presented, audited (allowed decisions only when an application
    /// made them; a public route is not an access decision).
    pub(crate) async fn authorize(
        &mut self,
        access: &Access,
        presented: Presented<'_>,
    ) -> Result<&Grant, Failure> {
        let kind = self.front.decision_kind();
        let (decided, destination) = match presented {
            Presented::Headers { headers, path } => (
                access.authorize(&access::Request {
                    headers,
                    host: &self.host,
                    path,
                    source: self.source,
                    public_route: self.route.public,
                }),
                path.to_owned(),
            ),
            Presented::Certificate(cert) => {
                let who = match cert {
                    Certificate::None => None,
                    Certificate::Valid(who) => Some(who),
                    Certificate::Expired(who) => {
                        self.outcome = Some("certificate_expired");
                        self.audit_certificate_refusal(
                            access,
                            &who.label(),
                            "client certificate expired",
                        )
                        .await;
                        return Err(Failure::CertificateExpired);
                    }
                    Certificate::Invalid(why) => {
                        self.outcome = Some("certificate_invalid");
                        self.audit_certificate_refusal(access, "", &why.to_string())
                            .await;
                        return Err(Failure::CertificateInvalid(why));
                    }
                };
                (
                    access.authorize_certificate(&self.host, self.source, self.route.public, who),
                    "postgres".to_owned(),
                )
            }
        };
        let entry =
            |identity, app: Option<&Arc<warren_store::AppRow>>, decision: &str, rule| AuditEntry {
                kind: kind.into(),
                identity,
                source: self.source.to_string(),
                app: app.map(|a| a.name.clone()).unwrap_or_default(),
                hostname: self.host.clone(),
                destination: destination.clone(),
                decision: decision.into(),
                rule,
                ..Default::default()
            };
        match decided {
            Ok(grant) => {
                if let Some(app) = &grant.app {
                    self.metrics.decision(&app.name, "allow");
                    access
                        .audit(entry(
                            grant.who.label(),
                            grant.app.as_ref(),
                            "allow",
                            grant.reason(),
                        ))
                        .await;
                }
                Ok(self.grant.insert(grant))
            }
            Err(refusal) => {
                let (decision, identity, rule) = refusal.audit_parts();
                self.metrics
                    .decision(refusal.app().map_or("", |a| a.name.as_str()), decision);
                self.outcome = Some("denied");
                access
                    .audit(entry(identity, refusal.app(), decision, rule))
                    .await;
                Err(Failure::Refused(refusal))
            }
        }
    }

    async fn audit_certificate_refusal(&self, access: &Access, identity: &str, why: &str) {
        access
            .audit(AuditEntry {
                kind: "decision".into(),
                identity: identity.to_owned(),
                source: self.source.to_string(),
                hostname: self.host.clone(),
                destination: "postgres".into(),
                decision: "deny".into(),
                rule: why.to_owned(),
                ..Default::default()
            })
            .await;
    }

    /// The signed identity for the origin, if the grant has one.
    pub(crate) fn assertion(&self, access: &Access) -> Option<String> {
        self.grant().assertion(&access.snapshot().keys, &self.host)
    }

    /// The header of a byte stream to the route's TCP service.
    pub(crate) fn tcp_request(&self, access: &Access) -> StreamRequest {
        let grant = self.grant();
        StreamRequest::Tcp(TcpRequest {
            host: self.host.clone(),
            client: self.client_info(),
            session: self.id.clone(),
            statement_log: grant.app.as_ref().is_some_and(|a| a.statement_log),
            assertion: self.assertion(access).unwrap_or_default(),
        })
    }

    /// Who the connector is told the client is.
    pub(crate) fn client_info(&self) -> ClientInfo {
        ClientInfo {
            addr: self.source.to_string(),
            scheme: self.front.scheme().to_owned(),
        }
    }

    /// Phase 3, route + open: a stream to a connector of the route, its
    /// answer, and (for connections) the registrations that keep it
    /// honest: the session the connector reports into, and the revocation
    /// watch.
    pub(crate) async fn open(
        &mut self,
        ctx: &EdgeCtx,
        header: &StreamRequest,
        replay_safe: bool,
    ) -> Result<Opened, Failure> {
        let opened = match ctx
            .upstream
            .exchange(&self.route, header, replay_safe)
            .await
        {
            Ok(opened) => opened,
            Err(e) => {
                self.outcome = Some("upstream_error");
                return Err(e.into());
            }
        };
        self.tunnel = self.route.tunnel_name(&opened.guard.conn().tunnel_id);
        if self.front.is_connection() {
            let grant = self.grant();
            ctx.access.sessions().open(
                &self.id,
                access::sessions::SessionInfo {
                    identity: grant.who.label(),
                    app: grant.app_name(),
                    host: self.host.clone(),
                    source: self.source.to_string(),
                    tunnel: self.tunnel.clone(),
                },
            );
            self.registration = Some(Registration {
                access: ctx.access.clone(),
                id: self.id.clone(),
            });
            let path = match self.front {
                Front::Tcp | Front::TcpQuic => crate::tcp::TCP_PATH,
                _ => "/",
            };
            self.watch(&ctx.access, path);
        }
        Ok(opened)
    }

    /// Names the tunnel the session's bytes went through, for a front end
    /// that does not [`open`](Self::open) its own stream (the pool).
    pub(crate) fn set_tunnel(&mut self, tunnel: String) {
        self.tunnel = tunnel;
    }

    /// Keeps the session only as long as its grant holds (for a request
    /// to `path`): after this, [`Session::revoked`] resolves when access
    /// is withdrawn.
    pub(crate) fn watch(&mut self, access: &Access, path: &str) {
        let grant = self.grant();
        self.live = Some(access.watch(Watched {
            who: grant.who.clone(),
            host: self.host.clone(),
            path: path.to_owned(),
            source: self.source,
        }));
    }

    /// Resolves when access to the session is withdrawn (never, without a
    /// watch).
    pub(crate) async fn revoked(&self) {
        match &self.live {
            Some(l) => l.revoked().await,
            None => std::future::pending().await,
        }
    }

    /// Phase 4, proxy: bytes both ways between the client and the tunnel
    /// stream, counted, until both ends finish, access is withdrawn, or
    /// nothing moved for the idle timeout.
    pub(crate) async fn splice<CR, CW, CI, TR, TW, TI>(
        &self,
        client: Side<CR, CW, CI>,
        tunnel: Side<TR, TW, TI>,
    ) -> End
    where
        CR: ChunkRead,
        CW: ChunkWrite,
        CI: Inspect,
        TR: ChunkRead,
        TW: ChunkWrite,
        TI: Inspect,
    {
        let idle = std::sync::atomic::AtomicBool::new(false);
        let stop = async {
            tokio::select! {
                () = self.revoked() => {}
                () = idle_for(&self.traffic, self.idle_timeout) => idle.store(true, std::sync::atomic::Ordering::Relaxed),
            }
        };
        let spliced = copy::splice(client, tunnel, &self.traffic, stop).await;
        match (spliced, idle.load(std::sync::atomic::Ordering::Relaxed)) {
            (Spliced::Stopped, true) => End::Idle(self.idle_timeout.unwrap_or_default()),
            (spliced, _) => End::from_splice(spliced),
        }
    }

    /// Phase 5, finish: the connection's one audit entry (what it carried,
    /// for how long, why it ended, and what the connector reported about
    /// it); then everything the session registered is closed as it drops.
    pub(crate) async fn finish(mut self, ctx: &EdgeCtx, end: End) {
        self.outcome = Some(end.outcome());
        if !self.front.is_connection() {
            return;
        }
        let reported = self
            .registration
            .take()
            .map(Registration::close)
            .unwrap_or_default();
        let end_reason = match (&end, self.live.as_ref().and_then(LiveHandle::reason)) {
            (_, Some(why)) => format!("access revoked: {why}"),
            (End::Revoked, None) => "access revoked".to_owned(),
            (End::Closed, None) => "closed".to_owned(),
            (End::ClientGone, None) => "the client went away".to_owned(),
            (End::OriginClosed, None) => "the origin side closed".to_owned(),
            (End::TunnelReset, None) => "the tunnel stream was reset".to_owned(),
            (End::SetupFailed(what), None) => (*what).to_owned(),
            (End::Idle(after), None) => format!("idle for {} s", after.as_secs()),
        };
        let destination = [self.front.destination(), &self.detail, &reported]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let grant = self.grant();
        let entry = AuditEntry {
            kind: "connection".into(),
            identity: grant.who.label(),
            source: self.source.to_string(),
            app: grant.app_name(),
            hostname: self.host.clone(),
            tunnel: self.tunnel.clone(),
            destination,
            decision: "allow".into(),
            rule: grant.reason(),
            bytes_up: i64::try_from(self.traffic.up()).unwrap_or(i64::MAX),
            bytes_down: i64::try_from(self.traffic.down()).unwrap_or(i64::MAX),
            duration_ms: i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            end_reason,
            ..Default::default()
        };
        // Closed before the entry is queued: the queue may wait.
        drop(self.cancel_key.lock().expect("cancel key").take());
        self.live = None;
        ctx.audit.record(entry).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.metrics.session_closed(
            self.front,
            &self.route.name,
            // A session no phase ended went away before its answer.
            self.outcome.unwrap_or("client_gone"),
            self.started.elapsed(),
            (self.traffic.up(), self.traffic.down()),
        );
    }
}

/// A session registered with [`access::sessions::Sessions`]; closed once,
/// by [`Registration::close`] or on drop.
struct Registration {
    access: Access,
    id: String,
}

impl Registration {
    /// Ends the registration; what the connector reported about the
    /// session.
    fn close(mut self) -> String {
        self.access.sessions().close(&std::mem::take(&mut self.id))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.id.is_empty() {
            self.access.sessions().close(&self.id);
        }
    }
}
