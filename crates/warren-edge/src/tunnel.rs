//! The tunnel listener: connector registration and the life of each
//! registered connection.
//!
//! A connector opens the control stream and sends `Register`. The edge
//! negotiates a version, checks the tunnel exists and the secret's hash
//! matches (constant time), answers `Registered` or `Refused`, and puts
//! the connection in the [`Registry`] until it closes. A bad registration
//! is logged and refused; it never affects other tunnels.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quinn::VarInt;
use warren_proto::control::{ControlMessage, RefuseCode, Refused as Refuse, Register, Registered};
use warren_transport::framed::expect_frame;

use crate::ca::Ca;
use crate::registry::{ConnMeta, Registry, TunnelConn};
use crate::routes::RouteTable;
use warren_store::Store;

/// QUIC close code: the connector's registration was refused.
pub const CLOSE_REFUSED: u32 = 0x10;
/// QUIC close code: the tunnel was deleted or its secret rotated.
pub const CLOSE_TUNNEL_GONE: u32 = 0x11;
/// QUIC close code: the edge is shutting down.
pub const CLOSE_SHUTDOWN: u32 = 0x12;

/// How long a new connection has to register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the tunnel listener needs.
#[derive(Clone)]
pub struct TunnelCtx {
    pub store: Store,
    pub registry: Registry,
    /// The tunnel listener's bound address.
    pub listen: std::net::SocketAddr,
    /// Signs connectors' CSRs for hostnames routed to their tunnel.
    pub ca: Arc<Ca>,
    pub routes: RouteTable,
    /// Identity-token keys for connectors, and their session reports.
    pub access: crate::access::Access,
}

/// Accepts connector connections until the endpoint is closed.
pub async fn serve(endpoint: quinn::Endpoint, ctx: TunnelCtx) {
    while let Some(incoming) = endpoint.accept().await {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let conn = match tokio::time::timeout(REGISTER_TIMEOUT, incoming).await {
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

async fn handle_connection(conn: quinn::Connection, ctx: TunnelCtx) {
    let remote = conn.remote_address();
    let (mut send, mut recv) = match tokio::time::timeout(REGISTER_TIMEOUT, conn.accept_bi()).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(%remote, error = %e, "connection closed before registering");
            return;
        }
        Err(_) => {
            tracing::warn!(%remote, "connection did not register in time; closing it");
            conn.close(VarInt::from_u32(CLOSE_REFUSED), b"registration timeout");
            return;
        }
    };
    let msg = match tokio::time::timeout(REGISTER_TIMEOUT, expect_frame(&mut recv)).await {
        Ok(Ok(f)) if f.kind == warren_proto::frame::FrameType::Control => {
            ControlMessage::decode(&f.payload).map_err(|e| e.to_string())
        }
        Ok(Ok(f)) => Err(format!("expected a control frame, got {}", f.kind.name())),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("registration timed out".into()),
    };
    let reg = match msg {
        Ok(ControlMessage::Register(r)) => r,
        Ok(other) => {
            return refuse(
                &conn,
                &mut send,
                RefuseCode::BadRequest,
                format!("expected a registration, got {other:?}"),
            )
            .await
        }
        Err(e) => {
            return refuse(
                &conn,
                &mut send,
                RefuseCode::BadRequest,
                format!("malformed registration: {e}"),
            )
            .await
        }
    };
    let (version, tunnel_name) = match check(&ctx.store, &reg).await {
        Ok(v) => v,
        Err((code, message)) => {
            tracing::warn!(%remote, tunnel_id = %reg.tunnel_id, connector_id = %reg.connector_id, ?code, "refused connector registration: {message}");
            return refuse(&conn, &mut send, code, message).await;
        }
    };
    let conn_id = uuid::Uuid::new_v4().to_string();
    let ok = ControlMessage::Registered(Registered {
        version,
        connection_id: conn_id.clone(),
        tunnel_name: tunnel_name.clone(),
    });
    if send.write_all(&ok.encode()).await.is_err() {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let tc = Arc::new(TunnelConn::new(
        ConnMeta {
            id: conn_id.clone(),
            tunnel_id: reg.tunnel_id.clone(),
            connector_id: reg.connector_id.clone(),
            connector_version: reg.connector_version.clone(),
            conn_index: reg.conn_index,
            ha_connections: reg.ha_connections,
            listen: ctx.listen,
            connected_at: now,
        },
        conn.clone(),
    ));
    ctx.registry.insert(tc.clone());
    tracing::info!(%remote, tunnel = %tunnel_name, connector_id = %reg.connector_id, conn_index = reg.conn_index, version = %reg.connector_version, "connector connection registered");

    // Control messages after registration, until the connection ends.
    let control = async {
        while let Ok(f) = expect_frame(&mut recv).await {
            match ControlMessage::decode(&f.payload) {
                Ok(ControlMessage::Drain) => {
                    tracing::info!(tunnel = %tunnel_name, conn_index = reg.conn_index, "connector is draining this connection");
                    tc.set_draining();
                }
                Ok(other) => tracing::debug!(?other, "ignoring control message"),
                Err(e) => tracing::warn!(error = %e, "malformed control message ignored"),
            }
        }
        // The control stream ended; the connection lives on until closed.
        std::future::pending::<()>().await
    };
    // Streams the connector opens: certificate and key requests, session
    // reports.
    let certs = async {
        while let Ok((send, recv)) = conn.accept_bi().await {
            let (ctx, tunnel_id, tunnel_name) =
                (ctx.clone(), reg.tunnel_id.clone(), tunnel_name.clone());
            tokio::spawn(async move {
                answer_request(&ctx, &tunnel_id, &tunnel_name, send, recv).await;
            });
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = certs => {}
        reason = conn.closed() => {
            tracing::info!(tunnel = %tunnel_name, conn_index = reg.conn_index, %reason, "connector connection closed");
        }
        _ = control => {}
    }
    ctx.registry.remove(&reg.tunnel_id, &conn_id);
}

/// Answers one request on a stream the connector opened: `CertRequest`,
/// `KeysRequest`, or `SessionReport` (no answer).
async fn answer_request(
    ctx: &TunnelCtx,
    tunnel_id: &str,
    tunnel_name: &str,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let refused = |message: String| {
        ControlMessage::Refused(Refuse {
            code: RefuseCode::BadRequest,
            message,
        })
    };
    let answer = match tokio::time::timeout(REGISTER_TIMEOUT, expect_frame(&mut recv)).await {
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

async fn check(store: &Store, reg: &Register) -> Result<(u16, String), (RefuseCode, String)> {
    let version = warren_proto::negotiate_version(&reg.versions).ok_or_else(|| {
        (
            RefuseCode::UnsupportedVersion,
            format!(
                "the connector speaks protocol versions {:?} but this edge speaks {:?}; run the same warren version on both",
                reg.versions,
                warren_proto::SUPPORTED_VERSIONS
            ),
        )
    })?;
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
    let hash = store
        .tunnel_secret_hash(&tunnel.id)
        .await
        .map_err(internal)?
        .ok_or_else(unknown)?;
    if !warren_proto::token::verify_secret(&reg.secret, &hash) {
        return Err((
            RefuseCode::BadSecret,
            format!(
                "the secret in this token does not match tunnel {} (was the secret rotated?); get a fresh token with `warren tunnel token {}`",
                tunnel.name, tunnel.name
            ),
        ));
    }
    Ok((version, tunnel.name))
}

async fn refuse(
    conn: &quinn::Connection,
    send: &mut quinn::SendStream,
    code: RefuseCode,
    message: String,
) {
    let msg = ControlMessage::Refused(Refuse { code, message });
    let _ = send.write_all(&msg.encode()).await;
    let _ = send.finish();
    // Give the refusal time to arrive; the connector closes on reading it.
    let _ = tokio::time::timeout(Duration::from_secs(3), conn.closed()).await;
    conn.close(VarInt::from_u32(CLOSE_REFUSED), b"registration refused");
}
