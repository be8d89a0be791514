//! The soak and chaos suite: while a bounded loop of other users' requests
//! measures what they get, the edge is attacked and broken in turn —
//! slowloris on every listener, a descriptor-exhaustion attempt from
//! several addresses, a barrage of malformed input on every listener, many
//! concurrent streams on one edge, SIGKILL of one connector replica, then
//! SIGKILL of the edge itself. It reports requests lost, recovery times
//! and the edge's RSS before and after, and fails when another user lost a
//! request where none may be lost.
//!
//! CI runs it short (the defaults). By hand, longer and bigger:
//!
//! ```text
//! WARREN_SOAK_SECONDS=300 WARREN_SOAK_STREAMS=10000 \
//!   cargo nextest run -p warren --test soak --no-capture
//! ```

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{
    edge_tls_stream, load, origins, temp_dir, write_config, Connector, Edge, LoadResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::Instant;

const HOST: &str = "app.example.com";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The edge's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A TCP connection to `to` from the loopback address `ip` (`None` once
/// this process or the edge is out of descriptors: the attempt is the
/// point).
async fn connect_from(ip: &str, to: SocketAddr) -> Option<TcpStream> {
    let s = TcpSocket::new_v4().ok()?;
    s.bind(format!("{ip}:0").parse().ok()?).ok()?;
    s.connect(to).await.ok()
}

/// The requests of a load phase that did not get a 200.
fn lost(results: &[LoadResult]) -> Vec<&str> {
    results
        .iter()
        .filter(|r| r.status != 200)
        .map(|r| r.detail.as_str())
        .collect()
}

/// Deterministic junk: a small xorshift, so a failure can be replayed.
fn junk(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Malformed input on every listener: junk instead of TLS, junk after a
/// TLS handshake, junk HTTP heads, junk PostgreSQL startups, junk to the
/// admin API, junk datagrams to the tunnel listener. Each connection is
/// read until the edge closes it (bounded).
async fn barrage(edge: &Edge, rounds: u64) {
    let pg = edge.postgres.expect("the test edge listens for PostgreSQL");
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for round in 0..rounds {
        let bytes = junk(round, 64 + (round as usize % 4000));
        let mut tasks = Vec::new();
        for to in [edge.https, edge.http, edge.admin, pg] {
            let bytes = bytes.clone();
            tasks.push(tokio::spawn(async move {
                if let Ok(mut s) = TcpStream::connect(to).await {
                    let _ = s.write_all(&bytes).await;
                    let mut sink = [0u8; 4096];
                    let _ = tokio::time::timeout(support::DEADLINE, async {
                        while let Ok(n) = s.read(&mut sink).await {
                            if n == 0 {
                                break;
                            }
                        }
                    })
                    .await;
                }
            }));
        }
        let mut tls = edge_tls_stream(edge, HOST, &[b"http/1.1"]).await;
        let _ = tls.write_all(&bytes).await;
        let _ = tls.shutdown().await;
        let _ = udp.send_to(&bytes, edge.tunnel).await;
        for t in tasks {
            t.await.unwrap();
        }
    }
}

/// `n` concurrent GETs over HTTP/2, 100 streams per connection: how many
/// got a 200.
async fn many_streams(edge: &Edge, n: usize) -> usize {
    let mut senders = Vec::new();
    for _ in 0..n.div_ceil(100) {
        let tls = edge_tls_stream(edge, HOST, &[b"h2"]).await;
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        senders.push(send);
    }
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let mut send = senders[i % senders.len()].clone();
        tasks.push(tokio::spawn(async move {
            let req = http::Request::get(format!("https://{HOST}/stream-{i}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            match send.send_request(req).await {
                Ok(resp) if resp.status() == 200 => resp.into_body().collect().await.is_ok(),
                _ => false,
            }
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() {
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_while_other_users_are_served() {
    // This process holds a socket per attacking connection.
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let soak = Duration::from_secs(env_or("WARREN_SOAK_SECONDS", 0));
    let streams = env_or("WARREN_SOAK_STREAMS", 500) as usize;
    let dir = temp_dir();
    let origin = origins::http_echo().await;
    let mut edge = Edge::start_restartable(dir.path()).await;
    let token = edge.tunnel("office", &[HOST]).await;
    let cfg = write_config(
        dir.path(),
        "config.yml",
        &format!("ingress:\n  - service: http://{origin}\n"),
    )
    .display()
    .to_string();
    let mut replica_a = Connector::start(&edge, &token, &["--config", &cfg], dir.path());
    let _replica_b = Connector::start(&edge, &token, &["--config", &cfg], dir.path());
    edge.wait_connections("office", 4).await;
    let rss_before = rss_kib(edge.proc.pid());
    let mut report = Vec::new();

    // 1. Slowloris on every listener, descriptor exhaustion from eight
    //    addresses and a malformed-input barrage, all at once, while
    //    other users' requests go on.
    let users = load(&edge, HOST, "/", 2, 100_000);
    users.progress(4).await;
    let started = Instant::now();
    let mut held = Vec::new();
    for to in [edge.https, edge.http, edge.admin, edge.postgres.unwrap()] {
        for _ in 0..20 {
            if let Some(mut s) = connect_from("127.0.0.2", to).await {
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: a").await;
                held.push(s);
            }
        }
    }
    for a in 3..=6 {
        for _ in 0..300 {
            if let Some(s) = connect_from(&format!("127.0.0.{a}"), edge.https).await {
                held.push(s);
            }
        }
    }
    barrage(&edge, 25).await;
    users.progress(10).await;
    while started.elapsed() < soak {
        barrage(&edge, 5).await;
    }
    let attacked = users.finish().await;
    let lost_attacked = lost(&attacked);
    report.push(format!(
        "slowloris + {} held sockets + barrage: {} requests, {} lost",
        held.len(),
        attacked.len(),
        lost_attacked.len()
    ));
    drop(held);
    assert!(
        lost_attacked.is_empty(),
        "other users lost requests under attack: {lost_attacked:?}"
    );
    assert!(
        edge.proc.alive(),
        "the edge survived the barrage:\n{}",
        edge.proc.logs()
    );

    // 2. Many concurrent streams on one edge.
    let started = Instant::now();
    let ok = many_streams(&edge, streams).await;
    report.push(format!(
        "{streams} concurrent streams: {ok} answered in {:?}",
        started.elapsed()
    ));
    assert_eq!(ok, streams, "every concurrent stream is answered");
    let rss_after = rss_kib(edge.proc.pid());

    // 3. SIGKILL of one connector replica under load: nothing lost (the
    //    edge stops using its connections and replays what was caught).
    let users = load(&edge, HOST, "/", 2, 100_000);
    users.progress(4).await;
    replica_a.proc.kill().await;
    let killed = Instant::now();
    users.progress(20).await;
    let after_kill = users.finish().await;
    let lost_kill = lost(&after_kill);
    let last_failure = after_kill
        .iter()
        .filter(|r| r.status != 200)
        .map(|r| r.started.saturating_duration_since(killed))
        .max();
    report.push(format!(
        "connector SIGKILL: {} requests, {} lost, last failure {last_failure:?} after the kill",
        after_kill.len(),
        lost_kill.len()
    ));
    assert!(
        lost_kill.is_empty(),
        "requests lost when a replica was killed: {lost_kill:?}"
    );

    // 4. SIGKILL of the edge: started again on the same ports and store,
    //    the surviving replica re-registers and requests are served.
    edge.proc.signal("KILL");
    edge.proc.wait_exit().await;
    let restarted = Instant::now();
    let edge = edge.start_again().await;
    let target = edge.https_target();
    support::eventually(
        "served again after the edge was killed",
        support::DEADLINE,
        || {
            let target = target.clone();
            async move { (target.curl(HOST, "/", &[]).await.status == 200).then_some(()) }
        },
    )
    .await;
    report.push(format!(
        "edge SIGKILL: served again {:?} after it was started again",
        restarted.elapsed()
    ));
    report.push(format!(
        "edge RSS: {rss_before} KiB before, {rss_after} KiB after the attacks and streams"
    ));
    eprintln!("soak report:\n  {}", report.join("\n  "));
}
