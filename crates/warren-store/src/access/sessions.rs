//! Sessions the edge issued (browser sign-ins and CLI tokens), their
//! revocation and pruning.

use serde::{Deserialize, Serialize};
use warren_policy::Identity;

use crate::store::now;
use crate::{Store, StoreError};

/// A session the edge issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

impl Store {
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
}
