//! Live connector connections, by tunnel, and the choice of one for a new
//! stream.
//!
//! Each registered QUIC connection is a [`TunnelConn`] with a count of its
//! outstanding streams. [`Registry::pick`] takes two live, non-draining
//! connections of the tunnel at random and returns the less loaded one
//! (power of two choices), which spreads load across HA connections and
//! replicas without any shared state beyond the counters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use rand::Rng;
use serde::Serialize;

/// One registered connection of a connector.
pub struct TunnelConn {
    /// Id the edge gave the connection.
    pub id: String,
    pub tunnel_id: String,
    pub connector_id: String,
    pub connector_version: String,
    pub conn_index: u8,
    pub remote: SocketAddr,
    /// Unix seconds.
    pub connected_at: u64,
    pub conn: quinn::Connection,
    outstanding: AtomicUsize,
    draining: AtomicBool,
}

/// What the admin API shows of a connection.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionInfo {
    pub id: String,
    pub connector_id: String,
    pub connector_version: String,
    pub conn_index: u8,
    pub remote: String,
    pub connected_at: u64,
    pub outstanding_streams: usize,
    pub draining: bool,
}

impl TunnelConn {
    pub fn new(
        id: String,
        tunnel_id: String,
        connector_id: String,
        connector_version: String,
        conn_index: u8,
        conn: quinn::Connection,
        connected_at: u64,
    ) -> Self {
        Self {
            id,
            tunnel_id,
            connector_id,
            connector_version,
            conn_index,
            remote: conn.remote_address(),
            connected_at,
            conn,
            outstanding: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
        }
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Counts a stream as outstanding until the guard drops.
    pub fn track(self: &Arc<Self>) -> StreamGuard {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self.clone())
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn usable(&self) -> bool {
        !self.is_draining() && self.conn.close_reason().is_none()
    }

    pub fn info(&self) -> ConnectionInfo {
        ConnectionInfo {
            id: self.id.clone(),
            connector_id: self.connector_id.clone(),
            connector_version: self.connector_version.clone(),
            conn_index: self.conn_index,
            remote: self.remote.to_string(),
            connected_at: self.connected_at,
            outstanding_streams: self.outstanding(),
            draining: self.is_draining(),
        }
    }
}

/// Keeps a stream counted against its connection.
pub struct StreamGuard(Arc<TunnelConn>);

impl StreamGuard {
    /// The connection the stream is on.
    pub fn conn(&self) -> &Arc<TunnelConn> {
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
pub struct Registry {
    inner: Arc<RwLock<HashMap<String, Vec<Arc<TunnelConn>>>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&self, c: Arc<TunnelConn>) {
        let mut m = self.inner.write().expect("registry lock");
        m.entry(c.tunnel_id.clone()).or_default().push(c);
    }

    pub fn remove(&self, tunnel_id: &str, conn_id: &str) {
        let mut m = self.inner.write().expect("registry lock");
        if let Some(v) = m.get_mut(tunnel_id) {
            v.retain(|c| c.id != conn_id);
            if v.is_empty() {
                m.remove(tunnel_id);
            }
        }
    }

    /// Picks a connection for a new stream: the less loaded of two random
    /// usable ones. `None` when the tunnel has no usable connection.
    pub fn pick(&self, tunnel_id: &str) -> Option<Arc<TunnelConn>> {
        let m = self.inner.read().expect("registry lock");
        let all = m.get(tunnel_id)?;
        let usable: Vec<&Arc<TunnelConn>> = all.iter().filter(|c| c.usable()).collect();
        match usable.len() {
            0 => None,
            1 => Some(usable[0].clone()),
            n => {
                let mut rng = rand::rng();
                let a = rng.random_range(0..n);
                let mut b = rng.random_range(0..n - 1);
                if b >= a {
                    b += 1;
                }
                let (a, b) = (usable[a], usable[b]);
                Some(
                    if b.outstanding() < a.outstanding() {
                        b
                    } else {
                        a
                    }
                    .clone(),
                )
            }
        }
    }

    /// The tunnel's live connections, for status display.
    pub fn connections(&self, tunnel_id: &str) -> Vec<ConnectionInfo> {
        let m = self.inner.read().expect("registry lock");
        m.get(tunnel_id)
            .map(|v| v.iter().map(|c| c.info()).collect())
            .unwrap_or_default()
    }

    /// Closes every connection of a tunnel (deleted tunnel, rotated secret).
    pub fn disconnect_tunnel(&self, tunnel_id: &str, reason: &str) {
        let conns = self
            .inner
            .write()
            .expect("registry lock")
            .remove(tunnel_id)
            .unwrap_or_default();
        for c in conns {
            c.conn.close(
                quinn::VarInt::from_u32(crate::tunnel::CLOSE_TUNNEL_GONE),
                reason.as_bytes(),
            );
        }
    }
}
