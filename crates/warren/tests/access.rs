//! Access control end to end with real processes: default deny, service
//! tokens (Warren's and Cloudflare's header names), policies with IP,
//! bypass, exclude and require rules, the signed identity the origin gets
//! (checked against the edge's JWKS), revocation seen by a second edge
//! process on the same store, the rate limit on bad secrets, and `access
//! tcp` to PostgreSQL with a service token, whose open session is closed
//! when the token is revoked or the policy changes.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::access::verify_assertion;
use support::postgres::Postgres;
use support::{eventually, origins, AccessTcp, Edge, Stack};

const APP: &str = "app.example.com";

/// A stack whose tunnel serves `APP` (an HTTP echo) on a route that is
/// not public.
async fn private_app() -> Stack {
    let echo = origins::http_echo().await;
    let s = Stack::start(
        &[],
        &format!("  - hostname: {APP}\n    service: http://{echo}\n"),
    )
    .await;
    s.edge.ok(&["tunnel", "route", "dns", "office", APP]).await;
    s
}

fn json_body(c: &support::Curl) -> Value {
    serde_json::from_str(&c.body).unwrap_or_else(|e| panic!("{e}: {} {}", c.status, c.body))
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_deny_service_tokens_and_signed_identity() {
    let s = private_app().await;
    let e = &s.edge;

    // Default deny: a route nobody made public, no application.
    let r = e.curl(APP, "/", &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.headers.contains("warren-error: no-access-application"));
    assert!(
        r.body.contains("no access application covers it"),
        "{}",
        r.body
    );

    // An application without policies denies everyone.
    let out = e
        .ok(&["access", "app", "create", "web", "--host", APP])
        .await;
    assert!(
        out.contains("it denies everyone until you add a policy"),
        "{out}"
    );
    let r = e.curl(APP, "/", &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("Access to web was denied"), "{}", r.body);

    let ci = e.service_token("ci").await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "web",
        "machines",
        "--action",
        "service-auth",
        "--include",
        "service-token=ci",
    ])
    .await;
    let h = ci.headers();
    let args: Vec<&str> = h.iter().map(String::as_str).collect();
    let r = e.curl(APP, "/who", &args).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = json_body(&r);
    let headers = &seen["headers"];
    assert!(
        headers.get("warren-access-client-secret").is_none(),
        "{seen}"
    );
    assert!(headers.get("warren-access-client-id").is_none(), "{seen}");
    let jwt = headers["warren-access-jwt-assertion"]
        .as_str()
        .expect("assertion");

    // The origin checks the assertion against the published keys.
    let jwks = e.curl(APP, "/.warren/certs", &[]).await;
    assert_eq!(jwks.status, 200);
    let tag = e.app_tag("web").await;
    let claims = verify_assertion(jwt, &jwks.body, &tag, APP);
    assert_eq!(claims["type"], "service_token", "{claims}");
    assert_eq!(claims["common_name"], "ci", "{claims}");
    assert_eq!(claims["sub"], ci.id.as_str(), "{claims}");
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    // Another application's audience does not verify.
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks.body).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&set.keys[0]).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["another-app"]);
    assert!(jsonwebtoken::decode::<Value>(jwt, &key, &v).is_err());

    // Cloudflare's header names work too.
    let cf = [
        "-H".to_owned(),
        format!("CF-Access-Client-Id: {}", ci.id),
        "-H".to_owned(),
        format!("CF-Access-Client-Secret: {}", ci.secret),
    ];
    let cf: Vec<&str> = cf.iter().map(String::as_str).collect();
    assert_eq!(e.curl(APP, "/", &cf).await.status, 200);

    // A wrong secret.
    let bad = [
        "-H".to_owned(),
        format!("Warren-Access-Client-Id: {}", ci.id),
        "-H".to_owned(),
        "Warren-Access-Client-Secret: 00".to_owned(),
    ];
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let r = e.curl(APP, "/", &bad).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.headers.contains("warren-error: bad-service-token"));

    // A second edge process on the same store sees a revocation within
    // its refresh period.
    let dir2 = support::temp_dir();
    std::os::unix::fs::symlink(&e.dir, dir2.path().join("edge")).unwrap();
    let e2 = Edge::start(dir2.path()).await;
    // Allowed there too (no connector on that edge: 502 after the decision).
    let r = e2.curl(APP, "/", &args).await;
    assert_eq!(r.status, 502, "{}", r.body);
    e.ok(&["access", "service-token", "revoke", "ci"]).await;
    let t0 = tokio::time::Instant::now();
    assert_eq!(e.curl(APP, "/", &args).await.status, 401);
    eventually(
        "the second edge to refuse the revoked token",
        Duration::from_secs(5),
        || async { (e2.curl(APP, "/", &args).await.status == 401).then_some(()) },
    )
    .await;
    eprintln!(
        "second edge refused the revoked token after {:?}",
        t0.elapsed()
    );

    // Every decision is in the audit log, with the deciding rule.
    let entries = eventually("decisions in the audit log", support::DEADLINE, || async {
        let v = e.audit().await;
        (v.iter().filter(|x| x["decision"] == "deny").count() >= 3).then_some(v)
    })
    .await;
    assert!(
        entries.iter().any(|x| x["decision"] == "allow"
            && x["identity"] == "ci"
            && x["app"] == "web"
            && x["rule"] == "machines: include service_token ci"),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|x| x["decision"] == "deny" && x["rule"] == "default deny"),
        "{entries:?}"
    );
    let ok = e.ok(&["audit", "verify"]).await;
    assert!(ok.starts_with("The audit log is intact"), "{ok}");

    // Repeated bad secrets from one address are refused for a while, even
    // a right one.
    let ops = e.service_token("ops").await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "web",
        "ops",
        "--action",
        "service-auth",
        "--include",
        "service-token=ops",
    ])
    .await;
    let oh = ops.headers();
    let ops_args: Vec<&str> = oh.iter().map(String::as_str).collect();
    assert_eq!(e.curl(APP, "/", &ops_args).await.status, 200);
    // Two failures are on record already (the wrong secret and the
    // revoked token); the tenth within the window closes the door.
    for _ in 0..8 {
        assert_eq!(e.curl(APP, "/", &bad).await.status, 401);
    }
    let r = e.curl(APP, "/", &ops_args).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.body.contains("Too many wrong service-token secrets"),
        "{}",
        r.body
    );
}

#[cfg_attr(
    warren_missing_curl,
    ignore = "needs curl; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_bypass_exclude_require_and_ip() {
    let s = private_app().await;
    let e = &s.edge;
    e.ok(&["access", "app", "create", "web", "--host", APP])
        .await;
    let status = |extra: Vec<String>| async move {
        let a: Vec<&str> = extra.iter().map(String::as_str).collect();
        e.curl(APP, "/", &a).await.status
    };

    // Bypass for the loopback network: anonymous requests get through.
    e.ok(&[
        "access",
        "policy",
        "add",
        "web",
        "lan",
        "--action",
        "bypass",
        "--include",
        "ip=127.0.0.0/8",
    ])
    .await;
    assert_eq!(status(vec![]).await, 200);
    // Exclude beats include.
    e.ok(&["access", "policy", "remove", "web", "lan"]).await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "web",
        "most",
        "--action",
        "bypass",
        "--include",
        "everyone",
        "--exclude",
        "ip=127.0.0.1/32",
    ])
    .await;
    assert_eq!(status(vec![]).await, 403);
    // Require: every rule must hold.
    e.ok(&["access", "policy", "remove", "web", "most"]).await;
    let t = e.service_token("robot").await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "web",
        "robots",
        "--action",
        "service-auth",
        "--include",
        "any-service-token",
        "--require",
        "ip=10.0.0.0/8",
    ])
    .await;
    assert_eq!(status(t.headers()).await, 403);
    e.ok(&["access", "policy", "remove", "web", "robots"]).await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "web",
        "robots",
        "--action",
        "service-auth",
        "--include",
        "any-service-token",
        "--require",
        "ip=127.0.0.0/8",
    ])
    .await;
    assert_eq!(status(t.headers()).await, 200);
    // A deny placed first wins over the allowing policy after it.
    e.ok(&[
        "access",
        "policy",
        "add",
        "web",
        "blocked",
        "--action",
        "deny",
        "--include",
        "service-token=robot",
        "--position",
        "1",
    ])
    .await;
    assert_eq!(status(t.headers()).await, 403);
    let list = e.ok(&["access", "policy", "list", "web"]).await;
    let first = list.lines().nth(1).unwrap_or_default();
    assert!(
        first.contains("blocked") && first.contains("deny"),
        "{list}"
    );
    // Making the route public does not open a hostname an application covers.
    e.ok(&["tunnel", "route", "public", APP]).await;
    assert_eq!(status(vec![]).await, 403);
    e.ok(&["access", "app", "delete", "web"]).await;
    assert_eq!(status(vec![]).await, 200);
}

async fn psql(port: u16, sql: &str) -> (bool, String) {
    let conn = format!("host=127.0.0.1 port={port} user=app dbname=app sslmode=disable");
    support::postgres::psql(&conn, sql).await
}

/// A psql session running `pg_sleep(60)` (marked with `tag`) through `port`; returns the
/// child once the query runs on the database.
async fn sleeping_psql(pg: &Postgres, port: u16, tag: &str) -> tokio::process::Child {
    let query = format!("SELECT pg_sleep(60), '{tag}'");
    let conn = format!("host=127.0.0.1 port={port} user=app dbname=app sslmode=disable");
    let child = support::postgres::spawn_psql(&conn, &query);
    pg.wait_active(&query).await;
    child
}

/// Waits for `child` to end; returns how long after `t0` that was and its
/// stderr.
async fn ended(child: tokio::process::Child, t0: tokio::time::Instant) -> (Duration, String) {
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the session was not closed")
        .unwrap();
    (
        t0.elapsed(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg_attr(
    warren_missing_postgres,
    ignore = "needs PostgreSQL (server and psql); .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tcp_to_postgres_with_service_tokens_and_revocation() {
    // A TLS database behind a postgres:// rule (verify-full upstream).
    let (pg, ca) = tokio::task::spawn_blocking(Postgres::start_tls)
        .await
        .unwrap();
    let db = "db.example.com";
    let s = Stack::start(
        &[],
        &format!(
            "  - hostname: {db}\n    service: postgres://localhost:{}\n    originRequest:\n      caPool: {}\n",
            pg.port,
            ca.display()
        ),
    )
    .await;
    let e = &s.edge;
    e.ok(&["tunnel", "route", "dns", "office", db]).await;
    e.ok(&["access", "app", "create", "db", "--host", db]).await;
    let ci = e.service_token("psql-ci").await;
    let ops = e.service_token("psql-ops").await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "db",
        "ci",
        "--action",
        "service-auth",
        "--include",
        "service-token=psql-ci",
    ])
    .await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "db",
        "ops",
        "--action",
        "service-auth",
        "--include",
        "service-token=psql-ops",
    ])
    .await;

    // Without a token the upgrade is refused with a clear message.
    let anon = AccessTcp::start(e, db, s.path()).await;
    let (ok, out) = psql(anon.addr.port(), "SELECT 1").await;
    assert!(!ok, "{out}");
    // Only service tokens may pass, so no sign-in could help: denied.
    anon.proc.wait_log("Access to db was denied").await;

    // With one, psql works.
    let with_ci = AccessTcp::start_with(e, db, s.path(), &ci.env()).await;
    let (ok, out) = psql(with_ci.addr.port(), "SELECT 40 + 2").await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "42");
    // The session is audited with the identity and what PostgreSQL saw.
    let session = eventually(
        "the psql session in the audit log",
        support::DEADLINE,
        || async {
            e.audit()
                .await
                .into_iter()
                .find(|x| x["kind"] == "connection" && x["identity"] == "psql-ci")
        },
    )
    .await;
    let dest = session["destination"].as_str().unwrap();
    for want in [
        "pg_user=app",
        "pg_database=app",
        "application_name=psql",
        "upstream=localhost:",
        "upstream_tls=TLSv1_3",
    ] {
        assert!(dest.contains(want), "{want} missing from {session}");
    }
    // With the statement log on, statements are audited too.
    let none = e.audit().await;
    assert!(
        !none.iter().any(|x| x["kind"] == "statement"),
        "statement log is off by default"
    );
    e.ok(&["access", "app", "update", "db", "--statement-log", "true"])
        .await;
    let (ok, out) = psql(with_ci.addr.port(), "SELECT 'logged' AS x; SELECT 7 * 6").await;
    assert!(ok, "{out}");
    let stmt = eventually(
        "the statement in the audit log",
        support::DEADLINE,
        || async {
            e.audit()
                .await
                .into_iter()
                .find(|x| x["kind"] == "statement")
        },
    )
    .await;
    assert_eq!(
        stmt["destination"], "SELECT 'logged' AS x; SELECT 7 * 6",
        "{stmt}"
    );
    assert_eq!(stmt["identity"], "psql-ci", "{stmt}");
    assert_eq!(stmt["app"], "db", "{stmt}");
    assert!(
        stmt["rule"].as_str().unwrap().contains("pg_user=app"),
        "{stmt}"
    );
    e.ok(&["access", "app", "update", "db", "--statement-log", "false"])
        .await;

    // An open session ends within seconds of its token being revoked.
    let session = sleeping_psql(&pg, with_ci.addr.port(), "ci").await;
    let t0 = tokio::time::Instant::now();
    e.ok(&["access", "service-token", "revoke", "psql-ci"])
        .await;
    let (took, err) = ended(session, t0).await;
    eprintln!("the session was closed {took:?} after the revocation");
    assert!(
        err.contains("server closed the connection") || err.contains("connection"),
        "{err}"
    );
    // And the token no longer opens new ones.
    let (ok, _) = psql(with_ci.addr.port(), "SELECT 1").await;
    assert!(!ok);
    with_ci
        .proc
        .wait_log("The service token was not accepted")
        .await;

    // A policy change that no longer allows an open session closes it
    // (the sessions above went over QUIC, `auto`'s first choice; this one
    // goes over the WebSocket).
    let with_ops = AccessTcp::ready(AccessTcp::spawn_with(
        e,
        db,
        s.path(),
        &ops.env(),
        &["--transport", "websocket"],
    ))
    .await;
    let session = sleeping_psql(&pg, with_ops.addr.port(), "ops").await;
    let t0 = tokio::time::Instant::now();
    e.ok(&["access", "policy", "remove", "db", "ops"]).await;
    let (took, _) = ended(session, t0).await;
    eprintln!("the session was closed {took:?} after the policy change");

    let entries = eventually(
        "the closed sessions in the audit log",
        support::DEADLINE,
        || async {
            let v = e.audit().await;
            (v.iter()
                .filter(|x| {
                    x["kind"] == "connection"
                        && x["end_reason"]
                            .as_str()
                            .is_some_and(|r| r.starts_with("access revoked"))
                })
                .count()
                >= 2)
                .then_some(v)
        },
    )
    .await;
    assert!(
        entries.iter().any(|x| x["kind"] == "connection"
            && x["identity"] == "psql-ci"
            && x["end_reason"] == "access revoked: service token revoked"),
        "{entries:#?}"
    );
    assert!(
        entries.iter().any(|x| x["identity"] == "psql-ops"
            && x["end_reason"]
                .as_str()
                .unwrap()
                .starts_with("access revoked: access policy changed")),
        "{entries:#?}"
    );
    // The refused upgrades were audited too.
    assert!(
        entries
            .iter()
            .any(|x| x["kind"] == "decision" && x["decision"] == "deny" && x["app"] == "db"),
        "{entries:#?}"
    );
}
