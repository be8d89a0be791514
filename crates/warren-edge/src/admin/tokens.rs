//! A tunnel's token (`GET /v1/tunnels/{t}/token`), secret rotation with a
//! grace window for the replaced secret (`POST
//! /v1/tunnels/{t}/rotate-secret?grace_seconds=N`) and its early end
//! (`POST /v1/tunnels/{t}/revoke-old-secret`). Tokens are never logged and
//! never cached.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use warren_proto::token::{hash_secret, verify_secret, TunnelToken};
use warren_store::Tunnel;

use super::error::ApiErrorBody;
use super::{AdminState, ApiError, ApiResult};

impl AdminState {
    /// The tunnel's token at its current secret generation.
    async fn token(&self, tunnel: &Tunnel) -> ApiResult<String> {
        let secret = self.secrets.secret(&tunnel.id, tunnel.secret_generation);
        // If tunnel-secret.key was replaced, the derived secret no longer
        // matches the stored hash; a token built from it would be refused.
        let stored = self.store.tunnel_secret_hash(&tunnel.id).await?;
        if !stored.is_some_and(|h| verify_secret(&secret, &h)) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "the stored secret of tunnel {} does not match this edge's tunnel-secret.key (was the key file replaced?); issue a new one with `warren tunnel rotate-secret {}`",
                    tunnel.name, tunnel.name
                ),
            ));
        }
        Ok(TunnelToken {
            tunnel_id: tunnel.id.clone(),
            secret,
            edges: self.token_edges.clone(),
            ca_pin: self.ca_pin.clone(),
        }
        .encode())
    }
}

/// A tunnel's token.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct TokenBody {
    /// What `warren tunnel run --token` takes: the tunnel id, its secret,
    /// the edge addresses and the CA pin.
    token: String,
}

/// `{"token": ...}`, not to be cached anywhere.
fn token_response(token: String) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(TokenBody { token }),
    )
        .into_response()
}

/// Get a tunnel's token.
#[utoipa::path(
    get,
    path = "/v1/tunnels/{tunnel}/token",
    tag = "tunnels",
    params(("tunnel" = String, Path, description = "The tunnel's name or id.")),
    responses(
        (status = 200, description = "The token at the tunnel's current secret (Cache-Control: no-store).", body = TokenBody),
        (status = 404, description = "No such tunnel.", body = ApiErrorBody),
        (status = 409, description = "The stored secret does not match this edge's tunnel-secret.key.", body = ApiErrorBody),
    )
)]
pub(super) async fn tunnel_token(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    let tunnel = state.find_tunnel(&key).await?;
    Ok(token_response(state.token(&tunnel).await?))
}

/// Longest grace window a rotation may give the secret it replaces.
const MAX_GRACE: u64 = 30 * 24 * 3600;

/// The grace window, when the request does not name one: a day.
const DEFAULT_GRACE: u64 = 24 * 3600;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RotateParams {
    /// Seconds the replaced secret keeps working for registrations (0:
    /// none; default a day, at most 30 days).
    #[param(maximum = 2592000)]
    grace_seconds: Option<u64>,
}

/// Rotate a tunnel's secret.
///
/// Moves the tunnel to the next secret generation. Live connections stay
/// up; the replaced secret keeps working for new registrations for
/// `grace_seconds` (default a day), so connectors re-dialling with the old
/// token are not locked out while the new one is rolled out.
#[utoipa::path(
    post,
    path = "/v1/tunnels/{tunnel}/rotate-secret",
    tag = "tunnels",
    params(("tunnel" = String, Path, description = "The tunnel's name or id."), RotateParams),
    responses(
        (status = 200, description = "The new token (Cache-Control: no-store).", body = TokenBody),
        (status = 400, description = "grace_seconds is not a number or longer than 30 days.", body = ApiErrorBody),
        (status = 404, description = "No such tunnel.", body = ApiErrorBody),
        (status = 409, description = "The tunnel has used up its secret generations, or its stored secret does not match this edge's tunnel-secret.key.", body = ApiErrorBody),
    )
)]
pub(super) async fn rotate_secret(
    State(state): State<AdminState>,
    Path(key): Path<String>,
    params: Result<Query<RotateParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(params) = params.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the query is not understood ({e}); give grace_seconds as a number of seconds"),
        )
    })?;
    let grace = params.grace_seconds.unwrap_or(DEFAULT_GRACE);
    if grace > MAX_GRACE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "a grace window of {grace} s is longer than the 30 days ({MAX_GRACE} s) allowed; give a shorter one"
            ),
        ));
    }
    let mut tunnel = state.find_tunnel(&key).await?;
    let generation = tunnel.secret_generation.checked_add(1).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "tunnel {} has used up its secret generations; delete and recreate it",
                tunnel.name
            ),
        )
    })?;
    let secret = state.secrets.secret(&tunnel.id, generation);
    let until = (grace > 0).then(|| unix_now() + i64::try_from(grace).unwrap_or(i64::MAX));
    state
        .store
        .set_tunnel_secret(&tunnel.id, &hash_secret(&secret), generation, until)
        .await?;
    tunnel.secret_generation = generation;
    tracing::info!(tunnel = %tunnel.name, id = %tunnel.id, generation, grace_seconds = grace, "tunnel secret rotated");
    Ok(token_response(state.token(&tunnel).await?))
}

/// What revoking the replaced secret did.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct RevokedSecret {
    /// A replaced secret was still accepted, and no longer is.
    revoked: bool,
    /// Connections that had registered with it, now closed.
    closed_connections: usize,
}

/// End the grace window of a tunnel's replaced secret now.
///
/// Registrations with the secret the last rotation replaced are refused
/// from now on, and connections that registered with it are closed (their
/// connectors re-dial and are refused until they get the new token).
#[utoipa::path(
    post,
    path = "/v1/tunnels/{tunnel}/revoke-old-secret",
    tag = "tunnels",
    params(("tunnel" = String, Path, description = "The tunnel's name or id.")),
    responses(
        (status = 200, description = "The replaced secret no longer works.", body = RevokedSecret),
        (status = 404, description = "No such tunnel.", body = ApiErrorBody),
    )
)]
pub(super) async fn revoke_previous_secret(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Json<RevokedSecret>> {
    let tunnel = state.find_tunnel(&key).await?;
    let revoked = state.store.revoke_previous_secret(&tunnel.id).await?;
    let closed = state.registry.disconnect_old_secrets(
        &tunnel.id,
        tunnel.secret_generation,
        "the tunnel's previous secret was revoked",
    );
    tracing::info!(tunnel = %tunnel.name, id = %tunnel.id, revoked, closed_connections = closed, "revoked the tunnel's previous secret");
    Ok(Json(RevokedSecret {
        revoked,
        closed_connections: closed,
    }))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
