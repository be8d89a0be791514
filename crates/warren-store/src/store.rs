//! The [`Store`] handle: opening the database file (private mode, WAL,
//! foreign keys), applying migrations, and the helpers the per-table
//! modules share.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreError;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "warren.db";

/// How long a statement waits for another writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Creates an empty database file readable only by its owner, so SQLite
/// (which gives its -wal and -shm files the same mode) never makes a
/// world-readable one. An existing file is left alone.
fn create_private_db_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The control-plane store. Clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    path: Arc<PathBuf>,
}

impl Store {
    /// Opens (creating if missing) `<data_dir>/warren.db` in WAL mode with
    /// foreign keys on, and applies pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        create_private_db_file(&path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Database {
                path: path.clone(),
                source,
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.clone(),
                source,
            })?;
        Ok(Store {
            pool,
            path: Arc::new(path),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for in-flight statements and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn db(&self) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        db_error(&self.path)
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`, so it never fails
    /// half-way for another writer): the changes made through the
    /// [`StoreTx`] land together at [`StoreTx::commit`], or not at all if
    /// it is dropped first.
    pub async fn begin(&self) -> Result<StoreTx, StoreError> {
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.db())?;
        Ok(StoreTx {
            tx,
            path: self.path.clone(),
        })
    }
}

fn db_error(path: &Path) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |source| StoreError::Database {
        path: path.to_path_buf(),
        source,
    }
}

/// A write transaction from [`Store::begin`]. The store's write methods
/// are methods of this type too, so that several changes (`warren
/// apply`) can be made as one; each `Store` method of the same name runs
/// in a transaction of its own ([`one_write!`]).
pub struct StoreTx {
    pub(crate) tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for StoreTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTx").field("path", &self.path).finish()
    }
}

impl StoreTx {
    /// Makes every change of the transaction land, together.
    pub async fn commit(self) -> Result<(), StoreError> {
        let path = self.path;
        self.tx.commit().await.map_err(db_error(&path))
    }

    pub(crate) fn db(&self) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        db_error(&self.path)
    }

    /// The connection the transaction runs on.
    pub(crate) fn conn(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.tx
    }
}

/// `Store` methods that each run the [`StoreTx`] method of the same name
/// in a transaction of their own.
macro_rules! one_write {
    ($($(#[$meta:meta])* pub async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        impl $crate::Store {
            $(
                $(#[$meta])*
                pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, $crate::StoreError> {
                    let mut tx = self.begin().await?;
                    let out = tx.$name($($arg),*).await?;
                    tx.commit().await?;
                    Ok(out)
                }
            )*
        }
    };
}
pub(crate) use one_write;
