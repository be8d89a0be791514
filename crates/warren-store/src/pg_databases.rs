//! Pooled PostgreSQL databases (`warren db`): the database behind a
//! route's hostname with its pool and result-cache settings, and the
//! sealed credentials the edge logs in to it with.
//!
//! **The store never sees a database password**: the edge seals each one
//! (ChaCha20-Poly1305, its key in the edge's data directory) and the store
//! keeps the nonce and the ciphertext ([`SealedCredential`]), whose `Debug`
//! leaves the ciphertext out. Pool and auth modes are kept as text; the
//! edge parses them.

use serde::{Deserialize, Serialize};

use crate::store::{is_unique_violation, now, one_write};
use crate::{validate, Store, StoreError, StoreTx};

/// Longest database name, and longest database name on the server
/// (PostgreSQL truncates identifiers to 63 bytes).
const MAX_NAME_LEN: usize = 63;
/// Most server connections per (database, role).
pub const MAX_POOL_SIZE: u32 = 10_000;
/// Longest idle timeout and connection lifetime: 30 days.
pub const MAX_POOL_SECS: u64 = 30 * 86_400;
/// Longest checkout timeout: an hour.
pub const MAX_CHECKOUT_MS: u64 = 3_600_000;
/// Longest cache max-age and stale-while-revalidate: a day.
pub const MAX_CACHE_SECS: u64 = 86_400;
/// Largest result cache: 1 TiB.
pub const MAX_CACHE_BYTES: u64 = 1 << 40;
/// The length of a [`SealedCredential`]'s nonce.
pub const NONCE_LEN: usize = 12;

/// A pooled PostgreSQL database as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PgDatabase {
    /// Unique; lower-case letters, digits and '-'.
    #[schema(example = "orders")]
    pub name: String,
    /// Unique; the route's hostname clients connect to (lower-case, no
    /// wildcard).
    #[schema(example = "db.example.com")]
    pub hostname: String,
    /// The database's name on the server.
    #[schema(example = "orders")]
    pub database: String,
    /// `transaction` or `session`.
    #[schema(example = "transaction")]
    pub pool_mode: String,
    /// `identity` (the edge logs in with the stored credentials for the
    /// role a policy maps the client's identity to) or `passthrough` (the
    /// client authenticates to the server itself).
    #[schema(example = "identity")]
    pub auth_mode: String,
    /// Server connections per (database, role).
    pub pool_size: u32,
    /// Idle server connections kept open per (database, role).
    pub min_idle: u32,
    /// An idle server connection is closed after this long.
    pub idle_timeout_secs: u64,
    /// A server connection is closed after this long, idle or not once
    /// released.
    pub max_lifetime_secs: u64,
    /// How long a client waits for a server connection before it is
    /// refused.
    pub checkout_timeout_ms: u64,
    /// Whether read-only query results are cached.
    pub cache: bool,
    /// How long a cached result is served.
    pub cache_max_age_secs: u64,
    /// How long past its max-age a cached result may still be served
    /// while it is fetched again.
    pub cache_swr_secs: u64,
    /// The cache's size bound.
    pub cache_max_bytes: u64,
    /// Unix seconds.
    pub created_at: i64,
}

impl PgDatabase {
    /// A database with every setting at its default: transaction pooling,
    /// identity auth, 20 connections, no cache.
    pub fn with_defaults(
        name: impl Into<String>,
        hostname: impl Into<String>,
        database: impl Into<String>,
    ) -> PgDatabase {
        PgDatabase {
            name: name.into(),
            hostname: hostname.into(),
            database: database.into(),
            pool_mode: "transaction".into(),
            auth_mode: "identity".into(),
            pool_size: 20,
            min_idle: 0,
            idle_timeout_secs: 600,
            max_lifetime_secs: 3600,
            checkout_timeout_ms: 5000,
            cache: false,
            cache_max_age_secs: 60,
            cache_swr_secs: 15,
            cache_max_bytes: 64 * 1024 * 1024,
            created_at: 0,
        }
    }
}

/// A role's password on a database, sealed by the edge. Its `Debug`
/// leaves the ciphertext out.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCredential {
    /// The [`PgDatabase::name`] it belongs to.
    pub database: String,
    /// The PostgreSQL role.
    pub role: String,
    /// [`NONCE_LEN`] bytes.
    pub nonce: Vec<u8>,
    /// The AEAD ciphertext and tag of the password.
    pub sealed: Vec<u8>,
    /// Unix seconds.
    pub updated_at: i64,
}

impl std::fmt::Debug for SealedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedCredential")
            .field("database", &self.database)
            .field("role", &self.role)
            .field("sealed", &format_args!("<{} bytes>", self.sealed.len()))
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

type DbTuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    bool,
    i64,
    i64,
    i64,
    i64,
);

/// The columns of [`DbTuple`], as a literal for `concat!`.
macro_rules! db_columns {
    () => {
        "name, hostname, database, pool_mode, auth_mode, pool_size, min_idle, \
         idle_timeout_secs, max_lifetime_secs, checkout_timeout_ms, cache, \
         cache_max_age_secs, cache_swr_secs, cache_max_bytes, created_at"
    };
}

fn db_from(t: DbTuple) -> Result<PgDatabase, StoreError> {
    let (
        name,
        hostname,
        database,
        pool_mode,
        auth_mode,
        pool_size,
        min_idle,
        idle_timeout_secs,
        max_lifetime_secs,
        checkout_timeout_ms,
        cache,
        cache_max_age_secs,
        cache_swr_secs,
        cache_max_bytes,
        created_at,
    ) = t;
    let corrupt = |field: &str| {
        StoreError::Corrupt(format!(
            "the stored pooled database {name:?} has a negative or too large {field}"
        ))
    };
    let u32_of = |v: i64, field: &str| u32::try_from(v).map_err(|_| corrupt(field));
    let u64_of = |v: i64, field: &str| u64::try_from(v).map_err(|_| corrupt(field));
    Ok(PgDatabase {
        pool_size: u32_of(pool_size, "pool_size")?,
        min_idle: u32_of(min_idle, "min_idle")?,
        idle_timeout_secs: u64_of(idle_timeout_secs, "idle_timeout_secs")?,
        max_lifetime_secs: u64_of(max_lifetime_secs, "max_lifetime_secs")?,
        checkout_timeout_ms: u64_of(checkout_timeout_ms, "checkout_timeout_ms")?,
        cache,
        cache_max_age_secs: u64_of(cache_max_age_secs, "cache_max_age_secs")?,
        cache_swr_secs: u64_of(cache_swr_secs, "cache_swr_secs")?,
        cache_max_bytes: u64_of(cache_max_bytes, "cache_max_bytes")?,
        created_at,
        name,
        hostname,
        database,
        pool_mode,
        auth_mode,
    })
}

type CredTuple = (String, String, Vec<u8>, Vec<u8>, i64);

fn cred_from((database, role, nonce, sealed, updated_at): CredTuple) -> SealedCredential {
    SealedCredential {
        database,
        role,
        nonce,
        sealed,
        updated_at,
    }
}

fn invalid(message: String) -> StoreError {
    StoreError::InvalidPgDatabase(message)
}

/// Whether `name` matches `^[a-z0-9][a-z0-9-]{0,62}$`.
fn is_valid_db_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    name.len() <= MAX_NAME_LEN
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks every field of `db` and returns it with its hostname in normal
/// form.
fn checked(db: &PgDatabase) -> Result<PgDatabase, StoreError> {
    let name = &db.name;
    if !is_valid_db_name(name) {
        return Err(invalid(format!(
            "{name:?} is not a valid pooled database name; use 1 to 63 lower-case letters, digits or '-', starting with a letter or digit, like orders"
        )));
    }
    let hostname = validate::normalize_hostname(&db.hostname).ok_or_else(|| {
        invalid(format!(
            "{:?} is not a hostname; give the hostname of the route clients connect to, like db.example.com",
            db.hostname
        ))
    })?;
    if hostname.starts_with("*.") {
        return Err(invalid(format!(
            "the hostname {hostname} is a wildcard; a pooled database needs the one hostname its clients connect to, like db.example.com"
        )));
    }
    let server_db = &db.database;
    let reason = if server_db.is_empty() {
        Some("is empty")
    } else if server_db.len() > MAX_NAME_LEN {
        Some("is longer than 63 bytes, and PostgreSQL truncates names to 63")
    } else if server_db.contains('\0') {
        Some("contains a NUL byte")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(invalid(format!(
            "the database name {server_db:?} of {name} {reason}; give the database's name exactly as the server has it"
        )));
    }
    let range = |what: &str, value: u64, min: u64, max: u64, unit: &str| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(invalid(format!(
                "the {what} of {name} is {value}{unit}; give one from {min}{unit} to {max}{unit}"
            )))
        }
    };
    range(
        "pool size",
        db.pool_size.into(),
        1,
        MAX_POOL_SIZE.into(),
        " connections",
    )?;
    if db.min_idle > db.pool_size {
        return Err(invalid(format!(
            "the minimum of idle connections of {name} is {}, more than its pool size of {}; lower min_idle or raise pool_size",
            db.min_idle, db.pool_size
        )));
    }
    range("idle timeout", db.idle_timeout_secs, 1, MAX_POOL_SECS, " s")?;
    range(
        "maximum connection lifetime",
        db.max_lifetime_secs,
        1,
        MAX_POOL_SECS,
        " s",
    )?;
    range(
        "checkout timeout",
        db.checkout_timeout_ms,
        1,
        MAX_CHECKOUT_MS,
        " ms",
    )?;
    range(
        "cache max-age",
        db.cache_max_age_secs,
        1,
        MAX_CACHE_SECS,
        " s",
    )?;
    range(
        "cache stale-while-revalidate time",
        db.cache_swr_secs,
        0,
        MAX_CACHE_SECS,
        " s",
    )?;
    range(
        "cache size",
        db.cache_max_bytes,
        1,
        MAX_CACHE_BYTES,
        " bytes",
    )?;
    Ok(PgDatabase {
        hostname,
        ..db.clone()
    })
}

/// A `u64` setting as SQLite's integer; [`checked`] has bounded them all.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Every pooled database, by name.
    pub async fn pg_databases(&self) -> Result<Vec<PgDatabase>, StoreError> {
        let rows: Vec<DbTuple> = sqlx::query_as(concat!(
            "SELECT ",
            db_columns!(),
            " FROM pg_databases ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        rows.into_iter().map(db_from).collect()
    }

    /// The pooled database called `name`.
    pub async fn pg_database(&self, name: &str) -> Result<Option<PgDatabase>, StoreError> {
        let row: Option<DbTuple> = sqlx::query_as(concat!(
            "SELECT ",
            db_columns!(),
            " FROM pg_databases WHERE name = ?1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.db())?;
        row.map(db_from).transpose()
    }

    /// The sealed credentials of database `database`, by role.
    pub async fn pg_credentials(
        &self,
        database: &str,
    ) -> Result<Vec<SealedCredential>, StoreError> {
        let rows: Vec<CredTuple> = sqlx::query_as(
            "SELECT database, role, nonce, sealed, updated_at FROM pg_credentials
             WHERE database = ?1 ORDER BY role",
        )
        .bind(database)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(rows.into_iter().map(cred_from).collect())
    }

    /// Every sealed credential, by database and role.
    pub async fn all_pg_credentials(&self) -> Result<Vec<SealedCredential>, StoreError> {
        let rows: Vec<CredTuple> = sqlx::query_as(
            "SELECT database, role, nonce, sealed, updated_at FROM pg_credentials
             ORDER BY database, role",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(rows.into_iter().map(cred_from).collect())
    }
}

one_write! {
    /// Stores a new pooled database (see [`StoreTx::create_pg_database`]).
    pub async fn create_pg_database(&self, db: &PgDatabase) -> PgDatabase;
    /// Changes a pooled database's settings (see
    /// [`StoreTx::update_pg_database`]).
    pub async fn update_pg_database(&self, db: &PgDatabase) -> PgDatabase;
    /// Deletes a pooled database and its credentials (see
    /// [`StoreTx::delete_pg_database`]).
    pub async fn delete_pg_database(&self, name: &str) -> bool;
    /// Stores a role's sealed password (see [`StoreTx::set_pg_credential`]).
    pub async fn set_pg_credential(&self, credential: &SealedCredential) -> SealedCredential;
    /// Deletes a role's credential (see [`StoreTx::delete_pg_credential`]).
    pub async fn delete_pg_credential(&self, database: &str, role: &str) -> bool;
}

impl StoreTx {
    /// Stores a new pooled database after checking every field; its
    /// hostname is lower-cased and `created_at` is now. Refuses a name or
    /// a hostname another database has.
    pub async fn create_pg_database(&mut self, db: &PgDatabase) -> Result<PgDatabase, StoreError> {
        let row = PgDatabase {
            created_at: now(),
            ..checked(db)?
        };
        if let Some(other) = self.pg_database_on(&row.hostname).await? {
            return Err(StoreError::PgHostnameTaken {
                hostname: row.hostname,
                database: other,
            });
        }
        sqlx::query(concat!(
            "INSERT INTO pg_databases (",
            db_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ))
        .bind(&row.name)
        .bind(&row.hostname)
        .bind(&row.database)
        .bind(&row.pool_mode)
        .bind(&row.auth_mode)
        .bind(i64::from(row.pool_size))
        .bind(i64::from(row.min_idle))
        .bind(int(row.idle_timeout_secs))
        .bind(int(row.max_lifetime_secs))
        .bind(int(row.checkout_timeout_ms))
        .bind(row.cache)
        .bind(int(row.cache_max_age_secs))
        .bind(int(row.cache_swr_secs))
        .bind(int(row.cache_max_bytes))
        .bind(row.created_at)
        .execute(self.conn())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::PgDatabaseExists(row.name.clone())
            } else {
                self.db()(e)
            }
        })?;
        Ok(row)
    }

    /// Replaces the settings of the pooled database `db.name` (everything
    /// but its name and `created_at`, which stay as they were) after
    /// checking every field. `UnknownPgDatabase` if there is none.
    pub async fn update_pg_database(&mut self, db: &PgDatabase) -> Result<PgDatabase, StoreError> {
        let mut row = checked(db)?;
        if let Some(other) = self.pg_database_on(&row.hostname).await? {
            if other != row.name {
                return Err(StoreError::PgHostnameTaken {
                    hostname: row.hostname,
                    database: other,
                });
            }
        }
        let created_at: Option<i64> = sqlx::query_scalar(
            "UPDATE pg_databases SET hostname = ?2, database = ?3, pool_mode = ?4,
                 auth_mode = ?5, pool_size = ?6, min_idle = ?7, idle_timeout_secs = ?8,
                 max_lifetime_secs = ?9, checkout_timeout_ms = ?10, cache = ?11,
                 cache_max_age_secs = ?12, cache_swr_secs = ?13, cache_max_bytes = ?14
             WHERE name = ?1 RETURNING created_at",
        )
        .bind(&row.name)
        .bind(&row.hostname)
        .bind(&row.database)
        .bind(&row.pool_mode)
        .bind(&row.auth_mode)
        .bind(i64::from(row.pool_size))
        .bind(i64::from(row.min_idle))
        .bind(int(row.idle_timeout_secs))
        .bind(int(row.max_lifetime_secs))
        .bind(int(row.checkout_timeout_ms))
        .bind(row.cache)
        .bind(int(row.cache_max_age_secs))
        .bind(int(row.cache_swr_secs))
        .bind(int(row.cache_max_bytes))
        .fetch_optional(self.conn())
        .await
        .map_err(self.db())?;
        row.created_at =
            created_at.ok_or_else(|| StoreError::UnknownPgDatabase(row.name.clone()))?;
        Ok(row)
    }

    /// Deletes the pooled database `name` and its credentials; `false` if
    /// there was none.
    pub async fn delete_pg_database(&mut self, name: &str) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM pg_credentials WHERE database = ?1")
            .bind(name)
            .execute(self.conn())
            .await
            .map_err(self.db())?;
        let done = sqlx::query("DELETE FROM pg_databases WHERE name = ?1")
            .bind(name)
            .execute(self.conn())
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores (or replaces) the sealed password of `credential.role` on
    /// `credential.database`, with `updated_at` now; returns it as stored.
    /// `UnknownPgDatabase` if the database does not exist.
    pub async fn set_pg_credential(
        &mut self,
        credential: &SealedCredential,
    ) -> Result<SealedCredential, StoreError> {
        if let Some(reason) = warren_policy::db_role_problem(&credential.role) {
            return Err(invalid(format!("the role {:?} {reason}", credential.role)));
        }
        if credential.nonce.len() != NONCE_LEN || credential.sealed.is_empty() {
            return Err(StoreError::InvalidInput(format!(
                "a sealed credential needs a {NONCE_LEN}-byte nonce and a ciphertext; seal the password with the edge (`warren db credential set`)"
            )));
        }
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM pg_databases WHERE name = ?1")
            .bind(&credential.database)
            .fetch_optional(self.conn())
            .await
            .map_err(self.db())?;
        if exists.is_none() {
            return Err(StoreError::UnknownPgDatabase(credential.database.clone()));
        }
        let row = SealedCredential {
            updated_at: now(),
            ..credential.clone()
        };
        sqlx::query(
            "INSERT INTO pg_credentials (database, role, nonce, sealed, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (database, role) DO UPDATE
             SET nonce = excluded.nonce, sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(&row.database)
        .bind(&row.role)
        .bind(&row.nonce)
        .bind(&row.sealed)
        .bind(row.updated_at)
        .execute(self.conn())
        .await
        .map_err(self.db())?;
        Ok(row)
    }

    /// Deletes the credential of `role` on `database`; `false` if there
    /// was none.
    pub async fn delete_pg_credential(
        &mut self,
        database: &str,
        role: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pg_credentials WHERE database = ?1 AND role = ?2")
            .bind(database)
            .bind(role)
            .execute(self.conn())
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }

    /// The name of the pooled database on `hostname`, inside the
    /// transaction.
    async fn pg_database_on(&mut self, hostname: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT name FROM pg_databases WHERE hostname = ?1")
            .bind(hostname)
            .fetch_optional(self.conn())
            .await
            .map_err(self.db())
    }
}
