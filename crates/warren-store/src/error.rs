//! [`StoreError`]: every way a store operation fails, each one sentence
//! that says what was wrong and what to do.

use std::path::PathBuf;

use sqlx::migrate::MigrateError;
use thiserror::Error;

/// Why a store operation failed. Each message is one sentence that says
/// what was wrong and what to do about it.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The data directory or the database file could not be created.
    #[error("cannot create {path} ({source}); check that the data directory's parent exists and is writable by warren's user")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database file could not be opened, or a statement on it failed.
    #[error("the control-plane database {path} failed ({source}); check that the file and its directory are readable and writable by warren's user and that the disk is not full")]
    Database { path: PathBuf, source: sqlx::Error },
    /// The schema could not be brought up to date.
    #[error("cannot update the schema of the control-plane database {path} ({source}); if a newer warren wrote it, run that version, otherwise restore the file from a backup")]
    Migrate { path: PathBuf, source: MigrateError },
    /// A tunnel with that name already exists.
    #[error("a tunnel named {0:?} already exists; pick another name or delete it with `warren tunnel delete {0}`")]
    TunnelExists(String),
    /// The tunnel name is not allowed.
    #[error("{0:?} is not a valid tunnel name; use 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit (and not shaped like a tunnel id)")]
    InvalidName(String),
    /// No tunnel has that id.
    #[error("no tunnel has the id {0:?}; list tunnels with `warren tunnel list`")]
    UnknownTunnel(String),
    /// The route hostname is not a DNS name.
    #[error("{0:?} is not a valid route hostname; use a DNS name such as app.example.com, or *.example.com for a wildcard, without scheme or port")]
    InvalidHostname(String),
    /// A load-balanced route's tunnel list is not usable.
    #[error("{0}")]
    InvalidPool(String),
    /// The hostname already routes to a tunnel.
    #[error("the hostname {hostname} already routes to tunnel {tunnel_name}; delete that route first with `warren tunnel route delete {hostname}`")]
    RouteExists {
        hostname: String,
        tunnel_name: String,
    },
    /// An access application with that name already exists.
    #[error("an access application named {0:?} already exists; pick another name or delete it with `warren access app delete {0}`")]
    AppExists(String),
    /// No access application has that name.
    #[error("there is no access application named {0:?}; list them with `warren access app list`")]
    UnknownApp(String),
    /// The application or one of its policies is not usable.
    #[error("{0}")]
    InvalidApp(String),
    /// A service token with that name already exists.
    #[error("a service token named {0:?} already exists; pick another name, or rotate its secret with `warren access service-token rotate {0}`")]
    ServiceTokenExists(String),
    /// The service token name is not allowed.
    #[error("{0:?} is not a valid service token name; use 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit")]
    InvalidServiceTokenName(String),
    /// No service token has that name or client id.
    #[error(
        "there is no service token named {0:?}; list them with `warren access service-token list`"
    )]
    UnknownServiceToken(String),
    /// A revoked token cannot be rotated.
    #[error("the service token {0:?} is revoked; create a new one with `warren access service-token create NAME`")]
    ServiceTokenRevoked(String),
    /// A pooled database with that name already exists.
    #[error("a pooled database named {0:?} already exists; pick another name, or change its settings with `warren db set {0}`")]
    PgDatabaseExists(String),
    /// Another pooled database is on that hostname.
    #[error("the hostname {hostname} already serves the pooled database {database}; give this one another route's hostname, or remove that one first with `warren db remove {database}`")]
    PgHostnameTaken { hostname: String, database: String },
    /// No pooled database has that name.
    #[error("there is no pooled database named {0:?}; list them with `warren db list`")]
    UnknownPgDatabase(String),
    /// A pooled database's settings or a credential's role are not usable;
    /// the message says which and what to give instead.
    #[error("{0}")]
    InvalidPgDatabase(String),
    /// Some other input is not usable; the message says what.
    #[error("{0}")]
    InvalidInput(String),
    /// A stored row does not parse.
    #[error("{0}; the database was changed outside warren, restore it from a backup")]
    Corrupt(String),
}
