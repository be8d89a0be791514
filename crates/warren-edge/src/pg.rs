//! The native PostgreSQL listener (`--listen-postgres`): psql connects to
//! the edge itself with standard libpq options.
//!
//! 1. The first message: `SSLRequest` is answered `S` (PostgreSQL 17 direct
//!    TLS with ALPN `postgresql` is accepted too), `GSSENCRequest` `N`; a
//!    plaintext startup is refused with a sentence; a plaintext
//!    `CancelRequest` (what psql ≤ 16 sends) is routed by its key.
//! 2. TLS with a certificate for the SNI hostname from the edge's CA; the
//!    client may present a certificate from `warren access pg-cert`
//!    ([`crate::access::pgcert`]), which carries its identity.
//! 3. The startup message inside TLS; the hostname's access application
//!    decides on the certificate's identity ([`Access::authorize_certificate`]);
//!    a refusal is an `ErrorResponse` psql prints, and is audited.
//! 4. A `Tcp` stream to the route's connector, which speaks PostgreSQL to
//!    the database (`postgres://` rule: verify-full TLS, authentication
//!    passed through untouched). The edge relays bytes, noting the
//!    `BackendKeyData` so a later cancel finds its way, and keeps the
//!    connection only as long as its grant holds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use warren_pg::message::sqlstate;
use warren_pg::{error_response, FirstMessage, Severity};
use warren_proto::stream::{ClientInfo, StreamRequest, StreamResponse, TcpRequest};
use warren_store::AuditEntry;
use warren_transport::splice::QuicStream;

use crate::access::{self, Refusal, Watched};
use crate::proxy::{exchange, ProxyCtx};

/// Encryption requests accepted before the startup.
const MAX_NEGOTIATIONS: usize = 2;
/// Most cancel keys remembered (one per open session).
const MAX_CANCEL_KEYS: usize = 100_000;
/// Largest server message read while looking for `BackendKeyData`.
const MAX_STARTUP_MESSAGE: usize = 1024 * 1024;

/// What the listener needs.
pub struct PgListener {
    pub proxy: Arc<ProxyCtx>,
    pub tls: Arc<rustls::ServerConfig>,
    pub handshake_timeout: Duration,
    /// `(pid, key)` of open sessions → their hostname.
    cancels: Mutex<HashMap<(u32, Vec<u8>), String>>,
}

impl PgListener {
    pub fn new(
        proxy: Arc<ProxyCtx>,
        tls: Arc<rustls::ServerConfig>,
        handshake_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(PgListener {
            proxy,
            tls,
            handshake_timeout,
            cancels: Mutex::new(HashMap::new()),
        })
    }
}

/// A client-certificate verifier that accepts connections without a
/// certificate (so the refusal can be an `ErrorResponse`) and certificates
/// that chain to the edge's CA but have expired (checked, and refused with
/// a sentence, after the handshake).
#[derive(Debug)]
pub struct OptionalClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl OptionalClientCert {
    pub fn new(ca: &rustls::pki_types::CertificateDer<'static>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).map_err(|e| e.to_string())?;
        let inner = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            warren_transport::tls::provider(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| e.to_string())?;
        Ok(OptionalClientCert { inner })
    }
}

impl ClientCertVerifier for OptionalClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        now: rustls::pki_types::UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. },
            )) => {
                // Only if it is otherwise valid: verify at its last second.
                let not_after = x509_parser::parse_x509_certificate(end_entity)
                    .map(|(_, c)| c.validity().not_after.timestamp())
                    .map_err(|_| {
                        rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
                    })?;
                let then = rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
                    u64::try_from(not_after - 1).unwrap_or(0),
                ));
                self.inner
                    .verify_client_cert(end_entity, intermediates, then)
            }
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts PostgreSQL clients until the task is dropped.
pub async fn serve(listener: TcpListener, ctx: Arc<PgListener>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed on the PostgreSQL listener");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let ctx = ctx.clone();
        tokio::spawn(async move { ctx.handle(tcp, peer).await });
    }
}

/// Copies until end of stream, adding what moved to `n` as it goes.
async fn copy_counting<R, W>(r: &mut R, w: &mut W, n: &mut u64) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let k = r.read(&mut buf).await?;
        if k == 0 {
            return Ok(());
        }
        w.write_all(&buf[..k]).await?;
        *n += k as u64;
    }
}

async fn refuse<S: AsyncWrite + Unpin>(s: &mut S, code: &str, message: &str) {
    let m = error_response(Severity::Fatal, code, message);
    let _ = s.write_all(&m.encode()).await;
    let _ = s.shutdown().await;
}

impl PgListener {
    async fn handle(self: Arc<Self>, mut tcp: tokio::net::TcpStream, peer: SocketAddr) {
        let mut negotiations = 0;
        loop {
            let first = match tokio::time::timeout(
                self.handshake_timeout,
                warren_pg::read_first(&mut tcp, warren_pg::MAX_STARTUP_LEN),
            )
            .await
            {
                Ok(Ok(f)) => f,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "bad PostgreSQL first message at the edge; closing");
                    return refuse(&mut tcp, sqlstate::PROTOCOL_VIOLATION, &e.to_string()).await;
                }
                Err(_) => return,
            };
            match first.message {
                FirstMessage::SslRequest if negotiations < MAX_NEGOTIATIONS => {
                    if tcp.write_all(&[warren_pg::SSL_ACCEPTED]).await.is_err() {
                        return;
                    }
                    return self.tls(tcp, peer).await;
                }
                FirstMessage::GssEncRequest if negotiations < MAX_NEGOTIATIONS => {
                    negotiations += 1;
                    if tcp.write_all(&[warren_pg::ENCRYPTION_REFUSED]).await.is_err() {
                        return;
                    }
                }
                FirstMessage::DirectTls => {
                    let replay = warren_pg::Rewind::new(first.raw, tcp);
                    return self.tls(replay, peer).await;
                }
                FirstMessage::Cancel(c) => return self.cancel(c, first.raw, peer).await,
                FirstMessage::Startup(_) => {
                    return refuse(
                        &mut tcp,
                        sqlstate::INVALID_AUTHORIZATION,
                        "the Warren edge accepts PostgreSQL connections only over TLS; connect with sslmode=verify-full and the certificate from `warren access pg-cert HOST`",
                    )
                    .await
                }
                FirstMessage::GssEncRequest | FirstMessage::SslRequest => {
                    return refuse(
                        &mut tcp,
                        sqlstate::PROTOCOL_VIOLATION,
                        "too many encryption requests before the startup message",
                    )
                    .await
                }
            }
        }
    }

    async fn tls<S>(self: Arc<Self>, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let accept = tokio_rustls::TlsAcceptor::from(self.tls.clone()).accept(stream);
        let mut tls = match tokio::time::timeout(self.handshake_timeout, accept).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "PostgreSQL client TLS handshake failed");
                return;
            }
            Err(_) => return,
        };
        let (sni, cert) = {
            let c = tls.get_ref().1;
            (
                c.server_name().map(|s| s.to_ascii_lowercase()),
                c.peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(|c| c.as_ref().to_vec()),
            )
        };
        let Some(host) = sni else {
            return refuse(
                &mut tls,
                sqlstate::INVALID_AUTHORIZATION,
                "the connection names no hostname (TLS SNI); connect with host=HOSTNAME (and hostaddr=IP if it does not resolve)",
            )
            .await;
        };
        let first = match warren_pg::read_first(&mut tls, warren_pg::MAX_STARTUP_LEN).await {
            Ok(f) => f,
            Err(e) => {
                tracing::info!(%peer, error = %e, "bad PostgreSQL startup inside TLS at the edge");
                return refuse(&mut tls, sqlstate::PROTOCOL_VIOLATION, &e.to_string()).await;
            }
        };
        let startup = match first.message {
            FirstMessage::Startup(s) => s,
            FirstMessage::Cancel(c) => return self.cancel(c, first.raw, peer).await,
            other => {
                let m = format!(
                    "expected a startup message inside TLS, got {}",
                    other.name()
                );
                return refuse(&mut tls, sqlstate::PROTOCOL_VIOLATION, &m).await;
            }
        };
        let Some(route) = self.proxy.routes.lookup(&host) else {
            let m = format!("there is no tunnel route for {host}; an administrator can add one with `warren tunnel route dns TUNNEL {host}`");
            return refuse(&mut tls, sqlstate::INVALID_AUTHORIZATION, &m).await;
        };
        let access = &self.proxy.access;
        let now = crate::audit::now();
        let presented = match cert.as_deref().map(access::pgcert::read) {
            None => None,
            Some(Ok(p)) if p.not_after <= now => {
                let m = format!("the client certificate expired; get a new one with `warren access pg-cert {host}`");
                self.audit_refusal(&host, peer, &p.who.label(), "client certificate expired")
                    .await;
                return refuse(&mut tls, sqlstate::INVALID_AUTHORIZATION, &m).await;
            }
            Some(Ok(p)) => Some(p.who),
            Some(Err(e)) => {
                self.audit_refusal(&host, peer, "", &e).await;
                return refuse(&mut tls, sqlstate::INVALID_AUTHORIZATION, &e).await;
            }
        };
        let had_cert = presented.is_some();
        let grant = match access.authorize_certificate(&host, peer, route.public, presented) {
            Ok(g) => g,
            Err(refusal) => {
                let (decision, identity, rule) = refusal.audit_parts();
                access
                    .audit(AuditEntry {
                        kind: "decision".into(),
                        identity: identity.clone(),
                        source: peer.to_string(),
                        app: refusal.app().map(|a| a.name.clone()).unwrap_or_default(),
                        hostname: host.clone(),
                        destination: "postgres".into(),
                        decision: decision.into(),
                        rule,
                        ..Default::default()
                    })
                    .await;
                let m = match &refusal {
                    Refusal::NeedsLogin { .. } | Refusal::Denied { .. } if !had_cert => format!(
                        "{host} needs a client certificate: run `warren access pg-cert {host}` and connect with the sslcert and sslkey it prints"
                    ),
                    Refusal::Denied { app, .. } => format!(
                        "access to {} was denied for {identity}",
                        app.name
                    ),
                    Refusal::NeedsLogin { .. } => format!(
                        "the client certificate's session or service token is no longer valid; sign in again and run `warren access pg-cert {host}`"
                    ),
                    other => other.failure(&host).sentence(),
                };
                tracing::info!(%peer, %host, %identity, "PostgreSQL connection refused: {m}");
                return refuse(&mut tls, sqlstate::INVALID_AUTHORIZATION, &m).await;
            }
        };
        access
            .audit(AuditEntry {
                kind: "decision".into(),
                identity: grant.who.label(),
                source: peer.to_string(),
                app: grant.app_name(),
                hostname: host.clone(),
                destination: "postgres".into(),
                decision: "allow".into(),
                rule: grant.reason(),
                ..Default::default()
            })
            .await;
        tracing::info!(%peer, %host, identity = %grant.who.label(), user = %startup.user(), database = %startup.database(), "PostgreSQL session allowed at the edge");
        self.session(tls, host, route, peer, grant, first.raw).await;
    }

    async fn audit_refusal(&self, host: &str, peer: SocketAddr, identity: &str, why: &str) {
        self.proxy
            .access
            .audit(AuditEntry {
                kind: "decision".into(),
                identity: identity.to_owned(),
                source: peer.to_string(),
                hostname: host.to_owned(),
                destination: "postgres".into(),
                decision: "deny".into(),
                rule: why.to_owned(),
                ..Default::default()
            })
            .await;
    }

    /// Carries an allowed session to the connector.
    async fn session<S>(
        &self,
        tls: S,
        host: String,
        route: crate::routes::Route,
        peer: SocketAddr,
        grant: crate::access::Grant,
        startup: bytes::Bytes,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let ctx = &self.proxy;
        let session = uuid::Uuid::new_v4().simple().to_string();
        let header = StreamRequest::Tcp(TcpRequest {
            host: host.clone(),
            client: ClientInfo {
                addr: peer.to_string(),
                // The client is on TLS (to this listener).
                scheme: "postgres+tls".into(),
            },
            session: session.clone(),
            statement_log: grant.app.as_ref().is_some_and(|a| a.statement_log),
            assertion: grant
                .assertion(&ctx.access.snapshot().keys, &host)
                .unwrap_or_default(),
        });
        let mut tls = tls;
        let (resp, mut send, recv, guard) = match exchange(ctx, &route, &host, &header, true).await
        {
            Ok(x) => x,
            Err(f) => return refuse(&mut tls, sqlstate::UNABLE_TO_CONNECT, &f.sentence()).await,
        };
        if !matches!(resp, StreamResponse::Connected) {
            let m = format!("{host} is not a PostgreSQL or TCP service");
            return refuse(&mut tls, sqlstate::UNABLE_TO_CONNECT, &m).await;
        }
        if send.write_all(&startup).await.is_err() {
            return refuse(
                &mut tls,
                sqlstate::CONNECTION_FAILURE,
                "the tunnel closed during startup",
            )
            .await;
        }
        let tunnel_name = route.tunnel_name(&guard.conn().tunnel_id);
        ctx.access.sessions().open(
            &session,
            access::sessions::SessionInfo {
                identity: grant.who.label(),
                app: grant.app_name(),
                host: host.clone(),
                source: peer.to_string(),
                tunnel: tunnel_name.clone(),
            },
        );
        let live = ctx.access.watch(Watched {
            who: grant.who.clone(),
            host: host.clone(),
            path: "/".into(),
            source: peer,
        });
        let started = std::time::Instant::now();
        let mut key = None;
        let (mut client_r, mut client_w) = tokio::io::split(tls);
        let mut tunnel = QuicStream::new(send, recv);
        let (mut tunnel_r, mut tunnel_w) = tokio::io::split(&mut tunnel);
        // Counted as they move, so a revoked session still reports them.
        let (mut up_n, mut down_n) = (0u64, 0u64);
        let up = async {
            copy_counting(&mut client_r, &mut tunnel_w, &mut up_n).await?;
            tunnel_w.shutdown().await
        };
        let down = async {
            // Until the session is ready: message by message, noting the
            // cancel key; then bytes.
            let n = &mut down_n;
            let mut decoder = warren_pg::MessageDecoder::new(MAX_STARTUP_MESSAGE);
            let mut buf = BytesMut::with_capacity(8 * 1024);
            'startup: loop {
                while let Some(m) = decoder.decode(&mut buf).map_err(std::io::Error::other)? {
                    let bytes = m.encode();
                    client_w.write_all(&bytes).await?;
                    *n += bytes.len() as u64;
                    match m.tag {
                        b'K' => {
                            if let Ok((pid, k)) = warren_pg::message::parse_backend_key_data(&m) {
                                key = Some((pid, k.as_bytes().to_vec()));
                                self.remember(pid, k.as_bytes(), &host);
                            }
                        }
                        b'Z' | b'E' => break 'startup,
                        _ => {}
                    }
                }
                if tunnel_r.read_buf(&mut buf).await? == 0 {
                    break;
                }
            }
            if !buf.is_empty() {
                client_w.write_all(&buf).await?;
                *n += buf.len() as u64;
            }
            copy_counting(&mut tunnel_r, &mut client_w, n).await?;
            client_w.shutdown().await
        };
        let end = tokio::select! {
            (u, d) = async { tokio::join!(up, down) } => {
                if u.is_ok() && d.is_ok() { "closed".to_owned() } else { "ended with an error".to_owned() }
            }
            () = live.revoked() => format!("access revoked: {}", live.reason().unwrap_or_default()),
        };
        let (up, down) = (up_n, down_n);
        drop(guard);
        if let Some((pid, k)) = key {
            self.cancels.lock().expect("cancel keys").remove(&(pid, k));
        }
        let reported = ctx.access.sessions().close(&session);
        ctx.access
            .audit(AuditEntry {
                kind: "connection".into(),
                identity: grant.who.label(),
                source: peer.to_string(),
                app: grant.app_name(),
                hostname: host,
                tunnel: tunnel_name,
                destination: format!("postgres {reported}").trim_end().to_owned(),
                decision: "allow".into(),
                rule: grant.reason(),
                bytes_up: i64::try_from(up).unwrap_or(i64::MAX),
                bytes_down: i64::try_from(down).unwrap_or(i64::MAX),
                duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                end_reason: end,
                ..Default::default()
            })
            .await;
    }

    fn remember(&self, pid: u32, key: &[u8], host: &str) {
        let mut map = self.cancels.lock().expect("cancel keys");
        if map.len() >= MAX_CANCEL_KEYS {
            tracing::warn!("too many PostgreSQL cancel keys remembered; forgetting them all");
            map.clear();
        }
        map.insert((pid, key.to_vec()), host.to_owned());
    }

    /// Sends a `CancelRequest` to the connector of the session it names.
    async fn cancel(&self, c: warren_pg::CancelRequest, raw: bytes::Bytes, peer: SocketAddr) {
        let host = self
            .cancels
            .lock()
            .expect("cancel keys")
            .get(&(c.pid, c.key.as_bytes().to_vec()))
            .cloned();
        let Some(host) = host else {
            tracing::info!(%peer, "a PostgreSQL cancel request for an unknown session was dropped");
            return;
        };
        let Some(route) = self.proxy.routes.lookup(&host) else {
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
        match exchange(&self.proxy, &route, &host, &header, true).await {
            Ok((StreamResponse::Connected, mut send, mut recv, _guard)) => {
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
