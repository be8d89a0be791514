//! `warren tunnel run` (the connector, with its signals) and `warren
//! tunnel ingress validate|rule`; the other `warren tunnel` commands are
//! the admin API's ([`crate::admin_cli`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use tokio::sync::mpsc;
use warren_connector::ingress::{ingress_for_url_check, IngressConfig};
use warren_connector::{ConnectorConfig, IngressSource, Signal};
use warren_proto::token::TunnelToken;

use crate::{admin_cli, duration};

#[derive(Subcommand)]
pub(crate) enum TunnelCmd {
    /// Run a connector for a tunnel.
    Run(RunArgs),
    /// Check ingress rules, or manage the config stored at the edge.
    Ingress {
        #[command(subcommand)]
        cmd: IngressCmd,
    },
    #[command(flatten)]
    Admin(admin_cli::TunnelAdminCmd),
}

#[derive(Subcommand)]
pub(crate) enum IngressCmd {
    /// Check a config file as `tunnel run` would (rules, origins, CA
    /// files, pools), without connecting to the edge.
    Validate {
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        size: ConfigSize,
    },
    /// Print the rule a URL matches.
    Rule {
        url: String,
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        size: ConfigSize,
    },
    /// Store a config at the edge for a tunnel (remote-managed): it is
    /// checked there as `tunnel run` would, then pushed to every running
    /// connector of the tunnel started without --config/--url, which
    /// switches to it without dropping open streams.
    Set {
        /// Tunnel name or id.
        tunnel: String,
        /// The config file (cloudflared's config.yml shape).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        size: ConfigSize,
        #[command(flatten)]
        api: admin_cli::ApiArgs,
    },
    /// Print the config stored at the edge for a tunnel.
    Get {
        /// Tunnel name or id.
        tunnel: String,
        #[command(flatten)]
        api: admin_cli::ApiArgs,
    },
}

/// The bound on a config file's size.
#[derive(Args, Clone, Copy)]
pub(crate) struct ConfigSize {
    /// Refuse a config file larger than this many bytes (read at start and
    /// on every SIGHUP) [default: 1048576].
    #[arg(long = "max-config-size", env = "WARREN_MAX_CONFIG_SIZE", value_name = "BYTES",
          default_value_t = warren_connector::ingress::DEFAULT_MAX_CONFIG_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    bytes: u64,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// The tunnel token (prefer --token-file or WARREN_TOKEN: arguments
    /// are visible in process lists).
    #[arg(long)]
    token: Option<String>,
    /// File holding the tunnel token.
    #[arg(long, env = "WARREN_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Ingress config file (cloudflared's config.yml shape); re-read on SIGHUP.
    #[arg(long, env = "WARREN_TUNNEL_CONFIG", conflicts_with = "url")]
    config: Option<PathBuf>,
    /// Send everything to this one service (http://, https://, tcp://, postgres://, unix:, hello_world).
    #[arg(long)]
    url: Option<String>,
    /// Edge tunnel address, overriding the token's (repeatable).
    #[arg(long = "edge")]
    edges: Vec<String>,
    /// Trust this CA file for the edge instead of the token's pin.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// Connections to keep to the edge.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=16))]
    ha_connections: u8,
    /// How long in-flight streams may run after SIGTERM/SIGINT [default:
    /// the config file's `grace-period:`, else 30s].
    #[arg(long, value_parser = duration)]
    grace_period: Option<Duration>,
    /// Serve /metrics (Prometheus) and /ready (200 once connected) on this
    /// address, e.g. 127.0.0.1:2000; off unless given (or the config file's
    /// `metrics:`).
    #[arg(long, env = "WARREN_METRICS", value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    size: ConfigSize,
}

/// Runs one `warren tunnel` command.
pub(crate) async fn run(cmd: TunnelCmd) -> anyhow::Result<()> {
    match cmd {
        TunnelCmd::Run(args) => tunnel_run(args).await,
        TunnelCmd::Ingress { cmd } => ingress(cmd).await,
        TunnelCmd::Admin(cmd) => admin_cli::run(cmd).await,
    }
}

fn read_token(args: &RunArgs) -> anyhow::Result<TunnelToken> {
    let text = match (&args.token, &args.token_file) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the token file {}", p.display()))?,
        (None, None) => match std::env::var("WARREN_TOKEN") {
            Ok(t) => t,
            Err(_) => bail!("no tunnel token; pass --token-file FILE or set WARREN_TOKEN to the output of `warren tunnel token NAME`"),
        },
    };
    Ok(TunnelToken::decode(&text)?)
}

async fn tunnel_run(args: RunArgs) -> anyhow::Result<()> {
    let token = read_token(&args)?;
    let ingress = match (&args.config, &args.url) {
        (Some(p), _) => IngressSource::File(p.clone()),
        (None, Some(u)) => IngressSource::Url(u.clone()),
        // The tunnel's config stored at the edge (`tunnel ingress set`).
        (None, None) => IngressSource::Remote,
    };
    let edges = if args.edges.is_empty() {
        token.edges.clone()
    } else {
        args.edges.clone()
    };
    let cfg = ConnectorConfig {
        token,
        edges,
        ca_cert: args.ca_cert,
        ha_connections: usize::from(args.ha_connections),
        grace_period: args.grace_period,
        ingress,
        max_config_bytes: args.size.bytes,
        dial_timeout: Duration::from_secs(15),
        max_backoff: Duration::from_secs(30),
        quic: Default::default(),
        metrics: args.metrics,
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(forward_signals(tx));
    warren_connector::run(cfg, warren_connector::bind_socket()?, rx).await?;
    Ok(())
}

/// SIGHUP → reload; the first SIGTERM/SIGINT → drain; a second → exit now.
async fn forward_signals(tx: mpsc::Sender<Signal>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let mut stopping = false;
    loop {
        let sig = tokio::select! {
            _ = hup.recv() => Signal::Reload,
            _ = term.recv() => Signal::Shutdown,
            _ = int.recv() => Signal::Shutdown,
        };
        if sig == Signal::Shutdown {
            if stopping {
                eprintln!("second signal: exiting now");
                std::process::exit(130);
            }
            stopping = true;
        }
        if tx.send(sig).await.is_err() {
            return;
        }
    }
}

async fn ingress(cmd: IngressCmd) -> anyhow::Result<()> {
    match cmd {
        IngressCmd::Validate { config, size } => {
            let rules =
                warren_connector::check_ingress(&IngressSource::File(config.clone()), size.bytes)?;
            println!("OK: {rules} ingress rules in {}", config.display());
            Ok(())
        }
        IngressCmd::Rule { url, config, size } => {
            let cfg = IngressConfig::load(&config, size.bytes)?;
            let (host, path) = ingress_for_url_check(&url)?;
            let (idx, rule) = cfg.find(&host, &path);
            println!("Matched {}", rule.describe(idx));
            Ok(())
        }
        IngressCmd::Set {
            tunnel,
            file,
            size,
            api,
        } => {
            let text = warren_transport::file::read_bounded(&file, size.bytes).map_err(|e| {
                anyhow::anyhow!("cannot read the config file {}: {e}", file.display())
            })?;
            let path = format!("/v1/tunnels/{}/ingress", admin_cli::encode_segment(&tunnel));
            let v = admin_cli::ApiClient::new(&api)?
                .call(
                    hyper::Method::PUT,
                    &path,
                    Some(serde_json::json!({ "config": text })),
                )
                .await?;
            admin_cli::print(&set_text(&tunnel, &v))
        }
        IngressCmd::Get { tunnel, api } => {
            let path = format!("/v1/tunnels/{}/ingress", admin_cli::encode_segment(&tunnel));
            let v = admin_cli::ApiClient::new(&api)?
                .call(hyper::Method::GET, &path, None)
                .await?;
            admin_cli::print(v["config"].as_str().unwrap_or_default())
        }
    }
}

/// What `tunnel ingress set` says: the version stored, its warnings, and
/// what each running connection did with it.
fn set_text(tunnel: &str, v: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "Stored version {} of the ingress config of tunnel {tunnel}\n",
        v["version"]
    );
    for w in v["warnings"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "warning: {}", w.as_str().unwrap_or_default());
    }
    let conns = v["connections"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let running = conns.iter().filter(|c| c["applied"] == true).count();
    let _ = writeln!(out, "{running} of {} connections run it", conns.len());
    for c in conns.iter().filter(|c| c["applied"] != true) {
        let _ = writeln!(
            out,
            "  connector {} connection {}: {}",
            c["connector_id"].as_str().unwrap_or_default(),
            c["conn_index"],
            c["message"].as_str().unwrap_or_default()
        );
    }
    out
}

/// `warren tunnel --url URL --edge HOST:PORT`: a quick tunnel.
#[derive(Args)]
pub(crate) struct QuickArgs {
    /// Run a quick tunnel to this local service (http://localhost:3000,
    /// tcp://..., hello_world): an edge started with --quick-tunnels gives
    /// it a random public name under its domain, no token needed.
    #[arg(long)]
    url: Option<String>,
    /// The edge's HTTPS address for a quick tunnel.
    #[arg(long, value_name = "HOST:PORT")]
    edge: Option<String>,
    /// The name the edge's certificate is checked against [default: the
    /// host of --edge].
    #[arg(long, value_name = "NAME")]
    edge_hostname: Option<String>,
    /// Trust this CA file (the edge's ca.pem) instead of the public roots.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
struct QuickAnswer {
    url: String,
    token: String,
    idle_removal_seconds: u64,
}

/// Asks the edge for a quick tunnel, prints its URL, and runs its
/// connector until SIGTERM/SIGINT.
pub(crate) async fn quick(args: QuickArgs) -> anyhow::Result<()> {
    let (Some(url), Some(edge)) = (args.url, args.edge) else {
        bail!("give a subcommand (see `warren tunnel --help`), or --url URL --edge HOST:PORT to run a quick tunnel");
    };
    let origin = IngressSource::Url(url.clone());
    // The service must make sense before the edge makes a tunnel for it.
    warren_connector::check_ingress(&origin, warren_connector::ingress::DEFAULT_MAX_CONFIG_BYTES)?;
    let hostname = match args.edge_hostname {
        Some(h) => h,
        None => edge
            .rsplit_once(':')
            .map_or(edge.as_str(), |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    };
    warren_transport::tls::install_provider();
    let trust = match &args.ca_cert {
        Some(p) => warren_transport::tls::Trust::Roots(std::sync::Arc::new(
            warren_transport::tls::roots_from_file(p)?,
        )),
        None => warren_transport::tls::Trust::WebPki,
    };
    let tls = std::sync::Arc::new(warren_transport::tls::client_config(
        &trust,
        &[b"http/1.1"],
    )?);
    let answer = warren_access::edge_http::request(
        &hostname,
        &edge,
        tls,
        &warren_access::Credentials::None,
        hyper::Method::POST,
        "/.warren/quick-tunnel",
        bytes::Bytes::new(),
    )
    .await?;
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    if answer.status != hyper::StatusCode::CREATED {
        match body["error"].as_str() {
            Some(sentence) => bail!("the edge made no quick tunnel: {sentence}"),
            None => bail!(
                "the edge made no quick tunnel (HTTP {}); is {edge} a Warren edge's HTTPS address?",
                answer.status
            ),
        }
    }
    let quick: QuickAnswer = serde_json::from_value(body)
        .context("the edge's answer to the quick tunnel request was not understood")?;
    admin_cli::print(&format!(
        "Your quick tunnel is ready:\n\n    {}\n\nIt is public: anyone with this URL reaches {url}. It is removed {} s after this connector stops.\n\n",
        quick.url, quick.idle_removal_seconds
    ))?;
    let token = TunnelToken::decode(&quick.token)?;
    let cfg = ConnectorConfig {
        edges: token.edges.clone(),
        token,
        ca_cert: None,
        ha_connections: 2,
        grace_period: Some(Duration::from_secs(5)),
        ingress: origin,
        max_config_bytes: warren_connector::ingress::DEFAULT_MAX_CONFIG_BYTES,
        dial_timeout: Duration::from_secs(15),
        max_backoff: Duration::from_secs(30),
        quic: Default::default(),
        metrics: None,
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(forward_signals(tx));
    warren_connector::run(cfg, warren_connector::bind_socket()?, rx).await?;
    Ok(())
}
