//! The edge's ES256 signing keys (PKCS#8 DER), newest first; adding one
//! keeps only a few of the newest.

use crate::{Store, StoreError};

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

impl Store {
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
