//! gRPC through an `http2Origin` rule: hand-made gRPC frames with hyper
//! (checking `te: trailers` reaches the origin and `grpc-status` trailers
//! reach the client), and a real tonic server and client (unary,
//! server-streaming, and an error status).

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

/// A tonic server and client (hand-written service, no codegen): unary and
/// server-streaming calls through the tunnel, trailers included.
mod tonic_calls {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tonic_prost::ProstCodec;

    use super::support::{self, Stack};

    #[derive(Clone, PartialEq, prost::Message)]
    struct Msg {
        #[prost(string, tag = "1")]
        text: String,
        #[prost(uint32, tag = "2")]
        n: u32,
    }

    struct Say;

    impl tonic::server::UnaryService<Msg> for Say {
        type Response = Msg;
        type Future = std::future::Ready<Result<tonic::Response<Msg>, tonic::Status>>;
        fn call(&mut self, req: tonic::Request<Msg>) -> Self::Future {
            let m = req.into_inner();
            std::future::ready(Ok(tonic::Response::new(Msg {
                text: format!("hello, {}", m.text),
                n: m.n + 1,
            })))
        }
    }

    struct Count;

    type MsgStream =
        Pin<Box<dyn futures_util::Stream<Item = Result<Msg, tonic::Status>> + Send + 'static>>;

    impl tonic::server::ServerStreamingService<Msg> for Count {
        type Response = Msg;
        type ResponseStream = MsgStream;
        type Future = std::future::Ready<Result<tonic::Response<MsgStream>, tonic::Status>>;
        fn call(&mut self, req: tonic::Request<Msg>) -> Self::Future {
            let n = req.into_inner().n;
            let items = (0..n).map(|i| {
                Ok(Msg {
                    text: format!("item {i}"),
                    n: i,
                })
            });
            let stream: MsgStream = Box::pin(futures_util::stream::iter(items));
            std::future::ready(Ok(tonic::Response::new(stream)))
        }
    }

    /// An h2c tonic server on loopback.
    async fn server() -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let mut grpc = tonic::server::Grpc::new(ProstCodec::<Msg, Msg>::default());
                        let resp = match req.uri().path() {
                            "/demo.Echo/Say" => grpc.unary(Say, req).await,
                            "/demo.Echo/Count" => grpc.server_streaming(Count, req).await,
                            _ => tonic::Status::unimplemented("no such method").into_http(),
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc),
                );
            }
        });
        addr
    }

    /// tonic's client over one HTTP/2 connection to the edge.
    #[derive(Clone)]
    struct H2(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

    impl tower_service::Service<http::Request<tonic::body::Body>> for H2 {
        type Response = http::Response<hyper::body::Incoming>;
        type Error = hyper::Error;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.0.poll_ready(cx)
        }
        fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
            Box::pin(self.0.send_request(req))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tonic_unary_and_server_streaming() {
        let origin = server().await;
        let s = Stack::start(
            &["grpc.example.com"],
            &format!(
                "  - hostname: grpc.example.com\n    service: http://{origin}\n    originRequest:\n      http2Origin: true\n"
            ),
        )
        .await;
        let tls = support::edge_tls_stream(&s.edge, "grpc.example.com", &[b"h2"]).await;
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut client = tonic::client::Grpc::with_origin(
            H2(sender),
            "https://grpc.example.com".parse().unwrap(),
        );

        client.ready().await.unwrap();
        let reply = client
            .unary(
                tonic::Request::new(Msg {
                    text: "warren".into(),
                    n: 41,
                }),
                http::uri::PathAndQuery::from_static("/demo.Echo/Say"),
                ProstCodec::<Msg, Msg>::default(),
            )
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.text, "hello, warren");
        assert_eq!(reply.n, 42);

        client.ready().await.unwrap();
        let mut stream = client
            .server_streaming(
                tonic::Request::new(Msg {
                    text: String::new(),
                    n: 5,
                }),
                http::uri::PathAndQuery::from_static("/demo.Echo/Count"),
                ProstCodec::<Msg, Msg>::default(),
            )
            .await
            .unwrap()
            .into_inner();
        let mut got = Vec::new();
        while let Some(m) = stream.message().await.unwrap() {
            got.push(m.n);
        }
        assert_eq!(got, [0, 1, 2, 3, 4]);
        // grpc-status arrived in the trailers: the stream ended cleanly.
        let trailers = stream.trailers().await.unwrap().expect("trailers");
        assert_eq!(trailers.get("grpc-status").unwrap(), "0");

        // An unknown method: the status travels back in trailers-only form.
        client.ready().await.unwrap();
        let err = client
            .unary(
                tonic::Request::new(Msg::default()),
                http::uri::PathAndQuery::from_static("/demo.Echo/Nope"),
                ProstCodec::<Msg, Msg>::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented);
    }
}
