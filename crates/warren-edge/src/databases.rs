//! Pooled PostgreSQL databases as the edge serves them: the store's rows
//! (`warren db`) parsed into [`DatabaseConfig`]s by hostname, with their
//! credentials decrypted, for the pooler to read ([`Databases`]).
//!
//! **Credentials are encrypted at rest.** A role's password is sealed with
//! ChaCha20-Poly1305 (`ring::aead`) under a 32-byte key in
//! `<data-dir>/pg-credentials.key` (made with mode 0600 on first use, by
//! the same code as the tunnel secret key: `secrets::load_or_create_key`),
//! with `"warren pg credential\0" + database + "\0" + role` as associated
//! data, so a sealed blob cannot be moved to another row. The store keeps
//! the nonce and the ciphertext; the edge holds the passwords only in
//! memory, as [`Password`]s, which print as `Password(<redacted>)`, have no
//! `Display` or `Serialize`, and are zeroed when dropped.
//!
//! A credential that cannot be decrypted (another edge's key, a replaced
//! key file) is left out of its database's `credentials`, with one warning
//! naming the role and the database — never the blob.
//!
//! [`Databases::reload`] runs at start-up, wherever the routes are
//! reloaded when the store's control generation moves (`access/refresh.rs`)
//! and after every admin write (`admin/databases.rs`). A config whose row
//! and sealed credentials did not change is kept as it was (the same `Arc`,
//! the same [`DatabaseConfig::generation`]), so the pooler can tell what
//! changed.

// The pooler that reads most of this (issue 12) is written alongside;
// until it lands, what only it reads is used by the tests alone. Remove
// this once it does.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use warren_store::{PgDatabase, SealedCredential, Store, StoreError, NONCE_LEN};
use zeroize::Zeroize;

use crate::secrets::{load_or_create_key, KeyFile};

/// File holding the key database credentials are sealed with.
pub(crate) const KEY_FILE: &str = "pg-credentials.key";

/// The associated data's prefix; the database and the role follow.
const AAD_LABEL: &[u8] = b"warren pg credential\0";

/// The longest password the edge seals.
pub(crate) const MAX_PASSWORD_LEN: usize = 4096;

const PG_KEY: KeyFile = KeyFile {
    what: "the PostgreSQL credential key",
    replacing_it: "makes every stored database credential undecryptable",
};

/// How client connections share server connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PoolMode {
    /// A server connection is the client's for one transaction.
    Transaction,
    /// A server connection is the client's until it disconnects.
    Session,
}

impl PoolMode {
    /// Every mode's name, for sentences.
    pub(crate) const NAMES: &'static str = "transaction or session";

    /// `transaction` or `session`; `None` for anything else.
    pub(crate) fn parse(text: &str) -> Option<PoolMode> {
        match text {
            "transaction" => Some(PoolMode::Transaction),
            "session" => Some(PoolMode::Session),
            _ => None,
        }
    }

    /// The name the store and the API use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PoolMode::Transaction => "transaction",
            PoolMode::Session => "session",
        }
    }
}

/// Who authenticates to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AuthMode {
    /// The client proves a Warren identity; the edge logs in with the
    /// stored credentials of the role a policy maps it to.
    Identity,
    /// The client authenticates to the server itself (SCRAM passes
    /// through).
    Passthrough,
}

impl AuthMode {
    /// Every mode's name, for sentences.
    pub(crate) const NAMES: &'static str = "identity or passthrough";

    /// `identity` or `passthrough`; `None` for anything else.
    pub(crate) fn parse(text: &str) -> Option<AuthMode> {
        match text {
            "identity" => Some(AuthMode::Identity),
            "passthrough" => Some(AuthMode::Passthrough),
            _ => None,
        }
    }

    /// The name the store and the API use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthMode::Identity => "identity",
            AuthMode::Passthrough => "passthrough",
        }
    }
}

/// A database's pool, per (database, role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolSettings {
    /// Server connections at most.
    pub size: u32,
    /// Idle server connections kept open.
    pub min_idle: u32,
    /// An idle server connection is closed after this long.
    pub idle_timeout: Duration,
    /// A server connection is closed after this long, once released.
    pub max_lifetime: Duration,
    /// How long a client waits for a server connection.
    pub checkout_timeout: Duration,
}

/// A database's result cache (on only when the database has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheSettings {
    /// How long a cached result is served.
    pub max_age: Duration,
    /// How long past `max_age` it may still be served while it is fetched
    /// again.
    pub stale_while_revalidate: Duration,
    /// The cache's size bound.
    pub max_bytes: u64,
}

/// A database password, decrypted. Prints as `Password(<redacted>)`; has
/// no `Display` and no `Serialize`; zeroed when dropped.
pub(crate) struct Password(String);

impl Password {
    /// Wraps a password (a test's, or one just decrypted).
    #[cfg_attr(not(test), allow(dead_code, reason = "tests build configs by hand"))]
    pub(crate) fn new(password: String) -> Password {
        Password(password)
    }

    /// The password itself, for the authentication exchange with the
    /// database. Never log it or put it in an answer.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// One pooled database, ready for the pooler.
#[derive(Debug)]
pub(crate) struct DatabaseConfig {
    /// `warren db`'s name for it.
    pub name: String,
    /// The route's hostname clients connect to (lower-case).
    pub hostname: String,
    /// The database's name on the server.
    pub database: String,
    pub mode: PoolMode,
    pub auth: AuthMode,
    pub pool: PoolSettings,
    /// `None`: results are not cached.
    pub cache: Option<CacheSettings>,
    /// Role → password, for the credentials that could be decrypted.
    pub credentials: HashMap<String, Arc<Password>>,
    /// Changes whenever this row or its credentials change (grows within
    /// the process; not comparable across processes).
    pub generation: u64,
}

impl DatabaseConfig {
    fn new(
        row: &PgDatabase,
        mode: PoolMode,
        auth: AuthMode,
        credentials: HashMap<String, Arc<Password>>,
        generation: u64,
    ) -> DatabaseConfig {
        DatabaseConfig {
            name: row.name.clone(),
            hostname: row.hostname.clone(),
            database: row.database.clone(),
            mode,
            auth,
            pool: PoolSettings {
                size: row.pool_size,
                min_idle: row.min_idle,
                idle_timeout: Duration::from_secs(row.idle_timeout_secs),
                max_lifetime: Duration::from_secs(row.max_lifetime_secs),
                checkout_timeout: Duration::from_millis(row.checkout_timeout_ms),
            },
            cache: row.cache.then(|| CacheSettings {
                max_age: Duration::from_secs(row.cache_max_age_secs),
                stale_while_revalidate: Duration::from_secs(row.cache_swr_secs),
                max_bytes: row.cache_max_bytes,
            }),
            credentials,
            generation,
        }
    }
}

/// Why a sealed credential does not give its password. Each message says
/// what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialError {
    /// Sealed with another key, or changed since.
    #[error("the credential for role {role} on database {database} cannot be decrypted with {key}; set it again with `warren db credential set {database} --role {role} --password-file FILE`")]
    Undecryptable {
        database: String,
        role: String,
        key: String,
    },
    /// The stored nonce is not one.
    #[error("the credential for role {role} on database {database} is damaged (its nonce is {len} bytes, not 12); set it again with `warren db credential set {database} --role {role} --password-file FILE`")]
    Damaged {
        database: String,
        role: String,
        len: usize,
    },
}

/// The key credentials are sealed with.
pub(crate) struct CredentialKey {
    key: LessSafeKey,
    path: PathBuf,
}

impl fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn aad(database: &str, role: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + database.len() + 1 + role.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(database.as_bytes());
    aad.push(0);
    aad.extend_from_slice(role.as_bytes());
    aad
}

impl CredentialKey {
    /// Reads `<data_dir>/pg-credentials.key`, creating it (mode 0600, 32
    /// random bytes) if it does not exist.
    pub(crate) fn load_or_create(data_dir: &Path) -> io::Result<CredentialKey> {
        let path = data_dir.join(KEY_FILE);
        let mut bytes = load_or_create_key(&path, &PG_KEY)?;
        let key = CredentialKey::from_bytes(&bytes, path);
        bytes.zeroize();
        Ok(key)
    }

    /// The key from its 32 bytes; `path` is what messages name.
    pub(crate) fn from_bytes(bytes: &[u8; 32], path: PathBuf) -> CredentialKey {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .expect("32 bytes are a ChaCha20-Poly1305 key");
        CredentialKey {
            key: LessSafeKey::new(key),
            path,
        }
    }

    /// Seals `password` for `role` on `database` under a fresh random
    /// nonce. `updated_at` is now (the store sets it again when it keeps
    /// it).
    pub(crate) fn seal(&self, database: &str, role: &str, password: &str) -> SealedCredential {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        // Room for the tag up front: no reallocation leaves a copy of the
        // password behind.
        let mut sealed = Vec::with_capacity(password.len() + CHACHA20_POLY1305.tag_len());
        sealed.extend_from_slice(password.as_bytes());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(database, role)),
                &mut sealed,
            )
            .expect("a password under the API's body limit is far below ChaCha20's limit");
        SealedCredential {
            database: database.to_owned(),
            role: role.to_owned(),
            nonce: nonce.to_vec(),
            sealed,
            updated_at: crate::audit::now(),
        }
    }

    /// The password `credential` holds, if it was sealed with this key for
    /// its own database and role.
    pub(crate) fn open(&self, credential: &SealedCredential) -> Result<Password, CredentialError> {
        let nonce: [u8; NONCE_LEN] =
            credential
                .nonce
                .as_slice()
                .try_into()
                .map_err(|_| CredentialError::Damaged {
                    database: credential.database.clone(),
                    role: credential.role.clone(),
                    len: credential.nonce.len(),
                })?;
        let undecryptable = || CredentialError::Undecryptable {
            database: credential.database.clone(),
            role: credential.role.clone(),
            key: self.path.display().to_string(),
        };
        let mut buf = credential.sealed.clone();
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&credential.database, &credential.role)),
                &mut buf,
            )
            .map_err(|_| undecryptable())?
            .len();
        buf.truncate(len);
        String::from_utf8(buf).map(Password).map_err(|e| {
            e.into_bytes().zeroize();
            undecryptable()
        })
    }
}

/// The pooled databases by hostname, and the key their credentials are
/// sealed with. Cheap to clone; clones share one table.
#[derive(Clone)]
pub(crate) struct Databases {
    inner: Arc<Inner>,
}

struct Inner {
    key: CredentialKey,
    by_host: RwLock<Arc<HashMap<String, Arc<DatabaseConfig>>>>,
    /// Held for a whole reload, so that reloads apply in the order they
    /// read the store.
    loaded: tokio::sync::Mutex<Loaded>,
}

/// What the last reload was built from.
#[derive(Default)]
struct Loaded {
    /// By database name: the row, its sealed credentials and the config
    /// made of them.
    sources: HashMap<String, Source>,
    /// By (database, role): the sealed credential last opened and its
    /// password.
    opened: HashMap<(String, String), Opened>,
    /// Rows left out for a mode the edge does not know, as they were when
    /// that was said.
    refused: HashMap<String, PgDatabase>,
    /// The last generation given out.
    generation: u64,
}

/// A sealed credential and its password (`None`: it could not be
/// decrypted, and that was said).
type Opened = (SealedCredential, Option<Arc<Password>>);

struct Source {
    row: PgDatabase,
    sealed: Vec<SealedCredential>,
    config: Arc<DatabaseConfig>,
}

/// Whether two sealed credentials hold the same blob (when it was stored
/// does not matter).
fn same_blob(a: &SealedCredential, b: &SealedCredential) -> bool {
    a.database == b.database && a.role == b.role && a.nonce == b.nonce && a.sealed == b.sealed
}

fn same_sealed(a: &[SealedCredential], b: &[SealedCredential]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_blob(a, b))
}

impl Databases {
    /// No databases yet, with `key` to open their credentials.
    pub(crate) fn new(key: CredentialKey) -> Databases {
        Databases {
            inner: Arc::new(Inner {
                key,
                by_host: RwLock::default(),
                loaded: tokio::sync::Mutex::default(),
            }),
        }
    }

    /// [`Databases::new`] with the key of `data_dir` (made if missing).
    pub(crate) fn load(data_dir: &Path) -> io::Result<Databases> {
        Ok(Databases::new(CredentialKey::load_or_create(data_dir)?))
    }

    /// See [`CredentialKey::seal`].
    pub(crate) fn seal(&self, database: &str, role: &str, password: &str) -> SealedCredential {
        self.inner.key.seal(database, role, password)
    }

    /// See [`CredentialKey::open`].
    pub(crate) fn open(&self, credential: &SealedCredential) -> Result<Password, CredentialError> {
        self.inner.key.open(credential)
    }

    fn table(&self) -> Arc<HashMap<String, Arc<DatabaseConfig>>> {
        self.inner.by_host.read().expect("databases lock").clone()
    }

    /// The database served on `host` (ASCII case-insensitive; a trailing
    /// dot is ignored).
    pub(crate) fn for_host(&self, host: &str) -> Option<Arc<DatabaseConfig>> {
        let table = self.table();
        if let Some(db) = table.get(host) {
            return Some(db.clone());
        }
        let normal = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        table.get(&normal).cloned()
    }

    /// Every database, by name.
    pub(crate) fn all(&self) -> Vec<Arc<DatabaseConfig>> {
        let mut all: Vec<_> = self.table().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Replaces the table with the store's databases, decrypting their
    /// credentials. Only reading the store can fail; a row or a credential
    /// that cannot be used is left out with a warning (once, not at every
    /// reload).
    pub(crate) async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let mut loaded = self.inner.loaded.lock().await;
        let rows = store.pg_databases().await?;
        let mut sealed_of: HashMap<String, Vec<SealedCredential>> = HashMap::new();
        for c in store.all_pg_credentials().await? {
            sealed_of.entry(c.database.clone()).or_default().push(c);
        }
        let previous = std::mem::take(&mut *loaded);
        let mut next = Loaded {
            generation: previous.generation,
            ..Loaded::default()
        };
        let mut by_host = HashMap::with_capacity(rows.len());
        for row in rows {
            let sealed = sealed_of.remove(&row.name).unwrap_or_default();
            let (Some(mode), Some(auth)) = (
                PoolMode::parse(&row.pool_mode),
                AuthMode::parse(&row.auth_mode),
            ) else {
                if previous.refused.get(&row.name) != Some(&row) {
                    tracing::warn!(
                        database = %row.name,
                        pool_mode = %row.pool_mode,
                        auth_mode = %row.auth_mode,
                        "the pooled database {} is not served: its pool mode must be {} and its auth mode {}; fix it with `warren db set {} --pool-mode transaction --auth identity`",
                        row.name, PoolMode::NAMES, AuthMode::NAMES, row.name
                    );
                }
                next.refused.insert(row.name.clone(), row);
                continue;
            };
            let mut credentials = HashMap::with_capacity(sealed.len());
            for c in &sealed {
                let key = (c.database.clone(), c.role.clone());
                let password = match previous.opened.get(&key) {
                    Some((before, password)) if same_blob(before, c) => password.clone(),
                    _ => match self.inner.key.open(c) {
                        Ok(p) => Some(Arc::new(p)),
                        Err(e) => {
                            tracing::warn!(database = %c.database, role = %c.role, "{e}");
                            None
                        }
                    },
                };
                if let Some(p) = &password {
                    credentials.insert(c.role.clone(), p.clone());
                }
                next.opened.insert(key, (c.clone(), password));
            }
            let config = match previous.sources.get(&row.name) {
                Some(s) if s.row == row && same_sealed(&s.sealed, &sealed) => s.config.clone(),
                _ => {
                    next.generation += 1;
                    Arc::new(DatabaseConfig::new(
                        &row,
                        mode,
                        auth,
                        credentials,
                        next.generation,
                    ))
                }
            };
            by_host.insert(row.hostname.clone(), config.clone());
            next.sources.insert(
                row.name.clone(),
                Source {
                    row,
                    sealed,
                    config,
                },
            );
        }
        tracing::debug!(
            databases = by_host.len(),
            credentials = next.opened.values().filter(|(_, p)| p.is_some()).count(),
            "pooled databases reloaded"
        );
        *self.inner.by_host.write().expect("databases lock") = Arc::new(by_host);
        *loaded = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
