//! Tunnel-secret derivation and the admin API token bootstrap.
//!
//! [`TunnelSecrets`] holds a 32-byte master key (`<data-dir>/tunnel-secret.key`,
//! mode 0600) from which every tunnel secret is derived:
//! `HMAC-SHA256(key, "warren tunnel secret v1\0" || tunnel_id || "\0" || generation)`.
//! The store therefore keeps only `hash_secret(secret)`, yet
//! `warren tunnel token` can print a tunnel's token again at any time, and
//! rotating a secret is bumping its generation.
//!
//! [`load_or_create_key`] is how every such key file is made and read
//! (also the PostgreSQL credential key, `databases.rs`).
//!
//! [`bootstrap_admin_token`] creates the first admin API token on a fresh
//! edge and writes it to `<data-dir>/admin-token`; [`check_admin_token`]
//! verifies a presented one in constant time.
//!
//! **Nothing here logs a secret or a token.**

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use warren_proto::token::{hash_secret, verify_secret};
use warren_store::{Store, StoreError};

/// File holding the tunnel-secret master key.
pub const TUNNEL_KEY_FILE: &str = "tunnel-secret.key";
/// File the first admin API token is written to.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// Prefix of admin API tokens, so they are recognisable in a leak scan.
pub const ADMIN_TOKEN_PREFIX: &str = "wat_";

const KEY_LEN: usize = 32;
const DERIVATION_LABEL: &[u8] = b"warren tunnel secret v1\0";

/// Derives tunnel secrets from the edge's master key.
pub struct TunnelSecrets {
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for TunnelSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelSecrets")
            .field("key", &"<redacted>")
            .finish()
    }
}

impl TunnelSecrets {
    /// Reads `<data_dir>/tunnel-secret.key`, creating it (mode 0600, 32
    /// random bytes) if it does not exist.
    pub fn load_or_create(data_dir: &Path) -> io::Result<TunnelSecrets> {
        let key = load_or_create_key(&data_dir.join(TUNNEL_KEY_FILE), &TUNNEL_KEY)?;
        Ok(TunnelSecrets { key })
    }

    /// Builds the deriver from a known key (tests, key import).
    pub fn from_key(key: [u8; KEY_LEN]) -> TunnelSecrets {
        TunnelSecrets { key }
    }

    /// The secret of `tunnel_id` at `generation`.
    pub fn secret(&self, tunnel_id: &str, generation: i64) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        mac.update(DERIVATION_LABEL);
        mac.update(tunnel_id.as_bytes());
        mac.update(b"\0");
        mac.update(generation.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// A 32-byte key kept in a file of the data directory: what to call it
/// in a warning, and what replacing the file would break.
pub(crate) struct KeyFile {
    /// `the tunnel secret key`.
    pub(crate) what: &'static str,
    /// `invalidates every tunnel's secret`.
    pub(crate) replacing_it: &'static str,
}

const TUNNEL_KEY: KeyFile = KeyFile {
    what: "the tunnel secret key",
    replacing_it: "invalidates every tunnel's secret",
};

/// Reads the 32-byte key at `path`, creating the file (mode 0600, 32
/// random bytes) if it does not exist. A key readable by other users is
/// used with a warning; a file of another length is refused.
pub(crate) fn load_or_create_key(path: &Path, kind: &KeyFile) -> io::Result<[u8; KEY_LEN]> {
    let mut key = [0u8; KEY_LEN];
    rand::rng().fill_bytes(&mut key);
    match create_private_file(path) {
        Ok(mut file) => {
            file.write_all(&key)?;
            file.sync_all()?;
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_key(path, kind),
        Err(e) => Err(e),
    }
}

fn load_key(path: &Path, kind: &KeyFile) -> io::Result<[u8; KEY_LEN]> {
    let file = fs::File::open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "{} is readable by other users; restrict it with chmod 600",
            kind.what
        );
    }
    let mut bytes = Vec::with_capacity(KEY_LEN);
    file.take(KEY_LEN as u64 + 1).read_to_end(&mut bytes)?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} holds {}{} bytes instead of {KEY_LEN}; restore it from a backup (replacing it {})",
                path.display(),
                b.len(),
                if b.len() > KEY_LEN { " or more" } else { "" },
                kind.replacing_it,
            ),
        )
    })
}

/// Why the admin API token could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token file could not be written.
    #[error("cannot write the admin API token to {path} ({source}); check that the data directory is writable by warren's user")]
    Write { path: PathBuf, source: io::Error },
}

/// Creates the first admin API token if the store has none: 32 random
/// bytes as `wat_<hex>`, written to `<data_dir>/admin-token` (mode 0600)
/// and stored as its SHA-256. Returns the new token, or `None` if one
/// already existed.
pub async fn bootstrap_admin_token(
    store: &Store,
    data_dir: &Path,
) -> Result<Option<String>, BootstrapError> {
    if store.has_admin_token().await? {
        return Ok(None);
    }
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = format!("{ADMIN_TOKEN_PREFIX}{}", hex::encode(raw));
    // The file first: if storing the hash then fails, the next start simply
    // makes a new token, whereas the reverse order could lock everyone out.
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    write_private(&path, format!("{token}\n").as_bytes())
        .map_err(|source| BootstrapError::Write { path, source })?;
    store
        .add_admin_token_hash(&hash_secret(token.as_bytes()))
        .await?;
    Ok(Some(token))
}

/// Whether `presented` is one of the stored admin tokens; store errors
/// count as "no" (and are logged). See [`try_check_admin_token`].
pub async fn check_admin_token(store: &Store, presented: &str) -> bool {
    match try_check_admin_token(store, presented).await {
        Ok(ok) => ok,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the admin API tokens");
            false
        }
    }
}

/// Whether `presented` is one of the stored admin tokens, comparing
/// against every stored hash in constant time.
pub async fn try_check_admin_token(store: &Store, presented: &str) -> Result<bool, StoreError> {
    let presented = presented.trim();
    if presented.is_empty() {
        return Ok(false);
    }
    let hashes = store.admin_token_hashes().await?;
    Ok(hashes.iter().fold(false, |found, h| {
        found | verify_secret(presented.as_bytes(), h)
    }))
}

/// Creates a new file only the owner can read; fails if it exists.
fn create_private_file(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Writes a file only the owner can read, replacing any previous one.
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` only applies on creation; tighten a pre-existing file too.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn master_key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = TunnelSecrets::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(TUNNEL_KEY_FILE);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read(&path).unwrap().len(), 32);
        let b = TunnelSecrets::load_or_create(dir.path()).unwrap();
        assert_eq!(a.secret("t1", 1), b.secret("t1", 1));
        assert!(!format!("{a:?}").contains(&format!("{:?}", a.key)));
    }

    #[test]
    fn truncated_master_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TUNNEL_KEY_FILE), [1u8; 16]).unwrap();
        let e = TunnelSecrets::load_or_create(dir.path()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("16 bytes instead of 32"), "{e}");
    }

    #[test]
    fn secrets_depend_on_key_tunnel_and_generation() {
        let s = TunnelSecrets::from_key([7; 32]);
        let base = s.secret("t1", 1);
        assert_eq!(base, s.secret("t1", 1));
        assert_ne!(base, s.secret("t1", 2));
        assert_ne!(base, s.secret("t2", 1));
        // The separator keeps ("t1", 11) and ("t11", 1) apart.
        assert_ne!(s.secret("t1", 11), s.secret("t11", 1));
        assert_ne!(base, TunnelSecrets::from_key([8; 32]).secret("t1", 1));
    }

    #[test]
    fn derivation_is_hmac_sha256_of_the_documented_message() {
        let key = [7u8; 32];
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        mac.update(b"warren tunnel secret v1\0abc\x0042");
        let want: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(TunnelSecrets::from_key(key).secret("abc", 42), want);
    }

    #[tokio::test]
    async fn admin_token_is_bootstrapped_once_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let token = bootstrap_admin_token(&store, dir.path())
            .await
            .unwrap()
            .unwrap();
        assert!(token.starts_with("wat_"));
        assert_eq!(token.len(), 4 + 64);
        let path = dir.path().join(ADMIN_TOKEN_FILE);
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{token}\n"));
        assert_eq!(mode(&path), 0o600);

        assert!(bootstrap_admin_token(&store, dir.path())
            .await
            .unwrap()
            .is_none());
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{token}\n"));

        assert!(check_admin_token(&store, &token).await);
        assert!(check_admin_token(&store, &format!("{token}\n")).await);
        assert!(!check_admin_token(&store, "").await);
        assert!(!check_admin_token(&store, "wat_00").await);
        assert!(!check_admin_token(&store, &token[..token.len() - 1]).await);
    }
}
