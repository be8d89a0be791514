//! A real PostgreSQL through `access tcp`: psql queries and pgbench.

mod support;

use support::postgres::Postgres;
use support::{AccessTcp, Stack};
use tokio::process::Command;

async fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let o = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        Command::new(cmd)
            .args(args)
            .env("PGCONNECT_TIMEOUT", "10")
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{cmd} timed out"))
    .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_and_pgbench_through_access_tcp() {
    let Some(pg) = tokio::task::spawn_blocking(Postgres::start).await.unwrap() else {
        return;
    };
    let s = Stack::start(
        &["db.example.com"],
        &format!(
            "  - hostname: db.example.com\n    service: tcp://127.0.0.1:{}\n",
            pg.port
        ),
    )
    .await;
    let access = AccessTcp::start(&s.edge, "db.example.com", s.path()).await;
    let port = access.addr.port().to_string();
    let conn = format!("host=127.0.0.1 port={port} user=app dbname=app");

    let (ok, out) = run(
        "psql",
        &[
            &conn,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            "CREATE TABLE t(x int); INSERT INTO t SELECT generate_series(1,1000); SELECT sum(x) FROM t;",
        ],
    )
    .await;
    assert!(ok, "psql through the tunnel failed: {out}");
    assert!(out.contains("500500"), "{out}");

    let (ok, out) = run(
        "pgbench",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "app",
            "-i",
            "-s",
            "1",
            "app",
        ],
    )
    .await;
    assert!(ok, "pgbench -i through the tunnel failed: {out}");

    let (ok, out) = run(
        "pgbench",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "app",
            "-c",
            "4",
            "-j",
            "2",
            "-t",
            "200",
            "app",
        ],
    )
    .await;
    assert!(ok, "pgbench through the tunnel failed: {out}");
    assert!(
        out.contains("number of transactions actually processed: 800/800"),
        "{out}"
    );
    assert!(
        !out.contains("number of failed transactions: ")
            || out.contains("number of failed transactions: 0 "),
        "{out}"
    );
    drop(access);
    drop(s);
    drop(pg);
}
