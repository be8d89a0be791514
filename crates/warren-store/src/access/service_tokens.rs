//! Service tokens: a client id, a name and the SHA-256 of the secret;
//! revoked tokens stay listed.

use serde::{Deserialize, Serialize};

use crate::store::{is_unique_violation, now, one_write};
use crate::{Store, StoreError, StoreTx};

/// A service token, without its secret hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceTokenRow {
    /// The client id, sent as `Warren-Access-Client-Id`.
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

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

macro_rules! token_columns {
    () => {
        "id, name, created_at, expires_at, rotated_at, revoked_at"
    };
}

impl Store {
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
}

one_write! {
    /// Stores a new service token (see [`StoreTx::create_service_token`]).
    pub async fn create_service_token(
        &self,
        id: &str,
        name: &str,
        secret_hash: &[u8; 32],
        expires_at: Option<i64>
    ) -> ServiceTokenRow;
    /// Revokes a token (see [`StoreTx::revoke_service_token`]).
    pub async fn revoke_service_token(&self, key: &str) -> ServiceTokenRow;
    /// Replaces a token's secret (see [`StoreTx::rotate_service_token`]).
    pub async fn rotate_service_token(&self, key: &str, secret_hash: &[u8; 32]) -> ServiceTokenRow;
}

impl StoreTx {
    /// Stores a new service token; the caller made the id and the secret
    /// and passes only the secret's SHA-256.
    pub async fn create_service_token(
        &mut self,
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
        .execute(self.conn())
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

    async fn token_by_name_or_id(&mut self, key: &str) -> Result<ServiceTokenRow, StoreError> {
        let row: Option<TokenTuple> = sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            " FROM service_tokens WHERE name = ?1 OR id = ?1"
        ))
        .bind(key)
        .fetch_optional(self.conn())
        .await
        .map_err(self.db())?;
        row.map(token_from)
            .ok_or_else(|| StoreError::UnknownServiceToken(key.to_owned()))
    }

    /// Revokes the token with this name or client id (idempotent).
    pub async fn revoke_service_token(&mut self, key: &str) -> Result<ServiceTokenRow, StoreError> {
        let token = self.token_by_name_or_id(key).await?;
        sqlx::query(
            "UPDATE service_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        )
        .bind(&token.id)
        .bind(now())
        .execute(self.conn())
        .await
        .map_err(self.db())?;
        self.token_by_name_or_id(&token.id).await
    }

    /// Replaces the secret of the token with this name or client id (not a
    /// revoked one).
    pub async fn rotate_service_token(
        &mut self,
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
            .execute(self.conn())
            .await
            .map_err(self.db())?;
        self.token_by_name_or_id(&token.id).await
    }
}
