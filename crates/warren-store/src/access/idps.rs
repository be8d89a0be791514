//! OIDC identity providers. The client secret must be presented to the
//! provider, so it is kept as is in the JSON column and never serialized
//! out of [`IdpRow`].

use serde::{Deserialize, Serialize};

use crate::store::{now, one_write};
use crate::{Store, StoreError, StoreTx};

/// An OIDC identity provider.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

impl Store {
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
}

one_write! {
    /// Adds or replaces an identity provider (see [`StoreTx::put_idp`]).
    pub async fn put_idp(&self, idp: &IdpRow) -> IdpRow;
    /// Deletes an identity provider (see [`StoreTx::delete_idp`]).
    pub async fn delete_idp(&self, name: &str) -> bool;
}

impl StoreTx {
    /// Adds or replaces the identity provider `idp.name`.
    pub async fn put_idp(&mut self, idp: &IdpRow) -> Result<IdpRow, StoreError> {
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
        .execute(self.conn())
        .await
        .map_err(self.db())?;
        Ok(IdpRow {
            created_at,
            ..idp.clone()
        })
    }

    /// Deletes identity provider `name`; `false` if there was none.
    pub async fn delete_idp(&mut self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM identity_providers WHERE name = ?1")
            .bind(name)
            .execute(self.conn())
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }
}
