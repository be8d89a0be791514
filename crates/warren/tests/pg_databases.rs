//! Pooled PostgreSQL databases, the control plane end to end (issue 12):
//! `warren db` over a real edge, passwords that never come back (not in
//! the CLI's output, the API's JSON, the audit log or the edge's log at
//! debug level), sealed in the SQLite file, still opened by a restarted
//! edge, and refused with the sentence by an edge whose key was replaced;
//! and `--db-role` on a policy.

mod support;

use std::path::Path;

use serde_json::Value;
use support::deps::{require, Dep};
use support::{Edge, Out};

/// A password no other text in this test has.
const PASSWORD: &str = "Pw-e2e-3f9a1c77-orders-app";
/// The second role's, given through an environment variable.
const ENV_PASSWORD: &str = "Pw-e2e-9d20b4e1-analyst";

/// Every output and log the test looked at, to search for the passwords
/// at the end.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn out(&mut self, what: &str, o: &Out) {
        self.0.push((format!("{what} (stdout)"), o.stdout.clone()));
        self.0.push((format!("{what} (stderr)"), o.stderr.clone()));
    }

    fn text(&mut self, what: &str, text: String) {
        self.0.push((what.to_owned(), text));
    }

    fn assert_no_password(&self) {
        for (what, text) in &self.0 {
            for p in [PASSWORD, ENV_PASSWORD] {
                assert!(!text.contains(p), "a password is in {what}:\n{text}");
            }
        }
    }
}

async fn ok(edge: &Edge, seen: &mut Seen, args: &[&str]) -> Out {
    let o = edge.cli(args).await;
    seen.out(&args.join(" "), &o);
    assert_eq!(o.code, 0, "{args:?}: {}", o.stderr);
    o
}

async fn start(dir: &Path) -> Edge {
    Edge::start_with_env(dir, &[("RUST_LOG", "debug")]).await
}

async fn stop(mut edge: Edge, seen: &mut Seen) {
    edge.proc.signal("TERM");
    edge.proc.wait_exit().await;
    seen.text("the edge's log", edge.proc.logs());
}

fn credentials(show: &Out) -> Vec<(String, bool)> {
    let v: Value = serde_json::from_str(&show.stdout).expect("db show -o json is JSON");
    v["credentials"]
        .as_array()
        .expect("credentials")
        .iter()
        .map(|c| {
            (
                c["role"].as_str().unwrap().to_owned(),
                c["decrypts"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[cfg_attr(
    warren_missing_python3,
    ignore = "needs python3; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_and_their_credentials_end_to_end() {
    require(Dep::Python3);
    let dir = support::temp_dir();
    let mut seen = Seen::default();
    let edge = start(dir.path()).await;

    ok(&edge, &mut seen, &["tunnel", "create", "office"]).await;
    ok(
        &edge,
        &mut seen,
        &["tunnel", "route", "dns", "office", "db.example.com"],
    )
    .await;

    // A hostname without a route is refused with the command to run.
    let o = edge
        .cli(&[
            "db",
            "add",
            "orders",
            "--route",
            "nowhere.example.com",
            "--database",
            "orders",
        ])
        .await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr
            .contains("route it to the tunnel that reaches the database first with `warren tunnel route dns TUNNEL nowhere.example.com`"),
        "{}",
        o.stderr
    );

    let added = ok(
        &edge,
        &mut seen,
        &[
            "db",
            "add",
            "orders",
            "--route",
            "db.example.com",
            "--database",
            "orders_prod",
            "--pool-size",
            "5",
            "--idle-timeout",
            "10m",
            "--checkout-timeout",
            "2s",
            "--cache",
            "--cache-max-size",
            "1MiB",
        ],
    )
    .await;
    assert!(
        added.stdout.starts_with(
            "Added pooled database orders on db.example.com (transaction pooling, identity auth)"
        ),
        "{}",
        added.stdout
    );

    // The passwords: one from a file (with a trailing newline), one from a
    // variable.
    let pw_file = dir.path().join("pw.txt");
    std::fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
    let pw_file = pw_file.display().to_string();
    let set = ok(
        &edge,
        &mut seen,
        &[
            "db",
            "credential",
            "set",
            "orders",
            "--role",
            "app",
            "--password-file",
            &pw_file,
        ],
    )
    .await;
    assert_eq!(
        set.stdout,
        "Stored the password of role app for orders, encrypted at the edge\n"
    );
    let o = edge
        .cli_with_env(
            &[
                "db",
                "credential",
                "set",
                "orders",
                "--role",
                "analyst",
                "--password-env",
                "WARREN_TEST_DB_PASSWORD",
            ],
            &[("WARREN_TEST_DB_PASSWORD", ENV_PASSWORD)],
        )
        .await;
    seen.out("db credential set --password-env", &o);
    assert_eq!(o.code, 0, "{}", o.stderr);

    let show = ok(&edge, &mut seen, &["db", "show", "orders"]).await;
    for want in [
        "Hostname:          db.example.com",
        "Database:          orders_prod",
        "Pool size:         5 (at least 0 idle)",
        "Idle timeout:      10m",
        "Checkout timeout:  2000ms",
        "Result cache:      on (max-age 1m, stale-while-revalidate 15s, up to 1MiB)",
        "  analyst",
        "  app",
    ] {
        assert!(show.stdout.contains(want), "{want:?} in\n{}", show.stdout);
    }
    let json = ok(&edge, &mut seen, &["db", "show", "orders", "-o", "json"]).await;
    assert_eq!(
        credentials(&json),
        [("analyst".to_owned(), true), ("app".to_owned(), true)]
    );
    let list = ok(&edge, &mut seen, &["db", "list"]).await;
    assert!(
        list.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("orders")
                && l.contains("db.example.com")
                && l.ends_with("analyst, app")),
        "{}",
        list.stdout
    );
    ok(&edge, &mut seen, &["db", "list", "-o", "json"]).await;
    let changed = ok(
        &edge,
        &mut seen,
        &["db", "set", "orders", "--pool-size", "7", "--no-cache"],
    )
    .await;
    assert!(
        changed
            .stdout
            .starts_with("Changed pooled database orders\n")
            && changed.stdout.contains("Pool size:         7")
            && changed.stdout.contains("Result cache:      off"),
        "{}",
        changed.stdout
    );
    let bad = edge
        .cli(&["db", "set", "orders", "--pool-mode", "statement"])
        .await;
    assert_ne!(bad.code, 0, "clap refuses an unknown mode");

    // A policy maps an identity to database roles.
    ok(
        &edge,
        &mut seen,
        &[
            "access",
            "app",
            "create",
            "orders-app",
            "--host",
            "db.example.com",
        ],
    )
    .await;
    ok(
        &edge,
        &mut seen,
        &[
            "access",
            "policy",
            "add",
            "orders-app",
            "analysts",
            "--action",
            "allow",
            "--include",
            "group=analysts",
            "--db-role",
            "analyst",
            "--db-role",
            "reporting",
        ],
    )
    .await;
    let policies = ok(
        &edge,
        &mut seen,
        &["access", "policy", "list", "orders-app"],
    )
    .await;
    assert!(
        policies
            .stdout
            .lines()
            .next()
            .unwrap()
            .ends_with("DB ROLES")
            && policies.stdout.contains("analyst, reporting"),
        "{}",
        policies.stdout
    );
    let o = edge
        .cli(&[
            "access",
            "policy",
            "add",
            "orders-app",
            "nobody",
            "--action",
            "deny",
            "--include",
            "everyone",
            "--db-role",
            "analyst",
        ])
        .await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("has database roles, but its action deny"),
        "{}",
        o.stderr
    );

    ok(&edge, &mut seen, &["audit", "list", "--output", "json"]).await;
    ok(&edge, &mut seen, &["audit", "list"]).await;
    ok(&edge, &mut seen, &["export"]).await;

    // The SQLite file: the sealed column is not the password, and no byte
    // of the database file or its WAL is.
    let db = edge.dir.join("warren.db");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             [print(r, len(n), len(s), sys.argv[2].encode() in s) for (r, n, s) in \
              c.execute('SELECT role, nonce, sealed FROM pg_credentials ORDER BY role')]",
        ])
        .arg(&db)
        .arg(PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "analyst 12 {} False\napp 12 {} False\n",
            ENV_PASSWORD.len() + 16,
            PASSWORD.len() + 16
        )
    );
    for file in ["warren.db", "warren.db-wal"] {
        if let Ok(bytes) = std::fs::read(edge.dir.join(file)) {
            for p in [PASSWORD, ENV_PASSWORD] {
                assert!(
                    !bytes.windows(p.len()).any(|w| w == p.as_bytes()),
                    "a password is in {file}"
                );
            }
        }
    }
    let key = edge.dir.join("pg-credentials.key");
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&key).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
    }

    // A restarted edge opens them with the same key.
    stop(edge, &mut seen).await;
    let edge = start(dir.path()).await;
    let json = ok(&edge, &mut seen, &["db", "show", "orders", "-o", "json"]).await;
    assert_eq!(
        credentials(&json),
        [("analyst".to_owned(), true), ("app".to_owned(), true)]
    );
    let log = edge.proc.logs();
    assert!(!log.contains("cannot be decrypted"), "{log}");
    assert!(log.contains("pooled databases reloaded"), "{log}");

    // With another key they are refused, each with one warning that names
    // the role and the database and says what to do; a later reload does
    // not say it again.
    stop(edge, &mut seen).await;
    std::fs::write(&key, [0x5a_u8; 32]).unwrap();
    let edge = start(dir.path()).await;
    let json = ok(&edge, &mut seen, &["db", "show", "orders", "-o", "json"]).await;
    assert_eq!(
        credentials(&json),
        [("analyst".to_owned(), false), ("app".to_owned(), false)]
    );
    let show = ok(&edge, &mut seen, &["db", "show", "orders"]).await;
    assert!(
        show.stdout.contains(
            "NO: set it again with `warren db credential set orders --role app --password-file FILE`"
        ),
        "{}",
        show.stdout
    );
    ok(
        &edge,
        &mut seen,
        &["db", "set", "orders", "--pool-size", "8"],
    )
    .await;
    let sentence = format!(
        "the credential for role app on database orders cannot be decrypted with {}; set it again with `warren db credential set orders --role app --password-file FILE`",
        key.display()
    );
    let log = edge.proc.logs();
    assert_eq!(
        log.matches(&sentence).count(),
        1,
        "{sentence:?} once in\n{log}"
    );
    assert_eq!(
        log.matches("the credential for role analyst on database orders cannot be decrypted")
            .count(),
        1,
        "{log}"
    );

    // Setting it again under the new key makes it usable.
    ok(
        &edge,
        &mut seen,
        &[
            "db",
            "credential",
            "set",
            "orders",
            "--role",
            "app",
            "--password-file",
            &pw_file,
        ],
    )
    .await;
    let json = ok(&edge, &mut seen, &["db", "show", "orders", "-o", "json"]).await;
    assert_eq!(
        credentials(&json),
        [("analyst".to_owned(), false), ("app".to_owned(), true)]
    );

    ok(
        &edge,
        &mut seen,
        &["db", "credential", "remove", "orders", "--role", "analyst"],
    )
    .await;
    let o = edge
        .cli(&["db", "credential", "remove", "orders", "--role", "analyst"])
        .await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("has no credential for role analyst"),
        "{}",
        o.stderr
    );
    let removed = ok(&edge, &mut seen, &["db", "remove", "orders"]).await;
    assert_eq!(
        removed.stdout,
        "Removed pooled database orders and its credentials\n"
    );
    let list = ok(&edge, &mut seen, &["db", "list"]).await;
    assert!(
        list.stdout.starts_with("No pooled databases yet"),
        "{}",
        list.stdout
    );

    stop(edge, &mut seen).await;
    seen.assert_no_password();
}
