//! Processes coming and going: connector and edge restarts, bad tokens,
//! SIGHUP reloads, graceful drain.

mod support;

use futures_util::{SinkExt, StreamExt};
use support::{origins, write_config, Connector, Edge, Stack};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_and_edge_restarts_recover_by_themselves() {
    let dir = support::temp_dir();
    // On leased ports, so that nothing takes them while the edge is down.
    let edge = Edge::start_restartable(dir.path()).await;
    let token = edge.tunnel("office", &["app.example.com"]).await;
    let mut c = Connector::start(&edge, &token, &["--url", "hello_world"], dir.path());
    edge.wait_connections("office", 2).await;
    assert_eq!(edge.curl("app.example.com", "/", &[]).await.status, 200);

    // SIGKILL the connector: once the edge notices (idle timeout, no FIN
    // on UDP), the tunnel has no connector; a new one serves again.
    c.proc.signal("KILL");
    c.proc.wait_exit().await;
    support::eventually(
        "the edge to notice the dead connector",
        support::DEADLINE,
        || async {
            let r = edge.curl("app.example.com", "/", &[]).await;
            (r.status == 502 && r.body.contains("has no connected connector")).then_some(())
        },
    )
    .await;
    let _c2 = Connector::start(&edge, &token, &["--url", "hello_world"], dir.path());
    edge.wait_connections("office", 2).await;
    assert_eq!(edge.curl("app.example.com", "/", &[]).await.status, 200);

    // Restart the edge on the same addresses: the connector re-dials by
    // itself; tunnel, route and token survive.
    let (tunnel, https) = (edge.tunnel, edge.https);
    let mut edge = edge;
    edge.proc.signal("TERM");
    assert!(edge.proc.wait_exit().await.success());
    let edge = edge.start_again().await;
    assert_eq!((edge.tunnel, edge.https), (tunnel, https));
    edge.wait_connections("office", 2).await;
    let r = edge.curl("app.example.com", "/", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(edge.token_of("office").await, token);
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_stop_the_connector_with_a_sentence() {
    let dir = support::temp_dir();
    let edge = Edge::start(dir.path()).await;
    let good = edge.tunnel("good", &["good.example.com"]).await;
    let _ok = Connector::start(&edge, &good, &["--url", "hello_world"], dir.path());
    edge.wait_connections("good", 2).await;

    // Truncated token: refused before dialling.
    let mut c = Connector::start(
        &edge,
        &good[..good.len() / 2],
        &["--url", "hello_world"],
        dir.path(),
    );
    assert!(!c.proc.wait_exit().await.success());
    let log = c.proc.logs();
    assert!(log.contains("the tunnel token is"), "{log}");
    assert!(log.contains("warren tunnel token NAME"), "{log}");

    // Garbage token.
    let mut c = Connector::start(&edge, "not-a-token", &["--url", "hello_world"], dir.path());
    assert!(!c.proc.wait_exit().await.success());
    assert!(
        c.proc.logs().contains("not valid base64"),
        "{}",
        c.proc.logs()
    );

    // Wrong secret: an old token after a rotation without a grace window
    // is refused by the edge.
    let old = edge.tunnel("other", &["other.example.com"]).await;
    let o = edge
        .cli(&["tunnel", "rotate-secret", "other", "--grace", "0s"])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let mut c = Connector::start(&edge, &old, &["--url", "hello_world"], dir.path());
    assert!(!c.proc.wait_exit().await.success());
    let log = c.proc.logs();
    assert!(log.contains("does not match tunnel other"), "{log}");
    assert!(edge.proc.logs().contains("refused connector registration"));

    // Deleted tunnel.
    let gone = edge.tunnel("gone", &[]).await;
    assert_eq!(edge.cli(&["tunnel", "delete", "gone"]).await.code, 0);
    let mut c = Connector::start(&edge, &gone, &["--url", "hello_world"], dir.path());
    assert!(!c.proc.wait_exit().await.success());
    assert!(
        c.proc.logs().contains("has no tunnel with the id"),
        "{}",
        c.proc.logs()
    );

    // Through all of it the other tunnel kept serving.
    assert_eq!(edge.connections("good").await, 2);
    assert_eq!(edge.curl("good.example.com", "/", &[]).await.status, 200);
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_the_old_secret_for_its_grace_window() {
    let dir = support::temp_dir();
    let edge = Edge::start(dir.path()).await;
    let old = edge.tunnel("office", &["office.example.com"]).await;
    let mut first = Connector::start(&edge, &old, &["--url", "hello_world"], dir.path());
    edge.wait_connections("office", 2).await;

    let o = edge.cli(&["tunnel", "rotate-secret", "office"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let new = o.stdout.trim().to_owned();
    assert_ne!(new, old);

    // Within the window a replica still on the old token registers, and
    // `tunnel info` says which connectors still use it.
    let mut second = Connector::start(&edge, &old, &["--url", "hello_world"], dir.path());
    edge.wait_connections("office", 4).await;
    let current = Connector::start(&edge, &new, &["--url", "hello_world"], dir.path());
    edge.wait_connections("office", 6).await;
    let info = support::tunnel_json(&edge, "office").await.unwrap();
    assert!(
        info["previous_secret_valid_until"].as_i64().unwrap() > 0,
        "{info}"
    );
    let on_old: Vec<bool> = info["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["previous_secret"].as_bool().unwrap())
        .collect();
    assert_eq!(on_old.iter().filter(|o| **o).count(), 2, "{info}");
    assert_eq!(on_old.len(), 3, "{info}");
    let text = edge.cli(&["tunnel", "info", "office"]).await.stdout;
    assert!(
        text.contains("Previous secret:    accepted until"),
        "{text}"
    );
    assert!(text.contains("previous secret"), "{text}");

    // Revoked: the replicas on the old token are cut off and told why;
    // the one on the new token serves on.
    let o = edge
        .cli(&["tunnel", "rotate-secret", "office", "--revoke-old"])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("closed 4 connection(s)"), "{}", o.stdout);
    for c in [&mut first, &mut second] {
        assert!(!c.proc.wait_exit().await.success());
        let log = c.proc.logs();
        assert!(log.contains("does not match tunnel office"), "{log}");
    }
    assert_eq!(edge.connections("office").await, 2);
    assert_eq!(edge.curl("office.example.com", "/", &[]).await.status, 200);
    let info = support::tunnel_json(&edge, "office").await.unwrap();
    assert!(info.get("previous_secret_valid_until").is_none(), "{info}");
    drop(current);
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_without_dropping_open_streams() {
    let origin = origins::http_echo().await;
    let s = Stack::start(
        &["app.example.com", "new.example.com"],
        &format!("  - hostname: app.example.com\n    service: http://{origin}\n"),
    )
    .await;
    assert_eq!(s.edge.curl("new.example.com", "/", &[]).await.status, 404);

    // An open WebSocket through the tunnel.
    let tls = support::edge_tls_stream(&s.edge, "app.example.com", &[b"http/1.1"]).await;
    let req = "wss://app.example.com/ws".into_client_request().unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(
        ws.next()
            .await
            .unwrap()
            .unwrap()
            .into_text()
            .unwrap()
            .as_str(),
        "before"
    );

    // New config with a new hostname, then SIGHUP.
    write_config(
        s.path(),
        "config.yml",
        &format!(
            "ingress:\n  - hostname: app.example.com\n    service: http://{origin}\n  - hostname: new.example.com\n    service: hello_world\n  - service: http_status:404\n"
        ),
    );
    s.connector.proc.signal("HUP");
    s.connector
        .proc
        .wait_log("reloaded the ingress config")
        .await;
    let r = s.edge.curl("new.example.com", "/", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Hello from Warren"));
    ws.send(Message::text("after")).await.unwrap();
    assert_eq!(
        ws.next()
            .await
            .unwrap()
            .unwrap()
            .into_text()
            .unwrap()
            .as_str(),
        "after"
    );

    // A broken config is rejected and the old one stays.
    write_config(
        s.path(),
        "config.yml",
        "ingress:\n  - hostname: x.example.com\n    service: http://localhost:1\n",
    );
    s.connector.proc.signal("HUP");
    let log = s.connector.proc.wait_log("keeping the previous one").await;
    assert!(log.contains("ingress rule 1 is the last rule"), "{log}");
    assert_eq!(s.edge.curl("new.example.com", "/", &[]).await.status, 200);
    ws.send(Message::text("still")).await.unwrap();
    assert_eq!(
        ws.next()
            .await
            .unwrap()
            .unwrap()
            .into_text()
            .unwrap()
            .as_str(),
        "still"
    );
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let origin = origins::http_echo().await;
    let mut s = Stack::start(
        &["app.example.com"],
        &format!("  - hostname: app.example.com\n    service: http://{origin}\n"),
    )
    .await;
    let target = s.edge.https_target();
    // A request that takes 2 s at the origin.
    let slow = tokio::spawn(async move { target.curl("app.example.com", "/slow", &[]).await });
    // Wait until the request is in flight at the edge, then SIGTERM.
    support::eventually(
        "the slow request to be in flight",
        support::DEADLINE,
        || async {
            let o = s
                .edge
                .cli(&["tunnel", "info", "office", "--output", "json"])
                .await;
            let v: serde_json::Value = serde_json::from_str(&o.stdout).ok()?;
            let busy = v["connections"]
                .as_array()?
                .iter()
                .any(|c| c["outstanding_streams"].as_u64() > Some(0));
            busy.then_some(())
        },
    )
    .await;
    s.connector.proc.signal("TERM");
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200, "{} {}", r.body, r.stderr);
    assert_eq!(r.body, "slow done");
    assert!(s.connector.proc.wait_exit().await.success());
    assert!(s.connector.proc.logs().contains("draining"));
}
