//! A throw-away PostgreSQL cluster on 127.0.0.1, from the machine's own
//! binaries (`initdb` refuses root, so as root it runs as `postgres`), on
//! a leased port ([`super::ports`]); and psql against it.

use std::path::PathBuf;
use std::process::Command;

use super::deps::{postgres_bin_dir, require, Dep};
use super::ports;

/// Password of `app` in a [`Postgres::start_tls`] cluster.
pub const APP_PASSWORD: &str = "app-secret";

/// (CA certificate, server certificate, server key) PEMs: a fresh CA and a
/// leaf for `localhost` and `db.internal` (also 127.0.0.1).
fn test_certs() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "warren test database CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "db.internal".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// A running cluster; stopped and removed on drop.
pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    /// Keeps [`Postgres::port`] reserved while the cluster runs.
    lease: ports::Lease,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A fresh directory for one cluster.
fn cluster_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("warren-pg-{}-{n}", std::process::id()))
}

impl Postgres {
    /// Starts a cluster with user `app` and database `app` (trust auth on
    /// loopback). Panics, naming what to install, if the machine has no
    /// PostgreSQL server binaries or psql.
    pub fn start() -> Postgres {
        Self::start_with(false, ports::lease())
    }

    /// [`Postgres::start`], trying `lease` first: the harness's own test
    /// of moving to another port when the first one is taken.
    pub fn start_first_on(lease: ports::Lease) -> Postgres {
        Self::start_with(false, lease)
    }

    /// A cluster that serves TLS with a certificate for `localhost` and
    /// `db.internal` from a fresh test CA, and lets `app` in only over
    /// TLS with SCRAM (password [`APP_PASSWORD`]); the superuser keeps
    /// trust on plain loopback for set-up. Returns the CA's PEM path.
    pub fn start_tls() -> (Postgres, PathBuf) {
        let pg = Self::start_with(true, ports::lease());
        let ca = pg.dir.join("test-ca.pem");
        (pg, ca)
    }

    fn start_with(tls: bool, lease: ports::Lease) -> Postgres {
        require(Dep::Postgres);
        let bin = postgres_bin_dir().expect("PostgreSQL server binaries");
        let as_postgres = is_root();
        let dir = cluster_dir();
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(st.success(), "chown of the cluster directory failed");
        }
        // PostgreSQL can neither take a listening socket nor report the
        // port it bound: it gets a leased port outside the ephemeral
        // range, and another one if something else holds that.
        let mut pg = Postgres {
            port: lease.port,
            lease,
            dir,
            bin,
            as_postgres,
        };
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        let mut opts = format!(
            "-k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            pg.dir.display()
        );
        if tls {
            let (ca_pem, cert_pem, key_pem) = test_certs();
            std::fs::write(pg.dir.join("test-ca.pem"), ca_pem).unwrap();
            let cert = data.join("server.crt");
            let key = data.join("server.key");
            std::fs::write(&cert, cert_pem).unwrap();
            std::fs::write(&key, key_pem).unwrap();
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\n\
                 host all postgres 127.0.0.1/32 trust\n\
                 hostssl all app 127.0.0.1/32 scram-sha-256\n\
                 hostnossl all app 127.0.0.1/32 reject\n",
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            if pg.as_postgres {
                let st = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data)
                    .status()
                    .unwrap();
                assert!(st.success());
            }
            opts.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        for attempt in 1.. {
            let log = pg.dir.join(format!("server-{attempt}.log"));
            let port_opts = format!("-p {} {opts}", pg.port);
            let started = pg.try_run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-o",
                    &port_opts,
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            );
            let Err(out) = started else { break };
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                server_log.contains("Address already in use") && attempt < ports::START_ATTEMPTS,
                "pg_ctl start failed on port {} (attempt {attempt}): {out}\n{server_log}",
                pg.port
            );
            eprintln!(
                "port {} is in use; starting PostgreSQL on another one",
                pg.port
            );
            pg.lease = ports::lease();
            pg.port = pg.lease.port;
        }
        pg.psql_admin("CREATE USER app");
        pg.psql_admin("CREATE DATABASE app OWNER app");
        if tls {
            pg.psql_admin(&format!("ALTER USER app PASSWORD '{APP_PASSWORD}'"));
        }
        pg
    }

    fn run(&self, tool: &str, args: &[&str]) {
        if let Err(out) = self.try_run(tool, args) {
            panic!("{tool} failed: {out}");
        }
    }

    /// Runs a server tool (as `postgres` when we are root); its output if
    /// it failed.
    fn try_run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let out = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn psql_admin(&self, sql: &str) {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// psql with the libpq connection string `conn` running `sql`, stopping at
/// the first error, with [`APP_PASSWORD`] and a 10 s connect timeout:
/// whether it succeeded, and its stdout then stderr.
pub async fn psql(conn: &str, sql: &str) -> (bool, String) {
    let o = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new("psql")
            .args([conn, "-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGPASSWORD", APP_PASSWORD)
            .output(),
    )
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

/// A psql running `query` through `conn` in the background (output
/// piped; killed on drop).
pub fn spawn_psql(conn: &str, query: &str) -> tokio::process::Child {
    tokio::process::Command::new("psql")
        .args([conn, "-Atc", query])
        .env("PGPASSWORD", APP_PASSWORD)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start psql")
}

impl Postgres {
    /// Waits until exactly one session runs `query` on this cluster.
    pub async fn wait_active(&self, query: &str) {
        let count = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE query = $${query}$$ AND state = 'active'"
        );
        let port = self.port.to_string();
        super::eventually(&format!("{query:?} to run"), super::DEADLINE, || async {
            let o = tokio::process::Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-Atc",
                    &count,
                ])
                .output()
                .await
                .ok()?;
            (String::from_utf8_lossy(&o.stdout).trim() == "1").then_some(())
        })
        .await;
    }
}

/// `warren access pg-cert HOST` as `token` (its files under `home`): the
/// libpq connection string it prints, checked for the edge's native
/// listener and an owner-only key.
pub async fn pg_cert(
    e: &super::Edge,
    home: &std::path::Path,
    token: &super::access::ServiceToken,
    host: &str,
) -> String {
    let home = home.join(&token.id);
    let (home_s, edge, ca) = (
        home.display().to_string(),
        e.https.to_string(),
        e.ca.display().to_string(),
    );
    let mut env = token.env().to_vec();
    env.push(("WARREN_HOME", &home_s));
    let o = super::warren(
        &["access", "pg-cert", host, "--edge", &edge, "--ca-cert", &ca],
        &env,
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr
            .contains(&format!("Wrote a client certificate for {host}")),
        "{}",
        o.stderr
    );
    let conn = o
        .stdout
        .trim()
        .strip_prefix("psql \"")
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or_else(|| panic!("a psql line: {}", o.stdout))
        .to_owned();
    let port = e.postgres.unwrap().port();
    assert!(
        conn.contains(&format!(
            "host={host} hostaddr=127.0.0.1 port={port} sslmode=verify-full"
        )),
        "{conn}"
    );
    use std::os::unix::fs::PermissionsExt;
    let key = home.join("pg").join(format!("{host}.key"));
    assert_eq!(
        std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    conn
}

/// A [`Postgres::start_tls`] cluster behind a connector whose ingress
/// sends `host` to it as `postgres://` (verify-full against the cluster's
/// CA), with `host` routed to the connector's tunnel.
pub async fn behind_connector(host: &str) -> (Postgres, super::Stack) {
    let (pg, ca) = tokio::task::spawn_blocking(Postgres::start_tls)
        .await
        .unwrap();
    let s = super::Stack::start(
        &[],
        &format!(
            "  - hostname: {host}\n    service: postgres://localhost:{}\n    originRequest:\n      caPool: {}\n",
            pg.port,
            ca.display()
        ),
    )
    .await;
    s.edge.ok(&["tunnel", "route", "dns", "office", host]).await;
    (pg, s)
}
