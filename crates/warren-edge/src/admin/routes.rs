//! `/v1/routes`: add (one tunnel, or a load balancer over tunnels), list,
//! delete; every change reloads this process's route table.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use warren_store::{RouteRow, Steering};

use super::error::ApiErrorBody;
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
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct AddRoute {
    /// Under `--domain`; `*.example.com` for a wildcard.
    #[schema(example = "app.example.com")]
    hostname: String,
    /// The one tunnel (its name or id); not with `tunnels`.
    #[serde(default)]
    #[schema(example = "office")]
    tunnel: Option<String>,
    /// How a load balancer picks among `tunnels` (default `failover`).
    #[serde(default)]
    steering: Option<Steering>,
    /// The tunnels of a load balancer, by priority; not with `tunnel`.
    #[serde(default)]
    tunnels: Option<Vec<PoolMember>>,
    /// Reachable without an access application.
    #[serde(default)]
    public: bool,
}

/// One tunnel of a load balancer.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct PoolMember {
    /// Its name or id.
    tunnel: String,
    /// Share of new streams under `weighted` steering.
    #[serde(default = "one")]
    #[schema(default = one)]
    weight: i64,
}

fn one() -> i64 {
    1
}

/// Route a hostname to a tunnel, or to a load balancer over tunnels.
#[utoipa::path(
    post,
    path = "/v1/routes",
    tag = "routes",
    request_body = AddRoute,
    responses(
        (status = 201, description = "The route; the edge serves the hostname now.", body = RouteRow),
        (status = 400, description = "The hostname is not allowed, or the tunnels are not given as one of the two shapes.", body = ApiErrorBody),
        (status = 404, description = "A named tunnel does not exist.", body = ApiErrorBody),
        (status = 409, description = "The hostname is routed already.", body = ApiErrorBody),
    )
)]
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

/// List the routes.
#[utoipa::path(
    get,
    path = "/v1/routes",
    tag = "routes",
    responses((status = 200, description = "Every route.", body = Vec<RouteRow>))
)]
pub(super) async fn list_routes(State(state): State<AdminState>) -> ApiResult<Json<Vec<RouteRow>>> {
    Ok(Json(state.store.list_routes().await?))
}

/// Delete a route.
#[utoipa::path(
    delete,
    path = "/v1/routes/{hostname}",
    tag = "routes",
    params(("hostname" = String, Path, description = "The route's hostname.")),
    responses(
        (status = 204, description = "Deleted; the edge no longer serves the hostname."),
        (status = 404, description = "No route for that hostname.", body = ApiErrorBody),
    )
)]
pub(super) async fn delete_route(
    State(state): State<AdminState>,
    Path(hostname): Path<String>,
) -> ApiResult<StatusCode> {
    remove_route(&state, &hostname).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the route for `hostname` and reloads the route table: the API
/// and the dashboard both delete routes here.
pub(super) async fn remove_route(state: &AdminState, hostname: &str) -> ApiResult<()> {
    if !state.store.delete_route(hostname).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no route for the hostname {hostname:?}; list routes with `warren tunnel route list`"
            ),
        ));
    }
    state.reload_routes().await?;
    tracing::info!(hostname = %hostname, "route deleted");
    Ok(())
}
