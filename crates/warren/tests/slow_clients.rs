//! Every listener of the edge closes a client that is too slow or silent
//! (a TLS handshake never finished, a request head sent a byte at a time,
//! a PostgreSQL client that stops after TLS, an admin request whose body
//! is shorter than its Content-Length), within the timeouts set here to a
//! second, while other clients' requests are served.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{edge_tls, edge_tls_stream, temp_dir, Edge};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The edge's timeouts in this test, in seconds.
const TIMEOUTS: &[(&str, &str)] = &[
    ("WARREN_HANDSHAKE_TIMEOUT", "1"),
    ("WARREN_HEADER_READ_TIMEOUT", "1"),
    ("WARREN_PG_STARTUP_TIMEOUT", "1"),
];

/// Far past every timeout above: a connection still open by then was not
/// closed by the edge. (A bound on the test, not a timing assertion.)
const BOUND: Duration = Duration::from_secs(20);

/// Between two bytes of a dribbling client: well under each timeout, so
/// only a deadline for the whole head (not a per-read one) closes it.
const DRIBBLE: Duration = Duration::from_millis(250);

/// How a slow client's connection ended.
#[derive(Debug, PartialEq)]
enum End {
    /// The edge closed it (end of stream or an error on read).
    Closed,
    /// Still open at [`BOUND`].
    Open,
}

/// Sends `bytes` one at a time, [`DRIBBLE`] apart (then nothing), until
/// the edge closes the connection or [`BOUND`] passes; what the edge sent
/// back meanwhile.
async fn dribble<S>(stream: S, bytes: &[u8]) -> (End, Vec<u8>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rx, mut tx) = tokio::io::split(stream);
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    let write = async {
        for b in bytes {
            if tx.write_all(std::slice::from_ref(b)).await.is_err() || tx.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(DRIBBLE).await;
        }
        std::future::pending::<()>().await
    };
    let end = tokio::time::timeout(BOUND, async {
        tokio::select! {
            () = read => {}
            () = write => {}
        }
    })
    .await;
    let end = if end.is_ok() { End::Closed } else { End::Open };
    (end, got)
}

/// A request head that never ends: far more bytes than [`BOUND`] lets
/// through at [`DRIBBLE`] apart.
fn endless_head() -> Vec<u8> {
    let mut head = b"GET / HTTP/1.1\r\nHost: a.example.com\r\nX-Slow: ".to_vec();
    head.resize(head.len() + 200, b'a');
    head
}

async fn tcp(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

/// The PostgreSQL SSLRequest.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A StartupMessage for user `app`, database `app`, longer than
/// [`BOUND`] lets through at [`DRIBBLE`] apart (so a per-read timeout
/// would never end it).
fn startup_message() -> Vec<u8> {
    let mut body = vec![0, 3, 0, 0];
    let name = "a".repeat(200);
    for (k, v) in [
        ("user", "app"),
        ("database", "app"),
        ("application_name", &name),
    ] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

#[tokio::test]
async fn every_listener_closes_slow_and_silent_clients_while_others_are_served() {
    let dir = temp_dir();
    let edge = Edge::start_with_env(dir.path(), TIMEOUTS).await;
    let pg = edge.postgres.expect("the test edge listens for PostgreSQL");

    let https_no_handshake = dribble(tcp(edge.https).await, &[]);
    let https_silent = async {
        let tls = edge_tls_stream(&edge, "a.example.com", &[b"http/1.1"]).await;
        dribble(tls, &[]).await
    };
    let https_h2_silent = async {
        let tls = edge_tls_stream(&edge, "a.example.com", &[b"h2"]).await;
        dribble(tls, &[]).await
    };
    let admin_silent = async { dribble(tcp(edge.admin).await, &[]).await };
    // A real HTTP/2 client that finishes its handshake and answers pings,
    // but never sends a request.
    let h2_idle = async {
        let tls = edge_tls_stream(&edge, "a.example.com", &[b"h2"]).await;
        let (_send, conn) =
            hyper::client::conn::http2::handshake::<_, _, http_body_util::Empty<bytes::Bytes>>(
                hyper_util::rt::TokioExecutor::new(),
                hyper_util::rt::TokioIo::new(tls),
            )
            .await
            .expect("an HTTP/2 handshake with the edge");
        match tokio::time::timeout(BOUND, conn).await {
            Ok(_) => (End::Closed, Vec::new()),
            Err(_) => (End::Open, Vec::new()),
        }
    };
    let head = endless_head();
    let https_slow_head = async {
        let tls = edge_tls_stream(&edge, "a.example.com", &[b"http/1.1"]).await;
        dribble(tls, &head).await
    };
    let http_slow_head = async { dribble(tcp(edge.http).await, &head).await };
    let startup = startup_message();
    let pg_slow_startup = async { dribble(tcp(pg).await, &startup).await };
    let pg_silent_in_tls = async {
        let mut s = tcp(pg).await;
        s.write_all(&SSL_REQUEST).await.unwrap();
        let mut answer = [0u8; 1];
        s.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"S", "the PostgreSQL listener offers TLS");
        let name = rustls_pki_types::ServerName::try_from("db.example.com").unwrap();
        let tls = tokio_rustls::TlsConnector::from(edge_tls(&edge, &[b"postgresql"]))
            .connect(name, s)
            .await
            .expect("TLS to the PostgreSQL listener");
        dribble(tls, &[]).await
    };
    let admin_short_body = async {
        let head = format!(
            "POST /v1/tunnels HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": ",
            edge.token
        );
        let mut s = tcp(edge.admin).await;
        s.write_all(head.as_bytes()).await.unwrap();
        dribble(s, &[]).await
    };
    // Another user, while all of the above hold their connections.
    let served = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        edge.curl("nothing-here.example.com", "/", &[]).await
    };

    let (a, b, b2, g2, h, c, d, e, f, g, other) = tokio::join!(
        https_no_handshake,
        https_silent,
        https_h2_silent,
        admin_silent,
        h2_idle,
        https_slow_head,
        http_slow_head,
        pg_slow_startup,
        pg_silent_in_tls,
        admin_short_body,
        served,
    );
    assert!(
        other.status > 0,
        "another client's request was not answered while slow clients held connections: {}",
        other.stderr
    );
    let ends = [
        ("HTTPS, no TLS handshake", &a),
        ("HTTPS, silent after TLS", &b),
        ("HTTPS, silent after TLS with ALPN h2", &b2),
        ("admin, silent", &g2),
        ("HTTPS, HTTP/2 handshake done and then no request", &h),
        ("HTTPS, request head a byte at a time", &c),
        ("HTTP redirect, request head a byte at a time", &d),
        ("PostgreSQL, StartupMessage a byte at a time", &e),
        ("PostgreSQL, silent inside TLS", &f),
        ("admin, body shorter than Content-Length", &g),
    ];
    let open: Vec<_> = ends
        .iter()
        .filter(|(_, (end, _))| *end == End::Open)
        .map(|(what, _)| *what)
        .collect();
    assert!(open.is_empty(), "still open after {BOUND:?}: {open:?}");
    let admin_answer = String::from_utf8_lossy(&g.1);
    assert!(
        admin_answer.starts_with("HTTP/1.1 408"),
        "the admin API answers a stalled body with 408: {admin_answer}"
    );
    assert!(
        admin_answer.contains("did not arrive"),
        "the 408 says what was wrong: {admin_answer}"
    );
}
