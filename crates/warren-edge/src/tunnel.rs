//! The tunnel listener: the driver of each connector connection.
//!
//! The protocol itself — registration first, refusal and its linger,
//! drain, keep-alive and the dead-path rule — is the sans-IO
//! [`EdgeSession`] in `warren-proto`; this module feeds it the control
//! stream's bytes and the time, writes what it says, runs the store check
//! it asks for, and puts the connection in the [`Registry`] while it is
//! registered. Streams the connector opens (certificate and key requests,
//! session reports) are answered here. A bad registration is logged and
//! refused; it never affects other tunnels.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use warren_proto::answered::{Answered, AnsweredConfig};
use warren_proto::close::CloseCode;
use warren_proto::control::{ControlMessage, RefuseCode, Refused as Refuse, Register};
use warren_proto::session::{
    EdgeEvent, EdgeSession, EdgeSessionConfig, RegistrationAnswer, Transmit,
};
use warren_transport::clock::{now, sleep_until};
use warren_transport::framed::expect_frame;
use warren_transport::quic::{QuicListener, QuicSettings};
use warren_transport::{RecvStream, SendStream, TunnelConnection};

use crate::ca::Ca;
use crate::registry::{ConnMeta, Registry, TunnelConn};
use crate::routes::RouteTable;
use warren_store::Store;

/// How long a new connection has for its handshake, and a connector's
/// question for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the tunnel listener needs.
#[derive(Clone)]
pub(crate) struct TunnelCtx {
    pub store: Store,
    pub registry: Registry,
    /// The tunnel listener's bound address.
    pub listen: std::net::SocketAddr,
    /// Signs connectors' CSRs for hostnames routed to their tunnel.
    pub ca: Arc<Ca>,
    pub routes: RouteTable,
    /// Identity-token keys for connectors, and their session reports.
    pub access: crate::access::Access,
    /// The connections' timers (QUIC's and the control stream's agree).
    pub quic: QuicSettings,
    /// Registrations are counted here.
    pub metrics: Arc<crate::metrics::EdgeMetrics>,
}

/// Accepts connector connections until the listener is closed.
pub(crate) async fn serve(listener: Arc<QuicListener>, ctx: TunnelCtx) {
    while let Some(incoming) = listener.accept().await {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let conn = match tokio::time::timeout(REQUEST_TIMEOUT, incoming.establish()).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    tracing::info!(%remote, error = %e, "tunnel handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(%remote, "tunnel handshake timed out");
                    return;
                }
            };
            handle_connection(conn, ctx).await;
        });
    }
}

/// Drives one connection's [`EdgeSession`] until it is over.
pub(crate) async fn handle_connection(conn: TunnelConnection, ctx: TunnelCtx) {
    let remote = conn.remote_address();
    let config = EdgeSessionConfig {
        liveness: ctx.quic.liveness(),
        ..EdgeSessionConfig::default()
    };
    let mut session = EdgeSession::new(config, now());
    // The control stream: the first stream the connector opens.
    let (mut send, mut recv) = tokio::select! {
        accepted = conn.accept_stream() => match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(%remote, error = %e, "connection closed before registering");
                return;
            }
        },
        () = sleep_until(session.poll_timeout()) => {
            tracing::warn!(%remote, "connection did not register in time; closing it");
            ctx.metrics.registration("timeout");
            conn.close(CloseCode::RegistrationTimeout, CloseCode::RegistrationTimeout.description().as_bytes());
            return;
        }
    };
    let mut check: Option<Checking<'_>> = None;
    let mut registered: Option<(Arc<TunnelConn>, Register, String)> = None;
    // The registration being checked, then the id and name it was given.
    let mut pending_reg: Option<Register> = None;
    let mut accepted_as: Option<(String, String, i64)> = None;
    let mut control_open = true;
    'driver: loop {
        while let Some(t) = session.poll_transmit(now()) {
            let written = match t {
                Transmit::Frame(frame) => send.write_all(&frame).await.is_ok(),
                Transmit::Finish => send.finish().is_ok(),
            };
            if !written {
                session.handle_connection_lost(now());
            }
        }
        while let Some(event) = session.poll_event() {
            match event {
                EdgeEvent::Check(reg) => {
                    pending_reg = Some((*reg).clone());
                    check = Some(Box::pin(answer_registration(&ctx.store, *reg)));
                }
                EdgeEvent::Registered => {
                    let (Some(reg), Some((id, name, secret_generation))) =
                        (pending_reg.take(), accepted_as.take())
                    else {
                        continue;
                    };
                    let tc = Arc::new(TunnelConn::new(
                        ConnMeta {
                            id,
                            tunnel_id: reg.tunnel_id.clone(),
                            connector_id: reg.connector_id.clone(),
                            connector_version: reg.connector_version.clone(),
                            conn_index: reg.conn_index,
                            ha_connections: reg.ha_connections,
                            listen: ctx.listen,
                            connected_at: unix_now(),
                            secret_generation,
                        },
                        conn.clone(),
                    ));
                    ctx.registry.insert(tc.clone());
                    ctx.metrics.registration("registered");
                    // A remote-managed tunnel: the connector gets the
                    // stored config as soon as it can take streams.
                    let (store, pushed) = (ctx.store.clone(), tc.clone());
                    tokio::spawn(async move {
                        match store.tunnel_config(&pushed.tunnel_id).await {
                            Ok(Some(config)) => {
                                crate::stored_config::push(&pushed, &config).await;
                            }
                            Ok(None) => {}
                            Err(e) => tracing::error!("cannot read the tunnel's stored config to send it to its connector: {e}"),
                        }
                    });
                    tokio::spawn(close_when_unanswered(conn.clone(), ctx.quic.answered()));
                    tracing::info!(%remote, tunnel = %name, connector_id = %reg.connector_id, conn_index = reg.conn_index, version = %reg.connector_version, protocol = session.version().unwrap_or(1), "connector connection registered");
                    registered = Some((tc, reg, name));
                }
                EdgeEvent::Refused(r) => {
                    tracing::warn!(%remote, code = ?r.code, "refused connector registration: {}", r.message);
                    ctx.metrics.registration(r.code.as_str());
                }
                EdgeEvent::Draining => {
                    if let Some((tc, reg, name)) = &registered {
                        tracing::info!(tunnel = %name, conn_index = reg.conn_index, "connector is draining this connection");
                        tc.set_draining();
                    }
                }
                EdgeEvent::Ignored(i) => tracing::debug!(%remote, ?i, "control message ignored"),
                EdgeEvent::Violation(v) => {
                    tracing::warn!(%remote, "connector broke the control protocol: {v}")
                }
                EdgeEvent::Close(code) => {
                    if code == CloseCode::PeerDead {
                        tracing::warn!(%remote, "nothing from the connector within the idle timeout; closing the connection");
                    }
                    conn.close(code, code.description().as_bytes());
                    break 'driver;
                }
            }
        }
        if session.is_closed() {
            break;
        }
        tokio::select! {
            chunk = recv.read_chunk(warren_transport::copy::CHUNK), if control_open => match chunk {
                Ok(Some(bytes)) => session.handle_data(now(), &bytes),
                Ok(None) | Err(_) => {
                    control_open = false;
                    session.handle_finished(now());
                }
            },
            (answer, generation) = async { check.as_mut().expect("guarded").await }, if check.is_some() => {
                check = None;
                if let (RegistrationAnswer::Accept { connection_id, tunnel_name }, Some(generation)) = (&answer, generation) {
                    accepted_as = Some((connection_id.clone(), tunnel_name.clone(), generation));
                }
                session.handle_answer(now(), answer);
            }
            () = sleep_until(session.poll_timeout()) => session.handle_timeout(now()),
            reason = conn.closed() => {
                if let Some((_, reg, name)) = &registered {
                    tracing::info!(tunnel = %name, conn_index = reg.conn_index, %reason, "connector connection closed");
                }
                session.handle_connection_lost(now());
                break;
            }
            accepted = conn.accept_stream(), if registered.is_some() => {
                if let (Ok((send, recv)), Some((_, reg, name))) = (accepted, &registered) {
                    let (ctx, tunnel_id, name) = (ctx.clone(), reg.tunnel_id.clone(), name.clone());
                    tokio::spawn(async move {
                        answer_request(&ctx, &tunnel_id, &name, send, recv).await;
                    });
                }
            }
        }
    }
    if let Some((tc, reg, _)) = registered {
        ctx.registry.remove(&reg.tunnel_id, &tc.id);
    }
}

/// Closes `conn` once its peer has left packets unanswered for longer
/// than `rule` allows (a killed replica, a path cut without a word): the
/// registry drops it at once, so new streams go to live connections, and
/// streams caught on it fail and are retried elsewhere where that is safe
/// (`warren_proto::retry`), instead of waiting for the idle timeout.
async fn close_when_unanswered(conn: TunnelConnection, rule: AnsweredConfig) {
    let mut answered = Answered::new(rule, conn.counters());
    loop {
        tokio::select! {
            _ = conn.closed() => return,
            () = tokio::time::sleep(rule.sample_every) => {}
        }
        if let Some(waited) = answered.observe(now(), conn.counters()) {
            tracing::warn!(
                remote = %conn.remote_address(),
                waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                "the connector has not answered anything for a while; closing the connection so new streams go elsewhere"
            );
            conn.close(CloseCode::PeerDead, b"unanswered");
            return;
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Answers one request on a stream the connector opened: `CertRequest`,
/// `KeysRequest`, or `SessionReport` (no answer).
async fn answer_request(
    ctx: &TunnelCtx,
    tunnel_id: &str,
    tunnel_name: &str,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let refused = |message: String| {
        ControlMessage::Refused(Refuse {
            code: RefuseCode::BadRequest,
            message,
        })
    };
    let answer = match tokio::time::timeout(REQUEST_TIMEOUT, expect_frame(&mut recv)).await {
        Ok(Ok(f)) => match ControlMessage::decode(&f.payload) {
            Ok(ControlMessage::KeysRequest) => {
                ControlMessage::KeysIssued(warren_proto::control::KeysIssued {
                    jwks: ctx.access.snapshot().keys.jwks().to_owned(),
                })
            }
            Ok(ControlMessage::SessionReport(r)) => {
                let entries = ctx.access.sessions().report(r);
                for e in entries {
                    ctx.access.audit(e).await;
                }
                let _ = send.finish();
                return;
            }
            Ok(ControlMessage::CertRequest(c)) => {
                let host = c.hostname.trim_end_matches('.').to_ascii_lowercase();
                let routed = ctx
                    .routes
                    .lookup(&host)
                    .is_some_and(|r| r.tunnels.iter().any(|t| t.id == tunnel_id));
                if !routed {
                    refused(format!("the hostname {host} is not routed to tunnel {tunnel_name}, so the edge will not issue a certificate for it; route it with `warren tunnel route dns {tunnel_name} {host}`"))
                } else {
                    match ctx.ca.sign_csr(&c.csr, &host) {
                        Ok(chain) => {
                            tracing::info!(tunnel = %tunnel_name, hostname = %host, "issued a certificate to the connector");
                            ControlMessage::CertIssued(warren_proto::control::CertIssued { chain })
                        }
                        Err(e) => refused(format!("cannot issue a certificate for {host}: {e}")),
                    }
                }
            }
            Ok(other) => refused(format!("expected a certificate request, got {other:?}")),
            Err(e) => refused(format!("malformed certificate request: {e}")),
        },
        Ok(Err(e)) => refused(format!("malformed certificate request: {e}")),
        Err(_) => return,
    };
    let _ = send.write_all(&answer.encode()).await;
    let _ = send.finish();
}

/// The store check of a registration: the tunnel exists and the secret's
/// hash matches (constant time).
/// Accepted, it comes with the generation of the secret the connector
/// used.
async fn answer_registration(store: &Store, reg: Register) -> (RegistrationAnswer, Option<i64>) {
    match check(store, &reg).await {
        Ok((tunnel_name, generation)) => (
            RegistrationAnswer::Accept {
                connection_id: uuid::Uuid::new_v4().to_string(),
                tunnel_name,
            },
            Some(generation),
        ),
        Err((code, message)) => {
            tracing::warn!(tunnel_id = %reg.tunnel_id, connector_id = %reg.connector_id, ?code, "refusing connector registration: {message}");
            (RegistrationAnswer::Refuse(Refuse { code, message }), None)
        }
    }
}

/// The tunnel's name and the generation of the secret the registration
/// used: the current one, or (in a rotation's grace window) the one before.
async fn check(store: &Store, reg: &Register) -> Result<(String, i64), (RefuseCode, String)> {
    let internal = |e: warren_store::StoreError| {
        (
            RefuseCode::Internal,
            format!("the edge could not check the registration: {e}"),
        )
    };
    let unknown = || {
        (
            RefuseCode::UnknownTunnel,
            "the edge has no tunnel with the id in this token (was it deleted?); create a tunnel and use its token from `warren tunnel token NAME`".to_owned(),
        )
    };
    if uuid::Uuid::parse_str(&reg.tunnel_id).is_err() {
        return Err(unknown());
    }
    let tunnel = store
        .get_tunnel(&reg.tunnel_id)
        .await
        .map_err(internal)?
        .ok_or_else(unknown)?;
    let secrets = store
        .tunnel_secrets(&tunnel.id)
        .await
        .map_err(internal)?
        .ok_or_else(unknown)?;
    if warren_proto::token::verify_secret(&reg.secret, &secrets.current) {
        return Ok((tunnel.name, tunnel.secret_generation));
    }
    if let Some((previous, until)) = &secrets.previous {
        if warren_proto::token::verify_secret(&reg.secret, previous) {
            tracing::warn!(tunnel = %tunnel.name, connector_id = %reg.connector_id, valid_until = until, "a connector registered with the tunnel's previous secret, which stops working when the rotation's grace window ends; give it the new token (`warren tunnel token {}`)", tunnel.name);
            // A rotation moves on by one generation.
            return Ok((tunnel.name, tunnel.secret_generation - 1));
        }
    }
    Err((
        RefuseCode::BadSecret,
        format!(
            "the secret in this token does not match tunnel {} (was the secret rotated, or the previous one revoked?); get a fresh token with `warren tunnel token {}`",
            tunnel.name, tunnel.name
        ),
    ))
}

/// The store check of a registration, in progress.
type Checking<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = (RegistrationAnswer, Option<i64>)> + Send + 'a>,
>;
