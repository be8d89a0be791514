//! gRPC-shaped HTTP/2 through an `http2Origin` rule: a unary and a
//! server-streaming call, with `te: trailers` reaching the origin and the
//! `grpc-status` trailers reaching the client.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{origins, Stack};

async fn call(s: &Stack, n: usize) -> (http::response::Parts, Bytes, http::HeaderMap) {
    let tls = support::edge_tls_stream(&s.edge, "grpc.example.com", &[b"h2"]).await;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("https://grpc.example.com/demo.Echo/Call?n={n}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\x05hello")))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected
        .trailers()
        .cloned()
        .expect("trailers arrive at the client");
    (parts, collected.to_bytes(), trailers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_and_server_streaming_with_trailers() {
    let origin = origins::h2c_grpc_like().await;
    let s = Stack::start(
        &["grpc.example.com"],
        &format!(
            "  - hostname: grpc.example.com\n    service: http://{origin}\n    originRequest:\n      http2Origin: true\n"
        ),
    )
    .await;

    let (parts, body, trailers) = call(&s, 1).await;
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers["content-type"], "application/grpc");
    assert_eq!(parts.headers["x-seen-te"], "trailers");
    assert_eq!(&body[..], b"msg0:10|");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "ok");

    let (_, body, trailers) = call(&s, 5).await;
    assert_eq!(&body[..], b"msg0:10|msg1:10|msg2:10|msg3:10|msg4:10|");
    assert_eq!(trailers["grpc-status"], "0");
}
