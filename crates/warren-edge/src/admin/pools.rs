//! `/v1/pools`: the PostgreSQL pools of this edge (PgBouncer's `SHOW
//! POOLS` and `SHOW STATS` in one view).

use axum::extract::{Path, State};
use axum::Json;

use super::error::ApiErrorBody;
use super::{AdminState, ApiResult};
use crate::pg::pool::PoolView;

/// List every PostgreSQL pool.
///
/// One per (pooled database, role) that has had a client since the edge
/// started.
#[utoipa::path(
    get,
    path = "/v1/pools",
    tag = "databases",
    responses((status = 200, description = "Every pool, by database and role.", body = [PoolView]))
)]
pub(super) async fn list_pools(State(state): State<AdminState>) -> Json<Vec<PoolView>> {
    Json(state.pg_pools.all().iter().map(|p| p.view()).collect())
}

/// List the pools of one pooled database.
#[utoipa::path(
    get,
    path = "/v1/databases/{name}/pools",
    tag = "databases",
    params(("name" = String, Path, description = "The pooled database's name.")),
    responses(
        (status = 200, description = "Its pools, by role (empty before its first client).", body = [PoolView]),
        (status = 404, description = "No pooled database has that name.", body = ApiErrorBody),
    )
)]
pub(super) async fn database_pools(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<PoolView>>> {
    if state.store.pg_database(&name).await?.is_none() {
        return Err(super::databases::no_database(&name));
    }
    Ok(Json(
        state
            .pg_pools
            .all()
            .iter()
            .map(|p| p.view())
            .filter(|v| v.database == name)
            .collect(),
    ))
}
