//! The admin REST/JSON API, served on the admin listener: tunnels, their
//! tokens and secrets, and hostname routes.
//!
//! [`router`] builds it over an [`AdminState`]. Every endpoint except
//! `GET /v1/health` needs `Authorization: Bearer <admin token>`. Every
//! error is `{"error": "<one sentence>"}`; store errors become HTTP
//! statuses in one place ([`ApiError::from`] for [`StoreError`]).
//!
//! | method | path | answer |
//! | --- | --- | --- |
//! | GET | `/v1/health` | `{"status":"ok"}` |
//! | POST | `/v1/tunnels` `{"name"}` | 201 tunnel |
//! | GET | `/v1/tunnels` | tunnels with `status` and `connections` |
//! | GET | `/v1/tunnels/{name_or_id}` | tunnel plus `routes` |
//! | DELETE | `/v1/tunnels/{name_or_id}` | 204 |
//! | GET | `/v1/tunnels/{name_or_id}/token` | `{"token"}` |
//! | POST | `/v1/tunnels/{name_or_id}/rotate-secret?grace_seconds=N` | `{"token"}` (new); the replaced secret keeps working for N s (default 86400, at most 30 days, 0: not at all) |
//! | PUT | `/v1/tunnels/{name_or_id}/ingress` `{"config": "<YAML>"}` | `{"version", "warnings", "connections": [{"connector_id", "conn_index", "applied", "message"}]}`: validated, stored, pushed to every live connection |
//! | GET | `/v1/tunnels/{name_or_id}/ingress` | `{"version", "updated_at", "config"}` |
//! | POST | `/v1/tunnels/{name_or_id}/revoke-old-secret` | `{"revoked", "closed_connections"}`: the replaced secret stops working now |
//! | POST | `/v1/routes` `{"tunnel","hostname"}`, or `{"hostname","steering","tunnels":[{"tunnel","weight"}]}` | 201 route |
//! | GET | `/v1/routes` | routes |
//! | DELETE | `/v1/routes/{hostname}` | 204 |
//! | GET | `/v1/audit?since=&app=&identity=&decision=&after=&limit=` | `{"entries", "next_after"}`, oldest first |
//! | GET | `/v1/audit/verify` | `{"checked", "broken_at", "problem"}` |
//! | POST | `/v1/apply` `{"declared", "dry_run"?, "prune"?}` | `{"changes": [{"action", "kind", "name", "detail"?}], "applied", "warnings", "new_secrets"?}`: the edge made to match a declared state, in one transaction (see `apply`) |
//! | GET | `/v1/export` | the edge's state as a declared state (`warren export`) |
//! | GET | `/metrics` | the edge's metrics, OpenMetrics text (see `metrics.rs`) |
//! | ... | `/v1/access/...` | applications, policies, service tokens, identity providers, sessions, keys: see [`access`] |
//!
//! **Tokens and secrets are never logged**; responses carrying them are
//! marked `Cache-Control: no-store`.
//!
//! One module per resource: `tunnels`, `tokens` (a tunnel's token and
//! secret rotation), `routes`, `audit`, `access`; `auth` checks the admin
//! token, `error` is the one error answer ([`ApiError`]).

mod access;
mod apply;
mod audit;
mod auth;
mod error;
mod ingress;
mod routes;
#[cfg(test)]
mod tests;
mod tokens;
mod tunnels;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use warren_store::Store;

use crate::registry::Registry;
use crate::routes::RouteTable;
use crate::secrets::TunnelSecrets;

pub(crate) use error::ApiError;
use error::ApiResult;

/// Largest request body the API reads.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// Largest body of `PUT /v1/tunnels/{t}/ingress`: a config at the
/// connector's 1 MiB bound, escaped as a JSON string.
pub(crate) const INGRESS_BODY_LIMIT: usize = 3 * 1024 * 1024;

/// The body bound of a request to `path`.
fn body_limit(path: &str) -> usize {
    if path.starts_with("/v1/tunnels/") && path.ends_with("/ingress") {
        INGRESS_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

/// What the admin handlers share.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub store: Store,
    pub secrets: Arc<TunnelSecrets>,
    /// Reloaded after every route or tunnel change.
    pub routes: RouteTable,
    pub registry: Registry,
    /// Edge tunnel addresses to put in tokens.
    pub token_edges: Vec<String>,
    /// CA pin to put in tokens.
    pub ca_pin: String,
    /// Refreshed after every access change, so this process acts on it at
    /// once (other edge processes notice within their refresh period).
    pub access: crate::access::Access,
    /// Which hostnames may be routed.
    pub route_policy: crate::routes::RoutePolicy,
    /// What `/metrics` shows.
    pub metrics: Arc<crate::metrics::EdgeMetrics>,
}

/// The admin API. A request's body must arrive whole within
/// `body_timeout` (see [`body_within`]).
pub(crate) fn router(state: AdminState, body_timeout: Duration) -> Router {
    let authed = Router::new()
        .route(
            "/v1/tunnels",
            get(tunnels::list_tunnels).post(tunnels::create_tunnel),
        )
        .route(
            "/v1/tunnels/{tunnel}",
            get(tunnels::tunnel_info).delete(tunnels::delete_tunnel),
        )
        .route("/v1/tunnels/{tunnel}/token", get(tokens::tunnel_token))
        .route(
            "/v1/tunnels/{tunnel}/rotate-secret",
            post(tokens::rotate_secret),
        )
        .route(
            "/v1/tunnels/{tunnel}/revoke-old-secret",
            post(tokens::revoke_previous_secret),
        )
        .route(
            "/v1/tunnels/{tunnel}/ingress",
            get(ingress::get_ingress)
                .put(ingress::set_ingress)
                .layer(DefaultBodyLimit::max(INGRESS_BODY_LIMIT)),
        )
        .route(
            "/v1/routes",
            get(routes::list_routes).post(routes::add_route),
        )
        .route("/v1/routes/{hostname}", delete(routes::delete_route))
        .route("/v1/audit", get(audit::list_audit))
        .route("/v1/audit/verify", get(audit::verify_audit))
        .route("/v1/apply", post(apply::apply))
        .route("/v1/export", get(apply::export))
        .route("/metrics", get(metrics))
        .merge(access::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    Router::new()
        .route("/v1/health", get(health))
        .merge(authed)
        .fallback(no_such_endpoint)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(move |req, next| {
            body_within(body_timeout, req, next)
        }))
        .with_state(state)
}

/// Reads a request's whole body, at most [`BODY_LIMIT`] bytes, within
/// `timeout` before any handler sees it: a client that promises more
/// bytes than it sends is answered 408 instead of holding a connection
/// and a task forever.
async fn body_within(timeout: Duration, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let limit = body_limit(parts.uri.path());
    let read = Limited::new(body, limit).collect();
    let bytes = match tokio::time::timeout(timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {limit} bytes; send less"),
            )
            .into_response()
        }
        Ok(Err(e)) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read ({e}); send it again"),
            )
            .into_response()
        }
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s (is Content-Length larger than the body?); send it whole, or raise --header-read-timeout",
                    timeout.as_secs()
                ),
            )
            .into_response()
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `GET /metrics`: the edge's metrics, with tunnels named as the store
/// names them.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AdminState>,
) -> ApiResult<Response> {
    let tunnels = state.store.list_tunnels().await?;
    let names = crate::metrics::TunnelNames::new(tunnels.into_iter().map(|t| (t.id, t.name)));
    let text = state.metrics.render(&state.registry, &names).await;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            warren_transport::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn no_such_endpoint() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "there is no such admin API endpoint; the API lives under /v1 (for example GET /v1/tunnels)",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this admin API endpoint does not take that HTTP method; see the endpoint list in the admin API documentation",
    )
}
