//! Warren's connector (`warren tunnel run`): runs next to private
//! services, dials the edge (it never listens), and proxies the streams
//! the edge opens to origins chosen by ingress rules.
//!
//! - [`run`]: keeps `ha_connections` QUIC connections to the edge
//!   addresses, re-dialling lost ones with exponential backoff and jitter;
//!   drains on shutdown; swaps the ingress config on reload.
//! - [`ingress`]: cloudflared-shaped ingress rules: parsing, validation,
//!   matching.
//! - [`serve`]: one data stream: header → rule → origin → bytes.
//! - [`origin`]: dialling origins (TCP, Unix, TLS) and pooled HTTP clients.
//! - [`pool`]: `service: pool` rules: steering over several origins,
//!   active health checks, failover.
//! - [`access`]: `originRequest.access`: verifying the edge's signed
//!   identity before an origin is reached.
//! - [`proxy_protocol`], [`hello`]: PROXY headers and the built-in page.
//! - `metrics`: `/metrics` and `/ready` on `--metrics ADDR` (off by
//!   default), the only port a connector may listen on.
//!
//! **The connector never listens on a network port for tunnel traffic**
//! (the optional metrics listener carries none).

#![forbid(unsafe_code)]

mod access;
mod ask;
mod certs;
mod dial;
mod hello;
pub mod ingress;
mod metrics;
mod origin;
mod pool;
mod postgres;
mod proxy_protocol;
mod report;
mod serve;

pub use dial::{
    bind_socket, check_ingress, run, run_with_status, ConnectorConfig, ConnectorError,
    IngressSource, Signal, DEFAULT_GRACE_PERIOD,
};
pub use origin::OriginError;
