//! Warren's edge: the only internet-facing part.
//!
//! It accepts connector connections on the tunnel listener (QUIC), public
//! HTTP(S) by Host/SNI, and `warren access tcp` byte streams carried over
//! WebSocket; it holds the control plane (through `warren-store`) and serves
//! the admin API.
//!
//! Entry point: [`run`] with an [`EdgeConfig`]. Request handling reads as
//! phases, one module each: [`proxy`] (HTTP: route → pick connection →
//! open stream → proxy), [`tcp`] (WebSocket byte streams), [`tunnel`]
//! (connector registration), [`registry`] (live connections and the
//! power-of-two-choices pick), [`routes`] (hostname → tunnel), [`ca`]
//! (the local CA and per-SNI certificates), [`admin`] (REST API),
//! [`pages`] (every error a browser or curl can see), [`audit`] (the
//! audit-log writer), [`access`] (access applications, identities,
//! service tokens, sign-in, signed identity for origins).
//!
//! **The edge never dials a private network**: everything reaches origins
//! through a stream on a connection the connector opened.

#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod audit;
pub mod ca;
pub mod config;
pub mod pages;
pub mod pg;
pub mod proxy;
pub mod registry;
pub mod routes;
pub mod secrets;
mod server;
pub mod tcp;
pub mod tunnel;

pub use config::{EdgeConfig, PartialEdgeConfig};
pub use server::{run, BoundAddrs, EdgeError};
