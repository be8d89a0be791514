//! A running edge (`warren edge` on port 0, found through its
//! `edge.json`; or, to restart it on the same addresses, on leased ports),
//! curl against its HTTPS listener, and TLS to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{curl, eventually, ports, warren, Curl, Out, Proc, DEADLINE};

/// A running edge with its data directory.
pub struct Edge {
    pub proc: Proc,
    pub dir: PathBuf,
    pub tunnel: SocketAddr,
    pub https: SocketAddr,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    /// The native PostgreSQL listener.
    pub postgres: Option<SocketAddr>,
    /// The QUIC listener for `access tcp`.
    pub quic: Option<SocketAddr>,
    pub ca: PathBuf,
    pub token: String,
    /// The tunnel and HTTPS ports of an edge that can start again on them.
    leases: Vec<ports::Lease>,
}

impl Edge {
    /// Starts an edge on ephemeral ports in `dir`.
    pub async fn start(dir: &Path) -> Edge {
        Edge::start_with_env(dir, &[]).await
    }

    /// [`Edge::start`] with extra environment variables (`WARREN_*`
    /// settings).
    pub async fn start_with_env(dir: &Path, envs: &[(&str, &str)]) -> Edge {
        Edge::try_start_on(dir, "127.0.0.1:0", "127.0.0.1:0", envs)
            .await
            .unwrap_or_else(|log| panic!("the edge exited before it was ready:\n{log}"))
    }

    /// Starts an edge whose tunnel (UDP) and HTTPS (TCP) ports are leased
    /// outside the ephemeral range, so that [`Edge::start_again`] finds
    /// them free: a port-0 bind elsewhere could take an ephemeral port in
    /// between. A port something else holds is replaced by another.
    pub async fn start_restartable(dir: &Path) -> Edge {
        Edge::start_restartable_first_on(dir, [ports::lease(), ports::lease()]).await
    }

    /// [`Edge::start_restartable`], trying the (tunnel, HTTPS) `first`
    /// leases first: the harness's own test of moving to other ports when
    /// one is taken.
    pub async fn start_restartable_first_on(dir: &Path, first: [ports::Lease; 2]) -> Edge {
        let mut next = Some(first);
        for attempt in 1.. {
            let leases = Vec::from(
                next.take()
                    .unwrap_or_else(|| [ports::lease(), ports::lease()]),
            );
            let tunnel = format!("127.0.0.1:{}", leases[0].port);
            let https = format!("127.0.0.1:{}", leases[1].port);
            match Edge::try_start_on(dir, &tunnel, &https, &[]).await {
                Ok(edge) => return Edge { leases, ..edge },
                Err(log) => assert!(
                    log.contains("Address already in use") && attempt < ports::START_ATTEMPTS,
                    "the edge did not start on {tunnel} and {https} (attempt {attempt}):\n{log}"
                ),
            }
        }
        unreachable!()
    }

    /// Starts a stopped [`Edge::start_restartable`] edge again, on the
    /// same data directory and tunnel and HTTPS addresses (a restart that
    /// connectors and clients must find again).
    pub async fn start_again(mut self) -> Edge {
        assert!(
            !self.leases.is_empty(),
            "only an edge from Edge::start_restartable can start again on its ports"
        );
        assert!(
            self.proc.child.try_wait().unwrap().is_some(),
            "stop the edge before starting it again"
        );
        let dir = self.dir.parent().unwrap().to_path_buf();
        let (tunnel, https) = (self.tunnel.to_string(), self.https.to_string());
        let leases = std::mem::take(&mut self.leases);
        let edge = Edge::try_start_on(&dir, &tunnel, &https, &[])
            .await
            .unwrap_or_else(|log| panic!("the edge did not start again:\n{log}"));
        Edge { leases, ..edge }
    }

    /// Starts an edge with the given tunnel and HTTPS addresses; waits
    /// until it is ready. `Err(its log)` if it exited first.
    async fn try_start_on(
        dir: &Path,
        tunnel: &str,
        https: &str,
        envs: &[(&str, &str)],
    ) -> Result<Edge, String> {
        let data = dir.join("edge");
        let data_s = data.display().to_string();
        let _ = std::fs::remove_file(data.join("edge.json"));
        let mut proc = Proc::spawn(
            "edge",
            &[
                "edge",
                "--data-dir",
                &data_s,
                "--domain",
                "example.com",
                "--listen-tunnel",
                tunnel,
                "--listen-https",
                https,
                "--listen-http",
                "127.0.0.1:0",
                "--listen-admin",
                "127.0.0.1:0",
                "--listen-postgres",
                "127.0.0.1:0",
            ],
            envs,
            dir,
        );
        let ready = data.join("edge.json");
        let end = tokio::time::Instant::now() + DEADLINE;
        let v: Value = loop {
            let parsed = std::fs::read_to_string(&ready)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            if let Some(v) = parsed {
                break v;
            }
            if proc.child.try_wait().unwrap().is_some() {
                return Err(proc.logs());
            }
            assert!(
                tokio::time::Instant::now() < end,
                "timed out after {DEADLINE:?} waiting for the edge's edge.json; log:\n{}",
                proc.logs()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let addr = |k: &str| v[k].as_str().unwrap().parse().unwrap();
        let token = std::fs::read_to_string(data.join("admin-token"))
            .unwrap()
            .trim()
            .to_owned();
        Ok(Edge {
            tunnel: addr("tunnel"),
            https: addr("https"),
            http: addr("http"),
            admin: addr("admin"),
            postgres: v["postgres"].as_str().and_then(|a| a.parse().ok()),
            quic: v["quic"].as_str().and_then(|a| a.parse().ok()),
            ca: PathBuf::from(v["ca"].as_str().unwrap()),
            proc,
            dir: data,
            token,
            leases: Vec::new(),
        })
    }

    pub fn api_env(&self) -> Vec<(String, String)> {
        vec![
            ("WARREN_API".into(), format!("http://{}", self.admin)),
            ("WARREN_API_TOKEN".into(), self.token.clone()),
        ]
    }

    /// Runs an admin CLI command against this edge.
    pub async fn cli(&self, args: &[&str]) -> Out {
        let env = self.api_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        warren(args, &env).await
    }

    /// The CLI with the API's address and token, plus `extra` variables.
    pub async fn cli_with_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Out {
        let env = self.api_env();
        let mut env: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.extend_from_slice(extra);
        warren(args, &env).await
    }

    /// Creates a tunnel with public routes; returns its token.
    pub async fn tunnel(&self, name: &str, hosts: &[&str]) -> String {
        let o = self.cli(&["tunnel", "create", name]).await;
        assert_eq!(o.code, 0, "tunnel create: {}", o.stderr);
        for h in hosts {
            let o = self
                .cli(&["tunnel", "route", "dns", name, h, "--public"])
                .await;
            assert_eq!(o.code, 0, "route dns: {}", o.stderr);
        }
        self.token_of(name).await
    }

    pub async fn token_of(&self, name: &str) -> String {
        let o = self.cli(&["tunnel", "token", name]).await;
        assert_eq!(o.code, 0, "tunnel token: {}", o.stderr);
        o.stdout.trim().to_owned()
    }

    /// Number of live connector connections of a tunnel.
    pub async fn connections(&self, name: &str) -> usize {
        tunnel_json(self, name)
            .await
            .and_then(|v| v["connections"].as_array().map(Vec::len))
            .unwrap_or(0)
    }

    pub async fn wait_connections(&self, name: &str, n: usize) {
        let what = format!("tunnel {name} to have {n} connections");
        eventually(&what, DEADLINE, || async {
            (self.connections(name).await >= n).then_some(())
        })
        .await
    }

    /// curl against the edge's HTTPS listener for `host`.
    pub async fn curl(&self, host: &str, path: &str, extra: &[&str]) -> Curl {
        self.https_target().curl(host, path, extra).await
    }

    /// The HTTPS listener and CA, to curl from spawned tasks.
    pub fn https_target(&self) -> HttpsTarget {
        HttpsTarget {
            port: self.https.port(),
            ca: self.ca.display().to_string(),
        }
    }
}

/// An edge's HTTPS listener on 127.0.0.1 and the CA that signs its
/// certificates; cheap to clone into tasks.
#[derive(Clone)]
pub struct HttpsTarget {
    port: u16,
    ca: String,
}

impl HttpsTarget {
    /// `curl https://host:port{path}` resolved to 127.0.0.1, trusting the
    /// edge's CA.
    pub async fn curl(&self, host: &str, path: &str, extra: &[&str]) -> Curl {
        let url = format!("https://{host}:{}{path}", self.port);
        let resolve = format!("{host}:{}:127.0.0.1", self.port);
        let mut args = vec![
            "-sS",
            "-i",
            "--max-time",
            "60",
            "--cacert",
            &self.ca,
            "--resolve",
            &resolve,
        ];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(&args).await
    }
}

/// A rustls client config trusting the edge's CA.
pub fn edge_tls(edge: &Edge, alpn: &[&[u8]]) -> std::sync::Arc<rustls::ClientConfig> {
    warren_transport::tls::install_provider();
    let roots = warren_transport::tls::roots_from_file(&edge.ca).unwrap();
    let trust = warren_transport::tls::Trust::Roots(std::sync::Arc::new(roots));
    std::sync::Arc::new(warren_transport::tls::client_config(&trust, alpn).unwrap())
}

/// TLS to the edge's HTTPS listener with SNI `host`.
pub async fn edge_tls_stream(
    edge: &Edge,
    host: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(edge.https).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(edge_tls(edge, alpn))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// The edge's JSON view of a tunnel (`tunnel info --output json`).
pub async fn tunnel_json(edge: &Edge, name: &str) -> Option<Value> {
    let o = edge
        .cli(&["tunnel", "info", name, "--output", "json"])
        .await;
    (o.code == 0)
        .then(|| serde_json::from_str(&o.stdout).ok())
        .flatten()
}
