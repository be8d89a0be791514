//! `warren access tcp`: local listener and stdio, half-close, PROXY
//! protocol, refusals, over both carriers (QUIC and the WebSocket), and
//! `auto`'s fallback from one to the other.

mod support;

use std::process::Stdio;

use support::{origins, AccessTcp, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tcp_carries_bytes_with_half_close() {
    let s = echo_stack().await;
    for transport in ["quic", "websocket"] {
        let access =
            AccessTcp::start_over(&s.edge, "echo.example.com", s.path(), transport, &[]).await;
        if let Err(why) = several_connections_echo_with_half_close(access.addr).await {
            panic!(
                "over {transport}: {why}\naccess log:\n{}\nedge log:\n{}",
                access.proc.logs(),
                s.edge.proc.logs()
            );
        }
    }
}

/// A stack whose connector serves `echo.example.com` from a TCP echo
/// origin (which writes `<eof>` once it sees the client's half-close).
async fn echo_stack() -> Stack {
    let echo = origins::tcp_echo().await;
    Stack::start(
        &["echo.example.com"],
        &format!("  - hostname: echo.example.com\n    service: tcp://{echo}\n"),
    )
    .await
}

/// Several connections at once, each with its own bytes, each echoed whole
/// and then closed by the origin after it saw the client's half-close.
async fn several_connections_echo_with_half_close(
    addr: std::net::SocketAddr,
) -> Result<(), String> {
    let mut tasks = Vec::new();
    for i in 0..4u8 {
        tasks.push(tokio::spawn(async move {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            let payload: Vec<u8> = (0..300_000u32).map(|j| (j as u8).wrapping_add(i)).collect();
            let (mut r, mut w) = c.split();
            let write = async {
                w.write_all(&payload).await.unwrap();
                w.shutdown().await.unwrap(); // half-close
            };
            let mut got = Vec::new();
            let read = r.read_to_end(&mut got);
            let (_, n) = tokio::join!(write, read);
            n.map_err(|e| format!("connection {i}: {e}"))?;
            // Everything echoed, then the origin's marker sent after it saw
            // our FIN: half-close crossed the tunnel both ways.
            let mut want = payload;
            want.extend_from_slice(b"<eof>");
            if got != want {
                return Err(format!(
                    "connection {i} got {} bytes, not {} (first difference at {:?})",
                    got.len(),
                    want.len(),
                    got.iter().zip(&want).position(|(a, b)| a != b)
                ));
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await.unwrap()?;
    }
    Ok(())
}

/// Where the edge does not answer over UDP, `auto` carries connections
/// over the WebSocket instead, says so once, and keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_the_websocket_when_quic_gets_no_answer() {
    let s = echo_stack().await;
    // A UDP port that takes packets and never answers: a network that
    // drops QUIC.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let access = AccessTcp::start_over(
        &s.edge,
        "echo.example.com",
        s.path(),
        "auto",
        &[
            "--edge-quic",
            &silent_addr,
            "--quic-handshake-timeout",
            "300ms",
        ],
    )
    .await;
    several_connections_echo_with_half_close(access.addr)
        .await
        .unwrap_or_else(|why| panic!("{why}\n{}", access.proc.logs()));
    let log = access.proc.logs();
    assert!(
        log.contains("carrying connections over the WebSocket"),
        "{log}"
    );
    // Only QUIC: the same network is an error that says what to do.
    let o = support::warren(
        &[
            "access",
            "tcp",
            "--hostname",
            "echo.example.com",
            "--edge",
            &s.edge.https.to_string(),
            "--ca-cert",
            &s.edge.ca.display().to_string(),
            "--transport",
            "quic",
            "--edge-quic",
            &silent_addr,
            "--quic-handshake-timeout",
            "300ms",
        ],
        &[],
    )
    .await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("UDP may be blocked") && o.stderr.contains("--transport websocket"),
        "{}",
        o.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_mode_works_as_a_proxy_command() {
    let echo = origins::tcp_echo().await;
    let s = Stack::start(
        &["ssh.example.com"],
        &format!("  - hostname: ssh.example.com\n    service: tcp://{echo}\n"),
    )
    .await;
    let mut child = tokio::process::Command::new(support::warren_bin())
        .args(["access", "tcp", "--hostname", "ssh.example.com", "--edge"])
        .arg(s.edge.https.to_string())
        .arg("--ca-cert")
        .arg(&s.edge.ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"SSH-2.0-test\r\n").await.unwrap();
    drop(stdin); // EOF on stdin = half-close
    let out = tokio::time::timeout(support::DEADLINE, child.wait_with_output())
        .await
        .expect("access tcp (stdio) exits after both directions end")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"SSH-2.0-test\r\n<eof>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_tells_the_origin_the_client_address() {
    let origin = origins::proxy_line_reporter().await;
    let s = Stack::start(
        &["pp.example.com"],
        &format!(
            "  - hostname: pp.example.com\n    service: tcp://{origin}\n    originRequest:\n      proxyProtocol: v1\n"
        ),
    )
    .await;
    let access = AccessTcp::start(&s.edge, "pp.example.com", s.path()).await;
    let mut c = tokio::net::TcpStream::connect(access.addr).await.unwrap();
    let mut line = Vec::new();
    c.read_to_end(&mut line).await.unwrap();
    let line = String::from_utf8(line).unwrap();
    // The edge saw the access client connect from 127.0.0.1.
    assert!(
        line.starts_with("PROXY TCP4 127.0.0.1 127.0.0.1 "),
        "{line:?}"
    );
    assert!(
        line.ends_with(&format!(" {}\r\n", origin.port())),
        "{line:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_reach_the_client_as_sentences() {
    let s = Stack::start(
        &["web.example.com"],
        "  - hostname: web.example.com\n    service: hello_world\n",
    )
    .await;
    let quic = s.edge.quic.expect("the edge listens for QUIC").to_string();
    let stdio = |host: &'static str, transport: &'static str| {
        let (edge, ca, quic) = (
            s.edge.https.to_string(),
            s.edge.ca.display().to_string(),
            quic.clone(),
        );
        async move {
            support::warren(
                &[
                    "access",
                    "tcp",
                    "--hostname",
                    host,
                    "--edge",
                    &edge,
                    "--ca-cert",
                    &ca,
                    "--transport",
                    transport,
                    "--edge-quic",
                    &quic,
                ],
                &[],
            )
            .await
        }
    };
    // A hostname served by HTTP is not a TCP service.
    for transport in ["quic", "websocket"] {
        let o = stdio("web.example.com", transport).await;
        assert_ne!(o.code, 0);
        assert!(
            o.stderr.contains("not a TCP service"),
            "{transport}: {}",
            o.stderr
        );
    }

    // A route whose tunnel has no connector.
    assert_eq!(s.edge.cli(&["tunnel", "create", "idle"]).await.code, 0);
    assert_eq!(
        s.edge
            .cli(&[
                "tunnel",
                "route",
                "dns",
                "idle",
                "db.example.com",
                "--public"
            ])
            .await
            .code,
        0
    );
    for transport in ["quic", "websocket"] {
        let o = stdio("db.example.com", transport).await;
        assert_ne!(o.code, 0);
        assert!(
            o.stderr.contains("has no connected connector"),
            "{transport}: {}",
            o.stderr
        );
    }
}

/// A QUIC access connection that never opens a stream is closed by the
/// edge after `--handshake-timeout`, as a TCP connection that never sends
/// a request is: idle handshakes cannot pile up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quic_access_connection_that_asks_for_nothing_is_closed() {
    use std::sync::Arc;
    use warren_transport::quic::{QuicDialer, QuicSettings};
    use warren_transport::tls::{client_config, roots_from_file, Trust};

    let dir = support::temp_dir();
    let edge =
        support::Edge::start_with_env(dir.path(), &[("WARREN_HANDSHAKE_TIMEOUT", "1")]).await;
    edge.tunnel("office", &["echo.example.com"]).await;
    let trust = Trust::Roots(Arc::new(roots_from_file(&edge.ca).unwrap()));
    let tls = client_config(&trust, &[warren_proto::access::ALPN]).unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dialer = QuicDialer::new(socket, tls, &QuicSettings::default().access()).unwrap();
    let conn = dialer
        .connect(
            edge.quic.expect("the edge listens for QUIC"),
            "echo.example.com",
        )
        .await
        .expect("the handshake succeeds");
    let why = tokio::time::timeout(support::DEADLINE, conn.closed())
        .await
        .expect("the edge closes a connection that asks for nothing");
    match why {
        warren_transport::conn::ConnectionError::ClosedByPeer { reason, .. } => {
            assert_eq!(reason, "no request in time")
        }
        other => panic!("closed for another reason: {other}"),
    }
}
