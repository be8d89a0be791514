//! `/v1/databases`: pooled PostgreSQL databases (`warren db`) and the
//! credentials the edge logs in to them with.
//!
//! | method | path | answer |
//! | --- | --- | --- |
//! | POST | `/v1/databases` `{"name","hostname","database", settings...}` | 201 database |
//! | GET | `/v1/databases` | databases |
//! | GET / PATCH / DELETE | `/v1/databases/{name}` | database / database / 204 |
//! | PUT | `/v1/databases/{name}/credentials/{role}` `{"password"}` | the credential's role and time, never the password |
//! | DELETE | `/v1/databases/{name}/credentials/{role}` | 204 |
//!
//! A database's JSON lists its credentials' roles, when each was set and
//! whether this edge's key opens it — **never a password or a sealed
//! blob**. The password of a `PUT` is sealed here (`databases.rs`) before
//! the store sees it, and is never logged. Every write is logged (without
//! the password) and reloads this process's databases; other edge
//! processes follow the control generation.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warren_store::{PgDatabase, SealedCredential};
use zeroize::Zeroize;

use super::error::ApiErrorBody;
use super::{AdminState, ApiError, ApiResult};
use crate::databases::{AuthMode, PoolMode, MAX_PASSWORD_LEN};

/// The database routes (behind the admin token check), each with its
/// OpenAPI operation.
pub(super) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::default()
        .routes(routes!(list_databases, create_database))
        .routes(routes!(show_database, update_database, delete_database))
        .routes(routes!(set_credential, delete_credential))
        .routes(routes!(super::pools::database_pools))
        .routes(routes!(super::pools::list_pools))
}

/// A pooled database with its credentials' roles.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct DatabaseView {
    #[serde(flatten)]
    database: PgDatabase,
    /// By role; never a password.
    credentials: Vec<CredentialView>,
}

/// A stored credential, without its password.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CredentialView {
    /// The PostgreSQL role.
    #[schema(example = "app")]
    role: String,
    /// When it was set, unix seconds.
    updated_at: i64,
    /// Whether this edge's key (`<data-dir>/pg-credentials.key`) opens it;
    /// `false`: set it again.
    decrypts: bool,
}

/// The answer of a `PUT` of a credential.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CredentialSet {
    /// The database's name.
    #[schema(example = "orders")]
    database: String,
    #[schema(example = "app")]
    role: String,
    /// Unix seconds.
    updated_at: i64,
}

/// Declares a request body with the pool and cache settings after the
/// fields given (spelled out rather than flattened, so that unknown fields
/// are still refused), and its conversion to [`Settings`].
macro_rules! with_settings {
    ($(#[$meta:meta])* struct $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub(super) struct $name {
            $($(#[$fmeta])* $field: $ty,)*
            /// `transaction` (default) or `session`.
            #[serde(default)]
            #[schema(example = "transaction")]
            pool_mode: Option<String>,
            /// `identity` (default: the edge logs in with the stored
            /// credential of the role a policy maps the client to) or
            /// `passthrough` (the client authenticates to the server itself).
            #[serde(default)]
            #[schema(example = "identity")]
            auth_mode: Option<String>,
            /// Server connections per (database, role); default 20.
            #[serde(default)]
            pool_size: Option<u32>,
            /// Idle server connections kept open; default 0.
            #[serde(default)]
            min_idle: Option<u32>,
            /// Seconds an idle server connection is kept; default 600.
            #[serde(default)]
            idle_timeout_secs: Option<u64>,
            /// Seconds a server connection lives; default 3600.
            #[serde(default)]
            max_lifetime_secs: Option<u64>,
            /// Milliseconds a client waits for a server connection;
            /// default 5000.
            #[serde(default)]
            checkout_timeout_ms: Option<u64>,
            /// Cache read-only query results; default false.
            #[serde(default)]
            cache: Option<bool>,
            /// Seconds a cached result is served; default 60.
            #[serde(default)]
            cache_max_age_secs: Option<u64>,
            /// Seconds past its max-age a cached result may still be served
            /// while it is fetched again; default 15.
            #[serde(default)]
            cache_swr_secs: Option<u64>,
            /// The cache's size bound in bytes; default 64 MiB.
            #[serde(default)]
            cache_max_bytes: Option<u64>,
        }

        impl $name {
            fn settings(&self) -> Settings {
                Settings {
                    pool_mode: self.pool_mode.clone(),
                    auth_mode: self.auth_mode.clone(),
                    pool_size: self.pool_size,
                    min_idle: self.min_idle,
                    idle_timeout_secs: self.idle_timeout_secs,
                    max_lifetime_secs: self.max_lifetime_secs,
                    checkout_timeout_ms: self.checkout_timeout_ms,
                    cache: self.cache,
                    cache_max_age_secs: self.cache_max_age_secs,
                    cache_swr_secs: self.cache_swr_secs,
                    cache_max_bytes: self.cache_max_bytes,
                }
            }
        }
    };
}

with_settings! {
    /// A new pooled database; every setting left out takes its default.
    /// The pool and cache settings are the pooler's.
    struct CreateDatabase {
        /// Unique; lower-case letters, digits and '-'.
        #[schema(example = "orders")]
        name: String,
        /// The hostname of a route (`warren tunnel route dns TUNNEL HOST`)
        /// clients connect to.
        #[schema(example = "db.example.com")]
        hostname: String,
        /// The database's name on the server.
        #[schema(example = "orders")]
        database: String,
    }
}

with_settings! {
    /// A change of a pooled database: only the fields given change.
    struct UpdateDatabase {
        /// The hostname of a route clients connect to.
        #[serde(default)]
        hostname: Option<String>,
        /// The database's name on the server.
        #[serde(default)]
        database: Option<String>,
    }
}

/// A database's pool and cache settings as a request gave them (`None`:
/// left as it is, or the default).
struct Settings {
    pool_mode: Option<String>,
    auth_mode: Option<String>,
    pool_size: Option<u32>,
    min_idle: Option<u32>,
    idle_timeout_secs: Option<u64>,
    max_lifetime_secs: Option<u64>,
    checkout_timeout_ms: Option<u64>,
    cache: Option<bool>,
    cache_max_age_secs: Option<u64>,
    cache_swr_secs: Option<u64>,
    cache_max_bytes: Option<u64>,
}

impl Settings {
    /// `db` with these settings applied; an unknown mode is refused with a
    /// sentence (the store checks the numbers).
    fn apply(self, db: &mut PgDatabase) -> ApiResult<()> {
        if let Some(m) = self.pool_mode {
            if PoolMode::parse(&m).is_none() {
                return Err(bad(format!(
                    "{m:?} is not a pool mode; use {}",
                    PoolMode::NAMES
                )));
            }
            db.pool_mode = m;
        }
        if let Some(m) = self.auth_mode {
            if AuthMode::parse(&m).is_none() {
                return Err(bad(format!(
                    "{m:?} is not an auth mode; use identity (the edge logs in for the client's identity) or passthrough (the client logs in itself)"
                )));
            }
            db.auth_mode = m;
        }
        let set = |field: &mut u64, v: Option<u64>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        if let Some(v) = self.pool_size {
            db.pool_size = v;
        }
        if let Some(v) = self.min_idle {
            db.min_idle = v;
        }
        set(&mut db.idle_timeout_secs, self.idle_timeout_secs);
        set(&mut db.max_lifetime_secs, self.max_lifetime_secs);
        set(&mut db.checkout_timeout_ms, self.checkout_timeout_ms);
        if let Some(v) = self.cache {
            db.cache = v;
        }
        set(&mut db.cache_max_age_secs, self.cache_max_age_secs);
        set(&mut db.cache_swr_secs, self.cache_swr_secs);
        set(&mut db.cache_max_bytes, self.cache_max_bytes);
        Ok(())
    }
}

/// `{"password": "..."}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetCredential {
    /// The role's password on the server; sealed by the edge, never
    /// returned or logged.
    #[schema(example = "s3cret")]
    password: String,
}

impl Drop for SetCredential {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

fn bad(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

pub(super) fn no_database(name: &str) -> ApiError {
    ApiError::from(warren_store::StoreError::UnknownPgDatabase(name.to_owned()))
}

impl AdminState {
    /// Applies a database change to this process's pooled databases.
    async fn reload_databases(&self) -> ApiResult<()> {
        Ok(self.databases.reload(&self.store).await?)
    }

    /// `db` with its credentials' roles.
    async fn database_view(&self, database: PgDatabase) -> ApiResult<DatabaseView> {
        let sealed = self.store.pg_credentials(&database.name).await?;
        Ok(DatabaseView {
            credentials: sealed
                .iter()
                .map(|c: &SealedCredential| CredentialView {
                    role: c.role.clone(),
                    updated_at: c.updated_at,
                    decrypts: self.databases.open(c).is_ok(),
                })
                .collect(),
            database,
        })
    }

    /// Refuses a hostname no route serves: clients could not reach the
    /// database through it.
    async fn ensure_routed(&self, hostname: &str) -> ApiResult<()> {
        let host = hostname.trim().trim_end_matches('.').to_ascii_lowercase();
        // The routes as the store has them now, whichever process made them.
        self.reload_routes().await?;
        if self.routes.lookup(&host).is_none() {
            return Err(bad(format!(
                "no route serves the hostname {host}; route it to the tunnel that reaches the database first with `warren tunnel route dns TUNNEL {host}`"
            )));
        }
        Ok(())
    }
}

/// List the pooled databases.
#[utoipa::path(
    get,
    path = "/v1/databases",
    tag = "databases",
    responses((status = 200, description = "Every pooled database, by name, with its credentials' roles (never a password).", body = Vec<DatabaseView>))
)]
pub(super) async fn list_databases(
    State(state): State<AdminState>,
) -> ApiResult<Json<Vec<DatabaseView>>> {
    let mut out = Vec::new();
    for db in state.store.pg_databases().await? {
        out.push(state.database_view(db).await?);
    }
    Ok(Json(out))
}

/// Add a pooled database on a route's hostname.
#[utoipa::path(
    post,
    path = "/v1/databases",
    tag = "databases",
    request_body = CreateDatabase,
    responses(
        (status = 201, description = "The database as stored, with every default filled in.", body = DatabaseView),
        (status = 400, description = "A setting is not valid, or no route serves the hostname.", body = ApiErrorBody),
        (status = 409, description = "A database of that name, or on that hostname, exists.", body = ApiErrorBody),
    )
)]
pub(super) async fn create_database(
    State(state): State<AdminState>,
    body: Result<Json<CreateDatabase>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<DatabaseView>)> {
    const EXAMPLE: &str = r#"{"name": "orders", "hostname": "db.example.com", "database": "orders", "pool_mode": "transaction", "pool_size": 20}"#;
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, EXAMPLE))?;
    let mut db = PgDatabase::with_defaults(&b.name, &b.hostname, &b.database);
    b.settings().apply(&mut db)?;
    state.ensure_routed(&db.hostname).await?;
    let row = state.store.create_pg_database(&db).await?;
    state.reload_databases().await?;
    tracing::info!(database = %row.name, hostname = %row.hostname, pool_mode = %row.pool_mode, auth_mode = %row.auth_mode, pool_size = row.pool_size, cache = row.cache, "pooled database added");
    Ok((StatusCode::CREATED, Json(state.database_view(row).await?)))
}

/// Show a pooled database.
#[utoipa::path(
    get,
    path = "/v1/databases/{name}",
    tag = "databases",
    params(("name" = String, Path, description = "The database's name.")),
    responses(
        (status = 200, description = "The database with its credentials' roles (never a password).", body = DatabaseView),
        (status = 404, description = "No database of that name.", body = ApiErrorBody),
    )
)]
pub(super) async fn show_database(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<Json<DatabaseView>> {
    let db = state
        .store
        .pg_database(&name)
        .await?
        .ok_or_else(|| no_database(&name))?;
    Ok(Json(state.database_view(db).await?))
}

/// Change a pooled database's hostname, server database or settings.
#[utoipa::path(
    patch,
    path = "/v1/databases/{name}",
    tag = "databases",
    params(("name" = String, Path, description = "The database's name.")),
    request_body = UpdateDatabase,
    responses(
        (status = 200, description = "The database as stored now.", body = DatabaseView),
        (status = 400, description = "A setting is not valid, or no route serves the hostname.", body = ApiErrorBody),
        (status = 404, description = "No database of that name.", body = ApiErrorBody),
        (status = 409, description = "Another database is on that hostname.", body = ApiErrorBody),
    )
)]
pub(super) async fn update_database(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Result<Json<UpdateDatabase>, JsonRejection>,
) -> ApiResult<Json<DatabaseView>> {
    const EXAMPLE: &str = r#"{"pool_size": 40, "cache": true}"#;
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, EXAMPLE))?;
    let mut db = state
        .store
        .pg_database(&name)
        .await?
        .ok_or_else(|| no_database(&name))?;
    b.settings().apply(&mut db)?;
    if let Some(h) = b.hostname {
        state.ensure_routed(&h).await?;
        db.hostname = h;
    }
    if let Some(d) = b.database {
        db.database = d;
    }
    let row = state.store.update_pg_database(&db).await?;
    state.reload_databases().await?;
    tracing::info!(database = %row.name, hostname = %row.hostname, pool_mode = %row.pool_mode, auth_mode = %row.auth_mode, pool_size = row.pool_size, cache = row.cache, "pooled database changed");
    Ok(Json(state.database_view(row).await?))
}

/// Remove a pooled database and its credentials.
#[utoipa::path(
    delete,
    path = "/v1/databases/{name}",
    tag = "databases",
    params(("name" = String, Path, description = "The database's name.")),
    responses(
        (status = 204, description = "Removed, with its credentials."),
        (status = 404, description = "No database of that name.", body = ApiErrorBody),
    )
)]
pub(super) async fn delete_database(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store.delete_pg_database(&name).await? {
        return Err(no_database(&name));
    }
    state.reload_databases().await?;
    tracing::info!(database = %name, "pooled database removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Set (or replace) the password the edge logs in to a database with as a role.
///
/// It is sealed with the edge's key before it is stored, and is never
/// returned or logged.
#[utoipa::path(
    put,
    path = "/v1/databases/{name}/credentials/{role}",
    tag = "databases",
    params(
        ("name" = String, Path, description = "The database's name."),
        ("role" = String, Path, description = "The PostgreSQL role."),
    ),
    request_body = SetCredential,
    responses(
        (status = 200, description = "Stored, sealed; the answer has no password.", body = CredentialSet),
        (status = 400, description = "The role or the password is not usable.", body = ApiErrorBody),
        (status = 404, description = "No database of that name.", body = ApiErrorBody),
    )
)]
pub(super) async fn set_credential(
    State(state): State<AdminState>,
    Path((name, role)): Path<(String, String)>,
    body: Result<Json<SetCredential>, JsonRejection>,
) -> ApiResult<Json<CredentialSet>> {
    const EXAMPLE: &str = r#"{"password": "..."}"#;
    let Json(b) = body.map_err(|r| ApiError::bad_body(r, EXAMPLE))?;
    let password = &b.password;
    if password.is_empty() {
        return Err(bad(format!(
            "the password for role {role} is empty; give the role's password on the server"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(bad(format!(
            "the password for role {role} is longer than {MAX_PASSWORD_LEN} bytes; give the role's password on the server"
        )));
    }
    if password.contains('\0') {
        return Err(bad(format!(
            "the password for role {role} contains a NUL byte, which PostgreSQL cannot take; give the role's password on the server"
        )));
    }
    let sealed = state.databases.seal(&name, &role, password);
    drop(b);
    let stored = state.store.set_pg_credential(&sealed).await?;
    state.reload_databases().await?;
    tracing::info!(database = %name, role = %role, "database credential set");
    Ok(Json(CredentialSet {
        database: stored.database,
        role: stored.role,
        updated_at: stored.updated_at,
    }))
}

/// Remove the credential of a role.
#[utoipa::path(
    delete,
    path = "/v1/databases/{name}/credentials/{role}",
    tag = "databases",
    params(
        ("name" = String, Path, description = "The database's name."),
        ("role" = String, Path, description = "The PostgreSQL role."),
    ),
    responses(
        (status = 204, description = "Removed; the edge no longer logs in as that role."),
        (status = 404, description = "No database of that name, or it has no credential for the role.", body = ApiErrorBody),
    )
)]
pub(super) async fn delete_credential(
    State(state): State<AdminState>,
    Path((name, role)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    if !state.store.delete_pg_credential(&name, &role).await? {
        if state.store.pg_database(&name).await?.is_none() {
            return Err(no_database(&name));
        }
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("the pooled database {name} has no credential for role {role}; list its roles with `warren db show {name}`"),
        ));
    }
    state.reload_databases().await?;
    tracing::info!(database = %name, role = %role, "database credential removed");
    Ok(StatusCode::NO_CONTENT)
}
