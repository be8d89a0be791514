//! `originRequest.access` end to end: the connector verifies the identity
//! token the edge signed (HTTP header or TCP stream assertion) against the
//! edge's keys, fetched over the tunnel, before it reaches an origin. A
//! right `audTag` lets allowed requests through; a wrong one, or a public
//! route that carries no token, is refused by the connector and the origin
//! never sees the connection.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use support::{temp_dir, write_config, AccessTcp, Connector, Edge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const APP: &str = "app.example.com";
const OPEN: &str = "open.example.com";
const DB: &str = "db.example.com";

/// An HTTP origin that counts the connections it accepts and answers
/// each request (one per connection: `connection: close`) with JSON
/// naming the assertion header it got.
async fn counting_http() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let body = serde_json::json!({
                    "origin": "counting",
                    "assertion": head.contains("\r\nwarren-access-jwt-assertion: "),
                })
                .to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, seen)
}

/// A TCP echo (echoes until the client half-closes, then writes `<eof>`)
/// that counts the connections it accepts.
async fn counting_tcp_echo() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
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
    (addr, seen)
}

/// The ingress config: `app_tag` guards APP and OPEN (both to the HTTP
/// origin), `db_tag` guards DB (to the TCP origin).
fn config(http: SocketAddr, tcp: SocketAddr, app_tag: &str, db_tag: &str) -> String {
    format!(
        r#"ingress:
  - hostname: {APP}
    service: http://{http}
    originRequest:
      access:
        required: true
        audTag: ["{app_tag}"]
  - hostname: {OPEN}
    service: http://{http}
    originRequest:
      access: {{ required: true, audTag: ["{app_tag}"] }}
  - hostname: {DB}
    service: tcp://{tcp}
    originRequest:
      access: {{ required: true, audTag: ["{db_tag}"], teamName: ignored }}
  - service: http_status:404
"#
    )
}

/// Sends `payload` through `access`, half-closes, and returns everything
/// read back until the connection ends.
async fn round_trip(access: &AccessTcp, payload: &[u8]) -> Vec<u8> {
    let mut c = tokio::net::TcpStream::connect(access.addr).await.unwrap();
    let (mut r, mut w) = c.split();
    let write = async {
        // The far end may already be gone when the connector refused.
        let _ = w.write_all(payload).await;
        let _ = w.shutdown().await;
    };
    let mut got = Vec::new();
    let read = r.read_to_end(&mut got);
    let ((), read) = tokio::time::timeout(support::DEADLINE, async { tokio::join!(write, read) })
        .await
        .expect("the access connection ends");
    // A refused connection may end in a reset; what was read still counts.
    drop(read);
    got
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_verifies_the_signed_identity_before_the_origin() {
    let dir = temp_dir();
    let edge = Edge::start(dir.path()).await;
    let e = &edge;

    // APP and DB are private routes, each covered by an application that
    // lets the service token in; OPEN is public (no application, no token).
    e.ok(&["tunnel", "create", "office"]).await;
    e.ok(&["tunnel", "route", "dns", "office", APP]).await;
    e.ok(&["tunnel", "route", "dns", "office", DB]).await;
    e.ok(&["tunnel", "route", "dns", "office", OPEN, "--public"])
        .await;
    e.ok(&["access", "app", "create", "web", "--host", APP])
        .await;
    e.ok(&["access", "app", "create", "db", "--host", DB]).await;
    let ci = e.service_token("ci").await;
    for app in ["web", "db"] {
        e.ok(&[
            "access",
            "policy",
            "add",
            app,
            "machines",
            "--action",
            "service-auth",
            "--include",
            "service-token=ci",
        ])
        .await;
    }
    let web_tag = e.app_tag("web").await;
    let db_tag = e.app_tag("db").await;
    assert_ne!(web_tag, db_tag);

    let (http, http_seen) = counting_http().await;
    let (tcp, tcp_seen) = counting_tcp_echo().await;
    let cfg: PathBuf = write_config(
        dir.path(),
        "config.yml",
        &config(http, tcp, &web_tag, &db_tag),
    );
    let cfg_s = cfg.display().to_string();
    let token = e.token_of("office").await;
    let connector = Connector::start(e, &token, &["--config", &cfg_s], dir.path());
    e.wait_connections("office", 2).await;

    let h = ci.headers();
    let with_ci: Vec<&str> = h.iter().map(String::as_str).collect();

    // --- The right audTag: an allowed request reaches the origin. ---
    let r = e.curl(APP, "/hello", &with_ci).await;
    assert_eq!(r.status, 200, "{}\n{}", r.body, connector.proc.logs());
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["origin"], "counting", "{body}");
    assert_eq!(body["assertion"], true, "{body}");
    assert_eq!(http_seen.load(Ordering::SeqCst), 1);
    // Again, from the cached keys.
    assert_eq!(e.curl(APP, "/again", &with_ci).await.status, 200);
    assert_eq!(http_seen.load(Ordering::SeqCst), 2);

    // --- A public route carries no token: the connector refuses. ---
    let r = e.curl(OPEN, "/", &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.headers.contains("warren-error: access-token-required"),
        "{}",
        r.headers
    );
    assert!(
        r.body.contains(
            "The connector requires a valid Warren access token for open.example.com \
             (originRequest.access.required): no identity token came with it"
        ),
        "{}",
        r.body
    );
    assert_eq!(http_seen.load(Ordering::SeqCst), 2, "the origin saw it");
    connector
        .proc
        .wait_log("refused a stream without a valid access token")
        .await;
    // A WebSocket upgrade too.
    let upgrade = [
        "--http1.1",
        "-H",
        "Connection: Upgrade",
        "-H",
        "Upgrade: websocket",
        "-H",
        "Sec-WebSocket-Version: 13",
        "-H",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ];
    let r = e.curl(OPEN, "/ws", &upgrade).await;
    assert_eq!(r.status, 403, "{}\n{}", r.headers, r.body);
    assert!(
        r.body.contains("no identity token came with it"),
        "{}",
        r.body
    );
    assert_eq!(http_seen.load(Ordering::SeqCst), 2, "the origin saw it");

    // --- TCP with the right audTag: bytes flow, half-close both ways. ---
    let access = AccessTcp::start_with(e, DB, dir.path(), &ci.env()).await;
    let got = round_trip(&access, b"hello through the tunnel").await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        "hello through the tunnel<eof>",
        "{}",
        connector.proc.logs()
    );
    assert_eq!(tcp_seen.load(Ordering::SeqCst), 1);

    // --- Wrong audTags (each rule names the other application). ---
    std::fs::write(&cfg, config(http, tcp, &db_tag, &web_tag)).unwrap();
    connector.proc.signal("HUP");
    connector.proc.wait_log("reloaded the ingress config").await;

    let r = e.curl(APP, "/hello", &with_ci).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains(
            "The connector requires a valid Warren access token for app.example.com \
             (originRequest.access.required): the token is for another application"
        ),
        "{}",
        r.body
    );
    assert!(!r.body.contains("counting"), "{}", r.body);
    assert_eq!(http_seen.load(Ordering::SeqCst), 2, "the origin saw it");

    let got = round_trip(&access, b"should not pass").await;
    assert!(
        !String::from_utf8_lossy(&got).contains("should not pass"),
        "{got:?}"
    );
    access
        .proc
        .wait_log("requires a valid Warren access token for db.example.com")
        .await;
    assert_eq!(tcp_seen.load(Ordering::SeqCst), 1, "the origin saw it");

    // The edge still allows the request: the refusal is the connector's.
    let logs = connector.proc.logs();
    assert!(
        logs.contains("the token is for another application"),
        "{logs}"
    );
}
