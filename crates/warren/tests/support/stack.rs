//! The connector and `warren access tcp` processes, and [`Stack`]: an
//! edge with one tunnel and its connector, ready to serve.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{temp_dir, Edge, Proc};

/// A running connector.
pub struct Connector {
    pub proc: Proc,
}

impl Connector {
    /// Starts `warren tunnel run` with the token in the environment and
    /// the given extra arguments (`--config F` or `--url U`, ...).
    pub fn start(edge: &Edge, token: &str, args: &[&str], log_dir: &Path) -> Connector {
        let mut all = vec![
            "tunnel",
            "run",
            "--ha-connections",
            "2",
            "--grace-period",
            "5s",
        ];
        all.extend_from_slice(args);
        let _ = edge;
        Connector {
            proc: Proc::spawn("connector", &all, &[("WARREN_TOKEN", token)], log_dir),
        }
    }
}

/// Writes an ingress config file and returns its path.
pub fn write_config(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, yaml).unwrap();
    p
}

/// A running `warren access tcp` with its local port.
pub struct AccessTcp {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl AccessTcp {
    pub async fn start(edge: &Edge, host: &str, log_dir: &Path) -> AccessTcp {
        AccessTcp::start_with(edge, host, log_dir, &[]).await
    }

    /// [`AccessTcp::start`] with extra environment (service token
    /// variables, `WARREN_HOME` for a cached sign-in).
    pub async fn start_with(
        edge: &Edge,
        host: &str,
        log_dir: &Path,
        envs: &[(&str, &str)],
    ) -> AccessTcp {
        AccessTcp::ready(AccessTcp::spawn(edge, host, log_dir, envs)).await
    }

    /// [`AccessTcp::start`] over one carrier (`--transport quic` or
    /// `websocket`), plus any other flags.
    pub async fn start_over(
        edge: &Edge,
        host: &str,
        log_dir: &Path,
        transport: &str,
        extra: &[&str],
    ) -> AccessTcp {
        let mut args = vec!["--transport", transport];
        args.extend_from_slice(extra);
        AccessTcp::ready(AccessTcp::spawn_with(edge, host, log_dir, &[], &args)).await
    }

    /// Starts `warren access tcp` without waiting for it to listen (it may
    /// first ask for a sign-in; it never starts a browser here).
    pub fn spawn(edge: &Edge, host: &str, log_dir: &Path, envs: &[(&str, &str)]) -> Proc {
        AccessTcp::spawn_with(edge, host, log_dir, envs, &[])
    }

    /// [`AccessTcp::spawn`] with extra flags. The client is told the
    /// edge's QUIC address unless `extra` names one.
    pub fn spawn_with(
        edge: &Edge,
        host: &str,
        log_dir: &Path,
        envs: &[(&str, &str)],
        extra: &[&str],
    ) -> Proc {
        let ca = edge.ca.display().to_string();
        let e = edge.https.to_string();
        let quic = edge.quic.map(|q| q.to_string());
        let mut args = vec![
            "access",
            "tcp",
            "--hostname",
            host,
            "--url",
            "127.0.0.1:0",
            "--edge",
            &e,
            "--ca-cert",
            &ca,
            "--no-browser",
        ];
        if let Some(q) = &quic {
            if !extra.contains(&"--edge-quic") {
                args.extend(["--edge-quic", q]);
            }
        }
        args.extend_from_slice(extra);
        Proc::spawn("access", &args, envs, log_dir)
    }

    /// Waits until a spawned `access tcp` listens.
    pub async fn ready(proc: Proc) -> AccessTcp {
        let log = proc.wait_log("Listening on ").await;
        let addr = log
            .split("Listening on ")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .and_then(|a| a.trim().parse().ok())
            .expect("listening address in the access log");
        AccessTcp { proc, addr }
    }
}

/// An edge with one tunnel whose connector serves `ingress` (YAML list
/// items, the catch-all is appended), already connected.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub edge: Edge,
    pub connector: Connector,
    pub token: String,
}

impl Stack {
    pub async fn start(hosts: &[&str], ingress: &str) -> Stack {
        Stack::start_with_env(hosts, ingress, &[]).await
    }

    /// [`Stack::start`] with the edge given extra environment variables
    /// (`WARREN_*` settings).
    pub async fn start_with_env(hosts: &[&str], ingress: &str, envs: &[(&str, &str)]) -> Stack {
        let dir = temp_dir();
        let edge = Edge::start_with_env(dir.path(), envs).await;
        let token = edge.tunnel("office", hosts).await;
        let cfg = write_config(
            dir.path(),
            "config.yml",
            &format!("ingress:\n{ingress}  - service: http_status:404\n"),
        );
        let cfg_s = cfg.display().to_string();
        let connector = Connector::start(&edge, &token, &["--config", &cfg_s], dir.path());
        edge.wait_connections("office", 2).await;
        Stack {
            dir,
            edge,
            connector,
            token,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
