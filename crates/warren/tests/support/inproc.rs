//! The in-process tier: an edge and connectors as library calls and tasks
//! in the test's own runtime — no process is started — each on a port-0
//! socket of 127.0.0.1, so tests can run under `tokio::time::pause` where
//! timing is the subject. (Origins and the UDP relay are the harness's
//! own, shared with the process tier.)

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot, watch};
use warren_connector::{ConnectorConfig, ConnectorError, IngressSource, Signal};
use warren_edge::ca::Ca;
use warren_edge::secrets::TunnelSecrets;
use warren_edge::{BoundAddrs, EdgeError, Listeners, PartialEdgeConfig};
use warren_proto::token::{hash_secret, TunnelToken};
use warren_store::Store;
use warren_transport::quic::QuicSettings;

use super::{eventually, DEADLINE};

/// An edge running as a task, with one tunnel routed to public hostnames.
pub struct InProcEdge {
    _dir: tempfile::TempDir,
    pub bound: BoundAddrs,
    /// A token of the tunnel `office`, naming the edge's tunnel address.
    pub token: TunnelToken,
    admin_token: String,
    ca: Arc<rustls::ClientConfig>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), EdgeError>>,
}

impl InProcEdge {
    /// Starts an edge whose tunnel `office` serves `hosts` (public routes).
    pub async fn start(hosts: &[&str], quic: QuicSettings) -> InProcEdge {
        let dir = tempfile::Builder::new()
            .prefix("warren-inproc-")
            .tempdir()
            .unwrap();
        let loopback = Some("127.0.0.1:0".parse().unwrap());
        let mut cfg = PartialEdgeConfig {
            data_dir: Some(dir.path().to_path_buf()),
            listen_tunnel: loopback,
            listen_https: loopback,
            listen_http: loopback,
            listen_admin: loopback,
            listen_postgres: Some("off".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        cfg.quic = quic;
        let listeners = Listeners::bind(&cfg).await.unwrap();
        let tunnel_addr = listeners.tunnel.local_addr().unwrap();
        let token = prepare(dir.path(), hosts, tunnel_addr).await;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(warren_edge::run(cfg, listeners, async {
            let _ = stopped.await;
        }));
        let ready = dir.path().join("edge.json");
        let bound: BoundAddrs = eventually("the edge's readiness file", DEADLINE, || async {
            let text = std::fs::read_to_string(&ready).ok()?;
            serde_json::from_str(&text).ok()
        })
        .await;
        let admin_token = std::fs::read_to_string(dir.path().join("admin-token"))
            .unwrap()
            .trim()
            .to_owned();
        let ca = client_tls(&bound.ca);
        InProcEdge {
            _dir: dir,
            bound,
            token,
            admin_token,
            ca,
            stop: Some(stop),
            task,
        }
    }

    /// `GET https://{host}{path}` at the edge: status and body.
    pub async fn get(&self, host: &str, path: &str) -> (u16, String) {
        let tcp = tokio::net::TcpStream::connect(self.bound.https)
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
        let tls = tokio_rustls::TlsConnector::from(self.ca.clone())
            .connect(name, tcp)
            .await
            .unwrap();
        let req = http::Request::get(path)
            .header(http::header::HOST, host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        request(TokioIo::new(tls), req).await
    }

    /// The admin API's view of tunnel `office` (JSON).
    pub async fn tunnel_info(&self) -> serde_json::Value {
        let tcp = tokio::net::TcpStream::connect(self.bound.admin)
            .await
            .unwrap();
        let req = http::Request::get("/v1/tunnels/office")
            .header(http::header::HOST, "localhost")
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.admin_token),
            )
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (status, body) = request(TokioIo::new(tcp), req).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The tunnel's status and each connector's connections up.
    pub async fn status(&self) -> (String, Vec<u64>) {
        let v = self.tunnel_info().await;
        let ups = v["connectors"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["connections_up"].as_u64())
                    .collect()
            })
            .unwrap_or_default();
        (v["status"].as_str().unwrap_or_default().to_owned(), ups)
    }

    /// Stops the edge and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(DEADLINE, &mut self.task).await;
    }
}

impl Drop for InProcEdge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Creates tunnel `office` with routes for `hosts` in the store at `dir`;
/// its token names `tunnel_addr`.
async fn prepare(dir: &Path, hosts: &[&str], tunnel_addr: SocketAddr) -> TunnelToken {
    let store = Store::open(dir).await.unwrap();
    let secrets = TunnelSecrets::load_or_create(dir).unwrap();
    let t = store.create_tunnel("office", &[0u8; 32], 1).await.unwrap();
    let secret = secrets.secret(&t.id, 1);
    store
        .set_tunnel_secret(&t.id, &hash_secret(&secret), 1, None)
        .await
        .unwrap();
    for h in hosts {
        store.add_route(h, &t.id, true).await.unwrap();
    }
    store.close().await;
    let ca = Ca::load_or_create(dir).unwrap();
    TunnelToken {
        tunnel_id: t.id,
        secret,
        edges: vec![tunnel_addr.to_string()],
        ca_pin: ca.pin(),
    }
}

fn client_tls(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    warren_transport::tls::install_provider();
    let roots = warren_transport::tls::roots_from_file(Path::new(ca_pem)).unwrap();
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// One HTTP/1.1 request on `io`: status and body.
async fn request<I>(io: I, req: http::Request<Full<Bytes>>) -> (u16, String)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A connector running as a task.
pub struct InProcConnector {
    /// The address its connections come from.
    pub addr: SocketAddr,
    pub signals: mpsc::Sender<Signal>,
    /// Registered edge connections.
    pub status: watch::Receiver<usize>,
    pub task: tokio::task::JoinHandle<Result<(), ConnectorError>>,
}

impl InProcConnector {
    /// Starts a connector of `token` dialling `edges`, every stream to
    /// `url`, with `connections` HA connections.
    pub fn start(
        token: &TunnelToken,
        edges: &[SocketAddr],
        url: &str,
        connections: usize,
        grace_period: Duration,
        quic: QuicSettings,
    ) -> InProcConnector {
        let cfg = ConnectorConfig {
            token: token.clone(),
            edges: edges.iter().map(ToString::to_string).collect(),
            ca_cert: None,
            ha_connections: connections,
            grace_period: Some(grace_period),
            ingress: IngressSource::Url(url.to_owned()),
            max_config_bytes: warren_connector::ingress::DEFAULT_MAX_CONFIG_BYTES,
            dial_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(1),
            quic,
            metrics: None,
        };
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let (signals, rx) = mpsc::channel(4);
        let (status_tx, status) = watch::channel(0);
        let task = tokio::spawn(warren_connector::run_with_status(
            cfg, socket, rx, status_tx,
        ));
        InProcConnector {
            addr,
            signals,
            status,
            task,
        }
    }

    /// Waits until exactly `n` connections are registered.
    pub async fn wait_up(&mut self, n: usize, deadline: Duration) {
        tokio::time::timeout(deadline, self.status.wait_for(|up| *up == n))
            .await
            .unwrap_or_else(|_| panic!("the connector did not get to {n} connections"))
            .unwrap();
    }
}

impl Drop for InProcConnector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
