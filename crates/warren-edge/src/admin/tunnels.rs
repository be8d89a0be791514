//! `/v1/tunnels`: create, list, show (with status, connections and
//! routes), delete.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use warren_proto::token::hash_secret;
use warren_store::Tunnel;

use super::error::ApiErrorBody;
use super::{AdminState, ApiError, ApiResult};
use crate::registry::{ConnectionInfo, ConnectorInfo, TunnelStatus};

/// Generation of a new tunnel's first secret.
pub(super) const FIRST_GENERATION: i64 = 1;

/// A tunnel as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct TunnelView {
    #[serde(flatten)]
    tunnel: Tunnel,
    /// `active`: some connector has all its connections up; `degraded`:
    /// serving on fewer; `inactive`: no connection.
    status: TunnelStatus,
    /// Unix seconds since the tunnel has been continuously connected.
    up_since: Option<u64>,
    connectors: Vec<ConnectorInfo>,
    connections: Vec<ConnectionInfo>,
    /// Hostnames routed to the tunnel (single-tunnel answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    routes: Option<Vec<String>>,
    /// Unix seconds: until when the secret the last rotation replaced is
    /// still accepted (single-tunnel answers only, while it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_valid_until: Option<i64>,
}

impl AdminState {
    pub(super) fn view(&self, tunnel: Tunnel) -> TunnelView {
        let health = self.registry.health(&tunnel.id, tunnel.secret_generation);
        TunnelView {
            status: health.status,
            up_since: health.up_since,
            connectors: health.connectors,
            connections: health.connections,
            routes: None,
            previous_secret_valid_until: None,
            tunnel,
        }
    }

    pub(super) async fn find_tunnel(&self, key: &str) -> ApiResult<Tunnel> {
        self.store
            .get_tunnel(key)
            .await?
            .ok_or_else(|| ApiError::no_tunnel(key))
    }
}

/// A new tunnel.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct CreateTunnel {
    /// Unique; letters, digits, `-` and `_`.
    #[schema(example = "office")]
    name: String,
}

/// Create a tunnel.
#[utoipa::path(
    post,
    path = "/v1/tunnels",
    tag = "tunnels",
    request_body = CreateTunnel,
    responses(
        (status = 201, description = "The tunnel; fetch its token with `GET /v1/tunnels/{tunnel}/token`.", body = TunnelView),
        (status = 400, description = "The name is not valid.", body = ApiErrorBody),
        (status = 409, description = "A tunnel of that name exists.", body = ApiErrorBody),
    )
)]
pub(super) async fn create_tunnel(
    State(state): State<AdminState>,
    body: Result<Json<CreateTunnel>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<TunnelView>)> {
    let Json(body) = body.map_err(|r| ApiError::bad_body(r, r#"{"name": "office"}"#))?;
    let secrets = state.secrets.clone();
    let tunnel = state
        .store
        .create_tunnel_with(&body.name, FIRST_GENERATION, |id| {
            hash_secret(&secrets.secret(id, FIRST_GENERATION))
        })
        .await?;
    tracing::info!(tunnel = %tunnel.name, id = %tunnel.id, "tunnel created");
    Ok((StatusCode::CREATED, Json(state.view(tunnel))))
}

/// List the tunnels with their status and connections.
#[utoipa::path(
    get,
    path = "/v1/tunnels",
    tag = "tunnels",
    responses((status = 200, description = "Every tunnel.", body = Vec<TunnelView>))
)]
pub(super) async fn list_tunnels(
    State(state): State<AdminState>,
) -> ApiResult<Json<Vec<TunnelView>>> {
    let tunnels = state.store.list_tunnels().await?;
    Ok(Json(tunnels.into_iter().map(|t| state.view(t)).collect()))
}

/// Show one tunnel with its routes.
#[utoipa::path(
    get,
    path = "/v1/tunnels/{tunnel}",
    tag = "tunnels",
    params(("tunnel" = String, Path, description = "The tunnel's name or id.")),
    responses(
        (status = 200, description = "The tunnel, with `routes` and, during a rotation's grace window, `previous_secret_valid_until`.", body = TunnelView),
        (status = 404, description = "No such tunnel.", body = ApiErrorBody),
    )
)]
pub(super) async fn tunnel_info(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Json<TunnelView>> {
    let tunnel = state.find_tunnel(&key).await?;
    let routes = state
        .store
        .list_routes()
        .await?
        .into_iter()
        .filter(|r| r.tunnels.iter().any(|m| m.tunnel_id == tunnel.id))
        .map(|r| r.hostname)
        .collect();
    let previous = state
        .store
        .tunnel_secrets(&tunnel.id)
        .await?
        .and_then(|s| s.previous)
        .map(|(_, until)| until);
    let mut view = state.view(tunnel);
    view.routes = Some(routes);
    view.previous_secret_valid_until = previous;
    Ok(Json(view))
}

/// Delete a tunnel, its routes, and its live connections.
#[utoipa::path(
    delete,
    path = "/v1/tunnels/{tunnel}",
    tag = "tunnels",
    params(("tunnel" = String, Path, description = "The tunnel's name or id.")),
    responses(
        (status = 204, description = "Deleted; its connectors are disconnected."),
        (status = 404, description = "No such tunnel.", body = ApiErrorBody),
    )
)]
pub(super) async fn delete_tunnel(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    let tunnel = state.find_tunnel(&key).await?;
    if !state.store.delete_tunnel(&tunnel.id).await? {
        return Err(ApiError::no_tunnel(&key));
    }
    state
        .registry
        .disconnect_tunnel(&tunnel.id, "the tunnel was deleted");
    state.reload_routes().await?;
    tracing::info!(tunnel = %tunnel.name, id = %tunnel.id, "tunnel deleted");
    Ok(StatusCode::NO_CONTENT)
}
