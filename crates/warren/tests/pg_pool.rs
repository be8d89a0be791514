//! Pooled PostgreSQL through the native listener (`warren db add`): the
//! client proves a Warren identity with its certificate and holds no
//! database password; the edge logs in as the role the policy maps the
//! identity to, with the credential it keeps encrypted, and runs many
//! clients over few server connections. Session state never crosses from
//! one client to the next, an abandoned transaction is rolled back, a
//! cancel reaches the running query, an exhausted pool says so, and the
//! password shows up in no log, API answer or audit entry.

mod support;

use std::time::Duration;

use support::deps::{require, Dep};
use support::postgres::{Postgres, APP_PASSWORD};
use support::{eventually, Stack};
use tokio::process::Command;

const DB: &str = "db.example.com";

struct Pooled {
    pg: Postgres,
    s: Stack,
    home: tempfile::TempDir,
    /// The conninfo `warren access pg-cert` printed for token `ci`.
    conn: String,
}

/// A TLS + SCRAM cluster behind a connector, a pooled database over it
/// with `flags`, the credential of `app` stored, and a policy that maps
/// service token `ci` to `roles`.
async fn pooled(flags: &[&str], roles: &[&str]) -> Pooled {
    let (pg, s) = support::postgres::behind_connector(DB).await;
    let e = &s.edge;
    let mut add = vec!["db", "add", "orders", "--route", DB, "--database", "app"];
    add.extend_from_slice(flags);
    e.ok(&add).await;
    let pw = s.path().join("app.pw");
    std::fs::write(&pw, format!("{APP_PASSWORD}\n")).unwrap();
    e.ok(&[
        "db",
        "credential",
        "set",
        "orders",
        "--role",
        "app",
        "--password-file",
        pw.to_str().unwrap(),
    ])
    .await;
    e.ok(&["access", "app", "create", "db", "--host", DB]).await;
    let mut policy = vec![
        "access",
        "policy",
        "add",
        "db",
        "machines",
        "--action",
        "service-auth",
        "--include",
        "service-token=ci",
    ];
    for r in roles {
        policy.extend_from_slice(&["--db-role", r]);
    }
    e.ok(&policy).await;
    let home = support::temp_dir();
    let ci = e.service_token("ci").await;
    let conn = support::postgres::pg_cert(e, home.path(), &ci, DB).await;
    Pooled { pg, s, home, conn }
}

/// psql through the pool with no password anywhere in reach, libpq's
/// default channel_binding, as `user`: whether it succeeded, and its
/// output.
async fn psql(conn: &str, user: &str, sql: &str) -> (bool, String) {
    psql_session(conn, user, &[sql]).await
}

/// psql running each of `sqls` as its own query in one session, as
/// `app`.
async fn psql_many(conn: &str, sqls: &[&str]) -> (bool, String) {
    psql_session(conn, "app", sqls).await
}

async fn psql_session(conn: &str, user: &str, sqls: &[&str]) -> (bool, String) {
    let mut c = psql_cmd(conn, user, sqls[0]);
    for sql in &sqls[1..] {
        c.args(["-c", sql]);
    }
    let o = tokio::time::timeout(Duration::from_secs(60), c.output())
        .await
        .expect("psql timed out")
        .expect("psql");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn psql_cmd(conn: &str, user: &str, sql: &str) -> Command {
    let mut c = Command::new("psql");
    c.args([
        &format!("{conn} user={user} dbname=anything application_name=pool-e2e"),
        "-v",
        "ON_ERROR_STOP=1",
        "-Atc",
        sql,
    ])
    .env_remove("PGPASSWORD")
    .env("PGPASSFILE", "/nonexistent/warren-test-no-passfile")
    .env("PGCONNECT_TIMEOUT", "10")
    .kill_on_drop(true)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    c
}

/// Server connections the pool holds open on the cluster.
async fn server_connections(pg: &Postgres) -> usize {
    let o = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-Atc",
        ])
        .arg("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'")
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

async fn admin(pg: &Postgres, sql: &str) -> String {
    let o = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "app",
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        ])
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[cfg_attr(
    warren_missing_postgres,
    ignore = "needs PostgreSQL (server and psql); .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_mapped_roles_over_a_small_pool() {
    let p = pooled(&["--pool-size", "2"], &["app"]).await;
    let conn = &p.conn;

    // No password, default channel_binding, whatever user name: the
    // session runs as the mapped role over TLS to the database.
    let (ok, out) = psql(
        conn,
        "alice",
        "SELECT current_user, ssl, current_setting('application_name') FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "app|t|pool-e2e");

    // 24 clients at once, each holding a transaction for a moment, over
    // at most 2 server connections.
    let mut clients = Vec::new();
    for i in 0..24 {
        let sql = format!("BEGIN; SELECT pg_sleep(0.05), {i}; COMMIT; SELECT 'done {i}'");
        clients.push(psql_cmd(conn, "app", &sql).spawn().unwrap());
    }
    for (i, c) in clients.into_iter().enumerate() {
        let o = tokio::time::timeout(Duration::from_secs(60), c.wait_with_output())
            .await
            .expect("a pooled client hung")
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains(&format!("done {i}")),
            "client {i}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let n = server_connections(&p.pg).await;
    assert!(
        (1..=2).contains(&n),
        "{n} server connections for a pool of 2"
    );

    // The database password is nowhere a user or operator can read.
    let e = &p.s.edge;
    let shown = e.ok(&["db", "show", "orders"]).await;
    assert!(shown.contains("app"), "{shown}");
    let audit = serde_json::to_string(&e.audit().await).unwrap();
    for (what, text) in [
        ("db show", shown.as_str()),
        ("the audit log", audit.as_str()),
        ("the edge's log", &e.proc.logs()),
        ("the connector's log", &p.s.connector.proc.logs()),
    ] {
        assert!(!text.contains(APP_PASSWORD), "the password is in {what}");
    }
    // Each session's audit entry names its role and mode.
    let audit = e.audit().await;
    let entry = audit
        .iter()
        .find(|x| x["kind"] == "connection" && x["identity"] == "ci")
        .unwrap_or_else(|| panic!("{audit:#?}"));
    let dest = entry["destination"].as_str().unwrap();
    assert!(dest.contains("role=app pool=transaction"), "{entry}");
}

#[cfg_attr(
    warren_missing_postgres,
    ignore = "needs PostgreSQL (server and psql); .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_state_crosses_to_the_next_client() {
    // One server connection: every client gets the same backend.
    let p = pooled(&["--pool-size", "1"], &["app"]).await;
    let conn = &p.conn;
    admin(
        &p.pg,
        "CREATE ROLE other; GRANT other TO app; CREATE TABLE t (a int); GRANT ALL ON t TO app",
    )
    .await;
    let backend = |out: &str| out.lines().next().unwrap_or("").to_owned();

    // Settings a client changes follow it from transaction to
    // transaction, and are not there for the next client.
    let (ok, out) = psql_many(
        conn,
        &[
            "SELECT pg_backend_pid()",
            "SET search_path = leak",
            "SET ROLE other",
            "SELECT current_user, current_setting('search_path')",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let first = backend(&out);
    assert!(out.contains("other|leak"), "{out}");
    let after = "SELECT pg_backend_pid(); SELECT current_user, current_setting('search_path'); SELECT count(*) FROM pg_listening_channels(); SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'; SELECT count(*) FROM pg_prepared_statements; SELECT to_regclass('pg_temp.tmp') IS NULL";
    let clean = ["app|\"$user\", public", "0", "0", "0", "t"];
    let (ok, out) = psql(conn, "app", after).await;
    assert!(ok, "{out}");
    assert_eq!(backend(&out), first, "the same server connection");
    assert_eq!(out.lines().skip(1).collect::<Vec<_>>(), clean, "{out}");

    // LISTEN, an advisory lock, a temporary table and SQL PREPARE pin the
    // client, and the connection is reset after it.
    let (ok, out) = psql(
        conn,
        "app",
        "SELECT pg_backend_pid(); SET ROLE other; LISTEN ch; SELECT pg_advisory_lock(7); CREATE TEMP TABLE tmp (a int); PREPARE q AS SELECT 1",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(backend(&out), first);
    let (ok, out) = psql(conn, "app", after).await;
    assert!(ok, "{out}");
    assert_eq!(backend(&out), first, "the same server connection");
    assert_eq!(out.lines().skip(1).collect::<Vec<_>>(), clean, "{out}");
    let audit = p.s.edge.audit().await;
    assert!(
        audit.iter().any(|x| x["destination"].as_str().is_some_and(
            |d| d.contains("pinned=(SQL PREPARE, LISTEN, session advisory lock, temporary object)")
        )),
        "{audit:#?}"
    );

    // A transaction the client walked away from is rolled back.
    let (ok, out) = psql(conn, "app", "BEGIN; INSERT INTO t VALUES (1);").await;
    assert!(ok, "{out}");
    let (ok, out) = psql(conn, "app", "SELECT count(*) FROM t").await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "0");

    // A client's startup settings reach its session, and not the next.
    let (ok, out) = psql(
        &format!("{conn} options='-c search_path=pg_catalog'"),
        "app",
        "SHOW search_path",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "pg_catalog");
    let (ok, out) = psql(conn, "app", "SHOW search_path").await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "\"$user\", public");
}

#[cfg_attr(
    warren_missing_postgres,
    ignore = "needs PostgreSQL (server and psql); .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_cancel_and_an_exhausted_pool() {
    let p = pooled(
        &["--pool-size", "1", "--checkout-timeout", "1s"],
        &["app", "analyst"],
    )
    .await;
    let conn = &p.conn;

    // A role the policy does not map.
    let (ok, out) = psql(conn, "postgres", "SELECT 1").await;
    assert!(!ok);
    assert!(
        out.contains(
            "ci may use the roles app, analyst on orders, not postgres; connect with user=app"
        ),
        "{out}"
    );
    // A mapped role the edge holds no credential for.
    let (ok, out) = psql(conn, "analyst", "SELECT 1").await;
    assert!(!ok);
    assert!(
        out.contains("holds no credential for role analyst on orders"),
        "{out}"
    );

    // psql's Ctrl-C reaches the backend running the query.
    let query = "SELECT pg_sleep(60), 'pooled'";
    let running = psql_cmd(conn, "app", query).spawn().unwrap();
    p.pg.wait_active(query).await;
    // Meanwhile the only connection is busy: another client waits its
    // checkout timeout out and is told so.
    let (ok, out) = psql(conn, "app", "SELECT 1").await;
    assert!(!ok);
    assert!(
        out.contains("all 1 server connections of role app on database orders stayed busy"),
        "{out}"
    );
    let pid = running.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let o = tokio::time::timeout(Duration::from_secs(30), running.wait_with_output())
        .await
        .expect("the cancelled psql did not end")
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("canceling statement due to user request"),
        "{err}"
    );
    // The connection is free again.
    eventually("the pool to serve again", support::DEADLINE, || async {
        let (ok, _) = psql(conn, "app", "SELECT 1").await;
        ok.then_some(())
    })
    .await;
}

#[cfg_attr(
    warren_missing_postgres,
    ignore = "needs PostgreSQL (server and psql); .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_idle_keeps_connections_warm_before_any_client() {
    let p = pooled(&["--pool-size", "4", "--min-idle", "2"], &["app"]).await;
    // No client has connected: the pool opens its two by itself.
    eventually("two warm server connections", support::DEADLINE, || async {
        (server_connections(&p.pg).await == 2).then_some(())
    })
    .await;
    // A client uses one of them.
    let (ok, out) = psql(&p.conn, "app", "SELECT current_user").await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "app");
    assert_eq!(server_connections(&p.pg).await, 2);
}

#[cfg_attr(
    any(warren_missing_postgres, warren_missing_pgbench),
    ignore = "needs PostgreSQL (server and psql) and pgbench; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_through_the_pool() {
    require(Dep::Pgbench);
    let p = pooled(&["--pool-size", "4"], &["app"]).await;
    let port = p.s.edge.postgres.unwrap().port().to_string();
    let part = |k: &str| {
        p.conn
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(str::to_owned))
            .unwrap()
    };
    let pgbench = |args: &[&str]| {
        let mut c = Command::new("pgbench");
        c.args(["-h", DB, "-p", &port, "-U", "app"])
            .args(args)
            .arg("app")
            .env("PGHOSTADDR", "127.0.0.1")
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", part("sslrootcert"))
            .env("PGSSLCERT", part("sslcert"))
            .env("PGSSLKEY", part("sslkey"))
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", "/nonexistent/warren-test-no-passfile");
        c
    };
    let o = pgbench(&["-i", "-s", "1"]).output().await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Simple, extended and prepared protocols, with a connection per
    // transaction too; every transaction must succeed.
    for args in [
        &["-S", "-c", "8", "-j", "2", "-t", "50"][..],
        &["-S", "-C", "-c", "4", "-j", "2", "-t", "20"],
        &["-S", "-M", "extended", "-c", "8", "-j", "2", "-t", "50"],
        &["-S", "-M", "prepared", "-c", "4", "-j", "2", "-t", "50"],
        &["-c", "8", "-j", "2", "-t", "20"],
    ] {
        let o = pgbench(args).output().await.unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("number of failed transactions: 0"),
            "pgbench {args:?}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let n = server_connections(&p.pg).await;
    assert!(n <= 4, "{n} server connections for a pool of 4");
    drop(p.home);
}
