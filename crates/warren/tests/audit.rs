//! The audit log end to end: a connection through `access tcp` is recorded
//! with its bytes, `warren audit list` shows it, `warren audit verify`
//! passes, and an entry changed behind the edge's back is detected.

mod support;

use support::deps::{require, Dep};
use support::{eventually, origins, AccessTcp, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[cfg_attr(
    warren_missing_python3,
    ignore = "needs python3; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_audited_and_tampering_is_detected() {
    require(Dep::Python3);
    let echo = origins::tcp_echo().await;
    let s = Stack::start(
        &["echo.example.com"],
        &format!("  - hostname: echo.example.com\n    service: tcp://{echo}\n"),
    )
    .await;
    let access = AccessTcp::start(&s.edge, "echo.example.com", s.path()).await;
    for _ in 0..2 {
        let mut c = tokio::net::TcpStream::connect(access.addr).await.unwrap();
        c.write_all(&[7u8; 1000]).await.unwrap();
        c.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        // The echo, then the origin's marker after it saw our FIN.
        assert_eq!(back.len(), 1005);
    }

    let entries: Vec<serde_json::Value> =
        eventually("two audit entries", support::DEADLINE, || async {
            let o = s.edge.cli(&["audit", "list", "--output", "json"]).await;
            let v: Vec<serde_json::Value> = serde_json::from_str(&o.stdout).ok()?;
            (v.len() >= 2).then_some(v)
        })
        .await;
    let e = &entries[0];
    assert_eq!(e["hostname"], "echo.example.com", "{e}");
    assert_eq!(e["tunnel"], "office", "{e}");
    assert_eq!(e["kind"], "connection", "{e}");
    assert_eq!(e["bytes_up"], 1000, "{e}");
    assert_eq!(e["bytes_down"], 1005, "{e}");
    assert_eq!(e["end_reason"], "closed", "{e}");
    assert!(
        e["source"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{e}"
    );

    let text = s.edge.cli(&["audit", "list", "--since", "1h"]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("echo.example.com"), "{}", text.stdout);
    assert!(text.stdout.contains("1000/1005"), "{}", text.stdout);
    let none = s.edge.cli(&["audit", "list", "--decision", "deny"]).await;
    assert_eq!(none.stdout, "No audit entries match.\n");

    let ok = s.edge.cli(&["audit", "verify"]).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(ok.stdout, "The audit log is intact: 2 entries checked.\n");

    // Change an entry behind the edge's back.
    let db = s.edge.dir.join("warren.db");
    let st = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE audit_log SET bytes_up = 1 WHERE seq = 1'); c.commit()",
        ])
        .arg(&db)
        .status()
        .unwrap();
    assert!(st.success());
    let bad = s.edge.cli(&["audit", "verify"]).await;
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr
            .contains("the audit log was tampered with at entry 1: its content was changed after it was written"),
        "{}",
        bad.stderr
    );
}
