//! Tunnels: a name, a UUID and the hash of the current secret (kept out of
//! [`Tunnel`], read only by [`Store::tunnel_secret_hash`]).

use serde::{Deserialize, Serialize};

use crate::store::{is_unique_violation, now, one_write};
use crate::{validate, Store, StoreError, StoreTx};

/// A named tunnel. Its secret hash is deliberately not a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tunnel {
    /// UUID v4.
    pub id: String,
    pub name: String,
    /// Bumped by every secret rotation; the secret is derived from it.
    pub secret_generation: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// The secret hashes a registration may match (see
/// [`Store::tunnel_secrets`]); never serialized.
pub struct TunnelSecrets {
    /// SHA-256 of the current secret.
    pub current: Vec<u8>,
    /// SHA-256 of the replaced secret and the Unix second its grace window
    /// ends, while it lasts.
    pub previous: Option<(Vec<u8>, i64)>,
}

impl std::fmt::Debug for TunnelSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelSecrets")
            .field("previous_until", &self.previous.as_ref().map(|(_, u)| u))
            .finish_non_exhaustive()
    }
}

/// `secret_hash, previous_secret_hash, previous_valid_until`.
type SecretsTuple = (Vec<u8>, Option<Vec<u8>>, Option<i64>);

type TunnelTuple = (String, String, i64, i64);

fn tunnel_from((id, name, secret_generation, created_at): TunnelTuple) -> Tunnel {
    Tunnel {
        id,
        name,
        secret_generation,
        created_at,
    }
}

impl Store {
    /// Creates a tunnel with a new UUID. The caller derives the secret and
    /// passes only its hash. When the secret depends on the tunnel id, use
    /// [`Store::create_tunnel_with`] instead.
    pub async fn create_tunnel(
        &self,
        name: &str,
        secret_hash: &[u8; 32],
        generation: i64,
    ) -> Result<Tunnel, StoreError> {
        self.create_tunnel_with(name, generation, |_| *secret_hash)
            .await
    }

    /// All tunnels, by name.
    pub async fn list_tunnels(&self) -> Result<Vec<Tunnel>, StoreError> {
        let rows: Vec<TunnelTuple> = sqlx::query_as(
            "SELECT id, name, secret_generation, created_at FROM tunnels ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(rows.into_iter().map(tunnel_from).collect())
    }

    /// The tunnel with this id, or else with this name.
    pub async fn get_tunnel(&self, name_or_id: &str) -> Result<Option<Tunnel>, StoreError> {
        let row: Option<TunnelTuple> = sqlx::query_as(
            "SELECT id, name, secret_generation, created_at FROM tunnels
             WHERE id = ?1 OR name = ?1 ORDER BY id = ?1 DESC LIMIT 1",
        )
        .bind(name_or_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(row.map(tunnel_from))
    }

    /// Replaces a tunnel's secret hash and generation (secret rotation).
    /// With `previous_until` (Unix seconds) the secret it replaces stays
    /// valid until then; without, it ends now (as does any older one).
    pub async fn set_tunnel_secret(
        &self,
        id: &str,
        secret_hash: &[u8; 32],
        generation: i64,
        previous_until: Option<i64>,
    ) -> Result<(), StoreError> {
        // The right-hand sides read the row as it was: the previous hash
        // is the one being replaced.
        let done = sqlx::query(
            "UPDATE tunnels SET secret_hash = ?2, secret_generation = ?3,
                 previous_secret_hash = CASE WHEN ?4 IS NULL THEN NULL ELSE secret_hash END,
                 previous_valid_until = ?4
             WHERE id = ?1",
        )
        .bind(id)
        .bind(&secret_hash[..])
        .bind(generation)
        .bind(previous_until)
        .execute(&self.pool)
        .await
        .map_err(self.db())?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownTunnel(id.to_owned()));
        }
        Ok(())
    }

    /// The secrets a registration may use: the current one's hash, and the
    /// one a rotation replaced while its grace window (Unix seconds) lasts.
    pub async fn tunnel_secrets(&self, id: &str) -> Result<Option<TunnelSecrets>, StoreError> {
        let row: Option<SecretsTuple> = sqlx::query_as(
            "SELECT secret_hash, previous_secret_hash, previous_valid_until FROM tunnels WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(row.map(|(current, previous, until)| TunnelSecrets {
            current,
            previous: previous.zip(until).filter(|(_, until)| *until > now()),
        }))
    }

    /// Ends the grace window of the secret a rotation replaced, at once.
    /// `false` if there was none (or no such tunnel).
    pub async fn revoke_previous_secret(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tunnels SET previous_secret_hash = NULL, previous_valid_until = NULL
             WHERE id = ?1 AND previous_secret_hash IS NOT NULL AND previous_valid_until > ?2",
        )
        .bind(id)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }

    /// The stored SHA-256 of a tunnel's current secret.
    pub async fn tunnel_secret_hash(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT secret_hash FROM tunnels WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.db())
    }
}

/// A tunnel's ingress config as stored at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelConfig {
    /// Grows with every change (the first is 1).
    pub version: i64,
    /// The YAML text, as given.
    pub yaml: String,
    /// Unix seconds.
    pub updated_at: i64,
}

impl Store {
    /// The tunnel's stored ingress config, if it has one.
    pub async fn tunnel_config(&self, id: &str) -> Result<Option<TunnelConfig>, StoreError> {
        let row: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT version, yaml, updated_at FROM tunnel_configs WHERE tunnel_id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(row.map(|(version, yaml, updated_at)| TunnelConfig {
            version,
            yaml,
            updated_at,
        }))
    }

    /// Marks a tunnel as a quick tunnel (see [`Store::quick_tunnels`]).
    pub async fn mark_quick_tunnel(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE tunnels SET quick = 1 WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownTunnel(id.to_owned()));
        }
        Ok(())
    }

    /// The quick tunnels: made by `warren tunnel --url` without an admin
    /// token, to be removed once disconnected for a while.
    pub async fn quick_tunnels(&self) -> Result<Vec<Tunnel>, StoreError> {
        let rows: Vec<TunnelTuple> = sqlx::query_as(
            "SELECT id, name, secret_generation, created_at FROM tunnels WHERE quick = 1 ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(rows.into_iter().map(tunnel_from).collect())
    }
}

one_write! {
    /// Creates a tunnel with a new UUID, asking `secret_hash` for the hash
    /// of its secret given that id (see [`StoreTx::create_tunnel_with`]).
    pub async fn create_tunnel_with(
        &self,
        name: &str,
        generation: i64,
        secret_hash: impl FnOnce(&str) -> [u8; 32]
    ) -> Tunnel;
    /// Deletes a tunnel and its routes (see [`StoreTx::delete_tunnel`]).
    pub async fn delete_tunnel(&self, id: &str) -> bool;
    /// Stores the tunnel's next ingress config (see
    /// [`StoreTx::set_tunnel_config`]).
    pub async fn set_tunnel_config(&self, id: &str, yaml: &str) -> TunnelConfig;
}

impl StoreTx {
    /// Creates a tunnel with a new UUID, asking `secret_hash` for the hash
    /// of its secret given that id, so that the tunnel is written once and
    /// complete (no placeholder hash, no second statement).
    pub async fn create_tunnel_with(
        &mut self,
        name: &str,
        generation: i64,
        secret_hash: impl FnOnce(&str) -> [u8; 32],
    ) -> Result<Tunnel, StoreError> {
        if !validate::is_valid_tunnel_name(name) {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        let tunnel = Tunnel {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            secret_generation: generation,
            created_at: now(),
        };
        let hash = secret_hash(&tunnel.id);
        let result = sqlx::query(
            "INSERT INTO tunnels (id, name, secret_hash, secret_generation, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&tunnel.id)
        .bind(&tunnel.name)
        .bind(&hash[..])
        .bind(tunnel.secret_generation)
        .bind(tunnel.created_at)
        .execute(self.conn())
        .await;
        match result {
            Ok(_) => Ok(tunnel),
            Err(e) if is_unique_violation(&e) => Err(StoreError::TunnelExists(name.to_owned())),
            Err(e) => Err(self.db()(e)),
        }
    }

    /// Deletes a tunnel and (by cascade) its routes; a load-balanced route
    /// loses only this tunnel, unless it was the last one. `false` if there
    /// was no such tunnel.
    pub async fn delete_tunnel(&mut self, id: &str) -> Result<bool, StoreError> {
        // Pool routes that name this tunnel first move to their next one.
        sqlx::query(
            "UPDATE routes SET tunnel_id = (
                 SELECT rt.tunnel_id FROM route_tunnels rt
                 WHERE rt.hostname = routes.hostname AND rt.tunnel_id != ?1
                 ORDER BY rt.priority LIMIT 1)
             WHERE tunnel_id = ?1 AND steering != 'single' AND EXISTS (
                 SELECT 1 FROM route_tunnels rt
                 WHERE rt.hostname = routes.hostname AND rt.tunnel_id != ?1)",
        )
        .bind(id)
        .execute(self.conn())
        .await
        .map_err(self.db())?;
        let done = sqlx::query("DELETE FROM tunnels WHERE id = ?1")
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(self.db())?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores `yaml` as the tunnel's ingress config, one version above the
    /// last (the first is 1); returns it.
    pub async fn set_tunnel_config(
        &mut self,
        id: &str,
        yaml: &str,
    ) -> Result<TunnelConfig, StoreError> {
        let now = now();
        let done: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO tunnel_configs (tunnel_id, version, yaml, updated_at)
             SELECT ?1, 1, ?2, ?3
             WHERE EXISTS (SELECT 1 FROM tunnels WHERE id = ?1)
             ON CONFLICT (tunnel_id) DO UPDATE SET
                 version = tunnel_configs.version + 1, yaml = excluded.yaml, updated_at = excluded.updated_at
             RETURNING version",
        )
        .bind(id)
        .bind(yaml)
        .bind(now)
        .fetch_optional(self.conn())
        .await
        .map_err(self.db())?;
        match done {
            Some((version,)) => Ok(TunnelConfig {
                version,
                yaml: yaml.to_owned(),
                updated_at: now,
            }),
            None => Err(StoreError::UnknownTunnel(id.to_owned())),
        }
    }
}
