//! Admin API tokens, stored as SHA-256 hashes only.

use crate::store::now;
use crate::{Store, StoreError};

impl Store {
    /// Stores the SHA-256 of a new admin API token.
    pub async fn add_admin_token_hash(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO admin_tokens (id, token_hash, created_at) VALUES (?1, ?2, ?3)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&token_hash[..])
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(())
    }

    /// Hashes of every admin API token.
    pub async fn admin_token_hashes(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT token_hash FROM admin_tokens")
            .fetch_all(&self.pool)
            .await
            .map_err(self.db())
    }

    /// Whether any admin API token exists.
    pub async fn has_admin_token(&self) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM admin_tokens)")
            .fetch_one(&self.pool)
            .await
            .map_err(self.db())
    }
}
