//! Live connector connections, by tunnel, and the choice of one for a new
//! stream.
//!
//! Each registered QUIC connection is a [`TunnelConn`] with a count of its
//! outstanding streams. [`Registry::pick_fresh`] takes two live, non-draining
//! connections of the tunnel at random and returns the less loaded one
//! (power of two choices), which spreads load across HA connections and
//! replicas without any shared state beyond the counters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use rand::Rng;
use serde::Serialize;
use warren_proto::close::CloseCode;
use warren_transport::TunnelConnection;

/// One registered connection of a connector.
pub(crate) struct TunnelConn {
    /// Id the edge gave the connection.
    pub id: String,
    pub tunnel_id: String,
    pub connector_id: String,
    pub connector_version: String,
    pub conn_index: u8,
    /// How many connections the connector keeps in all.
    pub ha_connections: u8,
    pub remote: SocketAddr,
    /// The edge address the connection arrived at.
    pub edge_addr: SocketAddr,
    /// Unix seconds.
    pub connected_at: u64,
    /// The secret generation it registered with (the current one, or the
    /// one before while a rotation's grace window lasts).
    pub secret_generation: i64,
    pub conn: TunnelConnection,
    /// What the connector answered to the last stored config pushed on
    /// this connection.
    config: std::sync::Mutex<Option<ConfigState>>,
    outstanding: AtomicUsize,
    draining: AtomicBool,
}

/// What a registration says about a connection, besides the connection.
pub(crate) struct ConnMeta {
    pub id: String,
    pub tunnel_id: String,
    pub connector_id: String,
    pub connector_version: String,
    pub conn_index: u8,
    pub ha_connections: u8,
    /// The edge's tunnel listener address (its port; the IP is the one the
    /// connection arrived at when known).
    pub listen: SocketAddr,
    /// Unix seconds.
    pub connected_at: u64,
    /// See [`TunnelConn::secret_generation`].
    pub secret_generation: i64,
}

/// A connector's answer to a stored config pushed to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct ConfigState {
    pub version: u64,
    /// It runs that version now.
    pub applied: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// What the admin API shows of a connection.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ConnectionInfo {
    pub id: String,
    pub connector_id: String,
    pub connector_version: String,
    pub conn_index: u8,
    pub remote: String,
    pub edge_addr: String,
    pub connected_at: u64,
    pub outstanding_streams: usize,
    pub draining: bool,
    /// Registered with a secret that is no longer the tunnel's current
    /// one (before a rotation, or with the replaced one in its grace
    /// window): its connector runs an old token.
    pub previous_secret: bool,
    /// Its answer to the last stored config pushed to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigState>,
}

/// Whether a tunnel can serve, from its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TunnelStatus {
    /// Some connector has all of its configured connections up.
    Active,
    /// Some connections are up and serving, but no connector has all of
    /// its connections.
    Degraded,
    /// No connection can take a stream.
    Inactive,
}

/// One connector process of a tunnel, from its connections.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ConnectorInfo {
    pub id: String,
    pub version: String,
    /// The address its connections come from (IP only).
    pub source_ip: String,
    /// Edge addresses its connections arrived at.
    pub edge_addrs: Vec<String>,
    /// Connections that can take streams now.
    pub connections_up: usize,
    /// Connections the connector is configured to keep.
    pub connections_configured: u8,
    /// Unix seconds: its oldest live connection.
    pub connected_since: u64,
    /// It asked the edge to stop sending it streams.
    pub draining: bool,
    /// Some of its connections registered with the secret a rotation
    /// replaced: it still runs the old token.
    pub previous_secret: bool,
    /// The newest stored config any of its connections answered about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigState>,
}

/// A tunnel's health: status, how long it has been serving, its connectors.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TunnelHealth {
    pub status: TunnelStatus,
    /// Unix seconds: the first connection of the current unbroken run of
    /// having at least one connection; `None` when inactive.
    pub up_since: Option<u64>,
    pub connectors: Vec<ConnectorInfo>,
    pub connections: Vec<ConnectionInfo>,
}

impl TunnelConn {
    pub(crate) fn new(meta: ConnMeta, conn: TunnelConnection) -> Self {
        let edge_ip = conn.local_ip().unwrap_or(meta.listen.ip());
        Self {
            id: meta.id,
            tunnel_id: meta.tunnel_id,
            connector_id: meta.connector_id,
            connector_version: meta.connector_version,
            conn_index: meta.conn_index,
            ha_connections: meta.ha_connections.max(1),
            remote: conn.remote_address(),
            edge_addr: SocketAddr::new(edge_ip, meta.listen.port()),
            connected_at: meta.connected_at,
            secret_generation: meta.secret_generation,
            conn,
            config: std::sync::Mutex::new(None),
            outstanding: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
        }
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Counts a stream as outstanding until the guard drops.
    pub(crate) fn track(self: &Arc<Self>) -> StreamGuard {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self.clone())
    }

    pub(crate) fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn usable(&self) -> bool {
        !self.is_draining() && !self.conn.is_closed()
    }

    /// Notes the connector's answer to a config pushed on this connection.
    pub(crate) fn set_config(&self, state: ConfigState) {
        *self.config.lock().expect("config state") = Some(state);
    }

    fn config(&self) -> Option<ConfigState> {
        self.config.lock().expect("config state").clone()
    }

    /// Whether it registered with a secret older than `current`.
    fn on_old_secret(&self, current: i64) -> bool {
        self.secret_generation < current
    }

    pub(crate) fn info(&self, current_generation: i64) -> ConnectionInfo {
        ConnectionInfo {
            id: self.id.clone(),
            connector_id: self.connector_id.clone(),
            connector_version: self.connector_version.clone(),
            conn_index: self.conn_index,
            remote: self.remote.to_string(),
            edge_addr: self.edge_addr.to_string(),
            connected_at: self.connected_at,
            outstanding_streams: self.outstanding(),
            draining: self.is_draining(),
            previous_secret: self.on_old_secret(current_generation),
            config: self.config(),
        }
    }
}

/// Keeps a stream counted against its connection.
pub(crate) struct StreamGuard(Arc<TunnelConn>);

impl StreamGuard {
    /// The connection the stream is on.
    pub(crate) fn conn(&self) -> &Arc<TunnelConn> {
        &self.0
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// All live connections, by tunnel id.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    inner: Arc<RwLock<HashMap<String, TunnelEntry>>>,
}

/// A tunnel with at least one registered connection.
struct TunnelEntry {
    conns: Vec<Arc<TunnelConn>>,
    /// When the first connection of this unbroken run registered.
    up_since: u64,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn insert(&self, c: Arc<TunnelConn>) {
        let mut m = self.inner.write().expect("registry lock");
        m.entry(c.tunnel_id.clone())
            .or_insert_with(|| TunnelEntry {
                conns: Vec::new(),
                up_since: c.connected_at,
            })
            .conns
            .push(c);
    }

    /// The registered connections of one tunnel.
    pub(crate) fn of_tunnel(&self, tunnel_id: &str) -> Vec<Arc<TunnelConn>> {
        let m = self.inner.read().expect("registry lock");
        m.get(tunnel_id)
            .map(|e| e.conns.clone())
            .unwrap_or_default()
    }

    /// Every registered connection (for metrics).
    pub(crate) fn all(&self) -> Vec<Arc<TunnelConn>> {
        let m = self.inner.read().expect("registry lock");
        m.values().flat_map(|e| e.conns.iter().cloned()).collect()
    }

    pub(crate) fn remove(&self, tunnel_id: &str, conn_id: &str) {
        let mut m = self.inner.write().expect("registry lock");
        if let Some(e) = m.get_mut(tunnel_id) {
            e.conns.retain(|c| c.id != conn_id);
            if e.conns.is_empty() {
                m.remove(tunnel_id);
            }
        }
    }

    /// Picks a connection for a new stream: the less loaded of two random
    /// usable ones, skipping the connections in `exclude` (by id) that a
    /// retry already tried. `None` when no other is usable.
    pub(crate) fn pick_fresh(
        &self,
        tunnel_id: &str,
        exclude: &[String],
    ) -> Option<Arc<TunnelConn>> {
        let m = self.inner.read().expect("registry lock");
        let fresh: Vec<&Arc<TunnelConn>> = m
            .get(tunnel_id)?
            .conns
            .iter()
            .filter(|c| c.usable() && !exclude.contains(&c.id))
            .collect();
        (!fresh.is_empty()).then(|| power_of_two(&fresh).clone())
    }

    /// The tunnel's status alone (what [`Registry::health`] computes,
    /// without building the connector list): for steering on the request
    /// path.
    pub(crate) fn status(&self, tunnel_id: &str) -> TunnelStatus {
        let m = self.inner.read().expect("registry lock");
        let Some(e) = m.get(tunnel_id) else {
            return TunnelStatus::Inactive;
        };
        // (connector id, usable connections, configured, draining)
        let mut per: Vec<(&str, usize, u8, bool)> = Vec::new();
        for c in &e.conns {
            let i = match per.iter().position(|p| p.0 == c.connector_id) {
                Some(i) => i,
                None => {
                    per.push((&c.connector_id, 0, c.ha_connections, false));
                    per.len() - 1
                }
            };
            per[i].1 += usize::from(c.usable());
            per[i].3 |= c.is_draining();
        }
        classify(per.iter().map(|p| (p.1, p.2, p.3)))
    }

    /// Status, uptime and connectors of a tunnel, from its connections.
    /// The tunnel's health; connections registered with a secret older
    /// than `current_generation` are marked as on an old secret.
    pub(crate) fn health(&self, tunnel_id: &str, current_generation: i64) -> TunnelHealth {
        let m = self.inner.read().expect("registry lock");
        let Some(e) = m.get(tunnel_id) else {
            return TunnelHealth {
                status: TunnelStatus::Inactive,
                up_since: None,
                connectors: Vec::new(),
                connections: Vec::new(),
            };
        };
        let mut connectors: Vec<ConnectorInfo> = Vec::new();
        for c in &e.conns {
            let edge = c.edge_addr.to_string();
            let info = match connectors.iter_mut().find(|i| i.id == c.connector_id) {
                Some(i) => i,
                None => {
                    connectors.push(ConnectorInfo {
                        id: c.connector_id.clone(),
                        version: c.connector_version.clone(),
                        source_ip: c.remote.ip().to_string(),
                        edge_addrs: Vec::new(),
                        connections_up: 0,
                        connections_configured: c.ha_connections,
                        connected_since: c.connected_at,
                        draining: false,
                        previous_secret: false,
                        config: None,
                    });
                    connectors.last_mut().expect("just pushed")
                }
            };
            if c.usable() {
                info.connections_up += 1;
            }
            info.draining |= c.is_draining();
            info.previous_secret |= c.on_old_secret(current_generation);
            if let Some(state) = c.config() {
                if info
                    .config
                    .as_ref()
                    .is_none_or(|s| s.version < state.version)
                {
                    info.config = Some(state);
                }
            }
            info.connected_since = info.connected_since.min(c.connected_at);
            if !info.edge_addrs.contains(&edge) {
                info.edge_addrs.push(edge);
            }
        }
        connectors.sort_by_key(|i| i.connected_since);
        let status = classify(
            connectors
                .iter()
                .map(|i| (i.connections_up, i.connections_configured, i.draining)),
        );
        TunnelHealth {
            status,
            up_since: (status != TunnelStatus::Inactive).then_some(e.up_since),
            connectors,
            connections: e.conns.iter().map(|c| c.info(current_generation)).collect(),
        }
    }

    /// Closes the tunnel's connections that registered with a secret older
    /// than generation `current` (the old secret's grace window was
    /// ended); how many.
    pub(crate) fn disconnect_old_secrets(
        &self,
        tunnel_id: &str,
        current: i64,
        reason: &str,
    ) -> usize {
        let mut m = self.inner.write().expect("registry lock");
        let Some(e) = m.get_mut(tunnel_id) else {
            return 0;
        };
        let (old, kept): (Vec<_>, Vec<_>) =
            e.conns.drain(..).partition(|c| c.on_old_secret(current));
        e.conns = kept;
        if e.conns.is_empty() {
            m.remove(tunnel_id);
        }
        drop(m);
        for c in &old {
            c.conn.close(CloseCode::TunnelGone, reason.as_bytes());
        }
        old.len()
    }

    /// Closes every connection of a tunnel (deleted tunnel).
    pub(crate) fn disconnect_tunnel(&self, tunnel_id: &str, reason: &str) {
        let conns = self
            .inner
            .write()
            .expect("registry lock")
            .remove(tunnel_id)
            .map(|e| e.conns)
            .unwrap_or_default();
        for c in conns {
            c.conn.close(CloseCode::TunnelGone, reason.as_bytes());
        }
    }
}

/// The less loaded of two distinct random entries (power of two choices).
fn power_of_two<'a>(usable: &[&'a Arc<TunnelConn>]) -> &'a Arc<TunnelConn> {
    let n = usable.len();
    if n == 1 {
        return usable[0];
    }
    let mut rng = rand::rng();
    let a = rng.random_range(0..n);
    let mut b = rng.random_range(0..n - 1);
    if b >= a {
        b += 1;
    }
    let (a, b) = (usable[a], usable[b]);
    if b.outstanding() < a.outstanding() {
        b
    } else {
        a
    }
}

/// A tunnel's status from its connectors' (usable connections, configured
/// connections, draining).
fn classify(connectors: impl Iterator<Item = (usize, u8, bool)>) -> TunnelStatus {
    let mut status = TunnelStatus::Inactive;
    for (up, configured, draining) in connectors {
        if !draining && up >= usize::from(configured) {
            return TunnelStatus::Active;
        }
        if up > 0 {
            status = TunnelStatus::Degraded;
        }
    }
    status
}
