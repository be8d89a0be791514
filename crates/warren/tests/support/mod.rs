//! The one end-to-end harness: real `warren` processes (edge, connector,
//! access client), real peers (curl, psql, pgbench, PostgreSQL), and small
//! origins written here, all on 127.0.0.1.
//!
//! Every process is killed when its handle drops; every wait has a
//! deadline and says what it was waiting for when it runs out.

#![allow(dead_code, unreachable_pub)]

pub mod access;
pub mod oidc;
pub mod origins;
pub mod postgres;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

/// How long any single readiness wait may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The binary under test.
pub fn warren_bin() -> &'static str {
    env!("CARGO_BIN_EXE_warren")
}

/// Polls `f` until it returns `Some`, or panics naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A temporary directory, removed on drop.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("warren-e2e-")
        .tempdir()
        .expect("temp dir")
}

/// A spawned process whose stderr goes to a log file; killed on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str], envs: &[(&str, &str)], log_dir: &Path) -> Proc {
        let log = log_dir.join(format!("{name}-{}.log", rand_suffix()));
        let err = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(warren_bin());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .env("RUST_LOG", "info")
            .env_remove("WARREN_TOKEN")
            .env_remove("WARREN_API")
            .env_remove("WARREN_API_TOKEN")
            .env_remove("WARREN_SERVICE_TOKEN_ID")
            .env_remove("WARREN_SERVICE_TOKEN_SECRET")
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Proc {
            child,
            log,
            name: name.to_owned(),
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub async fn wait_log(&self, needle: &str) -> String {
        let what = format!("{} to log {needle:?}", self.name);
        eventually(&what, DEADLINE, || async {
            let l = self.logs();
            l.contains(needle).then_some(l)
        })
        .await
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("process is running")
    }

    pub fn signal(&self, sig: &str) {
        let st = std::process::Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill -s {sig} failed");
    }

    /// Waits for the process to exit; returns its status.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        match tokio::time::timeout(DEADLINE, self.child.wait()).await {
            Ok(s) => s.expect("wait"),
            Err(_) => panic!("{} did not exit in time; log:\n{}", self.name, self.logs()),
        }
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Output of a command.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `warren` with arguments and environment, to completion.
pub async fn warren(args: &[&str], envs: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(warren_bin());
    cmd.args(args)
        .env_remove("WARREN_TOKEN")
        .env_remove("WARREN_API")
        .env_remove("WARREN_API_TOKEN")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let o = tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .expect("warren command timed out")
        .expect("run warren");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

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
    pub ca: PathBuf,
    pub token: String,
}

impl Edge {
    /// Starts an edge on ephemeral ports in `dir`.
    pub async fn start(dir: &Path) -> Edge {
        Edge::start_on(dir, "127.0.0.1:0", "127.0.0.1:0").await
    }

    /// Starts an edge with fixed tunnel and HTTPS addresses (a restart
    /// that connectors and clients must find again).
    pub async fn start_on(dir: &Path, tunnel: &str, https: &str) -> Edge {
        let data = dir.join("edge");
        let data_s = data.display().to_string();
        let _ = std::fs::remove_file(data.join("edge.json"));
        let proc = Proc::spawn(
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
            &[],
            dir,
        );
        let ready = data.join("edge.json");
        let v: Value = eventually("the edge's edge.json", DEADLINE, || async {
            std::fs::read_to_string(&ready)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
        })
        .await;
        let addr = |k: &str| v[k].as_str().unwrap().parse().unwrap();
        let token = std::fs::read_to_string(data.join("admin-token"))
            .unwrap()
            .trim()
            .to_owned();
        Edge {
            tunnel: addr("tunnel"),
            https: addr("https"),
            http: addr("http"),
            admin: addr("admin"),
            postgres: v["postgres"].as_str().and_then(|a| a.parse().ok()),
            ca: PathBuf::from(v["ca"].as_str().unwrap()),
            proc,
            dir: data,
            token,
        }
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

/// What curl got.
pub struct Curl {
    pub code: i32,
    pub status: u16,
    pub headers: String,
    pub body: String,
    pub stderr: String,
}

/// Runs curl with `-i`-style output and splits it.
pub async fn curl(args: &[&str]) -> Curl {
    let o = tokio::time::timeout(
        Duration::from_secs(90),
        Command::new("curl").args(args).output(),
    )
    .await
    .expect("curl timed out")
    .expect("run curl");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (headers, body) = out
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .unwrap_or((out.clone(), String::new()));
    let status = headers
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Curl {
        code: o.status.code().unwrap_or(-1),
        status,
        headers: headers.to_ascii_lowercase(),
        body,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

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

    /// Starts `warren access tcp` without waiting for it to listen (it may
    /// first ask for a sign-in; it never starts a browser here).
    pub fn spawn(edge: &Edge, host: &str, log_dir: &Path, envs: &[(&str, &str)]) -> Proc {
        let ca = edge.ca.display().to_string();
        let e = edge.https.to_string();
        Proc::spawn(
            "access",
            &[
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
            ],
            envs,
            log_dir,
        )
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
        let dir = temp_dir();
        let edge = Edge::start(dir.path()).await;
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

/// A UDP relay on loopback in front of `target` (an edge's QUIC port) that
/// the test can black-hole: while `blackhole` is set every datagram is
/// dropped both ways, without any error or close — a silently dead path.
pub struct UdpRelay {
    pub addr: SocketAddr,
    blackhole: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl UdpRelay {
    pub async fn start(target: SocketAddr) -> UdpRelay {
        use std::collections::HashMap;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        use tokio::net::UdpSocket;

        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let blackhole = Arc::new(AtomicBool::new(false));
        let hole = blackhole.clone();
        let task = tokio::spawn(async move {
            let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65536];
            let mut tasks = Vec::new();
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                if hole.load(Ordering::SeqCst) {
                    continue;
                }
                let back = match backs.get(&from) {
                    Some(b) => b.clone(),
                    None => {
                        let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                        b.connect(target).await.unwrap();
                        let (b2, front2, hole2) = (b.clone(), front.clone(), hole.clone());
                        tasks.push(tokio::spawn(async move {
                            let mut buf = vec![0u8; 65536];
                            while let Ok(n) = b2.recv(&mut buf).await {
                                if !hole2.load(Ordering::SeqCst) {
                                    let _ = front2.send_to(&buf[..n], from).await;
                                }
                            }
                        }));
                        backs.insert(from, b.clone());
                        b
                    }
                };
                let _ = back.send(&buf[..n]).await;
            }
            for t in tasks {
                t.abort();
            }
        });
        UdpRelay {
            addr,
            blackhole,
            task,
        }
    }

    /// Drops (or again forwards) every datagram from now on.
    pub fn set_blackhole(&self, on: bool) {
        self.blackhole
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
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

/// Outcome of one request of a [`load`] loop.
pub struct LoadResult {
    pub started: tokio::time::Instant,
    pub status: u16,
    pub detail: String,
}

/// A bounded load loop started by [`load`].
pub struct Load {
    pub run: tokio::task::JoinHandle<Vec<LoadResult>>,
    /// Requests finished so far.
    pub done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Load {
    /// Waits until `n` more requests have finished.
    pub async fn progress(&self, n: usize) {
        use std::sync::atomic::Ordering;
        let target = self.done.load(Ordering::SeqCst) + n;
        eventually(&format!("{n} more requests"), DEADLINE, || async {
            (self.done.load(Ordering::SeqCst) >= target).then_some(())
        })
        .await
    }

    /// Stops the loop and returns every request's outcome.
    pub async fn finish(self) -> Vec<LoadResult> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.run.await.unwrap()
    }
}

/// Runs `workers` loops of sequential `GET host path` through the edge
/// until [`Load::finish`], at most `max_each` requests per worker.
pub fn load(edge: &Edge, host: &str, path: &str, workers: usize, max_each: usize) -> Load {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let target = edge.https_target();
    let (host, path) = (host.to_owned(), path.to_owned());
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let (stop2, done2) = (stop.clone(), done.clone());
    let run = tokio::spawn(async move {
        let mut handles = Vec::new();
        for _ in 0..workers {
            let (target, host, path) = (target.clone(), host.clone(), path.clone());
            let (stop, done) = (stop2.clone(), done2.clone());
            handles.push(tokio::spawn(async move {
                let mut out = Vec::new();
                while out.len() < max_each && !stop.load(Ordering::SeqCst) {
                    let started = tokio::time::Instant::now();
                    let r = target.curl(&host, &path, &[]).await;
                    out.push(LoadResult {
                        started,
                        status: r.status,
                        detail: format!("{} {}", r.status, r.stderr.trim()),
                    });
                    done.fetch_add(1, Ordering::SeqCst);
                }
                out
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all
    });
    Load { run, done, stop }
}
