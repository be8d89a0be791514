//! The admin REST/JSON API, served on the admin listener: tunnels, their
//! tokens and secrets, and hostname routes.
//!
//! [`router`] builds it over an [`AdminState`]. Every endpoint except
//! `GET /v1/health` and `GET /api/openapi.json` needs `Authorization:
//! Bearer <admin token>`. Every error is `{"error": "<one sentence>"}`;
//! store errors become HTTP statuses in one place ([`ApiError::from`] for
//! [`StoreError`]).
//!
//! **Every admin route is documented.** Each endpoint is registered with
//! `utoipa_axum::routes!` from its handler's `#[utoipa::path]`, which gives
//! the router its route and the OpenAPI 3.1 document its operation from the
//! same annotation (`openapi.rs` adds the rest: info, tags, the
//! `admin_token` scheme on every operation behind the token check). Never
//! add a route with `.route(`: `clippy.toml` refuses it, and the
//! route-walk test (`admin/tests/route_walk.rs`) fails on a served path or
//! method the document does not list. The document is served without the
//! admin token: it is generated from the binary and carries no state (the
//! same for every edge of a version, nothing of this edge's tunnels, routes
//! or users), so it tells no one more than the released source does, and
//! a client can read it before it has a token.
//!
//! | method | path | answer |
//! | --- | --- | --- |
//! | GET | `/v1/health` | `{"status":"ok"}` |
//! | GET | `/api/openapi.json` | this table as an OpenAPI 3.1 document, with every body's schema (no token needed) |
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
//! | ... | `/v1/databases/...` | pooled PostgreSQL databases and their credentials (never returned): see [`databases`] |
//! | ... | `/ui/...` | the dashboard: HTML pages for people, not API operations, so not in the document (see [`ui`]) |
//!
//! **Tokens and secrets are never logged**; responses carrying them are
//! marked `Cache-Control: no-store`.
//!
//! One module per resource: `tunnels`, `tokens` (a tunnel's token and
//! secret rotation), `ingress`, `routes`, `audit`, `access`, `databases`
//! (and `pools`); `auth` checks the admin token, `error` is the one error
//! answer ([`ApiError`]), `openapi` the document. `ui` is the dashboard,
//! mounted beside the API by [`router_with_ui`].

mod access;
mod apply;
mod audit;
mod auth;
mod databases;
mod error;
mod ingress;
mod openapi;
mod pools;
mod routes;
#[cfg(test)]
mod tests;
mod tokens;
mod tunnels;
pub(crate) mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
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

/// Largest body of `POST /v1/apply`: a declared state of up to 4 MiB
/// (what `warren apply` reads), its configs escaped as JSON strings.
pub(crate) const APPLY_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The body bound of a request to `path`.
fn body_limit(path: &str) -> usize {
    if path.starts_with("/v1/tunnels/") && path.ends_with("/ingress") {
        INGRESS_BODY_LIMIT
    } else if path == "/v1/apply" {
        APPLY_BODY_LIMIT
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
    /// Pooled databases: their credentials are sealed with its key, and it
    /// is reloaded after every database change.
    pub databases: crate::databases::Databases,
    /// The PostgreSQL pools, for `/v1/pools`.
    pub pg_pools: Arc<crate::pg::pool::Pools>,
}

/// The admin API, with a dashboard of default settings (the admin token
/// only, its traffic never sampled): what tests and fuzzers serve.
pub(crate) fn router(state: AdminState, body_timeout: Duration) -> Router {
    let dashboard = ui::Ui::new(ui::UiSettings::default(), Default::default());
    router_with_ui(state, body_timeout, dashboard)
}

/// The admin API and, under `/ui/`, the `dashboard`. A request's body
/// must arrive whole within `body_timeout` (see [`body_within`]).
pub(crate) fn router_with_ui(
    state: AdminState,
    body_timeout: Duration,
    dashboard: Arc<ui::Ui>,
) -> Router {
    let (routes, api) = endpoints(&state).split_for_parts();
    let api = routes
        .fallback(no_such_endpoint)
        // After every route: it is set on the routes registered so far.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(openapi::Document::new(api)))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(move |req, next| {
            body_within(body_timeout, req, next)
        }))
        .with_state(state.clone());
    ui::mount(api, ui::Ctx::new(state, dashboard), body_timeout)
}

/// Every endpoint, each registered with its OpenAPI operation by
/// `routes!`, and the document they make.
fn endpoints(state: &AdminState) -> OpenApiRouter<AdminState> {
    let mut authed = OpenApiRouter::default()
        .routes(routes!(tunnels::list_tunnels, tunnels::create_tunnel))
        .routes(routes!(tunnels::tunnel_info, tunnels::delete_tunnel))
        .routes(routes!(tokens::tunnel_token))
        .routes(routes!(tokens::rotate_secret))
        .routes(routes!(tokens::revoke_previous_secret))
        .routes(
            routes!(ingress::get_ingress, ingress::set_ingress)
                .layer(DefaultBodyLimit::max(INGRESS_BODY_LIMIT)),
        )
        .routes(routes!(routes::list_routes, routes::add_route))
        .routes(routes!(routes::delete_route))
        .routes(routes!(audit::list_audit))
        .routes(routes!(audit::verify_audit))
        .routes(routes!(apply::apply).layer(DefaultBodyLimit::max(APPLY_BODY_LIMIT)))
        .routes(routes!(apply::export))
        .routes(routes!(metrics))
        .merge(access::routes())
        .merge(databases::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    openapi::behind_token(authed.get_openapi_mut());
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health))
        .routes(routes!(openapi::openapi_json))
        .merge(authed)
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

/// The edge's metrics, in the OpenMetrics text format.
///
/// Tunnels are named as the store names them; `metrics.rs` lists the
/// series.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    responses((
        status = 200,
        description = "Every series, OpenMetrics text.",
        body = String,
        content_type = warren_transport::metrics::CONTENT_TYPE,
    ))
)]
async fn metrics(
    axum::extract::State(state): axum::extract::State<AdminState>,
) -> ApiResult<Response> {
    let tunnels = state.store.list_tunnels().await?;
    let names = crate::metrics::TunnelNames::new(tunnels.into_iter().map(|t| (t.id, t.name)));
    let pools: Vec<_> = state.pg_pools.all().iter().map(|p| p.view()).collect();
    let text = state.metrics.render(&state.registry, &names, &pools).await;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            warren_transport::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

/// The answer of `GET /v1/health`.
#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// Whether the admin API answers; needs no token.
#[utoipa::path(
    get,
    path = "/v1/health",
    tag = "health",
    responses((status = 200, description = "The edge is up.", body = Health))
)]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The answer to a path no endpoint has.
const NO_SUCH_ENDPOINT: &str = "there is no such admin API endpoint; the API lives under /v1 (for example GET /v1/tunnels), and GET /api/openapi.json lists every endpoint";

/// The answer to a method a path's endpoint does not take.
const METHOD_NOT_ALLOWED: &str = "this admin API endpoint does not take that HTTP method; GET /api/openapi.json lists the methods of every endpoint";

async fn no_such_endpoint() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, NO_SUCH_ENDPOINT)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED)
}
