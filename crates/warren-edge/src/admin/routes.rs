//! `/v1/routes`: add (one tunnel, or a load balancer over tunnels), list,
//! delete; every change reloads this process's route table.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use warren_store::{RouteRow, Steering};

use super::{AdminState, ApiError, ApiResult};

impl AdminState {
    /// Applies a route/tunnel change to the request path.
    pub(super) async fn reload_routes(&self) -> ApiResult<()> {
        Ok(self.routes.reload(&self.store).await?)
    }
}

/// `{"tunnel", "hostname"}` for one tunnel, or `{"hostname", "steering",
/// "tunnels": [{"tunnel", "weight"}]}` for a load balancer over tunnels
/// (priority = order).
#[derive(Deserialize)]
pub(super) struct AddRoute {
    hostname: String,
    #[serde(default)]
    tunnel: Option<String>,
    #[serde(default)]
    steering: Option<Steering>,
    #[serde(default)]
    tunnels: Option<Vec<PoolMember>>,
    /// Reachable without an access application.
    #[serde(default)]
    public: bool,
}

#[derive(Deserialize)]
pub(super) struct PoolMember {
    tunnel: String,
    #[serde(default = "one")]
    weight: i64,
}

fn one() -> i64 {
    1
}

pub(super) async fn add_route(
    State(state): State<AdminState>,
    body: Result<Json<AddRoute>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<RouteRow>)> {
    const EXAMPLE: &str = r#"{"tunnel": "office", "hostname": "app.example.com"} or {"hostname": "app.example.com", "steering": "failover", "tunnels": [{"tunnel": "primary"}, {"tunnel": "backup"}]}"#;
    let Json(body) = body.map_err(|r| ApiError::bad_body(r, EXAMPLE))?;
    // The store normalises and checks the name's syntax; the policy is
    // checked on the same normal form.
    let normal = body
        .hostname
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    state
        .route_policy
        .check(&normal)
        .map_err(|refusal| ApiError::new(StatusCode::BAD_REQUEST, refusal.to_string()))?;
    let route = match (body.tunnel, body.tunnels) {
        (Some(name), None) => {
            let tunnel = state.find_tunnel(&name).await?;
            state
                .store
                .add_route(&body.hostname, &tunnel.id, body.public)
                .await?
        }
        (None, Some(members)) => {
            let mut ids = Vec::with_capacity(members.len());
            for m in members {
                ids.push((state.find_tunnel(&m.tunnel).await?.id, m.weight));
            }
            let steering = body.steering.unwrap_or(Steering::Failover);
            state
                .store
                .add_pool_route(&body.hostname, steering, &ids, body.public)
                .await?
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("give either \"tunnel\" (one tunnel) or \"tunnels\" (a load balancer), not both or neither; for example {EXAMPLE}"),
            ))
        }
    };
    state.reload_routes().await?;
    tracing::info!(hostname = %route.hostname, tunnel = %route.tunnel_name, steering = route.steering.as_str(), tunnels = route.tunnels.len(), public = route.public, "route added");
    Ok((StatusCode::CREATED, Json(route)))
}

pub(super) async fn list_routes(State(state): State<AdminState>) -> ApiResult<Json<Vec<RouteRow>>> {
    Ok(Json(state.store.list_routes().await?))
}

pub(super) async fn delete_route(
    State(state): State<AdminState>,
    Path(hostname): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store.delete_route(&hostname).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no route for the hostname {hostname:?}; list routes with `warren tunnel route list`"
            ),
        ));
    }
    state.reload_routes().await?;
    tracing::info!(hostname = %hostname, "route deleted");
    Ok(StatusCode::NO_CONTENT)
}
