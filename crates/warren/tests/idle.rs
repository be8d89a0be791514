//! `--idle-timeout`: a spliced connection that carries nothing either way
//! for the timeout is closed by the edge and audited as idle; one that
//! keeps carrying bytes is not.

mod support;

use std::time::Duration;

use support::{eventually, origins, temp_dir, write_config, AccessTcp, Connector, Edge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HOST: &str = "echo.example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_busy_ones_are_not() {
    let dir = temp_dir();
    let echo = origins::tcp_echo().await;
    let edge = Edge::start_with_env(dir.path(), &[("WARREN_IDLE_TIMEOUT", "1")]).await;
    let token = edge.tunnel("office", &[HOST]).await;
    let cfg = write_config(
        dir.path(),
        "config.yml",
        &format!("ingress:\n  - hostname: {HOST}\n    service: tcp://{echo}\n  - service: http_status:404\n"),
    );
    let _connector = Connector::start(
        &edge,
        &token,
        &["--config", &cfg.display().to_string()],
        dir.path(),
    );
    edge.wait_connections("office", 2).await;
    let access = AccessTcp::start(&edge, HOST, dir.path()).await;

    // Busy: a byte every 300 ms for three times the timeout, all echoed.
    let mut busy = TcpStream::connect(access.addr).await.unwrap();
    for i in 0..10u8 {
        busy.write_all(&[i]).await.unwrap();
        let mut b = [0u8; 1];
        tokio::time::timeout(support::DEADLINE, busy.read_exact(&mut b))
            .await
            .expect("echo")
            .unwrap();
        assert_eq!(b[0], i);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Closed by the client while still busy (not left to go idle).
    busy.shutdown().await.unwrap();
    let mut tail = Vec::new();
    busy.read_to_end(&mut tail).await.unwrap();

    // Idle: one exchange, then nothing; the edge closes it.
    let mut idle = TcpStream::connect(access.addr).await.unwrap();
    idle.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    idle.read_exact(&mut b).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(support::DEADLINE, idle.read_to_end(&mut rest))
        .await
        .expect("the idle connection is closed by the edge")
        .ok();

    let entries: Vec<serde_json::Value> =
        eventually("both connections audited", support::DEADLINE, || async {
            let o = edge.cli(&["audit", "list", "--output", "json"]).await;
            let v: Vec<serde_json::Value> = serde_json::from_str(&o.stdout).ok()?;
            (v.len() >= 2).then_some(v)
        })
        .await;
    let reasons: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["end_reason"].as_str())
        .collect();
    assert!(reasons.contains(&"idle for 1 s"), "{reasons:?}");
    assert_eq!(
        reasons.iter().filter(|r| r.starts_with("idle")).count(),
        1,
        "only the idle connection was closed as idle: {reasons:?}"
    );
}
