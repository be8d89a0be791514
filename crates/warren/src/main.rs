//! The `warren` binary: parses flags and hands off to the library crates.
//!
//! `warren edge` → [`warren_edge::run`] ([`edge_cmd`]); `warren tunnel run`
//! → [`warren_connector::run`] and `warren tunnel ingress` ([`tunnel_cmd`]);
//! `warren access tcp|login|token|pg-cert` → [`warren_access`]
//! ([`access_cmd`]); `warren tunnel create|list|...`, `warren access
//! app|...`, `warren db ...` and `warren audit` → the admin API
//! ([`admin_cli`]); `warren dev` → edge + connector in one process
//! ([`dev`]).

#![forbid(unsafe_code)]

mod access_cmd;
mod admin_cli;
mod cli_error;
mod dev;
mod edge_cmd;
mod tunnel_cmd;

use std::time::Duration;

use clap::{Parser, Subcommand};
use warren_connector::ingress::{parse_duration, DurationError};

use access_cmd::AccessCmd;
use edge_cmd::EdgeArgs;
use tunnel_cmd::TunnelCmd;

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
    Edge(Box<EdgeArgs>),
    /// Manage tunnels and run a connector; `warren tunnel --url URL --edge
    /// HOST:PORT` runs a quick tunnel (a public name, no token needed).
    #[command(args_conflicts_with_subcommands = true)]
    Tunnel {
        #[command(subcommand)]
        cmd: Option<TunnelCmd>,
        #[command(flatten)]
        quick: tunnel_cmd::QuickArgs,
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
    /// Make the edge's tunnels, routes, stored ingress, access apps,
    /// identity providers and service tokens match a file, in one
    /// transaction (`--dry-run` prints the plan).
    Apply(admin_cli::apply::ApplyArgs),
    /// Write the edge's state in the format `warren apply` reads.
    Export(admin_cli::apply::ExportArgs),
    /// Pooled PostgreSQL databases: where they are, the pooler's settings,
    /// and the credentials the edge logs in with (stored encrypted).
    Db {
        #[command(subcommand)]
        cmd: admin_cli::db::DbCmd,
    },
}

/// A `--flag 30s` value (Go-style duration or seconds).
pub(crate) fn duration(s: &str) -> Result<Duration, DurationError> {
    parse_duration(s)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Tunnel {
            cmd: Some(TunnelCmd::Admin(_) | TunnelCmd::Ingress { .. }),
            ..
        } | Command::Audit { .. }
            | Command::Apply(_)
            | Command::Export(_)
            | Command::Db { .. }
            | Command::Access {
                cmd: AccessCmd::Admin(_)
                    | AccessCmd::Token { .. }
                    | AccessCmd::Login { .. }
                    | AccessCmd::PgCert(_)
            }
    );
    init_logging(if quiet { "warn" } else { "info" });
    raise_fd_limit();
    warren_transport::tls::install_provider();
    let rt = match runtime(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli_error::sentence(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The async runtime for `cmd`: `WARREN_WORKER_THREADS` worker threads
/// when set (1: everything on the main thread), else one per core, except
/// for `access tcp`, which runs on one thread: it carries one person's
/// connections, and on one thread a byte crosses it without waking another
/// thread (a cross-thread wake-up per hop is most of its added latency).
fn runtime(cmd: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = match std::env::var("WARREN_WORKER_THREADS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(std::io::Error::other(format!(
                    "WARREN_WORKER_THREADS={v:?} is not a number of threads (1 or more)"
                )))
            }
        },
        Err(_)
            if matches!(
                cmd,
                Command::Access {
                    cmd: AccessCmd::Tcp(_)
                }
            ) =>
        {
            Some(1)
        }
        Err(_) => None,
    };
    match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Runtime::new(),
    }
}

/// Raises the soft file-descriptor limit to the hard one: an edge holds a
/// descriptor per client connection, a connector one per origin
/// connection, and the usual soft default (1024) is far below what either
/// needs under load. The edge's `--max-connections` is derived from it.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "file-descriptor limit"),
        Err(e) => tracing::warn!("cannot raise the file-descriptor limit: {e}"),
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
            let listeners = warren_edge::Listeners::bind(&cfg).await?;
            warren_edge::run(cfg, listeners, shutdown_signal()).await?;
            Ok(())
        }
        Command::Tunnel { cmd: Some(cmd), .. } => tunnel_cmd::run(cmd).await,
        Command::Tunnel { cmd: None, quick } => tunnel_cmd::quick(quick).await,
        Command::Access { cmd } => access_cmd::run(cmd).await,
        Command::Dev(args) => dev::run(args).await,
        Command::Audit { cmd } => admin_cli::audit::run(cmd).await,
        Command::Apply(args) => admin_cli::apply::apply(args).await,
        Command::Export(args) => admin_cli::apply::export(args).await,
        Command::Db { cmd } => admin_cli::print(&admin_cli::db::run(cmd).await?),
    }
}

/// Resolves on the first SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
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
