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
//! | POST | `/v1/tunnels/{name_or_id}/rotate-secret` | `{"token"}` (new) |
//! | POST | `/v1/routes` `{"tunnel","hostname"}`, or `{"hostname","steering","tunnels":[{"tunnel","weight"}]}` | 201 route |
//! | GET | `/v1/routes` | routes |
//! | DELETE | `/v1/routes/{hostname}` | 204 |
//! | GET | `/v1/audit?since=&app=&identity=&decision=&after=&limit=` | `{"entries", "next_after"}`, oldest first |
//! | GET | `/v1/audit/verify` | `{"checked", "broken_at", "problem"}` |
//! | ... | `/v1/access/...` | applications, policies, service tokens, identity providers, sessions, keys: see [`access`] |
//!
//! **Tokens and secrets are never logged**; responses carrying them are
//! marked `Cache-Control: no-store`.

mod access;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use warren_proto::token::{hash_secret, verify_secret, TunnelToken};
use warren_store::{
    AuditFilter, AuditRecord, AuditVerdict, RouteRow, Steering, Store, StoreError, Tunnel,
};

use crate::registry::{ConnectionInfo, ConnectorInfo, Registry};
use crate::routes::RouteTable;
use crate::secrets::{try_check_admin_token, TunnelSecrets};

/// Largest request body the API reads.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Generation of a new tunnel's first secret.
const FIRST_GENERATION: i64 = 1;

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
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
}

/// The admin API.
pub fn router(state: AdminState) -> Router {
    let authed = Router::new()
        .route("/v1/tunnels", get(list_tunnels).post(create_tunnel))
        .route(
            "/v1/tunnels/{tunnel}",
            get(tunnel_info).delete(delete_tunnel),
        )
        .route("/v1/tunnels/{tunnel}/token", get(tunnel_token))
        .route("/v1/tunnels/{tunnel}/rotate-secret", post(rotate_secret))
        .route("/v1/routes", get(list_routes).post(add_route))
        .route("/v1/routes/{hostname}", delete(delete_route))
        .route("/v1/audit", get(list_audit))
        .route("/v1/audit/verify", get(verify_audit))
        .merge(access::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/v1/health", get(health))
        .merge(authed)
        .fallback(no_such_endpoint)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

// ---- errors ----

/// An error answer: a status and one sentence.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn no_tunnel(key: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("no tunnel named or with id {key:?}; list tunnels with `warren tunnel list`"),
        )
    }

    /// Turns a body the JSON extractor refused into a sentence.
    fn bad_body(rejection: JsonRejection, example: &str) -> Self {
        let detail = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => format!("it is larger than {BODY_LIMIT} bytes"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "it is not marked Content-Type: application/json".to_owned()
            }
            _ => rejection.body_text(),
        };
        Self::new(
            rejection.status(),
            format!("the request body was refused ({detail}); send JSON such as {example}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The one place store errors become HTTP answers.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::InvalidName(_)
            | StoreError::InvalidHostname(_)
            | StoreError::InvalidPool(_)
            | StoreError::InvalidApp(_)
            | StoreError::InvalidServiceTokenName(_)
            | StoreError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            StoreError::TunnelExists(_)
            | StoreError::RouteExists { .. }
            | StoreError::AppExists(_)
            | StoreError::ServiceTokenExists(_)
            | StoreError::ServiceTokenRevoked(_) => StatusCode::CONFLICT,
            StoreError::UnknownTunnel(_)
            | StoreError::UnknownApp(_)
            | StoreError::UnknownServiceToken(_) => StatusCode::NOT_FOUND,
            StoreError::Io { .. }
            | StoreError::Database { .. }
            | StoreError::Migrate { .. }
            | StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "admin API store failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Self::new(status, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

// ---- auth ----

async fn require_admin(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    const HINT: &str = "set WARREN_API_TOKEN to the contents of <data-dir>/admin-token (the API reads it from `Authorization: Bearer <token>`)";
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let Some(presented) = presented else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("this request carries no admin API token; {HINT}"),
        )
        .into_response();
    };
    match try_check_admin_token(&state.store, presented).await {
        Ok(true) => next.run(req).await,
        Ok(false) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("the admin API token is not valid for this edge; {HINT}"),
        )
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

// ---- views ----

/// A tunnel as the API shows it.
#[derive(Debug, Serialize)]
struct TunnelView {
    #[serde(flatten)]
    tunnel: Tunnel,
    /// `active`: some connector has all its connections up; `degraded`:
    /// serving on fewer; `inactive`: no connection.
    status: &'static str,
    /// Unix seconds since the tunnel has been continuously connected.
    up_since: Option<u64>,
    connectors: Vec<ConnectorInfo>,
    connections: Vec<ConnectionInfo>,
    /// Hostnames routed to the tunnel (single-tunnel answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    routes: Option<Vec<String>>,
}

impl AdminState {
    fn view(&self, tunnel: Tunnel) -> TunnelView {
        let health = self.registry.health(&tunnel.id);
        TunnelView {
            status: health.status.as_str(),
            up_since: health.up_since,
            connectors: health.connectors,
            connections: health.connections,
            routes: None,
            tunnel,
        }
    }

    async fn find_tunnel(&self, key: &str) -> ApiResult<Tunnel> {
        self.store
            .get_tunnel(key)
            .await?
            .ok_or_else(|| ApiError::no_tunnel(key))
    }

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

    /// Applies a route/tunnel change to the request path.
    async fn reload_routes(&self) -> ApiResult<()> {
        Ok(self.routes.reload(&self.store).await?)
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

// ---- handlers ----

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

#[derive(Deserialize)]
struct CreateTunnel {
    name: String,
}

async fn create_tunnel(
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

async fn list_tunnels(State(state): State<AdminState>) -> ApiResult<Json<Vec<TunnelView>>> {
    let tunnels = state.store.list_tunnels().await?;
    Ok(Json(tunnels.into_iter().map(|t| state.view(t)).collect()))
}

async fn tunnel_info(
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
    let mut view = state.view(tunnel);
    view.routes = Some(routes);
    Ok(Json(view))
}

async fn delete_tunnel(
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

async fn tunnel_token(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    let tunnel = state.find_tunnel(&key).await?;
    Ok(token_response(state.token(&tunnel).await?))
}

/// Moves the tunnel to the next secret generation. Live connections stay
/// up (they registered with the old secret); new registrations need the
/// new token.
async fn rotate_secret(
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

/// `{"tunnel", "hostname"}` for one tunnel, or `{"hostname", "steering",
/// "tunnels": [{"tunnel", "weight"}]}` for a load balancer over tunnels
/// (priority = order).
#[derive(Deserialize)]
struct AddRoute {
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
struct PoolMember {
    tunnel: String,
    #[serde(default = "one")]
    weight: i64,
}

fn one() -> i64 {
    1
}

async fn add_route(
    State(state): State<AdminState>,
    body: Result<Json<AddRoute>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<RouteRow>)> {
    const EXAMPLE: &str = r#"{"tunnel": "office", "hostname": "app.example.com"} or {"hostname": "app.example.com", "steering": "failover", "tunnels": [{"tunnel": "primary"}, {"tunnel": "backup"}]}"#;
    let Json(body) = body.map_err(|r| ApiError::bad_body(r, EXAMPLE))?;
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

/// Filters and paging of `GET /v1/audit`.
#[derive(Deserialize)]
struct AuditQuery {
    since: Option<i64>,
    app: Option<String>,
    identity: Option<String>,
    decision: Option<String>,
    /// Entries after this sequence number (the previous page's
    /// `next_after`).
    after: Option<i64>,
    /// Page size, at most 1000 (default 100).
    limit: Option<u32>,
}

#[derive(Serialize)]
struct AuditPage {
    entries: Vec<AuditRecord>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<i64>,
}

async fn list_audit(
    State(state): State<AdminState>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = state
        .store
        .list_audit(&AuditFilter {
            since: q.since,
            app: q.app,
            identity: q.identity,
            decision: q.decision,
            after_seq: q.after,
            limit,
        })
        .await?;
    let next_after = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditPage {
        entries,
        next_after,
    }))
}

async fn verify_audit(State(state): State<AdminState>) -> ApiResult<Json<AuditVerdict>> {
    Ok(Json(state.store.verify_audit().await?))
}

async fn list_routes(State(state): State<AdminState>) -> ApiResult<Json<Vec<RouteRow>>> {
    Ok(Json(state.store.list_routes().await?))
}

async fn delete_route(
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;
    use warren_proto::token::ca_pin;

    use super::*;
    use crate::secrets::bootstrap_admin_token;

    struct Api {
        _dir: tempfile::TempDir,
        state: AdminState,
        app: Router,
        token: String,
    }

    impl Api {
        async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).await.unwrap();
            let token = bootstrap_admin_token(&store, dir.path())
                .await
                .unwrap()
                .unwrap();
            let routes = RouteTable::new();
            let access = crate::access::Access::start(
                store.clone(),
                crate::audit::AuditSink::start(store.clone(), std::time::Duration::from_secs(3600)),
                routes.clone(),
                Default::default(),
            )
            .await
            .unwrap();
            let state = AdminState {
                store,
                secrets: Arc::new(TunnelSecrets::load_or_create(dir.path()).unwrap()),
                access,
                routes,
                registry: Registry::new(),
                token_edges: vec!["127.0.0.1:7844".into(), "127.0.0.2:7844".into()],
                ca_pin: ca_pin(b"ca"),
            };
            let app = router(state.clone());
            Self {
                _dir: dir,
                state,
                app,
                token,
            }
        }

        async fn send(&self, req: axum::http::Request<Body>) -> (StatusCode, Value) {
            let resp = self.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            let json = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!(
                        "{status}: not JSON ({e}): {}",
                        String::from_utf8_lossy(&bytes)
                    )
                })
            };
            (status, json)
        }

        async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
            let mut req = axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
            let body = match body {
                Some(v) => {
                    req = req.header(header::CONTENT_TYPE, "application/json");
                    Body::from(v.to_string())
                }
                None => Body::empty(),
            };
            self.send(req.body(body).unwrap()).await
        }

        async fn create(&self, name: &str) -> Value {
            let (status, body) = self
                .call("POST", "/v1/tunnels", Some(json!({ "name": name })))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body
        }

        async fn token_of(&self, tunnel: &str, method: &str, action: &str) -> TunnelToken {
            let (status, body) = self
                .call(method, &format!("/v1/tunnels/{tunnel}/{action}"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            TunnelToken::decode(body["token"].as_str().unwrap()).unwrap()
        }

        async fn stored_hash(&self, id: &str) -> Vec<u8> {
            self.state
                .store
                .tunnel_secret_hash(id)
                .await
                .unwrap()
                .unwrap()
        }
    }

    fn error(body: &Value) -> &str {
        body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {body}"))
    }

    #[tokio::test]
    async fn health_is_open_and_everything_else_needs_the_token() {
        let api = Api::new().await;
        let get = |uri: &str, auth: Option<&str>| {
            let mut req = axum::http::Request::builder().uri(uri);
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            req.body(Body::empty()).unwrap()
        };
        let (status, body) = api.send(get("/v1/health", None)).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));

        for auth in [
            None,
            Some("Bearer"),
            Some("Bearer wat_nope"),
            Some("Basic dXNlcjpwYXNz"),
        ] {
            let resp = api
                .app
                .clone()
                .oneshot(get("/v1/tunnels", auth))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
            assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
            let (_, body) = api.send(get("/v1/routes", auth)).await;
            assert!(error(&body).contains("WARREN_API_TOKEN"), "{body}");
            assert!(error(&body).contains("admin-token"), "{body}");
        }
        let lower = format!("bearer {}", api.token);
        let (status, _) = api.send(get("/v1/tunnels", Some(&lower))).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn creates_lists_gets_and_deletes_tunnels() {
        let api = Api::new().await;
        let created = api.create("office").await;
        assert_eq!(created["name"], "office");
        assert_eq!(created["secret_generation"], 1);
        assert_eq!(created["status"], "inactive");
        assert_eq!(created["connections"], json!([]));
        assert!(created.get("secret_hash").is_none());
        let id = created["id"].as_str().unwrap().to_owned();

        let (status, body) = api
            .call("POST", "/v1/tunnels", Some(json!({"name": "office"})))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(error(&body).contains("already exists"), "{body}");
        let (status, _) = api
            .call("POST", "/v1/tunnels", Some(json!({"name": "no spaces"})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        api.create("lab").await;
        let (status, list) = api.call("GET", "/v1/tunnels", None).await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<_> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["lab", "office"]);
        assert_eq!(list[1]["status"], "inactive");
        assert_eq!(list[1]["connections"], json!([]));

        for key in ["office", id.as_str()] {
            let (status, info) = api.call("GET", &format!("/v1/tunnels/{key}"), None).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(info["id"], id.as_str());
            assert_eq!(info["routes"], json!([]));
        }
        let (status, body) = api.call("GET", "/v1/tunnels/nope", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            error(&body),
            "no tunnel named or with id \"nope\"; list tunnels with `warren tunnel list`"
        );

        let (status, body) = api.call("DELETE", "/v1/tunnels/office", None).await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
        let (status, _) = api.call("GET", &format!("/v1/tunnels/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = api.call("DELETE", "/v1/tunnels/office", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn token_carries_a_secret_that_matches_the_stored_hash() {
        let api = Api::new().await;
        let id = api.create("office").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = api.token_of("office", "GET", "token").await;
        assert_eq!(token.tunnel_id, id);
        assert_eq!(token.edges, ["127.0.0.1:7844", "127.0.0.2:7844"]);
        assert_eq!(token.ca_pin, ca_pin(b"ca"));
        assert!(verify_secret(&token.secret, &api.stored_hash(&id).await));
        // Asking again gives the same token: it is re-derived, not stored.
        assert_eq!(api.token_of(&id, "GET", "token").await, token);
    }

    #[tokio::test]
    async fn rotating_changes_the_secret() {
        let api = Api::new().await;
        let id = api.create("office").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let old = api.token_of("office", "GET", "token").await;
        let new = api.token_of("office", "POST", "rotate-secret").await;
        assert_ne!(new.secret, old.secret);
        let hash = api.stored_hash(&id).await;
        assert!(verify_secret(&new.secret, &hash));
        assert!(!verify_secret(&old.secret, &hash));
        assert_eq!(api.token_of("office", "GET", "token").await, new);
        let (_, info) = api.call("GET", "/v1/tunnels/office", None).await;
        assert_eq!(info["secret_generation"], 2);
    }

    #[tokio::test]
    async fn token_is_refused_when_the_key_no_longer_matches() {
        let api = Api::new().await;
        api.create("office").await;
        let mut state = api.state.clone();
        state.secrets = Arc::new(TunnelSecrets::from_key([9; 32]));
        let app = router(state);
        let req = axum::http::Request::builder()
            .uri("/v1/tunnels/office/token")
            .header(header::AUTHORIZATION, format!("Bearer {}", api.token))
            .body(Body::empty())
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::CONFLICT);
    }

    #[tokio::test]
    async fn route_crud_reloads_the_route_table() {
        let api = Api::new().await;
        api.create("office").await;
        let (status, route) = api
            .call(
                "POST",
                "/v1/routes",
                Some(json!({"tunnel": "office", "hostname": "App.Example.com"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{route}");
        assert_eq!(route["hostname"], "app.example.com");
        assert_eq!(route["tunnel_name"], "office");
        assert_eq!(
            api.state.routes.lookup("app.example.com").unwrap().tunnels[0].name,
            "office"
        );

        let (status, body) = api
            .call(
                "POST",
                "/v1/routes",
                Some(json!({"tunnel": "office", "hostname": "app.example.com"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            error(&body).contains("already routes to tunnel office"),
            "{body}"
        );
        let (status, _) = api
            .call(
                "POST",
                "/v1/routes",
                Some(json!({"tunnel": "office", "hostname": "http://x"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = api
            .call(
                "POST",
                "/v1/routes",
                Some(json!({"tunnel": "nope", "hostname": "x.example.com"})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (_, info) = api.call("GET", "/v1/tunnels/office", None).await;
        assert_eq!(info["routes"], json!(["app.example.com"]));
        let (status, list) = api.call("GET", "/v1/routes", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 1);

        let (status, _) = api.call("DELETE", "/v1/routes/app.example.com", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(api.state.routes.lookup("app.example.com").is_none());
        let (status, body) = api.call("DELETE", "/v1/routes/app.example.com", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(error(&body).contains("no route"), "{body}");
    }

    #[tokio::test]
    async fn deleting_a_tunnel_drops_its_routes_from_the_table() {
        let api = Api::new().await;
        api.create("office").await;
        let (status, _) = api
            .call(
                "POST",
                "/v1/routes",
                Some(json!({"tunnel": "office", "hostname": "*.example.com"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert!(api.state.routes.lookup("a.example.com").is_some());
        let (status, _) = api.call("DELETE", "/v1/tunnels/office", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(api.state.routes.lookup("a.example.com").is_none());
        let (_, list) = api.call("GET", "/v1/routes", None).await;
        assert_eq!(list, json!([]));
    }

    #[tokio::test]
    async fn bad_requests_get_json_sentences() {
        let api = Api::new().await;
        let raw = |body: Body, content_type: &str| {
            axum::http::Request::builder()
                .method("POST")
                .uri("/v1/tunnels")
                .header(header::AUTHORIZATION, format!("Bearer {}", api.token))
                .header(header::CONTENT_TYPE, content_type)
                .body(body)
                .unwrap()
        };
        let (status, body) = api
            .send(raw(Body::from("{not json"), "application/json"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(error(&body).contains(r#"{"name": "office"}"#), "{body}");
        let (status, _) = api.send(raw(Body::from("{}"), "application/json")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = api.send(raw(Body::from("{}"), "text/plain")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(BODY_LIMIT));
        let (status, body) = api.send(raw(Body::from(big), "application/json")).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(error(&body).contains("larger than"), "{body}");

        let (status, body) = api.call("GET", "/v2/nothing", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        error(&body);
        let (status, body) = api.call("PUT", "/v1/tunnels", None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        error(&body);
    }
}
