//! Access applications, each with its ordered policies stored as JSON and
//! validated by `warren-policy` before every write.

use serde::{Deserialize, Serialize};
use warren_policy::Application;

use crate::store::{is_unique_violation, now, one_write};
use crate::{Store, StoreError, StoreTx};

/// An access application as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

type AppTuple = (String, String, String, bool, i64);

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

fn invalid_app(e: warren_policy::PolicyError) -> StoreError {
    StoreError::InvalidApp(e.to_string())
}

impl Store {
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
}

one_write! {
    /// Stores a new application (see [`StoreTx::create_app`]).
    pub async fn create_app(&self, app: &Application, statement_log: bool) -> AppRow;
    /// Deletes an application (see [`StoreTx::delete_app`]).
    pub async fn delete_app(&self, name: &str) -> bool;
}

impl StoreTx {
    /// Stores a new application after [`warren_policy::validate`].
    pub async fn create_app(
        &mut self,
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
        .execute(self.conn())
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

    /// Deletes application `name`; `false` if there was none.
    pub async fn delete_app(&mut self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM access_apps WHERE name = ?1")
            .bind(name)
            .execute(self.conn())
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces application `app.name`'s policies and settings, its
    /// statement log flag and its tag (`warren apply`); the tag is a
    /// UUID's 32 lower-case hex digits, as [`StoreTx::create_app`] makes.
    pub async fn replace_app(
        &mut self,
        app: &Application,
        statement_log: bool,
        tag: &str,
    ) -> Result<(), StoreError> {
        warren_policy::validate(app).map_err(invalid_app)?;
        if tag.len() != 32 || !tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(StoreError::InvalidApp(format!(
                "the tag {tag:?} of application {:?} is not 32 lower-case hex digits; copy it from `warren access app show APP`, or leave it out",
                app.name
            )));
        }
        let done = sqlx::query(
            "UPDATE access_apps SET spec = ?2, statement_log = ?3, tag = ?4 WHERE name = ?1",
        )
        .bind(&app.name)
        .bind(serde_json::to_string(app).expect("applications serialize"))
        .bind(statement_log)
        .bind(tag)
        .execute(self.conn())
        .await
        .map_err(self.db())?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownApp(app.name.clone()));
        }
        Ok(())
    }
}
