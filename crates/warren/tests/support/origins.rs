//! Origins the tests put behind tunnels, each on 127.0.0.1:0 in the test's
//! own runtime.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

type Body = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).map_err(|n| match n {}).boxed()
}

async fn listen() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// HTTP/1.1 origin: GET echoes method, path and headers as JSON; POST
/// answers `{"len": N, "sha256": "..."}` of the body, read as a stream;
/// `/slow` answers after 2 s; upgrades on `/ws` become a WebSocket echo.
pub async fn http_echo() -> SocketAddr {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(handle_echo);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn handle_echo(mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if req.uri().path() == "/ws" {
        let key = req.headers().get("sec-websocket-key").cloned().unwrap();
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let up = on_upgrade.await.unwrap();
            let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                TokioIo::new(up),
                tokio_tungstenite::tungstenite::protocol::Role::Server,
                None,
            )
            .await;
            while let Some(Ok(m)) = ws.next().await {
                if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                    break;
                }
            }
        });
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        return Ok(Response::builder()
            .status(101)
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-accept", accept)
            .body(full(""))
            .unwrap());
    }
    if req.uri().path() == "/slow" {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        return Ok(Response::new(full("slow done")));
    }
    if req.method() == hyper::Method::POST {
        let mut body = req.into_body();
        let mut h = Sha256::new();
        let mut len = 0u64;
        while let Some(f) = body.frame().await {
            if let Ok(d) = f.unwrap().into_data() {
                len += d.len() as u64;
                h.update(&d);
            }
        }
        let out = serde_json::json!({"len": len, "sha256": hex::encode(h.finalize())});
        return Ok(Response::new(full(out.to_string())));
    }
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
        .collect();
    let out = serde_json::json!({
        "method": req.method().as_str(),
        "path": req.uri().to_string(),
        "headers": headers,
    });
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(full(out.to_string()))
        .unwrap())
}

/// TCP echo: echoes until the client half-closes, then writes `<eof>`
/// and closes (so half-close is visible both ways).
pub async fn tcp_echo() -> SocketAddr {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = s.write_all(b"<eof>").await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// TCP origin that reports the first line it receives (a PROXY v1
/// header) back to the client, then echoes.
pub async fn proxy_line_reporter() -> SocketAddr {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut line = Vec::new();
                let mut b = [0u8; 1];
                while s.read_exact(&mut b).await.is_ok() {
                    line.push(b[0]);
                    if line.ends_with(b"\r\n") {
                        break;
                    }
                }
                let _ = s.write_all(&line).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// h2c origin (HTTP/2 only, no TLS) answering like a gRPC server: a body
/// in `n` messages (`?n=3`), then trailers `grpc-status: 0`.
pub async fn h2c_grpc_like() -> SocketAddr {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let n: usize = req
                        .uri()
                        .query()
                        .and_then(|q| q.strip_prefix("n="))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1);
                    let te = req
                        .headers()
                        .get("te")
                        .map(|v| v.to_str().unwrap_or("").to_owned())
                        .unwrap_or_default();
                    let req_body = req.into_body().collect().await.unwrap().to_bytes();
                    let mut frames: Vec<Result<Frame<Bytes>, Infallible>> = (0..n)
                        .map(|i| {
                            Ok(Frame::data(Bytes::from(format!(
                                "msg{i}:{}|",
                                req_body.len()
                            ))))
                        })
                        .collect();
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", "0".parse().unwrap());
                    trailers.insert("grpc-message", "ok".parse().unwrap());
                    frames.push(Ok(Frame::trailers(trailers)));
                    let body = StreamBody::new(futures_util::stream::iter(frames));
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", "application/grpc")
                            .header("x-seen-te", te)
                            .body(body)
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// A 127.0.0.1 port nothing listens on while the [`ClosedPort`] lives.
pub async fn closed_port() -> ClosedPort {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
    let port = socket.local_addr().unwrap().port();
    ClosedPort {
        _socket: socket,
        port,
    }
}

/// A port on 127.0.0.1 that refuses connections for as long as this
/// lives: a socket is bound to it, so nothing else gets the port, but it
/// never listens. Displays as the port number.
pub struct ClosedPort {
    _socket: TcpSocket,
    port: u16,
}

impl ClosedPort {
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl std::fmt::Display for ClosedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.port)
    }
}

/// A TCP socket that may share its port with the other sockets of this
/// process made here (`SO_REUSEPORT`), so a port can change hands without
/// ever being free.
fn shareable() -> TcpSocket {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.set_reuseport(true).unwrap();
    socket
}

/// HTTP/1.1 origin for pools that answers every request with its own name.
/// `/healthz` answers 200, or 503 after `set_healthy(false)`; other paths
/// first wait `set_delay`. `stop` closes the listener and every open
/// connection; `start` listens again on the same port. While stopped the
/// port stays bound (not listening), so connections are refused and no
/// other test's port-0 bind can take it.
pub struct NamedOrigin {
    pub name: String,
    pub addr: SocketAddr,
    state: std::sync::Arc<NamedState>,
    server: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Holds the port while stopped.
    held: std::sync::Mutex<Option<TcpSocket>>,
}

struct NamedState {
    name: String,
    healthy: std::sync::atomic::AtomicBool,
    delay_ms: std::sync::atomic::AtomicU64,
}

impl NamedOrigin {
    /// Starts an origin named `name` on 127.0.0.1:0.
    pub async fn start_new(name: &str) -> NamedOrigin {
        let socket = shareable();
        socket.bind((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
        let addr = socket.local_addr().unwrap();
        let l = socket.listen(1024).unwrap();
        let state = std::sync::Arc::new(NamedState {
            name: name.to_owned(),
            healthy: std::sync::atomic::AtomicBool::new(true),
            delay_ms: std::sync::atomic::AtomicU64::new(0),
        });
        let server = tokio::spawn(serve_named(l, state.clone()));
        NamedOrigin {
            name: name.to_owned(),
            addr,
            state,
            server: tokio::sync::Mutex::new(Some(server)),
            held: std::sync::Mutex::new(None),
        }
    }

    /// Closes the listener and all connections; returns once connections
    /// are refused. The port stays bound to a socket that does not listen.
    pub async fn stop(&self) {
        if let Some(server) = self.server.lock().await.take() {
            let hold = shareable();
            hold.bind(self.addr).unwrap();
            server.abort();
            let _ = server.await;
            *self.held.lock().unwrap() = Some(hold);
        }
    }

    /// Listens again on the same port (after `stop`).
    pub async fn start(&self) {
        let mut server = self.server.lock().await;
        if server.is_none() {
            let socket = shareable();
            socket.bind(self.addr).unwrap();
            let l = socket.listen(1024).unwrap();
            *server = Some(tokio::spawn(serve_named(l, self.state.clone())));
            self.held.lock().unwrap().take();
        }
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.state
            .healthy
            .store(healthy, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: std::time::Duration) {
        self.state.delay_ms.store(
            delay.as_millis() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

impl Drop for NamedOrigin {
    fn drop(&mut self) {
        if let Some(server) = self.server.get_mut().take() {
            server.abort();
        }
    }
}

/// Accepts until aborted; the connections die with it (a `JoinSet`).
async fn serve_named(l: TcpListener, state: std::sync::Arc<NamedState>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((tcp, _)) = l.accept().await else {
            continue;
        };
        // Reap finished connections so the set stays small.
        while conns.try_join_next().is_some() {}
        let state = state.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move {
                    use std::sync::atomic::Ordering;
                    if req.uri().path() == "/healthz" {
                        let status = if state.healthy.load(Ordering::SeqCst) {
                            200
                        } else {
                            503
                        };
                        return Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .body(full(state.name.clone()))
                                .unwrap(),
                        );
                    }
                    let delay = state.delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                    }
                    Ok(Response::new(full(state.name.clone())))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
