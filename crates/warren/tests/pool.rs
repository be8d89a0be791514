//! Origin pools (`service: pool`): health checks take a dead origin out of
//! rotation and bring it back, steering (least outstanding, hash on a
//! header), the 503 when nothing is healthy, and TCP pools.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use support::origins::{self, NamedOrigin};
use support::{eventually, AccessTcp, Stack, DEADLINE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const HOST: &str = "pool.example.com";

/// One `service: pool` rule for HOST over `origins` with quick health
/// checks, plus `extra` lines (indented 6) in its originPool.
fn pool_rule(origins: &[String], extra: &str) -> String {
    pool_rule_checking(origins, "", extra)
}

/// [`pool_rule`] with `check` (such as `path: /healthz, `) at the start of
/// its healthCheck.
fn pool_rule_checking(origins: &[String], check: &str, extra: &str) -> String {
    format!(
        "  - hostname: {HOST}\n    service: pool\n    originPool:\n      origins: [{}]\n      \
         healthCheck: {{ {check}interval: 200ms, timeout: 1s, unhealthyAfter: 2, healthyAfter: 2 \
         }}\n{extra}",
        origins.join(", ")
    )
}

fn http(o: &NamedOrigin) -> String {
    format!("http://{}", o.addr)
}

/// GET / through the edge: (status, body).
async fn get(s: &Stack, extra: &[&str]) -> (u16, String) {
    let r = s.edge.curl(HOST, "/", extra).await;
    (r.status, r.body)
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_origin_leaves_rotation_and_comes_back() {
    let a = NamedOrigin::start_new("a").await;
    let b = NamedOrigin::start_new("b").await;
    let s = Stack::start(&[HOST], &pool_rule(&[http(&a), http(&b)], "")).await;

    // Round robin: both serve.
    eventually("both origins to serve", DEADLINE, || async {
        let mut seen = HashSet::new();
        for _ in 0..4 {
            let (status, body) = get(&s, &[]).await;
            assert_eq!(status, 200, "{body}");
            seen.insert(body);
        }
        (seen.len() == 2).then_some(())
    })
    .await;

    b.stop().await;
    s.connector
        .proc
        .wait_log(&format!("origin {} is unhealthy", http(&b)))
        .await;
    for i in 0..50 {
        let (status, body) = get(&s, &[]).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "a"),
            "request {i} after b left the pool"
        );
    }

    b.start().await;
    eventually("b to serve again", DEADLINE, || async {
        let (status, body) = get(&s, &[]).await;
        assert_eq!(status, 200, "{body}");
        (body == "b").then_some(())
    })
    .await;
    s.connector
        .proc
        .wait_log(&format!("origin {} is healthy again", http(&b)))
        .await;
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_endpoint_takes_an_origin_out() {
    let a = NamedOrigin::start_new("a").await;
    let b = NamedOrigin::start_new("b").await;
    let s = Stack::start(
        &[HOST],
        &pool_rule_checking(&[http(&a), http(&b)], "path: /healthz, ", ""),
    )
    .await;
    // b still accepts connections, but its check answers 503.
    b.set_healthy(false);
    s.connector
        .proc
        .wait_log(&format!("origin {} is unhealthy", http(&b)))
        .await;
    for i in 0..20 {
        assert_eq!(get(&s, &[]).await, (200, "a".to_string()), "request {i}");
    }
    b.set_healthy(true);
    eventually("b to serve again", DEADLINE, || async {
        (get(&s, &[]).await.1 == "b").then_some(())
    })
    .await;
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_outstanding_prefers_the_fast_origin() {
    let slow = NamedOrigin::start_new("slow").await;
    let fast = NamedOrigin::start_new("fast").await;
    slow.set_delay(Duration::from_millis(300));
    let s = Stack::start(
        &[HOST],
        &pool_rule(
            &[http(&slow), http(&fast)],
            "      steering: least_outstanding\n",
        ),
    )
    .await;

    // 8 clients at once, 5 requests each.
    let mut clients = Vec::new();
    for _ in 0..8 {
        let target = s.edge.https_target();
        clients.push(tokio::spawn(async move {
            let mut bodies = Vec::new();
            for _ in 0..5 {
                let r = target.curl(HOST, "/", &[]).await;
                assert_eq!(r.status, 200, "{} {}", r.body, r.stderr);
                bodies.push(r.body);
            }
            bodies
        }));
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for c in clients {
        for body in c.await.unwrap() {
            *counts.entry(body).or_default() += 1;
        }
    }
    let total: usize = counts.values().sum();
    let fast_share = counts.get("fast").copied().unwrap_or(0);
    assert_eq!(total, 40);
    assert!(
        fast_share * 100 > total * 60,
        "the fast origin got {fast_share} of {total}: {counts:?}"
    );
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_on_a_header_keeps_a_user_on_one_origin() {
    let a = NamedOrigin::start_new("a").await;
    let b = NamedOrigin::start_new("b").await;
    let s = Stack::start(
        &[HOST],
        &pool_rule(
            &[http(&a), http(&b)],
            "      steering: hash\n      hashOn: header:X-User\n",
        ),
    )
    .await;

    let mut alice = HashSet::new();
    for _ in 0..20 {
        let (status, body) = get(&s, &["-H", "X-User: alice"]).await;
        assert_eq!(status, 200, "{body}");
        alice.insert(body);
    }
    assert_eq!(alice.len(), 1, "alice moved: {alice:?}");

    let mut by_user = HashMap::new();
    for user in 0..20 {
        let header = format!("X-User: user-{user}");
        let (status, body) = get(&s, &["-H", &header]).await;
        assert_eq!(status, 200, "{body}");
        by_user.insert(user, body);
    }
    let used: HashSet<&String> = by_user.values().collect();
    assert_eq!(used.len(), 2, "20 users all on one origin: {by_user:?}");
    // And each keeps its origin.
    for (user, first) in &by_user {
        let header = format!("X-User: user-{user}");
        assert_eq!(&get(&s, &["-H", &header]).await.1, first, "user-{user}");
    }
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_healthy_origin_is_a_503_that_says_so() {
    let closed = [origins::closed_port().await, origins::closed_port().await];
    let dead = closed
        .each_ref()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let s = Stack::start(&[HOST], &pool_rule(&dead, "")).await;
    let r = eventually("the pool to have no healthy origin", DEADLINE, || async {
        let r = s.edge.curl(HOST, "/", &[]).await;
        r.body.contains("no healthy origin").then_some(r)
    })
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    let want = format!(
        "no healthy origin in the pool for {HOST}: all 2 origins failed their health checks \
         (last error: "
    );
    assert!(r.body.contains(&want), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_pool_routes_around_a_closed_origin() {
    let live = origins::tcp_echo().await;
    let dead = origins::closed_port().await;
    let s = Stack::start(
        &[HOST],
        &pool_rule(
            &[format!("tcp://127.0.0.1:{dead}"), format!("tcp://{live}")],
            "",
        ),
    )
    .await;
    let access = AccessTcp::start(&s.edge, HOST, s.path()).await;
    let echo_all = |round: &'static str| {
        let addr = access.addr;
        async move {
            for i in 0..10 {
                let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
                let msg = format!("{round} {i}");
                c.write_all(msg.as_bytes()).await.unwrap();
                c.shutdown().await.unwrap();
                let mut got = Vec::new();
                tokio::time::timeout(DEADLINE, c.read_to_end(&mut got))
                    .await
                    .expect("echo in time")
                    .unwrap();
                assert_eq!(got, format!("{msg}<eof>").into_bytes(), "{round} {i}");
            }
        }
    };
    // Before the checks have spoken, a refused connection fails over.
    echo_all("early").await;
    // The TCP connect check takes the closed origin out.
    s.connector
        .proc
        .wait_log(&format!("origin tcp://127.0.0.1:{dead} is unhealthy"))
        .await;
    echo_all("late").await;
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_with_its_body_and_upgrades() {
    let live = origins::http_echo().await;
    let dead = origins::closed_port().await;
    // Checks too slow to matter: the dead origin stays in rotation, so
    // every other request is refused first and must fail over.
    let s = Stack::start(
        &[HOST],
        &format!(
            "  - hostname: {HOST}\n    service: pool\n    originPool:\n      origins: \
             [http://127.0.0.1:{dead}, http://{live}]\n      healthCheck: {{ interval: 1h, \
             unhealthyAfter: 1000 }}\n"
        ),
    )
    .await;

    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let want = hex::encode(Sha256::digest(&body));
    let file = s.path().join("body.bin");
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    for i in 0..6 {
        let r = s
            .edge
            .curl(HOST, "/upload", &["--data-binary", &data])
            .await;
        assert_eq!(r.status, 200, "POST {i}: {} {}", r.body, r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["len"], body.len(), "POST {i}");
        assert_eq!(v["sha256"], want.as_str(), "POST {i}");
    }

    for i in 0..4 {
        let tls = support::edge_tls_stream(&s.edge, HOST, &[b"http/1.1"]).await;
        let req = format!("wss://{HOST}/ws").into_client_request().unwrap();
        let (mut ws, resp) = tokio_tungstenite::client_async(req, tls).await.unwrap();
        assert_eq!(resp.status(), 101, "upgrade {i}");
        ws.send(Message::text(format!("ping {i}"))).await.unwrap();
        let m = ws.next().await.unwrap().unwrap();
        assert_eq!(m.into_text().unwrap().as_str(), format!("ping {i}"));
    }
    // The dead origin was really tried (and failed over from).
    s.connector
        .proc
        .wait_log(&format!("connecting to 127.0.0.1:{dead} failed"))
        .await;
}
