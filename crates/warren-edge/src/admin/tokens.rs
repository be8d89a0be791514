//! A tunnel's token (`GET /v1/tunnels/{t}/token`) and secret rotation
//! (`POST /v1/tunnels/{t}/rotate-secret`). Tokens are never logged and
//! never cached.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use warren_proto::token::{hash_secret, verify_secret, TunnelToken};
use warren_store::Tunnel;

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

/// `{"token": ...}`, not to be cached anywhere.
fn token_response(token: String) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(json!({ "token": token })),
    )
        .into_response()
}

pub(super) async fn tunnel_token(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    let tunnel = state.find_tunnel(&key).await?;
    Ok(token_response(state.token(&tunnel).await?))
}

/// Moves the tunnel to the next secret generation. Live connections stay
/// up (they registered with the old secret); new registrations need the
/// new token.
pub(super) async fn rotate_secret(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Response> {
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
    state
        .store
        .set_tunnel_secret(&tunnel.id, &hash_secret(&secret), generation)
        .await?;
    tunnel.secret_generation = generation;
    tracing::info!(tunnel = %tunnel.name, id = %tunnel.id, generation, "tunnel secret rotated");
    Ok(token_response(state.token(&tunnel).await?))
}
