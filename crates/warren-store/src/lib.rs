//! Warren's control-plane store: tunnels, hostname routes, admin API
//! tokens, access control, pooled PostgreSQL databases and the audit log,
//! in SQLite (`<data-dir>/warren.db`) through sqlx.
//!
//! [`Store`] is the only type; it is cheap to clone (it wraps a connection
//! pool). **Only this crate knows SQL**: callers get typed rows
//! ([`Tunnel`], [`RouteRow`]) and typed errors ([`StoreError`], each one a
//! sentence saying what was wrong and what to do). The rows the admin API
//! answers with derive `utoipa::ToSchema`: the edge's OpenAPI document
//! describes them from these definitions.
//!
//! **The store never holds a secret**, only SHA-256 hashes that the caller
//! computed; a tunnel's secret hash is kept out of [`Tunnel`] so that it
//! cannot be serialized by accident ([`Store::tunnel_secret_hash`] reads it).
//! Database passwords, which must be presented to the database, arrive
//! sealed by the edge ([`SealedCredential`]).
//!
//! Writes that take more than one statement run in one `BEGIN IMMEDIATE`
//! transaction, so they neither half-apply nor fail on a lock upgrade.
//! The writes `warren apply` makes are methods of [`StoreTx`] as well
//! ([`Store::begin`]), so a whole plan lands as one transaction; the
//! `Store` method of the same name runs one in a transaction of its own.
//!
//! One module per job, each adding its methods to [`Store`]: `store`
//! (opening, migrations), `tunnels`, `routes`, `admin_tokens`, `access/`
//! (applications, service tokens, identity providers, sessions, signing
//! keys, the control generation), `pg_databases` (pooled PostgreSQL
//! databases and their sealed credentials), `audit` (the hash-chained
//! log), and `error` ([`StoreError`]).

#![forbid(unsafe_code)]

mod access;
mod admin_tokens;
mod audit;
mod error;
mod pg_databases;
mod routes;
mod store;
mod tunnels;
mod validate;

pub use access::{AppRow, IdpRow, ServiceTokenRow, SessionRow, SigningKeyRow};
pub use audit::{AuditEntry, AuditFilter, AuditRecord, AuditVerdict};
pub use error::StoreError;
pub use pg_databases::{
    PgDatabase, SealedCredential, MAX_CACHE_BYTES, MAX_CACHE_SECS, MAX_CHECKOUT_MS, MAX_POOL_SECS,
    MAX_POOL_SIZE, NONCE_LEN,
};
pub use routes::{RouteMember, RouteRow, Steering};
pub use store::{Store, StoreTx, DB_FILE};
pub use tunnels::{Tunnel, TunnelConfig, TunnelSecrets};

#[cfg(test)]
mod tests;
