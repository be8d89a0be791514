//! What the fuzz targets in `fuzz/` need from the edge's private modules:
//! the admin API's router over a real store, built as `server.rs` builds
//! it. Hidden from the docs and not an API: it changes with the targets.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use warren_store::Store;

use crate::access::Access;
use crate::admin::{router, AdminState};
use crate::audit::AuditSink;
use crate::registry::Registry;
use crate::routes::{RoutePolicy, RouteTable};
use crate::secrets::{bootstrap_admin_token, TunnelSecrets};

/// The domain routes must be under (`--domain`).
pub const DOMAIN: &str = "example.com";

/// The admin API as the admin listener serves it, over a store of its own.
pub struct AdminApi {
    /// The admin router (`admin.rs` `router`), body limit and body timer
    /// included.
    pub router: axum::Router,
    /// A valid admin token, for `Authorization: Bearer`.
    pub token: String,
}

impl AdminApi {
    /// Opens a store in `data_dir`, which must be empty, and builds the
    /// router over it with routes allowed under [`DOMAIN`]. Call it inside
    /// a tokio runtime that keeps running for as long as the router is
    /// used: the audit writer and the access refresher are tasks on it.
    pub async fn open(data_dir: &Path) -> Result<AdminApi, Box<dyn std::error::Error>> {
        let store = Store::open(data_dir).await?;
        let token = bootstrap_admin_token(&store, data_dir)
            .await?
            .ok_or("the data directory already had an admin token")?;
        let routes = RouteTable::new();
        let access = Access::start(
            store.clone(),
            AuditSink::start(
                store.clone(),
                Duration::from_secs(3600),
                crate::audit::OnAuditFailure::Refuse,
                Default::default(),
            ),
            routes.clone(),
            Default::default(),
        )
        .await?;
        let state = AdminState {
            secrets: Arc::new(TunnelSecrets::load_or_create(data_dir)?),
            store,
            routes,
            registry: Registry::new(),
            metrics: Default::default(),
            token_edges: vec!["127.0.0.1:7844".into()],
            ca_pin: warren_proto::token::ca_pin(b"fuzz"),
            databases: crate::databases::Databases::load(data_dir)?,
            pg_pools: Default::default(),
            access,
            route_policy: RoutePolicy {
                domain: Some(DOMAIN.into()),
                outside_domain: false,
            },
        };
        Ok(AdminApi {
            router: router(state, Duration::from_secs(30)),
            token,
        })
    }
}
