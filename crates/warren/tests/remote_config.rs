//! Remote-managed tunnels: a connector started with only its token runs
//! the ingress config stored at the edge (`warren tunnel ingress set`),
//! and every change reaches the running replicas without dropping an open
//! WebSocket; a broken config is refused at the edge with the connector's
//! own sentence; a connector with a local `--config` keeps it and says so.

mod support;

use futures_util::{SinkExt, StreamExt};
use support::{origins, write_config, Connector, Edge};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_only_connectors_run_the_stored_config_and_follow_its_changes() {
    let dir = support::temp_dir();
    let edge = Edge::start(dir.path()).await;
    let token = edge
        .tunnel("office", &["app.example.com", "new.example.com"])
        .await;
    let origin = origins::http_echo().await;

    // Refused at the edge, with the sentence `tunnel run` would give.
    let bad = write_config(
        dir.path(),
        "bad.yml",
        &format!("ingress:\n  - hostname: app.example.com\n    service: http://{origin}\n"),
    );
    let bad = bad.display().to_string();
    let o = edge
        .cli(&["tunnel", "ingress", "set", "office", "-f", &bad])
        .await;
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(
        o.stderr.contains(
            "the config was not stored: ingress rule 1 is the last rule but it has a hostname"
        ),
        "{}",
        o.stderr
    );
    let o = edge.cli(&["tunnel", "ingress", "get", "office"]).await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("has no stored ingress config"),
        "{}",
        o.stderr
    );

    // Two replicas with nothing but the token: no rules yet, and the
    // client is told why.
    let _a = Connector::start(&edge, &token, &[], dir.path());
    let _b = Connector::start(&edge, &token, &[], dir.path());
    edge.wait_connections("office", 4).await;
    let r = edge.curl("app.example.com", "/", &[]).await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("no ingress rules yet"), "{}", r.body);

    let v1 = write_config(
        dir.path(),
        "v1.yml",
        &format!("ingress:\n  - hostname: app.example.com\n    service: http://{origin}\n  - service: http_status:404\n"),
    );
    let v1 = v1.display().to_string();
    let o = edge
        .cli(&["tunnel", "ingress", "set", "office", "-f", &v1])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("Stored version 1"), "{}", o.stdout);
    assert!(
        o.stdout.contains("4 of 4 connections run it"),
        "{}",
        o.stdout
    );
    let r = edge.curl("app.example.com", "/x", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(edge.curl("new.example.com", "/", &[]).await.status, 404);

    // A WebSocket open across the change.
    let tls = support::edge_tls_stream(&edge, "app.example.com", &[b"http/1.1"]).await;
    let req = "wss://app.example.com/ws".into_client_request().unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    ws.send(Message::text("before")).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert_eq!(echoed.as_str(), "before");

    let v2 = write_config(
        dir.path(),
        "v2.yml",
        &format!("ingress:\n  - hostname: app.example.com\n    service: http://{origin}\n  - hostname: new.example.com\n    service: hello_world\n  - service: http_status:404\n"),
    );
    let v2 = v2.display().to_string();
    let o = edge
        .cli(&["tunnel", "ingress", "set", "office", "-f", &v2])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("Stored version 2"), "{}", o.stdout);
    assert!(
        o.stdout.contains("4 of 4 connections run it"),
        "{}",
        o.stdout
    );
    let r = edge.curl("new.example.com", "/", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Hello from Warren"), "{}", r.body);
    ws.send(Message::text("after")).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert_eq!(
        echoed.as_str(),
        "after",
        "the WebSocket outlived the change"
    );

    // The edge says which version each connector runs.
    let info = support::tunnel_json(&edge, "office").await.unwrap();
    for c in info["connectors"].as_array().unwrap() {
        assert_eq!(c["config"]["version"], 2, "{info}");
        assert_eq!(c["config"]["applied"], true, "{info}");
    }
    let text = edge.cli(&["tunnel", "info", "office"]).await.stdout;
    assert!(
        text.contains("STORED CONFIG") && text.contains("v2"),
        "{text}"
    );
    let o = edge.cli(&["tunnel", "ingress", "get", "office"]).await;
    assert_eq!(o.stdout, std::fs::read_to_string(&v2).unwrap());

    // A replica started later gets the stored config when it registers.
    let _c = Connector::start(&edge, &token, &[], dir.path());
    edge.wait_connections("office", 6).await;
    support::eventually(
        "the late replica to run v2",
        std::time::Duration::from_secs(10),
        || async {
            let info = support::tunnel_json(&edge, "office").await?;
            let all = info["connectors"].as_array()?;
            (all.len() == 3 && all.iter().all(|c| c["config"]["version"] == 2)).then_some(())
        },
    )
    .await;

    // A local --config wins, and the connector says the stored one is
    // ignored.
    let local = Connector::start(&edge, &token, &["--config", &v1], dir.path());
    edge.wait_connections("office", 8).await;
    let o = edge
        .cli(&["tunnel", "ingress", "set", "office", "-f", &v2])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("6 of 8 connections run it"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("runs its local --config"), "{}", o.stdout);
    local
        .proc
        .wait_log("it is ignored because this connector was given --config or --url")
        .await;
}
