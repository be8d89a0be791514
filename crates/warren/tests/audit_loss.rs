//! No connection goes unrecorded: while the audit log cannot be written
//! (another process holds the store's write lock), entries wait and are
//! written once it can, and new connections are refused rather than served
//! unaudited; on SIGTERM, connections still open record why they ended
//! before the edge exits. Every connection made has its entry, and the
//! chain verifies.

mod support;

use std::cell::Cell;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use support::deps::{require, Dep};
use support::{eventually, origins, temp_dir, write_config, AccessTcp, Connector, Edge};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const HOST: &str = "echo.example.com";

/// An edge with tunnel `office` routing [`HOST`] to a TCP echo, its
/// connector, and an `access tcp` for it.
async fn start(dir: &std::path::Path) -> (Edge, Connector, AccessTcp) {
    let echo = origins::tcp_echo().await;
    let edge = Edge::start(dir).await;
    let token = edge.tunnel("office", &[HOST]).await;
    let cfg = write_config(
        dir,
        "config.yml",
        &format!("ingress:\n  - hostname: {HOST}\n    service: tcp://{echo}\n  - service: http_status:404\n"),
    );
    let connector = Connector::start(
        &edge,
        &token,
        &["--config", &cfg.display().to_string()],
        dir,
    );
    edge.wait_connections("office", 2).await;
    let access = AccessTcp::start(&edge, HOST, dir).await;
    (edge, connector, access)
}

/// One whole connection through `access`: 100 bytes there and back.
/// Whether it was served (a refused one is closed with nothing sent back).
async fn echo_once(access: SocketAddr) -> bool {
    let Ok(mut c) = TcpStream::connect(access).await else {
        return false;
    };
    if c.write_all(&[7u8; 100]).await.is_err() || c.shutdown().await.is_err() {
        return false;
    }
    let mut back = Vec::new();
    let read = tokio::time::timeout(support::DEADLINE, c.read_to_end(&mut back)).await;
    matches!(read, Ok(Ok(_))) && back.len() == 105
}

/// Rows of the audit log with `kind = 'connection'`, read from the
/// SQLite file itself.
fn connection_entries(db: &std::path::Path) -> usize {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(*) FROM audit_log WHERE kind = 'connection'\").fetchone()[0])",
        ])
        .arg(db)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Another process holding the store's write lock until its stdin closes.
async fn hold_write_lock(db: &std::path::Path) -> tokio::process::Child {
    let mut lock = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()",
        ])
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(lock.stdout.take().unwrap())
        .read_line(&mut line)
        .await
        .unwrap();
    assert_eq!(line.trim(), "locked");
    lock
}

#[cfg_attr(
    warren_missing_python3,
    ignore = "needs python3; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_store_holds_entries_and_refuses_new_connections_but_loses_none() {
    require(Dep::Python3);
    let dir = temp_dir();
    let (edge, _connector, access) = start(dir.path()).await;
    let served = Cell::new(0usize);
    assert!(echo_once(access.addr).await, "a connection before the lock");
    served.set(1);

    // Another process takes the store's write lock and keeps it.
    let db = edge.dir.join("warren.db");
    let mut lock = hold_write_lock(&db).await;

    // Connections go on until the writer finds it cannot write; from then
    // on new ones are refused. (A bounded loop: the writer notices within
    // the store's busy timeout.)
    eventually(
        "a connection refused while the log cannot be written",
        support::DEADLINE,
        || async {
            if echo_once(access.addr).await {
                served.set(served.get() + 1);
                None
            } else {
                Some(())
            }
        },
    )
    .await;
    assert!(
        served.get() >= 2,
        "at least one connection was served during the lock"
    );
    edge.proc.wait_log("cannot write the audit log").await;
    access
        .proc
        .wait_log("The edge cannot write its audit log right now")
        .await;

    // The lock goes away: the held entries are written and connections
    // are let in again.
    drop(lock.stdin.take());
    lock.wait().await.unwrap();
    eventually("connections let in again", support::DEADLINE, || async {
        echo_once(access.addr).await.then_some(())
    })
    .await;
    served.set(served.get() + 1);
    edge.proc
        .wait_log("the audit log can be written again")
        .await;

    eventually(
        "every served connection has its entry",
        support::DEADLINE,
        || async { (connection_entries(&db) == served.get()).then_some(()) },
    )
    .await;
    let ok = edge.cli(&["audit", "verify"]).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stdout.starts_with("The audit log is intact"),
        "{}",
        ok.stdout
    );
}

#[cfg_attr(
    warren_missing_python3,
    ignore = "needs python3; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_writes_every_entry_before_the_edge_exits() {
    require(Dep::Python3);
    let dir = temp_dir();
    let (mut edge, _connector, access) = start(dir.path()).await;
    const CLOSED: usize = 4;
    const OPEN: usize = 16;
    for _ in 0..CLOSED {
        assert!(echo_once(access.addr).await);
    }
    // Connections still open when the edge is told to stop, each proven
    // through (its first bytes came back).
    let mut open = Vec::new();
    for _ in 0..OPEN {
        let mut c = TcpStream::connect(access.addr).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        tokio::time::timeout(support::DEADLINE, c.read_exact(&mut back))
            .await
            .expect("the echo answers")
            .unwrap();
        open.push(c);
    }
    // The store is busy when the edge is told to stop (another process
    // holds its write lock for a moment): the entries of the connections
    // the stop cuts must still be written before the edge exits.
    let db = edge.dir.join("warren.db");
    let mut lock = hold_write_lock(&db).await;
    edge.proc.signal("TERM");
    edge.proc.wait_log("edge shutting down").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(lock.stdin.take());
    lock.wait().await.unwrap();
    let status = edge.proc.wait_exit().await;
    assert!(status.success(), "{status:?}\n{}", edge.proc.logs());
    assert!(
        edge.proc
            .logs()
            .contains("the audit log is written up to date"),
        "{}",
        edge.proc.logs()
    );
    drop(open);

    assert_eq!(connection_entries(&db), CLOSED + OPEN);
    // The chain is intact, checked by an edge started again on the store.
    drop(edge);
    let again = Edge::start(dir.path()).await;
    let ok = again.cli(&["audit", "verify"]).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(
        ok.stdout,
        format!(
            "The audit log is intact: {} entries checked.\n",
            CLOSED + OPEN
        )
    );
}
