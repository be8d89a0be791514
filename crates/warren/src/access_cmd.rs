//! `warren access tcp|login|token|pg-cert`: the client side, through
//! [`warren_access`]; `warren access app|policy|...` are the admin API's
//! ([`crate::admin_cli::access`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use warren_transport::tls::Trust;

use crate::{admin_cli, duration, shutdown_signal};

#[derive(Subcommand)]
pub(crate) enum AccessCmd {
    /// Carry TCP connections to a hostname's TCP service through the edge.
    Tcp(AccessTcpArgs),
    /// Sign in to a protected hostname through the browser; the token is
    /// cached under ~/.warren/ for `access tcp` and `access token`. Where no
    /// browser can be opened (SSH, no display), the sign-in is finished on
    /// another device, as with --device.
    Login {
        /// https://HOST[:PORT] of the protected hostname.
        url: String,
        /// Only print the URL to open; do not start a browser (the browser
        /// must reach this machine's loopback).
        #[arg(long, conflicts_with = "device")]
        no_browser: bool,
        /// Sign in on another device: a code to enter at the identity
        /// provider (its device authorization grant), or, where it has none,
        /// a URL to open anywhere and a code to paste back here.
        #[arg(long)]
        device: bool,
        /// The edge's HTTPS address for --device [default: the URL's host
        /// and port].
        #[arg(long, env = "WARREN_EDGE")]
        edge: Option<String>,
        /// CA file to trust for the edge (the edge's ca.pem) instead of the
        /// public roots, for --device.
        #[arg(long, env = "WARREN_CA_CERT")]
        ca_cert: Option<PathBuf>,
        /// How long to wait for the sign-in to finish.
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
pub(crate) struct AccessTcpArgs {
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
    /// How connections reach the edge: `quic` (one warm QUIC connection
    /// over UDP, a stream per connection), `websocket` (a WebSocket over
    /// HTTPS per connection), or `auto`: QUIC, falling back to the
    /// WebSocket for a minute whenever QUIC cannot reach the edge.
    #[arg(long, env = "WARREN_ACCESS_TRANSPORT", default_value = "auto", value_parser = ["auto", "quic", "websocket"])]
    transport: String,
    /// The edge's QUIC listener, HOST:PORT [default: the --edge address,
    /// over UDP].
    #[arg(long, env = "WARREN_EDGE_QUIC")]
    edge_quic: Option<String>,
    /// How long the QUIC handshake with the edge may take before `auto`
    /// falls back to the WebSocket.
    #[arg(long, default_value = "3s", value_parser = duration)]
    quic_handshake_timeout: Duration,
}

#[derive(Args)]
pub(crate) struct PgCertArgs {
    /// The database's routed hostname.
    hostname: String,
    #[command(flatten)]
    client: EdgeClientArgs,
}

/// How a client command reaches the edge for a hostname, and as whom.
#[derive(Args)]
pub(crate) struct EdgeClientArgs {
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

/// Runs one `warren access` command.
pub(crate) async fn run(cmd: AccessCmd) -> anyhow::Result<()> {
    match cmd {
        AccessCmd::Tcp(args) => access_tcp(args).await,
        AccessCmd::Login {
            url,
            no_browser,
            device,
            edge,
            ca_cert,
            timeout,
        } => {
            let how = if device {
                How::Device
            } else if no_browser {
                How::PrintUrl
            } else {
                How::Auto
            };
            let trust = match &ca_cert {
                Some(p) => Trust::Roots(std::sync::Arc::new(
                    warren_transport::tls::roots_from_file(p)?,
                )),
                None => Trust::WebPki,
            };
            sign_in(&url, how, edge.as_deref(), &trust, timeout)
                .await
                .map(|_| ())
        }
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

/// How `warren access login` signs in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// Open a browser here, or sign in on another device where none can be.
    Auto,
    /// Print the loopback sign-in URL; start no browser.
    PrintUrl,
    /// Sign in on another device.
    Device,
}

/// Why no browser can be opened here, if none can: an SSH session, or
/// (Linux) no display and no `BROWSER`.
fn no_browser_here() -> Option<&'static str> {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if set("SSH_CONNECTION") || set("SSH_TTY") {
        return Some("this is an SSH session");
    }
    if cfg!(target_os = "linux") && !set("DISPLAY") && !set("WAYLAND_DISPLAY") && !set("BROWSER") {
        return Some("there is no display (DISPLAY, WAYLAND_DISPLAY) and no BROWSER");
    }
    None
}

/// The sign-in for `url`; returns the (cached) token. `edge` and `trust`
/// are how the device sign-in reaches the edge.
async fn sign_in(
    url: &str,
    how: How,
    edge: Option<&str>,
    trust: &Trust,
    timeout: Duration,
) -> anyhow::Result<String> {
    let device = match how {
        How::Device => true,
        How::PrintUrl => false,
        How::Auto => match no_browser_here() {
            Some(why) => {
                eprintln!(
                    "No browser can be opened here ({why}); sign in on another device instead."
                );
                true
            }
            None => false,
        },
    };
    let token = if device {
        device_sign_in(url, edge, trust, timeout).await?
    } else {
        warren_access::login::login(url, timeout, |open| {
            eprintln!("Open this URL in a browser to sign in:\n\n    {open}\n");
            if how == How::Auto {
                // Best effort: without a desktop the printed URL is the way.
                let _ = std::process::Command::new("xdg-open")
                    .arg(open)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn();
            }
        })
        .await?
    };
    let (host, _) = warren_access::login::parse_url(url)?;
    let exp = warren_access::login::expiry(&token).unwrap_or(0);
    eprintln!(
        "Signed in to {host}; the token is cached for `warren access tcp` (valid for {} more minutes). Print it with `warren access token {host}`.",
        (exp - admin_cli::now()).max(0) / 60
    );
    Ok(token)
}

/// The sign-in on another device (`warren_access::device`); a pasted code
/// is read from standard input.
async fn device_sign_in(
    url: &str,
    edge: Option<&str>,
    trust: &Trust,
    timeout: Duration,
) -> anyhow::Result<String> {
    let (host, authority) = warren_access::login::parse_url(url)?;
    let edge = edge.map_or_else(
        || {
            if authority.contains(':') {
                authority.clone()
            } else {
                format!("{authority}:443")
            }
        },
        str::to_owned,
    );
    let access = warren_access::AccessTcp::new(&host, &edge, trust)?;
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let token = warren_access::device::login(
        url,
        &edge,
        access.tls(),
        timeout,
        |prompt| match prompt {
            warren_access::device::Prompt::Device {
                user_code,
                verification_uri,
                verification_uri_complete,
                expires_in,
            } => {
                eprintln!("To sign in, open this URL on any device:\n\n    {verification_uri}\n\nand enter the code  {user_code}\n");
                if let Some(c) = verification_uri_complete {
                    eprintln!("Or open this URL, which carries the code:\n\n    {c}\n");
                }
                eprintln!(
                    "Waiting for the sign-in (the code is valid for {} minutes) ...",
                    expires_in.as_secs() / 60
                );
            }
            warren_access::device::Prompt::Paste { url } => {
                eprintln!("The identity provider offers no sign-in by code, so open this URL in a browser on any device:\n\n    {url}\n\nsign in, and paste the code the last page shows here, then press Enter:");
            }
        },
        stdin,
    )
    .await?;
    Ok(token)
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
            // Carrying stdin/stdout (a ProxyCommand), stdin is not the
            // user's to paste a code into: the loopback URL is printed.
            let how = if args.no_browser || args.url.is_none() {
                How::PrintUrl
            } else {
                How::Auto
            };
            let token = sign_in(&url, how, Some(&edge), &trust, args.login_timeout).await?;
            credentials = warren_access::Credentials::Token(token);
        }
    }
    let transport = match args.transport.as_str() {
        "quic" => warren_access::Transport::Quic,
        "websocket" => warren_access::Transport::WebSocket,
        _ => warren_access::Transport::Auto,
    };
    let quic = match transport {
        warren_access::Transport::WebSocket => None,
        _ => {
            let target = args.edge_quic.clone().unwrap_or_else(|| edge.clone());
            let timeouts = warren_access::quic::QuicTimeouts {
                handshake: args.quic_handshake_timeout,
                ..Default::default()
            };
            match tokio::net::lookup_host(&target).await.map(|mut a| a.next()) {
                Ok(Some(addr)) => Some(warren_access::quic::QuicCarrier::new(
                    addr, &host, &trust, timeouts,
                )?),
                Ok(None) | Err(_) if transport == warren_access::Transport::Auto => {
                    tracing::warn!("cannot resolve {target} for QUIC; using the WebSocket");
                    None
                }
                Ok(None) | Err(_) => bail!(
                    "cannot resolve the edge's QUIC address {target}; check --edge-quic (or --edge)"
                ),
            }
        }
    };
    let access = access
        .with_credentials(credentials)
        .with_transport(transport, quic);
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
