//! HTTP through the tunnel: GET, a 100 MB streamed POST, WebSocket,
//! error pages, the HTTP → HTTPS redirect.

mod support;

use std::io::Write as _;

use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use support::{origins, Connector, Edge, Stack};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_post_and_websocket_through_the_tunnel() {
    let origin = origins::http_echo().await;
    let s = Stack::start(
        &["app.example.com"],
        &format!("  - hostname: app.example.com\n    service: http://{origin}\n"),
    )
    .await;

    // GET, with the forwarding headers the edge adds.
    let r = s.edge.curl("app.example.com", "/hello?x=1", &[]).await;
    assert_eq!(r.status, 200, "{} {}", r.body, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/hello?x=1");
    assert_eq!(v["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(v["headers"]["x-forwarded-proto"], "https");
    assert!(v["headers"]["x-forwarded-host"]
        .as_str()
        .unwrap()
        .starts_with("app.example.com"));
    assert_eq!(v["headers"]["host"], "app.example.com");

    // 100 MB POST, streamed; the origin's checksum must match ours.
    let file = s.path().join("upload.bin");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let mut h = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    for i in 0..100u32 {
        for (j, b) in block.iter_mut().enumerate() {
            *b = (i as usize * 31 + j * 7) as u8;
        }
        h.update(&block);
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let want = hex::encode(h.finalize());
    let data = format!("@{}", file.display());
    let r = s
        .edge
        .curl(
            "app.example.com",
            "/upload",
            &[
                "--data-binary",
                &data,
                "-H",
                "content-type: application/octet-stream",
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{} {}", r.body, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["len"], 100 * (1 << 20));
    assert_eq!(v["sha256"], want);

    // WebSocket echo through the HTTP path.
    let tls = support::edge_tls_stream(&s.edge, "app.example.com", &[b"http/1.1"]).await;
    let req = "wss://app.example.com/ws".into_client_request().unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("ping through the tunnel"))
        .await
        .unwrap();
    let m = ws.next().await.unwrap().unwrap();
    assert_eq!(m.into_text().unwrap().as_str(), "ping through the tunnel");
    ws.send(Message::binary(vec![7u8; 100_000])).await.unwrap();
    let m = ws.next().await.unwrap().unwrap();
    assert_eq!(m.into_data().len(), 100_000);

    // HTTP/2 from the client works too.
    let r = s.edge.curl("app.example.com", "/h2", &["--http2"]).await;
    assert_eq!(r.status, 200);
    assert!(r.headers.starts_with("http/2"), "{}", r.headers);
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_pages_say_what_is_wrong() {
    let closed = origins::closed_port().await;
    let s = Stack::start(
        &["down.example.com"],
        &format!("  - hostname: down.example.com\n    service: http://127.0.0.1:{closed}\n"),
    )
    .await;

    // Unknown hostname under the domain: 404.
    let r = s.edge.curl("nothing.example.com", "/", &[]).await;
    assert_eq!(r.status, 404, "{}", r.stderr);
    assert!(
        r.body
            .contains("There is no tunnel route for nothing.example.com"),
        "{}",
        r.body
    );
    assert!(r.headers.contains("warren-error: unknown-hostname"));

    // Origin refused: 502 saying so.
    let r = s.edge.curl("down.example.com", "/", &[]).await;
    assert_eq!(r.status, 502);
    assert!(r.body.contains("could not reach the origin"), "{}", r.body);
    assert!(r.headers.contains("warren-error: origin-unreachable"));

    // A route whose tunnel has no connector: 502 with the sentence.
    let o = s.edge.cli(&["tunnel", "create", "idle"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = s
        .edge
        .cli(&[
            "tunnel",
            "route",
            "dns",
            "idle",
            "idle.example.com",
            "--public",
        ])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = s.edge.curl("idle.example.com", "/", &[]).await;
    assert_eq!(r.status, 502);
    assert!(r.body.contains("has no connected connector"), "{}", r.body);
    assert!(r.headers.contains("warren-error: no-connector"));

    // The HTTP listener redirects to HTTPS.
    let url = format!("http://127.0.0.1:{}/a?b=1", s.edge.http.port());
    let r = support::curl(&["-sS", "-i", "-H", "Host: app.example.com", &url]).await;
    assert_eq!(r.status, 308);
    assert!(
        r.headers.contains(&format!(
            "location: https://app.example.com:{}/a?b=1",
            s.edge.https.port()
        )),
        "{}",
        r.headers
    );
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_world_and_http_status_services() {
    let dir = support::temp_dir();
    let edge = Edge::start(dir.path()).await;
    let token = edge.tunnel("t", &["hello.example.com"]).await;
    let _c = Connector::start(&edge, &token, &["--url", "hello_world"], dir.path());
    edge.wait_connections("t", 2).await;
    let r = edge.curl("hello.example.com", "/", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Hello from Warren"));
}
