//! High availability end to end: replicas sharing a tunnel under load
//! (SIGKILL, rolling SIGTERM restart), failover between tunnels, and
//! tunnel status from the connections as `tunnel info` shows it. A
//! silently dead path and its re-dial are covered by the in-process tier
//! on a virtual clock (`tests/inproc.rs`).

mod support;

use std::time::Duration;

use support::{eventually, origins, Connector, Edge, LoadResult};

/// Status and per-connector connection counts of tunnel `office`.
async fn status(edge: &Edge) -> Option<(String, Vec<u64>)> {
    status_of(edge, "office").await
}

async fn status_of(edge: &Edge, tunnel: &str) -> Option<(String, Vec<u64>)> {
    let v = support::tunnel_json(edge, tunnel).await?;
    let ups = v["connectors"]
        .as_array()?
        .iter()
        .map(|c| c["connections_up"].as_u64().unwrap_or(0))
        .collect();
    Some((v["status"].as_str()?.to_owned(), ups))
}

async fn wait_status(edge: &Edge, want: &str, deadline: Duration) -> Vec<u64> {
    wait_status_of(edge, "office", want, deadline).await
}

async fn wait_status_of(edge: &Edge, tunnel: &str, want: &str, deadline: Duration) -> Vec<u64> {
    eventually(
        &format!("tunnel {tunnel} status {want}"),
        deadline,
        || async {
            let (s, ups) = status_of(edge, tunnel).await?;
            (s == want).then_some(ups)
        },
    )
    .await
}

/// Number of connectors of `office` with all their connections up.
async fn wait_connectors(edge: &Edge, n: usize) {
    eventually(
        &format!("{n} fully connected connectors"),
        support::DEADLINE,
        || async {
            let v = support::tunnel_json(edge, "office").await?;
            let full = v["connectors"]
                .as_array()?
                .iter()
                .filter(|c| {
                    !c["draining"].as_bool().unwrap_or(true)
                        && c["connections_up"] == c["connections_configured"]
                })
                .count();
            (full == n).then_some(())
        },
    )
    .await
}

fn failures(results: &[LoadResult]) -> Vec<&LoadResult> {
    results.iter().filter(|r| r.status != 200).collect()
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
/// What `tunnel info` shows as connections come and go. (A silent path
/// being declared dead, and the re-dial, are protocol timing: the
/// in-process tier covers them on a virtual clock, `tests/inproc`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_connections() {
    let dir = support::temp_dir();
    let edge = Edge::start(dir.path()).await;
    let token = edge.tunnel("office", &["app.example.com"]).await;
    let origin = origins::http_echo().await;
    assert_eq!(status(&edge).await.unwrap().0, "inactive");

    let url = format!("http://{origin}");
    let mut c = Connector::start(&edge, &token, &["--url", &url], dir.path());
    let ups = wait_status(&edge, "active", support::DEADLINE).await;
    assert_eq!(ups, vec![2]);
    let v = support::tunnel_json(&edge, "office").await.unwrap();
    assert!(v["up_since"].as_u64().is_some(), "{v}");
    let info = edge.cli(&["tunnel", "info", "office"]).await;
    assert!(info.stdout.contains("2/2"), "{}", info.stdout);
    assert!(info.stdout.contains("127.0.0.1"), "{}", info.stdout);
    assert_eq!(edge.curl("app.example.com", "/", &[]).await.status, 200);

    // Gone entirely: inactive, no uptime.
    c.proc.signal("TERM");
    assert!(c.proc.wait_exit().await.success());
    wait_status(&edge, "inactive", support::DEADLINE).await;
    let v = support::tunnel_json(&edge, "office").await.unwrap();
    assert!(v["up_since"].is_null(), "{v}");

    // And back.
    let _c = Connector::start(&edge, &token, &["--url", &url], dir.path());
    wait_status(&edge, "active", support::DEADLINE).await;
}

/// Two replicas of one tunnel under a bounded GET load.
struct Replicas {
    dir: tempfile::TempDir,
    edge: Edge,
    token: String,
    url: String,
}

impl Replicas {
    async fn start() -> (Replicas, Connector, Connector) {
        let dir = support::temp_dir();
        let edge = Edge::start(dir.path()).await;
        let token = edge.tunnel("office", &["app.example.com"]).await;
        let origin = origins::http_echo().await;
        let url = format!("http://{origin}");
        let r = Replicas {
            dir,
            edge,
            token,
            url,
        };
        let a = r.replica();
        let b = r.replica();
        wait_connectors(&r.edge, 2).await;
        (r, a, b)
    }

    fn replica(&self) -> Connector {
        Connector::start(
            &self.edge,
            &self.token,
            &["--url", &self.url],
            self.dir.path(),
        )
    }
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_a_replica_costs_only_what_was_on_it() {
    let (r, mut a, _b) = Replicas::start().await;
    let load = support::load(&r.edge, "app.example.com", "/", 4, 2000);
    load.progress(40).await;
    a.proc.kill().await;
    // The edge notices when the killed replica's connections time out.
    wait_connectors(&r.edge, 1).await;
    eventually("only one connector left", support::DEADLINE, || async {
        let v = support::tunnel_json(&r.edge, "office").await?;
        (v["connectors"].as_array()?.len() == 1).then_some(())
    })
    .await;
    let noticed = tokio::time::Instant::now();
    // Keep the load on for a while after.
    load.progress(40).await;
    let results = load.finish().await;
    let failed = failures(&results);
    let after: Vec<_> = failed.iter().filter(|r| r.started > noticed).collect();
    eprintln!(
        "{} requests, {} failed (all started before the edge noticed): {:?}",
        results.len(),
        failed.len(),
        failed.iter().map(|r| &r.detail).collect::<Vec<_>>()
    );
    assert!(
        results.iter().filter(|r| r.started > noticed).count() > 0,
        "no request ran after the edge noticed"
    );
    assert!(
        after.is_empty(),
        "requests started after the edge noticed failed: {:?}",
        after.iter().map(|r| &r.detail).collect::<Vec<_>>()
    );
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_load_loses_no_request() {
    let (r, mut a, mut b) = Replicas::start().await;
    let load = support::load(&r.edge, "app.example.com", "/", 4, 5000);
    for old in [&mut a, &mut b] {
        load.progress(30).await;
        old.proc.signal("TERM");
        assert!(old.proc.wait_exit().await.success());
        *old = r.replica();
        wait_connectors(&r.edge, 2).await;
    }
    load.progress(30).await;
    let results = load.finish().await;
    let failed = failures(&results);
    eprintln!("{} requests during the rolling restart", results.len());
    assert!(results.len() >= 90, "too little load: {}", results.len());
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        results.len(),
        failed.iter().map(|r| &r.detail).collect::<Vec<_>>()
    );
}

/// Statuses of `n` sequential GETs of `host`.
async fn statuses(edge: &Edge, host: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(edge.curl(host, "/", &[]).await.status);
    }
    out
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostname_fails_over_between_tunnels_and_comes_back() {
    let dir = support::temp_dir();
    let edge = Edge::start(dir.path()).await;
    let primary = edge.tunnel("primary", &[]).await;
    let backup = edge.tunnel("backup", &[]).await;
    let o = edge
        .cli(&[
            "tunnel",
            "route",
            "lb",
            "app.example.com",
            "primary",
            "backup",
            "--public",
        ])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        "Routed app.example.com to tunnels primary, backup (failover); it is public\n"
    );
    let list = edge.cli(&["tunnel", "route", "list"]).await;
    assert!(
        list.stdout.contains("failover: primary, backup"),
        "{}",
        list.stdout
    );
    let info = support::tunnel_json(&edge, "backup").await.unwrap();
    assert_eq!(info["routes"], serde_json::json!(["app.example.com"]));

    // Each tunnel answers with its own status, so the test sees which
    // one served a request.
    let cfg = |name: &str, status: u16| {
        let p = support::write_config(
            dir.path(),
            &format!("{name}.yml"),
            &format!("ingress:\n  - service: http_status:{status}\n"),
        );
        p.display().to_string()
    };
    let (p_cfg, b_cfg) = (cfg("primary", 201), cfg("backup", 202));
    let _b = Connector::start(&edge, &backup, &["--config", &b_cfg], dir.path());
    wait_status_of(&edge, "backup", "active", support::DEADLINE).await;
    // Only the backup is up: it serves.
    assert_eq!(statuses(&edge, "app.example.com", 5).await, [202; 5]);

    let mut p = Connector::start(&edge, &primary, &["--config", &p_cfg], dir.path());
    wait_status_of(&edge, "primary", "active", support::DEADLINE).await;
    assert_eq!(statuses(&edge, "app.example.com", 10).await, [201; 10]);

    // Primary stopped: everything goes to the backup.
    p.proc.signal("TERM");
    assert!(p.proc.wait_exit().await.success());
    wait_status_of(&edge, "primary", "inactive", support::DEADLINE).await;
    assert_eq!(statuses(&edge, "app.example.com", 10).await, [202; 10]);

    // Primary back: traffic returns.
    let _p = Connector::start(&edge, &primary, &["--config", &p_cfg], dir.path());
    wait_status_of(&edge, "primary", "active", support::DEADLINE).await;
    assert_eq!(statuses(&edge, "app.example.com", 10).await, [201; 10]);

    // Weighted: both tunnels share a second hostname, 3 to 1.
    let o = edge
        .cli(&[
            "tunnel",
            "route",
            "lb",
            "w.example.com",
            "primary",
            "backup",
            "--steering",
            "weighted",
            "--weights",
            "3,1",
            "--public",
        ])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("primary (3), backup (1)"), "{}", o.stdout);
    let got = statuses(&edge, "w.example.com", 40).await;
    let to_primary = got.iter().filter(|s| **s == 201).count();
    let to_backup = got.iter().filter(|s| **s == 202).count();
    eprintln!("weighted 3:1 over 40 requests: {to_primary} to primary, {to_backup} to backup");
    assert_eq!(to_primary + to_backup, 40, "{got:?}");
    assert!(to_backup > 0 && to_primary >= 20, "{got:?}");

    // A bad pool is a sentence.
    let o = edge
        .cli(&[
            "tunnel",
            "route",
            "lb",
            "x.example.com",
            "primary",
            "primary",
        ])
        .await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr
            .contains("a tunnel appears twice in the route; list each tunnel once"),
        "{}",
        o.stderr
    );
}
