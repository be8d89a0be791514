//! The `warren` binary: parses flags and hands off to the library crates.
//!
//! `warren edge` → [`warren_edge::run`]; `warren tunnel run` →
//! [`warren_connector::run`]; `warren access tcp` → [`warren_access`];
//! `warren tunnel create|list|...` → the admin API ([`admin_cli`]);
//! `warren dev` → edge + connector in one process ([`dev`]).

#![forbid(unsafe_code)]

mod admin_cli;
mod dev;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use tokio::sync::mpsc;
use warren_connector::ingress::{ingress_for_url_check, parse_duration, IngressConfig};
use warren_connector::{ConnectorConfig, IngressSource, Signal};
use warren_proto::token::TunnelToken;
use warren_transport::tls::Trust;

#[derive(Parser)]
#[command(
    name = "warren",
    version,
    about = "Self-hosted zero-trust tunnel and access proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the public edge: tunnel, HTTPS, HTTP and admin listeners.
    Edge(EdgeArgs),
    /// Manage tunnels and run a connector.
    Tunnel {
        #[command(subcommand)]
        cmd: TunnelCmd,
    },
    /// Reach services through the edge from this machine.
    Access {
        #[command(subcommand)]
        cmd: AccessCmd,
    },
    /// Run an edge, a connector and a demo origin locally, on loopback.
    Dev(dev::DevArgs),
    /// Read and check the edge's audit log.
    Audit {
        #[command(subcommand)]
        cmd: admin_cli::audit::AuditCmd,
    },
}

#[derive(Args)]
struct EdgeArgs {
    /// YAML file with any of these settings (kebab-case keys); flags and
    /// environment variables win over it.
    #[arg(long, env = "WARREN_CONFIG")]
    config: Option<PathBuf>,
    /// Where the store, CA and admin token live [default: ./warren-data].
    #[arg(long, env = "WARREN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Serve certificates for this domain and every name under it.
    #[arg(long, env = "WARREN_DOMAIN")]
    domain: Option<String>,
    /// QUIC listener for connectors (UDP) [default: 0.0.0.0:7844].
    #[arg(long, env = "WARREN_LISTEN_TUNNEL")]
    listen_tunnel: Option<SocketAddr>,
    /// Public HTTPS listener [default: 0.0.0.0:8443].
    #[arg(long, env = "WARREN_LISTEN_HTTPS")]
    listen_https: Option<SocketAddr>,
    /// Public HTTP listener; redirects to HTTPS [default: 0.0.0.0:8080].
    #[arg(long, env = "WARREN_LISTEN_HTTP")]
    listen_http: Option<SocketAddr>,
    /// Admin API listener [default: 127.0.0.1:7800].
    #[arg(long, env = "WARREN_LISTEN_ADMIN")]
    listen_admin: Option<SocketAddr>,
    /// Native PostgreSQL listener (TLS + client certificates), or `off`
    /// [default: 0.0.0.0:5433].
    #[arg(long, env = "WARREN_LISTEN_POSTGRES")]
    listen_postgres: Option<String>,
    /// PEM certificate chain for the HTTPS listener (instead of the local CA).
    #[arg(long, env = "WARREN_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "WARREN_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Tunnel address to put in tokens (repeatable) [default: DOMAIN:PORT].
    #[arg(long, env = "WARREN_ADVERTISE", value_delimiter = ',')]
    advertise: Vec<String>,
    /// Seconds a connector has to answer a new stream (reach the origin
    /// and, for HTTP, return the response head) [default: 100].
    #[arg(long, env = "WARREN_STREAM_TIMEOUT")]
    stream_timeout: Option<u64>,
    /// Days audit entries are kept [default: 90].
    #[arg(long, env = "WARREN_AUDIT_RETENTION_DAYS")]
    audit_retention_days: Option<u64>,
    /// Days before the identity-token signing key is replaced at start;
    /// the previous key stays published [default: 30].
    #[arg(long, env = "WARREN_SIGNING_KEY_ROTATION_DAYS")]
    signing_key_rotation_days: Option<u64>,
}

impl EdgeArgs {
    fn into_config(self) -> anyhow::Result<warren_edge::EdgeConfig> {
        let file = match &self.config {
            Some(p) => warren_edge::PartialEdgeConfig::from_file(p)?,
            None => Default::default(),
        };
        let flags = warren_edge::PartialEdgeConfig {
            data_dir: self.data_dir,
            domain: self.domain,
            listen_tunnel: self.listen_tunnel,
            listen_https: self.listen_https,
            listen_http: self.listen_http,
            listen_admin: self.listen_admin,
            listen_postgres: self.listen_postgres,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            advertise: self.advertise,
            stream_timeout: self.stream_timeout,
            audit_retention_days: self.audit_retention_days,
            signing_key_rotation_days: self.signing_key_rotation_days,
        };
        Ok(flags.over(file).resolve()?)
    }
}

#[derive(Subcommand)]
enum TunnelCmd {
    /// Run a connector for a tunnel.
    Run(RunArgs),
    /// Check ingress rules.
    Ingress {
        #[command(subcommand)]
        cmd: IngressCmd,
    },
    #[command(flatten)]
    Admin(admin_cli::TunnelAdminCmd),
}

#[derive(Subcommand)]
enum IngressCmd {
    /// Check a config file's ingress rules.
    Validate {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the rule a URL matches.
    Rule {
        url: String,
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Args)]
struct RunArgs {
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
    /// How long in-flight streams may run after SIGTERM/SIGINT.
    #[arg(long, default_value = "30s", value_parser = duration)]
    grace_period: Duration,
}

#[derive(Subcommand)]
enum AccessCmd {
    /// Carry TCP connections to a hostname's TCP service through the edge.
    Tcp(AccessTcpArgs),
    /// Sign in to a protected hostname through the browser; the token is
    /// cached under ~/.warren/ for `access tcp` and `access token`.
    Login {
        /// https://HOST[:PORT] of the protected hostname.
        url: String,
        /// Only print the URL to open; do not start a browser.
        #[arg(long)]
        no_browser: bool,
        /// How long to wait for the browser to come back.
        #[arg(long, default_value = "5m", value_parser = duration)]
        timeout: Duration,
    },
    /// Print the cached identity token for a hostname (for scripts: send it
    /// as the header warren-access-token).
    Token {
        /// The protected hostname.
        hostname: String,
    },
    /// Get a short-lived client certificate for the edge's native
    /// PostgreSQL listener and print a ready psql command.
    PgCert(PgCertArgs),
    #[command(flatten)]
    Admin(admin_cli::access::AccessAdminCmd),
}

#[derive(Args)]
struct AccessTcpArgs {
    /// The routed hostname whose TCP service to reach.
    #[arg(long)]
    hostname: String,
    /// Local address to listen on; without it, stdin/stdout are carried
    /// (for SSH's ProxyCommand).
    #[arg(long)]
    url: Option<String>,
    #[command(flatten)]
    client: EdgeClientArgs,
    /// If the hostname needs a sign-in: only print the URL, do not start a
    /// browser.
    #[arg(long)]
    no_browser: bool,
    /// How long to wait for that sign-in.
    #[arg(long, default_value = "5m", value_parser = duration)]
    login_timeout: Duration,
}

#[derive(Args)]
struct PgCertArgs {
    /// The database's routed hostname.
    hostname: String,
    #[command(flatten)]
    client: EdgeClientArgs,
}

/// How a client command reaches the edge for a hostname, and as whom.
#[derive(Args)]
struct EdgeClientArgs {
    /// The edge's HTTPS address [default: HOSTNAME:443].
    #[arg(long, env = "WARREN_EDGE")]
    edge: Option<String>,
    /// CA file to trust for the edge (the edge's ca.pem) instead of the
    /// public roots.
    #[arg(long, env = "WARREN_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Service token client id (instead of a signed-in user).
    #[arg(
        long,
        env = "WARREN_SERVICE_TOKEN_ID",
        requires = "service_token_secret"
    )]
    service_token_id: Option<String>,
    /// Service token client secret.
    #[arg(
        long,
        env = "WARREN_SERVICE_TOKEN_SECRET",
        hide_env_values = true,
        requires = "service_token_id"
    )]
    service_token_secret: Option<String>,
}

impl EdgeClientArgs {
    /// `--edge`, or the hostname on port 443.
    fn edge(&self, host: &str) -> String {
        self.edge.clone().unwrap_or_else(|| format!("{host}:443"))
    }

    /// `--ca-cert`, or the public roots.
    fn trust(&self) -> anyhow::Result<Trust> {
        Ok(match &self.ca_cert {
            Some(p) => Trust::Roots(std::sync::Arc::new(warren_transport::tls::roots_from_file(
                p,
            )?)),
            None => Trust::WebPki,
        })
    }

    /// A service token if one was given, else the cached sign-in for `host`.
    fn credentials(&self, host: &str) -> warren_access::Credentials {
        match (&self.service_token_id, &self.service_token_secret) {
            (Some(id), Some(secret)) => warren_access::Credentials::ServiceToken {
                id: id.clone(),
                secret: secret.clone(),
            },
            _ => match warren_access::login::cached(host) {
                Some(t) => warren_access::Credentials::Token(t),
                None => warren_access::Credentials::None,
            },
        }
    }
}

async fn access_pg_cert(args: PgCertArgs) -> anyhow::Result<()> {
    let host = args.hostname.trim().to_ascii_lowercase();
    let edge = args.client.edge(&host);
    let creds = args.client.credentials(&host);
    if matches!(creds, warren_access::Credentials::None) {
        bail!("no credentials for {host}: sign in first with `warren access login https://{host}`, or pass --service-token-id and --service-token-secret");
    }
    let access = warren_access::AccessTcp::new(&host, &edge, &args.client.trust()?)?;
    let dir = warren_access::login::home()?.join("pg");
    let got = warren_access::pgcert::request(&host, &edge, access.tls(), &creds, &dir).await?;
    let port = got.port.unwrap_or(5433);
    let edge_host = edge.rsplit_once(':').map_or(edge.as_str(), |(h, _)| h);
    let hostaddr = match edge_host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
    {
        Ok(ip) => format!(" hostaddr={ip}"),
        Err(_) => String::new(),
    };
    let minutes = got.expires.map(|e| (e - admin_cli::now()).max(0) / 60);
    eprintln!(
        "Wrote a client certificate for {host}{} to {}.",
        minutes
            .map(|m| format!(" (valid for {m} minutes)"))
            .unwrap_or_default(),
        dir.display()
    );
    // channel_binding=disable: SCRAM's channel binding would tie the login
    // to the client's TLS session, which ends at the edge by design (the
    // edge and the connector check both TLS links with verify-full).
    println!(
        "psql \"host={host}{hostaddr} port={port} sslmode=verify-full sslrootcert={} sslcert={} sslkey={} channel_binding=disable\"",
        got.ca.display(),
        got.cert.display(),
        got.key.display()
    );
    Ok(())
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Tunnel {
            cmd: TunnelCmd::Admin(_) | TunnelCmd::Ingress { .. }
        } | Command::Audit { .. }
            | Command::Access {
                cmd: AccessCmd::Admin(_)
                    | AccessCmd::Token { .. }
                    | AccessCmd::Login { .. }
                    | AccessCmd::PgCert(_)
            }
    );
    init_logging(if quiet { "warn" } else { "info" });
    warren_transport::tls::install_provider();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

async fn dispatch(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Edge(args) => {
            let cfg = args.into_config()?;
            warren_edge::run(cfg, shutdown_signal()).await?;
            Ok(())
        }
        Command::Tunnel { cmd } => match cmd {
            TunnelCmd::Run(args) => tunnel_run(args).await,
            TunnelCmd::Ingress { cmd } => ingress(cmd),
            TunnelCmd::Admin(cmd) => admin_cli::run(cmd).await,
        },
        Command::Access { cmd } => match cmd {
            AccessCmd::Tcp(args) => access_tcp(args).await,
            AccessCmd::Login {
                url,
                no_browser,
                timeout,
            } => access_login(&url, no_browser, timeout).await,
            AccessCmd::PgCert(args) => access_pg_cert(args).await,
            AccessCmd::Token { hostname } => {
                let host = hostname.trim().to_ascii_lowercase();
                match warren_access::login::cached(&host) {
                    Some(t) => {
                        println!("{t}");
                        Ok(())
                    }
                    None => bail!("there is no valid token for {host}; sign in with `warren access login https://{host}`"),
                }
            }
            AccessCmd::Admin(cmd) => {
                let text = admin_cli::access::run(cmd).await?;
                admin_cli::print(&text)
            }
        },
        Command::Dev(args) => dev::run(args).await,
        Command::Audit { cmd } => admin_cli::audit::run(cmd).await,
    }
}

async fn access_login(url: &str, no_browser: bool, timeout: Duration) -> anyhow::Result<()> {
    sign_in(url, no_browser, timeout).await.map(|_| ())
}

/// The browser sign-in for `url`; returns the (cached) token.
async fn sign_in(url: &str, no_browser: bool, timeout: Duration) -> anyhow::Result<String> {
    let token = warren_access::login::login(url, timeout, |open| {
        eprintln!("Open this URL in a browser to sign in:\n\n    {open}\n");
        if !no_browser {
            // Best effort: without a desktop the printed URL is the way.
            let _ = std::process::Command::new("xdg-open")
                .arg(open)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
        }
    })
    .await?;
    let (host, _) = warren_access::login::parse_url(url)?;
    let exp = warren_access::login::expiry(&token).unwrap_or(0);
    eprintln!(
        "Signed in to {host}; the token is cached for `warren access tcp` (valid for {} more minutes). Print it with `warren access token {host}`.",
        (exp - admin_cli::now()).max(0) / 60
    );
    Ok(token)
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
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
        (None, None) => bail!(
            "no ingress; pass --config config.yml (ingress rules) or --url http://localhost:PORT"
        ),
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
        dial_timeout: Duration::from_secs(15),
        max_backoff: Duration::from_secs(30),
        quic: Default::default(),
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(forward_signals(tx));
    warren_connector::run(cfg, rx).await?;
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

fn ingress(cmd: IngressCmd) -> anyhow::Result<()> {
    match cmd {
        IngressCmd::Validate { config } => {
            let cfg = IngressConfig::load(&config)?;
            println!(
                "OK: {} ingress rules in {}",
                cfg.rules.len(),
                config.display()
            );
            Ok(())
        }
        IngressCmd::Rule { url, config } => {
            let cfg = IngressConfig::load(&config)?;
            let (host, path) = ingress_for_url_check(&url)?;
            let (idx, rule) = cfg.find(&host, &path);
            println!("Matched {}", rule.describe(idx));
            Ok(())
        }
    }
}

async fn access_tcp(args: AccessTcpArgs) -> anyhow::Result<()> {
    let trust = args.client.trust()?;
    let edge = args.client.edge(&args.hostname);
    let host = args.hostname.trim().to_ascii_lowercase();
    let mut credentials = args.client.credentials(&host);
    let access = warren_access::AccessTcp::new(&args.hostname, &edge, &trust)?;
    // Without a service token, ask the edge first whether this hostname
    // needs a sign-in we do not have (or that expired), and run it.
    if !matches!(credentials, warren_access::Credentials::ServiceToken { .. }) {
        let answer = warren_access::edge_http::request(
            &host,
            &edge,
            access.tls(),
            &credentials,
            hyper::Method::GET,
            "/.warren/whoami",
            bytes::Bytes::new(),
        )
        .await;
        // The edge may be unreachable now and fine later: each connection
        // then says why it failed.
        let needs_sign_in = match &answer {
            Ok(a) => a.header("warren-error") == Some("sign-in-required"),
            Err(e) => {
                tracing::warn!("cannot ask the edge whether {host} needs a sign-in: {e}");
                false
            }
        };
        if needs_sign_in {
            let port = edge.rsplit_once(':').map_or("443", |(_, p)| p);
            let url = if port == "443" {
                format!("https://{host}")
            } else {
                format!("https://{host}:{port}")
            };
            let why = if warren_access::login::expired(&host) {
                "your sign-in has expired"
            } else {
                "it needs you to sign in"
            };
            eprintln!("{host}: {why}.");
            let token = sign_in(&url, args.no_browser, args.login_timeout).await?;
            credentials = warren_access::Credentials::Token(token);
        }
    }
    let access = access.with_credentials(credentials);
    match &args.url {
        None => Ok(access.stdio().await?),
        Some(url) => {
            let addr: SocketAddr = url
                .trim_start_matches("tcp://")
                .parse()
                .with_context(|| format!("--url {url} is not an address like 127.0.0.1:15432"))?;
            let listener = warren_access::bind(addr).await?;
            let local = listener.local_addr()?;
            eprintln!(
                "Listening on {local}; connections go to {} through {edge}",
                args.hostname
            );
            tokio::select! {
                r = access.serve(listener) => Ok(r?),
                _ = shutdown_signal() => Ok(()),
            }
        }
    }
}
