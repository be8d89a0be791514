//! Admin API endpoints for access control: applications and their
//! policies, service tokens, identity providers, sessions, signing keys,
//! and a route's public flag.
//!
//! | method | path | answer |
//! | --- | --- | --- |
//! | POST | `/v1/access/apps` `{"name","hostnames","path_prefix"?,"session_duration_secs"?,"policies"?,"statement_log"?}` | 201 app |
//! | GET | `/v1/access/apps` | apps |
//! | GET / DELETE | `/v1/access/apps/{name}` | app / 204 |
//! | PATCH | `/v1/access/apps/{name}` `{"statement_log"?,"session_duration_secs"?,"hostnames"?,"path_prefix"?}` | app |
//! | POST | `/v1/access/apps/{name}/policies` `{policy..., "position"?}` | app |
//! | DELETE | `/v1/access/apps/{name}/policies/{policy}` | app |
//! | POST | `/v1/access/service-tokens` `{"name","duration_days"?}` | 201 token with `client_secret` (shown once) |
//! | GET | `/v1/access/service-tokens` | tokens (no secrets) |
//! | POST | `/v1/access/service-tokens/{name}/revoke` | token |
//! | POST | `/v1/access/service-tokens/{name}/rotate` | token with the new `client_secret` |
//! | POST | `/v1/access/idps` `{"name","issuer","client_id","client_secret","scopes"?,"groups_claim"?,"ca_file"?}` | 201 idp (no secret) |
//! | GET | `/v1/access/idps` | idps (no secrets) |
//! | DELETE | `/v1/access/idps/{name}` | 204 |
//! | GET | `/v1/access/sessions` | sessions |
//! | POST | `/v1/access/sessions/revoke` `{"session"}` (an id or an email) | `{"revoked": n}` |
//! | POST | `/v1/access/keys/rotate` | `{"kid"}` |
//! | PATCH | `/v1/routes/{hostname}` `{"public"}` | 204 |

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use warren_policy::{Application, Policy};
use warren_proto::token::hash_secret;
use warren_store::{AppRow, IdpRow, ServiceTokenRow, SessionRow, StoreError};

use super::{AdminState, ApiError, ApiResult};

/// The access routes (behind the admin token check).
pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/v1/access/apps", get(list_apps).post(create_app))
        .route(
            "/v1/access/apps/{name}",
            get(show_app).delete(delete_app).patch(update_app),
        )
        .route("/v1/access/apps/{name}/policies", post(add_policy))
        .route(
            "/v1/access/apps/{name}/policies/{policy}",
            delete(remove_policy),
        )
        .route(
            "/v1/access/service-tokens",
            get(list_tokens).post(create_token),
        )
        .route(
            "/v1/access/service-tokens/{name}/revoke",
            post(revoke_token),
        )
        .route(
            "/v1/access/service-tokens/{name}/rotate",
            post(rotate_token),
        )
        .route("/v1/access/idps", get(list_idps).post(add_idp))
        .route("/v1/access/idps/{name}", delete(delete_idp))
        .route("/v1/access/sessions", get(list_sessions))
        .route("/v1/access/sessions/revoke", post(revoke_sessions))
        .route("/v1/access/keys/rotate", post(rotate_keys))
        .route("/v1/routes/{hostname}", patch(set_public))
}

impl AdminState {
    /// Makes this process act on an access change now.
    async fn access_changed(&self) -> ApiResult<()> {
        Ok(self.access.refresh().await?)
    }
}

fn default_session() -> u64 {
    24 * 3600
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApp {
    name: String,
    hostnames: Vec<String>,
    #[serde(default)]
    path_prefix: Option<String>,
    #[serde(default = "default_session")]
    session_duration_secs: u64,
    #[serde(default)]
    policies: Vec<Policy>,
    #[serde(default)]
    statement_log: bool,
}

async fn create_app(
    State(state): State<AdminState>,
    body: Result<Json<CreateApp>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<AppRow>)> {
    const EXAMPLE: &str =
        r#"{"name": "wiki", "hostnames": ["wiki.example.com"], "session_duration_secs": 86400}"#;
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, EXAMPLE))?;
    let app = Application {
        name: b.name,
        hostnames: b
            .hostnames
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        path_prefix: b.path_prefix,
        session_duration_secs: b.session_duration_secs,
        policies: b.policies,
    };
    let row = state.store.create_app(&app, b.statement_log).await?;
    state.access_changed().await?;
    tracing::info!(app = %row.name, hostnames = ?row.app.hostnames, "access application created");
    Ok((StatusCode::CREATED, Json(row)))
}

async fn list_apps(State(state): State<AdminState>) -> ApiResult<Json<Vec<AppRow>>> {
    Ok(Json(state.store.list_apps().await?))
}

async fn show_app(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<Json<AppRow>> {
    state
        .store
        .get_app(&name)
        .await?
        .map(Json)
        .ok_or_else(|| StoreError::UnknownApp(name).into())
}

async fn delete_app(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store.delete_app(&name).await? {
        return Err(StoreError::UnknownApp(name).into());
    }
    state.access_changed().await?;
    tracing::info!(app = %name, "access application deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateApp {
    #[serde(default)]
    statement_log: Option<bool>,
    #[serde(default)]
    session_duration_secs: Option<u64>,
    #[serde(default)]
    hostnames: Option<Vec<String>>,
    #[serde(default)]
    path_prefix: Option<String>,
}

async fn update_app(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Result<Json<UpdateApp>, JsonRejection>,
) -> ApiResult<Json<AppRow>> {
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, r#"{"statement_log": true}"#))?;
    let row = state
        .store
        .modify_app(&name, |row| {
            if let Some(s) = b.statement_log {
                row.statement_log = s;
            }
            if let Some(d) = b.session_duration_secs {
                row.app.session_duration_secs = d;
            }
            if let Some(h) = b.hostnames {
                row.app.hostnames = h.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
            }
            if let Some(p) = b.path_prefix {
                row.app.path_prefix = (!p.is_empty()).then_some(p);
            }
            Ok(())
        })
        .await?;
    state.access_changed().await?;
    Ok(Json(row))
}

#[derive(Deserialize)]
struct AddPolicy {
    #[serde(flatten)]
    policy: Policy,
    /// 1-based place among the policies; default last.
    #[serde(default)]
    position: Option<usize>,
}

async fn add_policy(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Result<Json<AddPolicy>, JsonRejection>,
) -> ApiResult<Json<AppRow>> {
    const EXAMPLE: &str =
        r#"{"name": "staff", "action": "allow", "include": [{"email_domain": "example.com"}]}"#;
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, EXAMPLE))?;
    let policy_name = b.policy.name.clone();
    let row = state
        .store
        .modify_app(&name, |row| {
            if row.app.policies.iter().any(|p| p.name == b.policy.name) {
                return Err(StoreError::InvalidApp(format!(
                    "application {} already has a policy named {:?}; remove it first with `warren access policy remove {} {}`",
                    row.name, b.policy.name, row.name, b.policy.name
                )));
            }
            let at = b
                .position
                .map_or(row.app.policies.len(), |p| p.saturating_sub(1))
                .min(row.app.policies.len());
            row.app.policies.insert(at, b.policy);
            Ok(())
        })
        .await?;
    state.access_changed().await?;
    tracing::info!(app = %name, policy = %policy_name, "access policy added");
    Ok(Json(row))
}

async fn remove_policy(
    State(state): State<AdminState>,
    Path((name, policy)): Path<(String, String)>,
) -> ApiResult<Json<AppRow>> {
    let row = state
        .store
        .modify_app(&name, |row| {
            let before = row.app.policies.len();
            row.app.policies.retain(|p| p.name != policy);
            if row.app.policies.len() == before {
                return Err(StoreError::InvalidApp(format!(
                    "application {} has no policy named {policy:?}; list them with `warren access policy list {}`",
                    row.name, row.name
                )));
            }
            Ok(())
        })
        .await?;
    state.access_changed().await?;
    tracing::info!(app = %name, %policy, "access policy removed");
    Ok(Json(row))
}

/// The longest a service token may be created for: a year (and a day).
pub(super) const MAX_TOKEN_DAYS: i64 = 366;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    /// Days until it expires; default never.
    #[serde(default)]
    duration_days: Option<i64>,
}

/// A fresh client id and secret.
pub(super) fn new_credentials() -> (String, String) {
    let mut secret = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut secret[..]);
    (
        format!("{}.access", uuid::Uuid::new_v4().simple()),
        hex::encode(secret),
    )
}

/// A token with its secret; never cached.
fn with_secret(row: &ServiceTokenRow, secret: &str) -> Response {
    let mut v = serde_json::to_value(row).expect("tokens serialize");
    v["client_id"] = json!(row.id);
    v["client_secret"] = json!(secret);
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(v),
    )
        .into_response()
}

async fn create_token(
    State(state): State<AdminState>,
    body: Result<Json<CreateToken>, JsonRejection>,
) -> ApiResult<(StatusCode, Response)> {
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, r#"{"name": "ci"}"#))?;
    let expires_at = match b.duration_days {
        None => None,
        Some(d @ 1..=MAX_TOKEN_DAYS) => Some(crate::audit::now() + d * 86_400),
        Some(d) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "duration_days is {d}; give 1 to {MAX_TOKEN_DAYS} days, or leave it out for a token that does not expire (and rotate it)"
                ),
            ))
        }
    };
    let (id, secret) = new_credentials();
    let row = state
        .store
        .create_service_token(&id, &b.name, &hash_secret(secret.as_bytes()), expires_at)
        .await?;
    state.access_changed().await?;
    tracing::info!(token = %row.name, client_id = %row.id, "service token created");
    Ok((StatusCode::CREATED, with_secret(&row, &secret)))
}

async fn list_tokens(State(state): State<AdminState>) -> ApiResult<Json<Vec<ServiceTokenRow>>> {
    Ok(Json(state.store.list_service_tokens().await?))
}

async fn revoke_token(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ServiceTokenRow>> {
    let row = state.store.revoke_service_token(&name).await?;
    state.access_changed().await?;
    tracing::info!(token = %row.name, "service token revoked");
    Ok(Json(row))
}

async fn rotate_token(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let (_, secret) = new_credentials();
    let row = state
        .store
        .rotate_service_token(&name, &hash_secret(secret.as_bytes()))
        .await?;
    state.access_changed().await?;
    tracing::info!(token = %row.name, "service token secret rotated");
    Ok(with_secret(&row, &secret))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddIdp {
    name: String,
    issuer: String,
    client_id: String,
    client_secret: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    groups_claim: Option<String>,
    #[serde(default)]
    ca_file: Option<String>,
}

/// An identity provider as given, checked and with its defaults: the
/// issuer an `https://` URL (`http://` only on loopback) without a
/// trailing `/`; scopes openid, email and profile when none are given,
/// and openid among them; the groups claim `groups` when empty. Used by
/// `POST /v1/access/idps` and `warren apply`.
pub(super) fn checked_idp(mut idp: IdpRow) -> ApiResult<IdpRow> {
    let issuer: http::Uri = idp.issuer.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{:?} is not a URL; give the issuer such as https://id.example.com",
                idp.issuer
            ),
        )
    })?;
    let loopback = matches!(issuer.host(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if issuer.scheme_str() != Some("https") && !(issuer.scheme_str() == Some("http") && loopback) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the issuer must be an https:// URL (http:// is accepted only on loopback, for testing)",
        ));
    }
    if idp.scopes.is_empty() {
        idp.scopes = vec!["openid".into(), "email".into(), "profile".into()];
    }
    if !idp.scopes.iter().any(|s| s == "openid") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the scopes must include openid",
        ));
    }
    if idp.groups_claim.is_empty() {
        idp.groups_claim = "groups".into();
    }
    idp.issuer = idp.issuer.trim_end_matches('/').to_owned();
    Ok(idp)
}

async fn add_idp(
    State(state): State<AdminState>,
    body: Result<Json<AddIdp>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<IdpRow>)> {
    const EXAMPLE: &str = r#"{"name": "corp", "issuer": "https://id.example.com", "client_id": "warren", "client_secret": "..."}"#;
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, EXAMPLE))?;
    let idp = checked_idp(IdpRow {
        name: b.name,
        issuer: b.issuer,
        client_id: b.client_id,
        client_secret: b.client_secret,
        scopes: b.scopes,
        groups_claim: b.groups_claim.unwrap_or_default(),
        ca_file: b.ca_file,
        created_at: 0,
    })?;
    let row = state.store.put_idp(&idp).await?;
    state.access_changed().await?;
    tracing::info!(idp = %row.name, issuer = %row.issuer, "identity provider set");
    Ok((StatusCode::CREATED, Json(row)))
}

async fn list_idps(State(state): State<AdminState>) -> ApiResult<Json<Vec<IdpRow>>> {
    Ok(Json(state.store.list_idps().await?))
}

async fn delete_idp(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store.delete_idp(&name).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("there is no identity provider named {name:?}; list them with `warren access idp list`"),
        ));
    }
    state.access_changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_sessions(State(state): State<AdminState>) -> ApiResult<Json<Vec<SessionRow>>> {
    Ok(Json(state.store.list_sessions().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeSessions {
    /// A session id or an email address.
    session: String,
}

async fn revoke_sessions(
    State(state): State<AdminState>,
    body: Result<Json<RevokeSessions>, JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, r#"{"session": "alice@example.com"}"#))?;
    let n = state.store.revoke_sessions(&b.session).await?;
    state.access_changed().await?;
    tracing::info!(session = %b.session, revoked = n, "sessions revoked");
    Ok(Json(json!({ "revoked": n })))
}

async fn rotate_keys(State(state): State<AdminState>) -> ApiResult<Json<serde_json::Value>> {
    let kid = crate::access::keys::rotate(&state.store).await?;
    state.access_changed().await?;
    tracing::info!(%kid, "identity-token signing key rotated");
    Ok(Json(json!({ "kid": kid })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPublic {
    public: bool,
}

async fn set_public(
    State(state): State<AdminState>,
    Path(hostname): Path<String>,
    body: Result<Json<SetPublic>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, r#"{"public": true}"#))?;
    if !state.store.set_route_public(&hostname, b.public).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no route for the hostname {hostname:?}; list routes with `warren tunnel route list`"),
        ));
    }
    state.access_changed().await?;
    tracing::info!(%hostname, public = b.public, "route access changed");
    Ok(StatusCode::NO_CONTENT)
}
