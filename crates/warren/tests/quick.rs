//! Quick tunnels: `warren tunnel --url URL --edge E` against an edge
//! started with `--quick-tunnels` gets a public name and serves it with no
//! token; once its connector is gone for the idle time (shortened here) the
//! tunnel and its route are removed; one address gets 10 a minute; an edge
//! without the flag refuses with a sentence.

mod support;

use std::time::Duration;

use support::{eventually, origins, Edge, Proc};
use tokio::io::{AsyncBufReadExt, BufReader};

/// `warren tunnel --url` against `edge`.
fn quick_tunnel(edge: &Edge, url: &str, log_dir: &std::path::Path) -> Proc {
    let https = edge.https.to_string();
    let ca = edge.ca.display().to_string();
    Proc::spawn(
        "quick",
        &[
            "tunnel",
            "--url",
            url,
            "--edge",
            &https,
            "--edge-hostname",
            "example.com",
            "--ca-cert",
            &ca,
        ],
        &[],
        log_dir,
    )
}

/// `POST /.warren/quick-tunnel` with curl: (status, body).
async fn ask(edge: &Edge) -> (u16, String) {
    let r = edge
        .curl("example.com", "/.warren/quick-tunnel", &["-X", "POST"])
        .await;
    (r.status, r.body)
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_tunnels_serve_a_public_name_and_go_away_when_idle() {
    let dir = support::temp_dir();
    let edge = Edge::start_with_env(
        dir.path(),
        &[
            ("WARREN_QUICK_TUNNELS", "true"),
            ("WARREN_QUICK_TUNNEL_IDLE", "2"),
        ],
    )
    .await;
    let origin = origins::http_echo().await;

    let mut quick = quick_tunnel(&edge, &format!("http://{origin}"), dir.path());
    let stdout = quick.child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.trim().strip_prefix("https://") {
                return url.to_owned();
            }
        }
        panic!("no URL in the output; log:\n{}", quick.logs());
    })
    .await
    .expect("the quick tunnel's URL in time");
    let host = url.split(':').next().unwrap().to_owned();
    assert!(host.ends_with(".example.com"), "{url}");

    // Public: reachable with no credential once its connector is up.
    let r = eventually(
        "the quick tunnel to serve",
        Duration::from_secs(30),
        || async {
            let r = edge.curl(&host, "/hello", &[]).await;
            (r.status == 200).then_some(r)
        },
    )
    .await;
    assert!(r.body.contains("\"path\":\"/hello\""), "{}", r.body);
    let list = edge.cli(&["tunnel", "list"]).await.stdout;
    assert!(list.contains("quick-"), "{list}");

    // Ten a minute from one address: the CLI's was the first.
    for i in 2..=10 {
        let (status, body) = ask(&edge).await;
        assert_eq!(status, 201, "request {i}: {body}");
    }
    let (status, body) = ask(&edge).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("wait a minute"), "{body}");

    // Gone once its connector has been away for the idle time; so are the
    // nine that never connected.
    quick.kill().await;
    eventually(
        "the idle quick tunnels to be removed",
        Duration::from_secs(30),
        || async {
            let list = edge.cli(&["tunnel", "list"]).await.stdout;
            (!list.contains("quick-")).then_some(())
        },
    )
    .await;
    let r = edge.curl(&host, "/hello", &[]).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(edge
        .proc
        .logs()
        .contains("removed a quick tunnel that had no connection"));
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_without_quick_tunnels_says_so() {
    let dir = support::temp_dir();
    let edge = Edge::start(dir.path()).await;
    let mut quick = quick_tunnel(&edge, "hello_world", dir.path());
    assert!(!quick.wait_exit().await.success());
    let log = quick.logs();
    assert!(
        log.contains("the edge made no quick tunnel: this edge does not make quick tunnels"),
        "{log}"
    );
    let (status, _) = ask(&edge).await;
    assert_eq!(status, 404);
}
