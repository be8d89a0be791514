//! QUIC settings for tunnel connections, shared by both ends so their
//! timers agree.

use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};

/// Timers and limits of a tunnel connection.
#[derive(Debug, Clone)]
pub struct QuicSettings {
    /// A connection with no packets for this long is dead.
    pub idle_timeout: Duration,
    /// PING interval that keeps an idle but live connection alive. A
    /// silently dead path is noticed within `idle_timeout + keep_alive`:
    /// sending a PING restarts the idle timer (RFC 9000 §10.1), so the
    /// timer may start up to one interval after the last packet arrived.
    pub keep_alive: Duration,
    /// Streams the peer may have open at once.
    pub max_streams: u32,
    /// Per-stream receive window, in bytes.
    pub stream_window: u32,
    /// Per-connection receive window, in bytes.
    pub conn_window: u32,
}

impl Default for QuicSettings {
    fn default() -> Self {
        Self {
            // 7 s + 2 s: a dead path is noticed by both ends within 9 s.
            idle_timeout: Duration::from_secs(7),
            keep_alive: Duration::from_secs(2),
            max_streams: 4096,
            stream_window: 4 * 1024 * 1024,
            conn_window: 32 * 1024 * 1024,
        }
    }
}

impl QuicSettings {
    /// The quinn transport config for these settings.
    pub fn transport(&self) -> Arc<TransportConfig> {
        let mut t = TransportConfig::default();
        t.max_idle_timeout(Some(
            IdleTimeout::try_from(self.idle_timeout)
                .unwrap_or(IdleTimeout::from(VarInt::from_u32(7_000))),
        ));
        t.keep_alive_interval(Some(self.keep_alive));
        t.max_concurrent_bidi_streams(VarInt::from_u32(self.max_streams));
        t.max_concurrent_uni_streams(VarInt::from_u32(16));
        t.stream_receive_window(VarInt::from_u32(self.stream_window));
        t.receive_window(VarInt::from_u32(self.conn_window));
        t.send_window(u64::from(self.conn_window));
        Arc::new(t)
    }
}
