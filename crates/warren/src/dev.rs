//! `warren dev`: an edge and a connector in one process, on loopback.
//!
//! Before the edge starts, the dev data directory gets a tunnel `dev`
//! and a route `hello.localhost` to it (created once, reused after); the
//! connector then runs with that tunnel's token and a single rule sending
//! everything to `--url` (the built-in hello_world page by default).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use tokio::sync::{mpsc, watch};
use warren_connector::{ConnectorConfig, IngressSource, Signal};
use warren_edge::ca::Ca;
use warren_edge::secrets::TunnelSecrets;
use warren_edge::BoundAddrs;
use warren_proto::token::{hash_secret, TunnelToken};
use warren_store::Store;

const TUNNEL: &str = "dev";
const HOST: &str = "hello.localhost";

#[derive(Args)]
pub(crate) struct DevArgs {
    /// Origin to expose [default: the built-in hello_world page].
    #[arg(long)]
    url: Option<String>,
    /// Data directory of the dev edge.
    #[arg(long, default_value = "./.warren-dev")]
    data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen_https: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen_http: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:7844")]
    listen_tunnel: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:7800")]
    listen_admin: SocketAddr,
}

/// Creates the dev tunnel and route if missing; returns the tunnel token.
async fn prepare(dir: &std::path::Path, tunnel_addr: SocketAddr) -> anyhow::Result<TunnelToken> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let store = Store::open(dir).await?;
    let secrets = TunnelSecrets::load_or_create(dir)
        .with_context(|| format!("cannot create the tunnel secret key in {}", dir.display()))?;
    let tunnel = match store.get_tunnel(TUNNEL).await? {
        Some(t) => t,
        None => {
            // The id is only known after creation; generation 1's secret is
            // derived from it, so create with a placeholder hash and set it.
            let t = store.create_tunnel(TUNNEL, &[0u8; 32], 1).await?;
            let secret = secrets.secret(&t.id, 1);
            store
                .set_tunnel_secret(&t.id, &hash_secret(&secret), 1, None)
                .await?;
            t
        }
    };
    // The demo route is public: reachable without an access application.
    match store
        .list_routes()
        .await?
        .iter()
        .find(|r| r.hostname == HOST)
    {
        None => {
            store.add_route(HOST, &tunnel.id, true).await?;
        }
        Some(r) if !r.public => {
            store.set_route_public(HOST, true).await?;
        }
        Some(_) => {}
    }
    store.close().await;
    let ca = Ca::load_or_create(dir)?;
    Ok(TunnelToken {
        tunnel_id: tunnel.id.clone(),
        secret: secrets.secret(&tunnel.id, tunnel.secret_generation),
        edges: vec![tunnel_addr.to_string()],
        ca_pin: ca.pin(),
    })
}

pub(crate) async fn run(args: DevArgs) -> anyhow::Result<()> {
    let dir = args.data_dir.clone();
    // Bind the tunnel port up front only through the edge; the token
    // needs the final address, which for a fixed port is known now.
    let token = prepare(&dir, args.listen_tunnel).await?;
    let cfg = warren_edge::PartialEdgeConfig {
        data_dir: Some(dir.clone()),
        domain: Some("localhost".into()),
        listen_tunnel: Some(args.listen_tunnel),
        listen_https: Some(args.listen_https),
        listen_http: Some(args.listen_http),
        listen_admin: Some(args.listen_admin),
        // Any free loopback port: the demo has no database.
        listen_postgres: Some("127.0.0.1:0".into()),
        ..Default::default()
    }
    .resolve()?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let listeners = warren_edge::Listeners::bind(&cfg).await?;
    let mut edge = tokio::spawn(warren_edge::run(cfg, listeners, async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|s| *s).await;
    }));
    let bound = wait_for_edge(&dir, &mut edge).await?;

    let (sig_tx, sig_rx) = mpsc::channel(4);
    let (status_tx, mut status_rx) = watch::channel(0usize);
    let connector_cfg = ConnectorConfig {
        token,
        edges: vec![bound.tunnel.to_string()],
        ca_cert: None,
        ha_connections: 2,
        grace_period: Some(Duration::from_secs(5)),
        ingress: IngressSource::Url(args.url.clone().unwrap_or_else(|| "hello_world".into())),
        max_config_bytes: warren_connector::ingress::DEFAULT_MAX_CONFIG_BYTES,
        dial_timeout: Duration::from_secs(10),
        max_backoff: Duration::from_secs(5),
        quic: Default::default(),
        metrics: None,
    };
    let socket = warren_connector::bind_socket()?;
    let mut connector = tokio::spawn(warren_connector::run_with_status(
        connector_cfg,
        socket,
        sig_rx,
        status_tx,
    ));
    tokio::select! {
        r = status_rx.wait_for(|n| *n > 0) => { r.context("the connector stopped before connecting")?; }
        r = &mut connector => {
            r.context("connector task")??;
            bail!("the connector stopped before connecting");
        }
        _ = tokio::time::sleep(Duration::from_secs(20)) => bail!("the connector did not connect to the dev edge within 20 s"),
    }

    let port = bound.https.port();
    let ca = std::fs::canonicalize(&bound.ca).unwrap_or_else(|_| PathBuf::from(&bound.ca));
    println!();
    println!(
        "Warren dev is running: edge, connector and {}.",
        args.url.as_deref().unwrap_or("the hello_world origin")
    );
    println!();
    println!("  URL:   https://{HOST}:{port}/");
    println!(
        "  Try:   curl --cacert {} https://{HOST}:{port}/",
        ca.display()
    );
    println!(
        "  Admin: WARREN_API=http://{} WARREN_API_TOKEN=$(cat {}/admin-token) warren tunnel list",
        bound.admin,
        dir.display()
    );
    println!();
    println!("Press Ctrl-C to stop.");

    let ctrl_c = async {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
            }
            _ => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        r = &mut connector => { r.context("connector task")??; }
        r = &mut edge => { r.context("edge task")??; }
    }
    let _ = sig_tx.send(Signal::Shutdown).await;
    let _ = tokio::time::timeout(Duration::from_secs(6), connector).await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), edge).await;
    Ok(())
}

/// Waits for the edge's readiness file, or its failure.
async fn wait_for_edge(
    dir: &std::path::Path,
    edge: &mut tokio::task::JoinHandle<Result<(), warren_edge::EdgeError>>,
) -> anyhow::Result<BoundAddrs> {
    let path = dir.join("edge.json");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(b) = serde_json::from_str::<BoundAddrs>(&text) {
                return Ok(b);
            }
        }
        if edge.is_finished() {
            match edge.await {
                Ok(Err(e)) => return Err(e.into()),
                Ok(Ok(())) => bail!("the edge stopped during start-up"),
                Err(e) => bail!("the edge task failed: {e}"),
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the edge did not become ready within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
