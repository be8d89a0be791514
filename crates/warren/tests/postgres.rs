//! A real PostgreSQL through `access tcp`: psql queries and pgbench.

mod support;

use support::deps::{require, Dep};
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

#[cfg_attr(
    any(warren_missing_postgres, warren_missing_pgbench),
    ignore = "needs PostgreSQL (server and psql) and pgbench; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_and_pgbench_through_access_tcp() {
    require(Dep::Pgbench);
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
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

/// psql with the given libpq `sslmode` through `access tcp`: its output.
async fn psql_via(port: u16, sslmode: &str, sql: &str) -> (bool, String) {
    psql_conn(
        &format!("host=127.0.0.1 port={port} sslmode={sslmode}"),
        sql,
    )
    .await
}

/// psql with `conn` plus user, database and application_name.
async fn psql_conn(conn: &str, sql: &str) -> (bool, String) {
    let conn = format!("{conn} user=app dbname=app application_name=warren-e2e");
    support::postgres::psql(&conn, sql).await
}

/// A `postgres://` rule: whatever the client asks for, the database sees
/// a verified TLS connection (its pg_hba rejects plain ones for `app`),
/// and SCRAM passes through untouched.
#[cfg_attr(
    warren_missing_postgres,
    ignore = "needs PostgreSQL (server and psql); .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_origins_are_always_tls_verify_full() {
    let (pg, ca) = tokio::task::spawn_blocking(Postgres::start_tls)
        .await
        .unwrap();
    let s = Stack::start(
        &["db.example.com", "wrongname.example.com", "wrongca.example.com"],
        &format!(
            "  - hostname: db.example.com\n    service: postgres://localhost:{port}\n    originRequest:\n      caPool: {ca}\n\
             \x20 - hostname: wrongname.example.com\n    service: postgres://127.0.0.1:{port}\n    originRequest:\n      caPool: {ca}\n      originServerName: elsewhere.internal\n\
             \x20 - hostname: wrongca.example.com\n    service: postgres://localhost:{port}\n",
            port = pg.port,
            ca = ca.display()
        ),
    )
    .await;
    let access = AccessTcp::start(&s.edge, "db.example.com", s.path()).await;
    let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let port = access.addr.port();
    let verify_full = format!(
        "host=db.example.com hostaddr=127.0.0.1 port={port} sslmode=verify-full sslrootcert={}",
        s.edge.ca.display()
    );
    // With TLS to the connector, SCRAM channel binding cannot pass (the
    // client's TLS session is not the database's): require and
    // verify-full clients say channel_binding=disable; prefer falls back
    // to plaintext on its own when told so.
    let cases = [
        format!("host=127.0.0.1 port={port} sslmode=disable"),
        format!("host=127.0.0.1 port={port} sslmode=prefer"),
        format!("host=127.0.0.1 port={port} sslmode=require channel_binding=disable"),
        format!("{verify_full} channel_binding=disable"),
    ];
    for conn in &cases {
        let (ok, out) = psql_conn(conn, sql).await;
        assert!(ok, "{conn}: {out}");
        assert_eq!(out.trim(), "t", "{conn}: the database saw no TLS: {out}");
    }
    // The connector served the edge-issued certificate for the route.
    let log = s.connector.proc.wait_log("client_tls=TLSv1_3").await;
    assert!(log.contains("client_tls=none"), "{log}");
    // require without channel_binding=disable: a sentence saying what to
    // change.
    let (ok, out) = psql_via(port, "require", sql).await;
    assert!(!ok);
    assert!(out.contains("add channel_binding=disable"), "{out}");
    // A name the certificate is not for fails on the client.
    let wrong_name = verify_full.replace("host=db.example.com", "host=other.example.com");
    let (ok, out) = psql_conn(&format!("{wrong_name} channel_binding=disable"), sql).await;
    assert!(!ok);
    assert!(out.contains("does not match host name"), "{out}");
    let log = s
        .connector
        .proc
        .wait_log("PostgreSQL session started")
        .await;
    assert!(log.contains("application_name=warren-e2e"), "{log}");
    assert!(log.contains("user=app"), "{log}");
    assert!(log.contains("tls=TLSv1_3"), "{log}");

    // A certificate for another name, or from a CA the rule does not
    // trust: the client sees why.
    let wrong = AccessTcp::start(&s.edge, "wrongname.example.com", s.path()).await;
    let (ok, out) = psql_via(wrong.addr.port(), "disable", sql).await;
    assert!(!ok);
    assert!(
        out.contains("server certificate for elsewhere.internal is not trusted"),
        "{out}"
    );
    let wrong = AccessTcp::start(&s.edge, "wrongca.example.com", s.path()).await;
    let (ok, out) = psql_via(wrong.addr.port(), "disable", sql).await;
    assert!(!ok);
    assert!(
        out.contains("server certificate for localhost is not trusted"),
        "{out}"
    );
    // And the audit log says why those sessions ended.
    let entry = support::eventually(
        "the refused session in the audit log",
        support::DEADLINE,
        || async {
            let o = s.edge.cli(&["audit", "list", "--output", "json"]).await;
            let v: Vec<serde_json::Value> = serde_json::from_str(&o.stdout).ok()?;
            v.into_iter().find(|x| {
                x["hostname"] == "wrongca.example.com"
                    && x["destination"]
                        .as_str()
                        .is_some_and(|d| d.contains("is not trusted"))
            })
        },
    )
    .await;
    assert!(
        entry["destination"]
            .as_str()
            .unwrap()
            .contains("error=\"server certificate for localhost is not trusted"),
        "{entry}"
    );
}

/// A TLS PostgreSQL behind a `postgres://` rule for db.example.com that
/// trusts its test CA, and `access tcp` to it.
async fn tls_db() -> (Postgres, Stack, AccessTcp) {
    let (pg, ca) = tokio::task::spawn_blocking(Postgres::start_tls)
        .await
        .unwrap();
    let s = Stack::start(
        &["db.example.com"],
        &format!(
            "  - hostname: db.example.com\n    service: postgres://localhost:{}\n    originRequest:\n      caPool: {}\n",
            pg.port,
            ca.display()
        ),
    )
    .await;
    let access = AccessTcp::start(&s.edge, "db.example.com", s.path()).await;
    (pg, s, access)
}

/// psql's Ctrl-C sends a CancelRequest on a new connection; through
/// `access tcp` and the connector it reaches the database (over TLS) and
/// ends the running query.
#[cfg_attr(
    warren_missing_postgres,
    ignore = "needs PostgreSQL (server and psql); .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_reaches_the_database() {
    let (pg, s, access) = tls_db().await;
    let conn = format!(
        "host=127.0.0.1 port={} user=app dbname=app sslmode=disable",
        access.addr.port()
    );
    let psql = support::postgres::spawn_psql(&conn, "SELECT pg_sleep(60)");
    pg.wait_active("SELECT pg_sleep(60)").await;
    let t0 = tokio::time::Instant::now();
    let pid = psql.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), psql.wait_with_output())
        .await
        .expect("the cancelled psql did not end")
        .unwrap();
    eprintln!("query cancelled after {:?}", t0.elapsed());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("canceling statement due to user request"),
        "{err}"
    );
    s.connector
        .proc
        .wait_log("PostgreSQL cancel request forwarded")
        .await;
}

/// Malformed first messages get an ErrorResponse or a closed connection
/// and a log line; the connector keeps serving.
#[cfg_attr(
    warren_missing_postgres,
    ignore = "needs PostgreSQL (server and psql); .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_first_messages_never_hurt_the_connector() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_pg, s, access) = tls_db().await;
    let mut huge = 20_000u32.to_be_bytes().to_vec();
    huge.extend_from_slice(&196_608u32.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        (
            "random bytes",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Some(""),
        ),
        ("length 0", vec![0, 0, 0, 0, 0, 0, 0, 0], Some("")),
        ("length over 10 KB", huge, Some("")),
        (
            "unknown protocol version",
            [
                &16u32.to_be_bytes()[..],
                &0x0004_0007u32.to_be_bytes(),
                b"user\0x\0\0\0\0",
            ]
            .concat(),
            Some("unsupported frontend protocol 4.7"),
        ),
        // Truncated: the header promises more than comes before EOF.
        ("truncated", vec![0, 0, 0, 40, 0, 3, 0, 0, b'u'], None),
    ];
    for (what, bytes, expect) in cases {
        let mut c = tokio::net::TcpStream::connect(access.addr).await.unwrap();
        c.write_all(&bytes).await.unwrap();
        if expect.is_none() {
            c.shutdown().await.unwrap();
        }
        let mut got = Vec::new();
        tokio::time::timeout(support::DEADLINE, c.read_to_end(&mut got))
            .await
            .unwrap_or_else(|_| panic!("{what}: the connection was left hanging"))
            .ok();
        if let Some(text) = expect {
            assert_eq!(got.first(), Some(&b'E'), "{what}: {got:?}");
            let body = String::from_utf8_lossy(&got);
            assert!(body.contains(text), "{what}: {body}");
        }
    }
    s.connector
        .proc
        .wait_log("bad PostgreSQL first message")
        .await;
    // Still serving.
    let (ok, out) = psql_via(access.addr.port(), "prefer", "SELECT 42").await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "42");
}
