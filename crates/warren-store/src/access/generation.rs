//! The control generation: one number the database's triggers bump on
//! every access, route or pooled-database change, which each edge process
//! polls.

use crate::{Store, StoreError};

impl Store {
    /// A number that grows whenever routes, applications, service tokens,
    /// identity providers, session revocations, signing keys, pooled
    /// databases or their credentials change, by any process.
    pub async fn control_generation(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT generation FROM control_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(self.db())
    }
}
