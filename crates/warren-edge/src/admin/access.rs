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
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warren_policy::{Action, Application, Policy, Rule};
use warren_proto::token::hash_secret;
use warren_store::{AppRow, IdpRow, ServiceTokenRow, SessionRow, StoreError};

use super::error::ApiErrorBody;
use super::{AdminState, ApiError, ApiResult};

/// The access routes (behind the admin token check), each with its
/// OpenAPI operation.
pub(super) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::default()
        .routes(routes!(list_apps, create_app))
        .routes(routes!(show_app, delete_app, update_app))
        .routes(routes!(add_policy))
        .routes(routes!(remove_policy))
        .routes(routes!(list_service_tokens, create_service_token))
        .routes(routes!(revoke_service_token))
        .routes(routes!(rotate_service_token))
        .routes(routes!(list_idps, add_idp))
        .routes(routes!(delete_idp))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_sessions))
        .routes(routes!(rotate_signing_key))
        .routes(routes!(set_route_public))
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

/// A new application.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateApp {
    /// Unique.
    #[schema(example = "wiki")]
    name: String,
    /// Exact hostnames or `*.example.com` wildcards.
    #[schema(example = json!(["wiki.example.com"]))]
    hostnames: Vec<String>,
    /// Covers only this path and what lies below it.
    #[serde(default)]
    path_prefix: Option<String>,
    /// How long a session for it lasts (default a day).
    #[serde(default = "default_session")]
    #[schema(default = default_session)]
    session_duration_secs: u64,
    /// Evaluated in order; the first that matches decides.
    #[serde(default)]
    policies: Vec<Policy>,
    /// Record the PostgreSQL statements of its sessions.
    #[serde(default)]
    statement_log: bool,
}

/// Create an access application.
#[utoipa::path(
    post,
    path = "/v1/access/apps",
    tag = "apps",
    request_body = CreateApp,
    responses(
        (status = 201, description = "The application as stored.", body = AppRow),
        (status = 400, description = "A hostname or a policy is not valid.", body = ApiErrorBody),
        (status = 409, description = "An application of that name exists.", body = ApiErrorBody),
    )
)]
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

/// List the access applications.
#[utoipa::path(
    get,
    path = "/v1/access/apps",
    tag = "apps",
    responses((status = 200, description = "Every application.", body = Vec<AppRow>))
)]
async fn list_apps(State(state): State<AdminState>) -> ApiResult<Json<Vec<AppRow>>> {
    Ok(Json(state.store.list_apps().await?))
}

/// Show one access application.
#[utoipa::path(
    get,
    path = "/v1/access/apps/{name}",
    tag = "apps",
    params(("name" = String, Path, description = "The application's name.")),
    responses(
        (status = 200, description = "The application.", body = AppRow),
        (status = 404, description = "No application of that name.", body = ApiErrorBody),
    )
)]
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

/// Delete an access application.
#[utoipa::path(
    delete,
    path = "/v1/access/apps/{name}",
    tag = "apps",
    params(("name" = String, Path, description = "The application's name.")),
    responses(
        (status = 204, description = "Deleted; its hostnames are no longer covered by it."),
        (status = 404, description = "No application of that name.", body = ApiErrorBody),
    )
)]
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

/// The fields to change; those left out stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateApp {
    #[serde(default)]
    statement_log: Option<bool>,
    #[serde(default)]
    session_duration_secs: Option<u64>,
    /// Replaces the list.
    #[serde(default)]
    hostnames: Option<Vec<String>>,
    /// An empty string removes the prefix.
    #[serde(default)]
    path_prefix: Option<String>,
}

/// Change an access application's settings.
#[utoipa::path(
    patch,
    path = "/v1/access/apps/{name}",
    tag = "apps",
    params(("name" = String, Path, description = "The application's name.")),
    request_body = UpdateApp,
    responses(
        (status = 200, description = "The application as changed.", body = AppRow),
        (status = 400, description = "The change would make it not valid.", body = ApiErrorBody),
        (status = 404, description = "No application of that name.", body = ApiErrorBody),
    )
)]
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

/// A policy, and where among the application's policies it goes. The
/// policy's fields are spelled out rather than flattened, so that the
/// schema can refuse unknown fields as the parser does.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AddPolicy {
    /// Unique within the application.
    #[schema(example = "staff")]
    name: String,
    action: Action,
    /// At least one must match.
    include: Vec<Rule>,
    /// None may match.
    #[serde(default)]
    exclude: Vec<Rule>,
    /// All must match.
    #[serde(default)]
    require: Vec<Rule>,
    /// The PostgreSQL roles a request this policy allows may use on a
    /// pooled database (`allow` and `service_auth` policies only).
    #[serde(default)]
    #[schema(example = json!(["analyst"]))]
    db_roles: Vec<String>,
    /// 1-based place among the policies; default last.
    #[serde(default)]
    #[schema(minimum = 1)]
    position: Option<usize>,
}

impl AddPolicy {
    fn into_parts(self) -> (Policy, Option<usize>) {
        let policy = Policy {
            name: self.name,
            action: self.action,
            include: self.include,
            exclude: self.exclude,
            require: self.require,
            db_roles: self.db_roles,
        };
        (policy, self.position)
    }
}

/// Add a policy to an access application.
#[utoipa::path(
    post,
    path = "/v1/access/apps/{name}/policies",
    tag = "apps",
    params(("name" = String, Path, description = "The application's name.")),
    request_body = AddPolicy,
    responses(
        (status = 200, description = "The application with the policy in place.", body = AppRow),
        (status = 400, description = "The policy is not valid, or the application has one of that name.", body = ApiErrorBody),
        (status = 404, description = "No application of that name.", body = ApiErrorBody),
    )
)]
async fn add_policy(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Result<Json<AddPolicy>, JsonRejection>,
) -> ApiResult<Json<AppRow>> {
    const EXAMPLE: &str =
        r#"{"name": "staff", "action": "allow", "include": [{"email_domain": "example.com"}]}"#;
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, EXAMPLE))?;
    let (policy, position) = b.into_parts();
    let policy_name = policy.name.clone();
    let row = state
        .store
        .modify_app(&name, |row| {
            if row.app.policies.iter().any(|p| p.name == policy.name) {
                return Err(StoreError::InvalidApp(format!(
                    "application {} already has a policy named {:?}; remove it first with `warren access policy remove {} {}`",
                    row.name, policy.name, row.name, policy.name
                )));
            }
            let at = position
                .map_or(row.app.policies.len(), |p| p.saturating_sub(1))
                .min(row.app.policies.len());
            row.app.policies.insert(at, policy);
            Ok(())
        })
        .await?;
    state.access_changed().await?;
    tracing::info!(app = %name, policy = %policy_name, "access policy added");
    Ok(Json(row))
}

/// Remove a policy from an access application.
#[utoipa::path(
    delete,
    path = "/v1/access/apps/{name}/policies/{policy}",
    tag = "apps",
    params(
        ("name" = String, Path, description = "The application's name."),
        ("policy" = String, Path, description = "The policy's name."),
    ),
    responses(
        (status = 200, description = "The application without the policy.", body = AppRow),
        (status = 400, description = "The application has no policy of that name.", body = ApiErrorBody),
        (status = 404, description = "No application of that name.", body = ApiErrorBody),
    )
)]
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

/// A new service token.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    #[schema(example = "ci")]
    name: String,
    /// Days until it expires, 1 to 366; default never.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 366)]
    duration_days: Option<i64>,
}

/// A service token with its secret, which is shown once and never cached.
#[derive(Serialize, utoipa::ToSchema)]
struct ServiceTokenWithSecret {
    #[serde(flatten)]
    token: ServiceTokenRow,
    /// The same as `id`: sent as `Warren-Access-Client-Id`.
    client_id: String,
    /// Sent as `Warren-Access-Client-Secret`; the edge keeps only its hash.
    client_secret: String,
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
fn with_secret(row: ServiceTokenRow, secret: String) -> Response {
    let body = ServiceTokenWithSecret {
        client_id: row.id.clone(),
        token: row,
        client_secret: secret,
    };
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}

/// Create a service token.
#[utoipa::path(
    post,
    path = "/v1/access/service-tokens",
    tag = "service-tokens",
    request_body = CreateToken,
    responses(
        (status = 201, description = "The token with its secret, shown this once (Cache-Control: no-store).", body = ServiceTokenWithSecret),
        (status = 400, description = "The name or duration_days is not valid.", body = ApiErrorBody),
        (status = 409, description = "A token of that name exists.", body = ApiErrorBody),
    )
)]
async fn create_service_token(
    State(state): State<AdminState>,
    body: Result<Json<CreateToken>, JsonRejection>,
) -> ApiResult<(StatusCode, Response)> {
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, r#"{"name": "ci"}"#))?;
    let (row, secret) = new_service_token(&state, &b.name, b.duration_days).await?;
    Ok((StatusCode::CREATED, with_secret(row, secret)))
}

/// Creates the service token `name`, expiring after `duration_days` (1 to
/// [`MAX_TOKEN_DAYS`]; `None`: never); the token and its secret, which
/// nothing keeps (the store has its hash). The API and the dashboard both
/// create tokens here.
pub(super) async fn new_service_token(
    state: &AdminState,
    name: &str,
    duration_days: Option<i64>,
) -> ApiResult<(ServiceTokenRow, String)> {
    let expires_at = match duration_days {
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
        .create_service_token(&id, name, &hash_secret(secret.as_bytes()), expires_at)
        .await?;
    state.access_changed().await?;
    tracing::info!(token = %row.name, client_id = %row.id, "service token created");
    Ok((row, secret))
}

/// List the service tokens, without their secrets.
#[utoipa::path(
    get,
    path = "/v1/access/service-tokens",
    tag = "service-tokens",
    responses((status = 200, description = "Every service token.", body = Vec<ServiceTokenRow>))
)]
async fn list_service_tokens(
    State(state): State<AdminState>,
) -> ApiResult<Json<Vec<ServiceTokenRow>>> {
    Ok(Json(state.store.list_service_tokens().await?))
}

/// Revoke a service token.
#[utoipa::path(
    post,
    path = "/v1/access/service-tokens/{name}/revoke",
    tag = "service-tokens",
    params(("name" = String, Path, description = "The token's name or client id.")),
    responses(
        (status = 200, description = "The token, revoked.", body = ServiceTokenRow),
        (status = 404, description = "No such token.", body = ApiErrorBody),
    )
)]
async fn revoke_service_token(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ServiceTokenRow>> {
    Ok(Json(revoke_token(&state, &name).await?))
}

/// Revokes the service token `name` (or client id): the API and the
/// dashboard both revoke here.
pub(super) async fn revoke_token(state: &AdminState, name: &str) -> ApiResult<ServiceTokenRow> {
    let row = state.store.revoke_service_token(name).await?;
    state.access_changed().await?;
    tracing::info!(token = %row.name, "service token revoked");
    Ok(row)
}

/// Give a service token a new secret.
#[utoipa::path(
    post,
    path = "/v1/access/service-tokens/{name}/rotate",
    tag = "service-tokens",
    params(("name" = String, Path, description = "The token's name or client id.")),
    responses(
        (status = 200, description = "The token with its new secret, shown this once (Cache-Control: no-store); the old secret stops working.", body = ServiceTokenWithSecret),
        (status = 404, description = "No such token.", body = ApiErrorBody),
        (status = 409, description = "The token is revoked.", body = ApiErrorBody),
    )
)]
async fn rotate_service_token(
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
    Ok(with_secret(row, secret))
}

/// An OIDC identity provider.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AddIdp {
    #[schema(example = "corp")]
    name: String,
    /// An https:// URL (http:// only on loopback).
    #[schema(example = "https://id.example.com")]
    issuer: String,
    client_id: String,
    /// Kept to present to the provider; never returned.
    client_secret: String,
    /// Must include `openid`; default `openid email profile`.
    #[serde(default)]
    scopes: Vec<String>,
    /// The ID-token claim that lists the user's groups; default `groups`.
    #[serde(default)]
    groups_claim: Option<String>,
    /// A PEM file of CAs to trust for the issuer, besides the system roots.
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

/// Set an identity provider.
#[utoipa::path(
    post,
    path = "/v1/access/idps",
    tag = "idps",
    request_body = AddIdp,
    responses(
        (status = 201, description = "The provider as stored, without its client secret.", body = IdpRow),
        (status = 400, description = "The issuer or the scopes are not valid.", body = ApiErrorBody),
    )
)]
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

/// List the identity providers, without their secrets.
#[utoipa::path(
    get,
    path = "/v1/access/idps",
    tag = "idps",
    responses((status = 200, description = "Every identity provider.", body = Vec<IdpRow>))
)]
async fn list_idps(State(state): State<AdminState>) -> ApiResult<Json<Vec<IdpRow>>> {
    Ok(Json(state.store.list_idps().await?))
}

/// Delete an identity provider.
#[utoipa::path(
    delete,
    path = "/v1/access/idps/{name}",
    tag = "idps",
    params(("name" = String, Path, description = "The provider's name.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No provider of that name.", body = ApiErrorBody),
    )
)]
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

/// List the sessions the edge issued.
#[utoipa::path(
    get,
    path = "/v1/access/sessions",
    tag = "sessions",
    responses((status = 200, description = "Every session, revoked ones included.", body = Vec<SessionRow>))
)]
async fn list_sessions(State(state): State<AdminState>) -> ApiResult<Json<Vec<SessionRow>>> {
    Ok(Json(state.store.list_sessions().await?))
}

/// Which sessions to revoke.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RevokeSessions {
    /// A session id, or an email address for all of that user's sessions.
    #[schema(example = "alice@example.com")]
    session: String,
}

/// How many sessions were revoked.
#[derive(Serialize, utoipa::ToSchema)]
struct Revoked {
    revoked: u64,
}

/// Revoke a session, or every session of a user.
#[utoipa::path(
    post,
    path = "/v1/access/sessions/revoke",
    tag = "sessions",
    request_body = RevokeSessions,
    responses((status = 200, description = "The sessions are refused from now on.", body = Revoked))
)]
async fn revoke_sessions(
    State(state): State<AdminState>,
    body: Result<Json<RevokeSessions>, JsonRejection>,
) -> ApiResult<Json<Revoked>> {
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, r#"{"session": "alice@example.com"}"#))?;
    let n = state.store.revoke_sessions(&b.session).await?;
    state.access_changed().await?;
    tracing::info!(session = %b.session, revoked = n, "sessions revoked");
    Ok(Json(Revoked { revoked: n }))
}

/// The new signing key.
#[derive(Serialize, utoipa::ToSchema)]
struct NewKey {
    /// Its key id, as in the edge's JWKS and the tokens' `kid`.
    kid: String,
}

/// Rotate the identity-token signing key.
#[utoipa::path(
    post,
    path = "/v1/access/keys/rotate",
    tag = "keys",
    responses((status = 200, description = "New identity tokens are signed with the new key.", body = NewKey))
)]
async fn rotate_signing_key(State(state): State<AdminState>) -> ApiResult<Json<NewKey>> {
    let kid = crate::access::keys::rotate(&state.store).await?;
    state.access_changed().await?;
    tracing::info!(%kid, "identity-token signing key rotated");
    Ok(Json(NewKey { kid }))
}

/// Whether the route is reachable without an access application.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SetPublic {
    public: bool,
}

/// Make a route public, or not.
#[utoipa::path(
    patch,
    path = "/v1/routes/{hostname}",
    tag = "routes",
    params(("hostname" = String, Path, description = "The route's hostname.")),
    request_body = SetPublic,
    responses(
        (status = 204, description = "Changed."),
        (status = 404, description = "No route for that hostname.", body = ApiErrorBody),
    )
)]
async fn set_route_public(
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
