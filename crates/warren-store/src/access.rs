//! Access control in the store: applications (with their ordered policies),
//! service tokens, identity providers, sessions, signing keys, and the
//! control generation that tells every edge process something changed.

use serde::{Deserialize, Serialize};
use warren_policy::{Application, Identity};

use crate::{is_unique_violation, now, Store, StoreError};

/// An access application as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRow {
    /// Unique; the same as `app.name`.
    pub name: String,
    /// The audience (`aud`) of identity tokens for this application.
    pub tag: String,
    pub app: Application,
    /// Record PostgreSQL statements of sessions through this application.
    pub statement_log: bool,
    pub created_at: i64,
}

/// A service token, without its secret hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTokenRow {
    /// The client id, sent as `Warren-Access-Client-Id`.
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// An OIDC identity provider.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdpRow {
    pub name: String,
    /// The issuer URL; discovery is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Never serialized out of the store's own JSON column.
    #[serde(skip_serializing, default)]
    pub client_secret: String,
    pub scopes: Vec<String>,
    /// The ID-token claim that lists the user's groups.
    pub groups_claim: String,
    /// A PEM file of CAs to trust for the issuer, besides the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub created_at: i64,
}

impl std::fmt::Debug for IdpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpRow")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("groups_claim", &self.groups_claim)
            .finish()
    }
}

/// The JSON column of `identity_providers` (includes the secret).
#[derive(Serialize, Deserialize)]
struct StoredIdp {
    issuer: String,
    client_id: String,
    client_secret: String,
    scopes: Vec<String>,
    groups_claim: String,
    #[serde(default)]
    ca_file: Option<String>,
}

/// A session the edge issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub identity: Identity,
    /// The user's email, or the service token's name.
    pub email: String,
    /// The application the session was issued for.
    pub app: String,
    /// Where the login came from.
    pub source: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// A signing key (PKCS#8 DER). Debug never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    pub created_at: i64,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

type AppTuple = (String, String, String, bool, i64);
type TokenTuple = (String, String, i64, Option<i64>, Option<i64>, Option<i64>);
type TokenWithHash = (
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Vec<u8>,
);
type SessionTuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
);

fn app_from((name, tag, spec, statement_log, created_at): AppTuple) -> Result<AppRow, StoreError> {
    let app = serde_json::from_str(&spec).map_err(|e| {
        StoreError::Corrupt(format!(
            "the stored application {name:?} does not parse ({e})"
        ))
    })?;
    Ok(AppRow {
        name,
        tag,
        app,
        statement_log,
        created_at,
    })
}

fn token_from(
    (id, name, created_at, expires_at, rotated_at, revoked_at): TokenTuple,
) -> ServiceTokenRow {
    ServiceTokenRow {
        id,
        name,
        created_at,
        expires_at,
        rotated_at,
        revoked_at,
    }
}

fn session_from(
    (id, identity, email, app, source, created_at, expires_at, revoked_at): SessionTuple,
) -> Result<SessionRow, StoreError> {
    let identity = serde_json::from_str(&identity).map_err(|e| {
        StoreError::Corrupt(format!("the stored session {id:?} does not parse ({e})"))
    })?;
    Ok(SessionRow {
        id,
        identity,
        email,
        app,
        source,
        created_at,
        expires_at,
        revoked_at,
    })
}

fn invalid_app(e: warren_policy::PolicyError) -> StoreError {
    StoreError::InvalidApp(e.to_string())
}

macro_rules! token_columns {
    () => {
        "id, name, created_at, expires_at, rotated_at, revoked_at"
    };
}

impl Store {
    // ---- generation ----

    /// A number that grows whenever routes, applications, service tokens,
    /// identity providers, session revocations or signing keys change, by
    /// any process.
    pub async fn control_generation(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT generation FROM control_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(self.db())
    }

    // ---- applications ----

    /// Stores a new application after [`warren_policy::validate`].
    pub async fn create_app(
        &self,
        app: &Application,
        statement_log: bool,
    ) -> Result<AppRow, StoreError> {
        warren_policy::validate(app).map_err(invalid_app)?;
        let row = AppRow {
            name: app.name.clone(),
            tag: uuid::Uuid::new_v4().simple().to_string(),
            app: app.clone(),
            statement_log,
            created_at: now(),
        };
        let spec = serde_json::to_string(app).expect("applications serialize");
        sqlx::query(
            "INSERT INTO access_apps (name, tag, spec, statement_log, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&row.name)
        .bind(&row.tag)
        .bind(spec)
        .bind(statement_log)
        .bind(row.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AppExists(app.name.clone())
            } else {
                self.db()(e)
            }
        })?;
        Ok(row)
    }

    /// Every application, by name.
    pub async fn list_apps(&self) -> Result<Vec<AppRow>, StoreError> {
        let rows: Vec<AppTuple> = sqlx::query_as(
            "SELECT name, tag, spec, statement_log, created_at FROM access_apps ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        rows.into_iter().map(app_from).collect()
    }

    /// The application called `name`.
    pub async fn get_app(&self, name: &str) -> Result<Option<AppRow>, StoreError> {
        let row: Option<AppTuple> = sqlx::query_as(
            "SELECT name, tag, spec, statement_log, created_at FROM access_apps WHERE name = ?1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.db())?;
        row.map(app_from).transpose()
    }

    /// Changes application `name` with `change` and stores it if it still
    /// validates, in one transaction.
    pub async fn modify_app(
        &self,
        name: &str,
        change: impl FnOnce(&mut AppRow) -> Result<(), StoreError>,
    ) -> Result<AppRow, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.db())?;
        let row: Option<AppTuple> = sqlx::query_as(
            "SELECT name, tag, spec, statement_log, created_at FROM access_apps WHERE name = ?1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(self.db())?;
        let mut row = app_from(row.ok_or_else(|| StoreError::UnknownApp(name.to_owned()))?)?;
        change(&mut row)?;
        row.app.name = row.name.clone();
        warren_policy::validate(&row.app).map_err(invalid_app)?;
        sqlx::query("UPDATE access_apps SET spec = ?2, statement_log = ?3 WHERE name = ?1")
            .bind(&row.name)
            .bind(serde_json::to_string(&row.app).expect("applications serialize"))
            .bind(row.statement_log)
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        tx.commit().await.map_err(self.db())?;
        Ok(row)
    }

    /// Deletes application `name`; `false` if there was none.
    pub async fn delete_app(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM access_apps WHERE name = ?1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }

    // ---- service tokens ----

    /// Stores a new service token; the caller made the id and the secret
    /// and passes only the secret's SHA-256.
    pub async fn create_service_token(
        &self,
        id: &str,
        name: &str,
        secret_hash: &[u8; 32],
        expires_at: Option<i64>,
    ) -> Result<ServiceTokenRow, StoreError> {
        if !crate::validate::is_valid_tunnel_name(name) {
            return Err(StoreError::InvalidServiceTokenName(name.to_owned()));
        }
        let row = ServiceTokenRow {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at: now(),
            expires_at,
            rotated_at: None,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO service_tokens (id, name, secret_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&secret_hash[..])
        .bind(row.created_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::ServiceTokenExists(name.to_owned())
            } else {
                self.db()(e)
            }
        })?;
        Ok(row)
    }

    /// Every service token (revoked ones too), by name.
    pub async fn list_service_tokens(&self) -> Result<Vec<ServiceTokenRow>, StoreError> {
        let rows: Vec<TokenTuple> = sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            " FROM service_tokens ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(rows.into_iter().map(token_from).collect())
    }

    /// Every usable (not revoked) service token with its secret hash, for
    /// the edge's in-memory copy.
    pub async fn service_token_credentials(
        &self,
    ) -> Result<Vec<(ServiceTokenRow, Vec<u8>)>, StoreError> {
        let rows: Vec<TokenWithHash> = sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            ", secret_hash FROM service_tokens WHERE revoked_at IS NULL"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(rows
            .into_iter()
            .map(|(a, b, c, d, e, f, hash)| (token_from((a, b, c, d, e, f)), hash))
            .collect())
    }

    async fn token_by_name_or_id(&self, key: &str) -> Result<ServiceTokenRow, StoreError> {
        let row: Option<TokenTuple> = sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            " FROM service_tokens WHERE name = ?1 OR id = ?1"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.db())?;
        row.map(token_from)
            .ok_or_else(|| StoreError::UnknownServiceToken(key.to_owned()))
    }

    /// Revokes the token with this name or client id (idempotent).
    pub async fn revoke_service_token(&self, key: &str) -> Result<ServiceTokenRow, StoreError> {
        let token = self.token_by_name_or_id(key).await?;
        sqlx::query(
            "UPDATE service_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        )
        .bind(&token.id)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(self.db())?;
        self.token_by_name_or_id(&token.id).await
    }

    /// Replaces the secret of the token with this name or client id (not a
    /// revoked one).
    pub async fn rotate_service_token(
        &self,
        key: &str,
        secret_hash: &[u8; 32],
    ) -> Result<ServiceTokenRow, StoreError> {
        let token = self.token_by_name_or_id(key).await?;
        if token.revoked_at.is_some() {
            return Err(StoreError::ServiceTokenRevoked(token.name));
        }
        sqlx::query("UPDATE service_tokens SET secret_hash = ?2, rotated_at = ?3 WHERE id = ?1")
            .bind(&token.id)
            .bind(&secret_hash[..])
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        self.token_by_name_or_id(&token.id).await
    }

    // ---- identity providers ----

    /// Adds or replaces the identity provider `idp.name`.
    pub async fn put_idp(&self, idp: &IdpRow) -> Result<IdpRow, StoreError> {
        if !crate::validate::is_valid_tunnel_name(&idp.name) {
            return Err(StoreError::InvalidInput(format!(
                "{:?} is not a valid identity provider name; use 1 to 63 letters, digits, '_', '.' or '-'",
                idp.name
            )));
        }
        let spec = StoredIdp {
            issuer: idp.issuer.clone(),
            client_id: idp.client_id.clone(),
            client_secret: idp.client_secret.clone(),
            scopes: idp.scopes.clone(),
            groups_claim: idp.groups_claim.clone(),
            ca_file: idp.ca_file.clone(),
        };
        let created_at = now();
        sqlx::query(
            "INSERT INTO identity_providers (name, spec, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec",
        )
        .bind(&idp.name)
        .bind(serde_json::to_string(&spec).expect("idp serializes"))
        .bind(created_at)
        .execute(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(IdpRow {
            created_at,
            ..idp.clone()
        })
    }

    /// Every identity provider (with secrets, for the edge), oldest first.
    pub async fn list_idps(&self) -> Result<Vec<IdpRow>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, spec, created_at FROM identity_providers ORDER BY created_at, name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        rows.into_iter()
            .map(|(name, spec, created_at)| {
                let s: StoredIdp = serde_json::from_str(&spec).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "the stored identity provider {name:?} does not parse ({e})"
                    ))
                })?;
                Ok(IdpRow {
                    name,
                    issuer: s.issuer,
                    client_id: s.client_id,
                    client_secret: s.client_secret,
                    scopes: s.scopes,
                    groups_claim: s.groups_claim,
                    ca_file: s.ca_file,
                    created_at,
                })
            })
            .collect()
    }

    /// Deletes identity provider `name`; `false` if there was none.
    pub async fn delete_idp(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM identity_providers WHERE name = ?1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }

    // ---- sessions ----

    /// Records a session the edge issued.
    pub async fn create_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, identity, email, app, source, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&s.id)
        .bind(serde_json::to_string(&s.identity).expect("identities serialize"))
        .bind(&s.email)
        .bind(&s.app)
        .bind(&s.source)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(())
    }

    /// Sessions that have not expired, newest first, at most 1000.
    pub async fn list_sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        let rows: Vec<SessionTuple> = sqlx::query_as(
            "SELECT id, identity, email, app, source, created_at, expires_at, revoked_at
             FROM sessions WHERE expires_at > ?1 ORDER BY created_at DESC LIMIT 1000",
        )
        .bind(now())
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        rows.into_iter().map(session_from).collect()
    }

    /// Revokes the session with this id, or every session of this email
    /// (ASCII case-insensitive). Returns how many were revoked.
    pub async fn revoke_sessions(&self, id_or_email: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = ?2
             WHERE (id = ?1 OR lower(email) = lower(?1)) AND revoked_at IS NULL AND expires_at > ?2",
        )
        .bind(id_or_email)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(done.rows_affected())
    }

    /// Ids of revoked sessions that have not expired yet.
    pub async fn revoked_session_ids(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > ?1",
        )
        .bind(now())
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())
    }

    /// Deletes sessions that expired before `before`.
    pub async fn prune_sessions(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < ?1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected())
    }

    // ---- signing keys ----

    /// Signing keys, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        let rows: Vec<(String, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT kid, pkcs8, created_at FROM signing_keys ORDER BY created_at DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(rows
            .into_iter()
            .map(|(kid, pkcs8, created_at)| SigningKeyRow {
                kid,
                pkcs8,
                created_at,
            })
            .collect())
    }

    /// Adds a signing key and deletes all but the `keep` newest.
    pub async fn add_signing_key(
        &self,
        key: &SigningKeyRow,
        keep: usize,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.db())?;
        sqlx::query("INSERT INTO signing_keys (kid, pkcs8, created_at) VALUES (?1, ?2, ?3)")
            .bind(&key.kid)
            .bind(&key.pkcs8)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        sqlx::query(
            "DELETE FROM signing_keys WHERE kid NOT IN
             (SELECT kid FROM signing_keys ORDER BY created_at DESC, kid DESC LIMIT ?1)",
        )
        .bind(i64::try_from(keep.max(1)).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(self.db())?;
        tx.commit().await.map_err(self.db())?;
        Ok(())
    }
}
