//! The edge's connection caps: one address cannot hold more than
//! `--max-unauthenticated-per-source` silent connections on a listener
//! (the next ones are closed at once, other addresses are not affected),
//! and at `--max-connections` the public listeners wait for a slot instead
//! of running out of file descriptors, with one log line, while the admin
//! API, which has its own cap, keeps answering.

mod support;

use std::net::SocketAddr;

use support::{temp_dir, Edge};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `to` from the loopback address `ip`.
async fn connect_from(ip: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

/// Whether the edge closes `s` (end of stream or a reset) before
/// `support::DEADLINE`.
async fn closed_by_edge(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(support::DEADLINE, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_per_address_and_in_all_keep_other_users_served() {
    let dir = temp_dir();
    // Timeouts far longer than the test, so only the caps close anything.
    let edge = Edge::start_with_env(
        dir.path(),
        &[
            ("WARREN_MAX_UNAUTHENTICATED_PER_SOURCE", "3"),
            ("WARREN_MAX_CONNECTIONS", "6"),
            ("WARREN_HANDSHAKE_TIMEOUT", "300"),
            ("WARREN_HEADER_READ_TIMEOUT", "300"),
        ],
    )
    .await;
    edge.proc.wait_log("connection limits").await;

    // 127.0.0.2 holds three silent connections; its fourth is closed.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.2", edge.https).await);
    }
    let mut fourth = connect_from("127.0.0.2", edge.https).await;
    assert!(
        closed_by_edge(&mut fourth).await,
        "a fourth silent connection from one address is closed"
    );
    edge.proc
        .wait_log("as --max-unauthenticated-per-source allows")
        .await;

    // Another address is served meanwhile.
    let other = edge
        .curl(
            "nothing-here.example.com",
            "/",
            &["--interface", "127.0.0.3"],
        )
        .await;
    assert_eq!(other.status, 404, "{}", other.stderr);

    // Three more silent connections from 127.0.0.4 fill the edge's six
    // slots: it says so once, and the admin API still answers.
    let mut filler = Vec::new();
    for _ in 0..3 {
        filler.push(connect_from("127.0.0.4", edge.https).await);
    }
    edge.proc
        .wait_log("as many connections as --max-connections allows")
        .await;
    let admin = edge.cli(&["tunnel", "list"]).await;
    assert_eq!(admin.code, 0, "the admin API at the cap: {}", admin.stderr);

    // A newcomer waits for a slot, and is served once one frees.
    let https = edge.https_target();
    let newcomer = tokio::spawn(async move {
        https
            .curl(
                "nothing-here.example.com",
                "/",
                &["--interface", "127.0.0.5"],
            )
            .await
    });
    drop(filler);
    let served = newcomer.await.unwrap();
    assert_eq!(served.status, 404, "{}", served.stderr);
    assert_eq!(
        edge.proc
            .logs()
            .matches("as many connections as --max-connections allows")
            .count(),
        1,
        "one line, not one per refused accept"
    );
    drop(held);
}
