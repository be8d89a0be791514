//! The edge's native PostgreSQL listener: psql and pgbench connect to the
//! edge with standard libpq options (`sslmode=verify-full`, the edge's CA,
//! a client certificate from `warren access pg-cert`); the identity in the
//! certificate is decided by the application's policies; no certificate,
//! a plaintext client, or a denied identity gets an ErrorResponse; psql's
//! cancel reaches the database; sessions are audited with the identity
//! and what PostgreSQL saw, and end when the token is revoked.

mod support;

use std::time::Duration;

use support::deps::{require, Dep};
use support::postgres::{spawn_psql, Postgres, APP_PASSWORD};
use support::{eventually, Stack};
use tokio::process::Command;

const DB: &str = "db.example.com";

struct Native {
    pg: Postgres,
    s: Stack,
    home: tempfile::TempDir,
}

async fn native() -> Native {
    let (pg, s) = support::postgres::behind_connector(DB).await;
    let e = &s.edge;
    e.ok(&["access", "app", "create", "db", "--host", DB]).await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "db",
        "machines",
        "--action",
        "service-auth",
        "--include",
        "service-token=ci",
        "--include",
        "service-token=ops",
    ])
    .await;
    Native {
        pg,
        s,
        home: support::temp_dir(),
    }
}

impl Native {
    /// `warren access pg-cert` with a service token; the printed conninfo.
    async fn pg_cert(&self, token: &support::access::ServiceToken) -> String {
        support::postgres::pg_cert(&self.s.edge, self.home.path(), token, DB).await
    }
}

async fn psql(conn: &str, sql: &str) -> (bool, String) {
    let conn = format!("{conn} user=app dbname=app application_name=native-e2e");
    support::postgres::psql(&conn, sql).await
}

#[cfg_attr(
    warren_missing_postgres,
    ignore = "needs PostgreSQL (server and psql); .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_with_a_client_certificate_and_refusals() {
    let n = native().await;
    let e = &n.s.edge;
    let ci = e.service_token("ci").await;
    let conn = n.pg_cert(&ci).await;

    let (ok, out) = psql(
        &conn,
        "SELECT 'through the edge', ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "through the edge|t", "the database sees TLS");

    let port = e.postgres.unwrap().port();
    let ca = e.ca.display();
    // No client certificate.
    let bare =
        format!("host={DB} hostaddr=127.0.0.1 port={port} sslmode=verify-full sslrootcert={ca}");
    let (ok, out) = psql(&bare, "SELECT 1").await;
    assert!(!ok);
    assert!(
        out.contains(
            "db.example.com needs a client certificate: run `warren access pg-cert db.example.com`"
        ),
        "{out}"
    );
    // Plaintext.
    let plain = format!("host=127.0.0.1 port={port} sslmode=disable");
    let (ok, out) = psql(&plain, "SELECT 1").await;
    assert!(!ok);
    assert!(
        out.contains("accepts PostgreSQL connections only over TLS"),
        "{out}"
    );
    // Garbage at the listener: an answer or a closed socket, never a
    // stuck task; the listener keeps serving.
    for junk in [
        &b"\x00\x00\x00\x08\x04\xd2\x16\x2e"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        &[0u8; 3][..],
        &[0xffu8; 64][..],
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = tokio::net::TcpStream::connect(e.postgres.unwrap())
            .await
            .unwrap();
        c.write_all(junk).await.unwrap();
        let _ = c.shutdown().await;
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(15), c.read_to_end(&mut out))
            .await
            .expect("the listener answered or closed")
            .ok();
    }
    let (ok, out) = psql(&conn, "SELECT 1").await;
    assert!(ok, "{out}");

    // A certificate whose identity the policies no longer allow.
    let ops = e.service_token("ops").await;
    let ops_conn = n.pg_cert(&ops).await;
    e.ok(&["access", "policy", "remove", "db", "machines"])
        .await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "db",
        "ci-only",
        "--action",
        "service-auth",
        "--include",
        "service-token=ci",
    ])
    .await;
    let (ok, out) = psql(&ops_conn, "SELECT 1").await;
    assert!(!ok);
    assert!(out.contains("access to db was denied for ops"), "{out}");
    // An expired certificate (signed by the edge's CA, as only it can).
    let ca_pem = std::fs::read_to_string(e.dir.join("ca.pem")).unwrap();
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(e.dir.join("ca-key.pem")).unwrap())
            .unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::URI(
        "warren:service-token:ops".try_into().unwrap(),
    )];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let old = params.signed_by(&key, &issuer).unwrap();
    let dir = n.home.path().join("expired");
    std::fs::create_dir_all(&dir).unwrap();
    let (crt, keyf) = (dir.join("old.crt"), dir.join("old.key"));
    std::fs::write(&crt, old.pem()).unwrap();
    std::fs::write(&keyf, key.serialize_pem()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keyf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let expired = format!(
        "{bare} sslcert={} sslkey={} channel_binding=disable",
        crt.display(),
        keyf.display()
    );
    let (ok, out) = psql(&expired, "SELECT 1").await;
    assert!(!ok);
    assert!(out.contains("the client certificate expired"), "{out}");
    // A revoked token's certificate.
    e.ok(&["access", "service-token", "revoke", "ci"]).await;
    let (ok, out) = psql(&conn, "SELECT 1").await;
    assert!(!ok, "{out}");

    let audit = e.audit().await;
    let session = audit
        .iter()
        .find(|x| x["kind"] == "connection" && x["identity"] == "ci")
        .unwrap_or_else(|| panic!("{audit:#?}"));
    let dest = session["destination"].as_str().unwrap();
    for want in [
        "pg_user=app",
        "pg_database=app",
        "application_name=native-e2e",
        "upstream_tls=TLSv1_3",
    ] {
        assert!(dest.contains(want), "{want} missing from {session}");
    }
    assert!(session["source"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(
        audit
            .iter()
            .any(|x| x["identity"] == "ops" && x["decision"] == "deny"),
        "{audit:#?}"
    );
    assert!(
        audit
            .iter()
            .any(|x| x["kind"] == "pg_cert" && x["identity"] == "ci"),
        "{audit:#?}"
    );
}

#[cfg_attr(
    any(warren_missing_postgres, warren_missing_pgbench),
    ignore = "needs PostgreSQL (server and psql) and pgbench; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_pgbench_and_revocation_through_the_native_listener() {
    require(Dep::Pgbench);
    let n = native().await;
    let e = &n.s.edge;
    let ci = e.service_token("ci").await;
    let conn = n.pg_cert(&ci).await;

    // psql's Ctrl-C: a CancelRequest to the edge, routed by its key.
    let query = "SELECT pg_sleep(60), 'native'";
    let full = format!("{conn} user=app dbname=app");
    let session = spawn_psql(&full, query);
    n.pg.wait_active(query).await;
    let t0 = tokio::time::Instant::now();
    let pid = session.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::time::timeout(Duration::from_secs(30), session.wait_with_output())
        .await
        .expect("the cancelled psql did not end")
        .unwrap();
    eprintln!(
        "query cancelled through the native listener after {:?}",
        t0.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("canceling statement due to user request"),
        "{err}"
    );

    // pgbench: initialise, then 8 clients for 10 seconds.
    let port = e.postgres.unwrap().port().to_string();
    let part = |k: &str| {
        conn.split_whitespace()
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
            .env("PGCHANNELBINDING", "disable")
            .env("PGPASSWORD", APP_PASSWORD);
        c
    };
    let o = pgbench(&["-i", "-s", "1"]).output().await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = pgbench(&["-c", "8", "-j", "2", "-T", "10"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("number of failed transactions: 0 "), "{text}");
    eprintln!(
        "{}",
        text.lines()
            .filter(|l| l.starts_with("tps"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Revoking the token ends an open session.
    let session = spawn_psql(&full, query);
    n.pg.wait_active(query).await;
    e.ok(&["access", "service-token", "revoke", "ci"]).await;
    let out = tokio::time::timeout(Duration::from_secs(10), session.wait_with_output())
        .await
        .expect("the session was not closed")
        .unwrap();
    assert!(!out.status.success());
    let entry = eventually(
        "the revoked session in the audit log",
        support::DEADLINE,
        || async {
            e.audit()
                .await
                .into_iter()
                .find(|x| x["end_reason"] == "access revoked: service token revoked")
        },
    )
    .await;
    assert_eq!(entry["identity"], "ci");
    // What moved before the revocation is still counted.
    assert!(entry["bytes_up"].as_i64().unwrap() > 0, "{entry}");
    assert!(entry["bytes_down"].as_i64().unwrap() > 0, "{entry}");
}
