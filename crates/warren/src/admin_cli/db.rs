//! `warren db add|list|show|set|remove|credential`: pooled PostgreSQL
//! databases over the admin API (`/v1/databases`).
//!
//! A password is read from a file or an environment variable, never from
//! the command line (it would land in the shell's history), and is sent
//! once to the edge, which seals it; no answer carries it back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::io::AsyncReadExt as _;

use crate::admin_cli::text::{render, table, timestamp};
use crate::admin_cli::{encode_segment, ApiArgs, ApiClient, Output};

/// The longest password the edge takes.
const MAX_PASSWORD_LEN: usize = 4096;

/// How client connections share server connections.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum PoolModeArg {
    /// A server connection is a client's for one transaction.
    Transaction,
    /// A server connection is a client's until it disconnects.
    Session,
}

/// Who authenticates to the database.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum AuthArg {
    /// The client proves a Warren identity; the edge logs in as the role
    /// a policy maps it to (`warren access policy add ... --db-role`),
    /// with the credential stored by `warren db credential set`.
    Identity,
    /// The client logs in to the server itself (SCRAM passes through).
    Passthrough,
}

/// The pooler's settings of a database. Stored by the edge and applied
/// by its connection pooler.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Pooler settings (applied by the edge's connection pooler)")]
pub(crate) struct SettingsArgs {
    /// How the pooler shares server connections [add's default: transaction].
    #[arg(long, value_enum)]
    pool_mode: Option<PoolModeArg>,
    /// Who authenticates to the database [add's default: identity].
    #[arg(long = "auth", value_enum)]
    auth: Option<AuthArg>,
    /// Server connections the pooler keeps per (database, role) at most
    /// [add's default: 20].
    #[arg(long, value_name = "N")]
    pool_size: Option<u32>,
    /// Idle server connections the pooler keeps open per (database, role)
    /// [add's default: 0].
    #[arg(long, value_name = "N")]
    min_idle: Option<u32>,
    /// How long the pooler keeps an idle server connection, e.g. 10m
    /// [add's default: 10m].
    #[arg(long, value_name = "DURATION", value_parser = crate::duration)]
    idle_timeout: Option<Duration>,
    /// How long a server connection of the pooler lives, e.g. 1h [add's
    /// default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = crate::duration)]
    max_lifetime: Option<Duration>,
    /// How long a client waits for one of the pooler's server connections
    /// before it is refused, e.g. 5s [add's default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = crate::duration)]
    checkout_timeout: Option<Duration>,
    /// Have the pooler cache the results of read-only queries [add's
    /// default: off].
    #[arg(long, overrides_with = "no_cache")]
    cache: bool,
    /// Turn the pooler's result cache off.
    #[arg(long, overrides_with = "cache")]
    no_cache: bool,
    /// How long the pooler serves a cached result, e.g. 60s [add's
    /// default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = crate::duration)]
    cache_max_age: Option<Duration>,
    /// How long past its max-age the pooler may still serve a cached
    /// result while it fetches it again, e.g. 15s [add's default: 15s].
    #[arg(long, value_name = "DURATION", value_parser = crate::duration)]
    cache_swr: Option<Duration>,
    /// The pooler's cache size bound, e.g. 64MiB or 1GB [add's default:
    /// 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = size)]
    cache_max_size: Option<u64>,
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum DbCmd {
    /// Add a pooled database on a route's hostname (route the hostname to
    /// the tunnel that reaches the database first, with `warren tunnel
    /// route dns TUNNEL HOST`).
    Add {
        /// Name: lower-case letters, digits and '-'.
        name: String,
        /// The route's hostname clients connect to.
        #[arg(long = "route", value_name = "HOST")]
        route: String,
        /// The database's name on the server.
        #[arg(long, value_name = "DB")]
        database: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
        // Last: its help heading holds for the arguments after it.
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// List the pooled databases.
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show a pooled database, its settings and its credentials' roles
    /// (never a password).
    Show {
        name: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Change a pooled database: only the flags given change.
    Set {
        name: String,
        /// Another route's hostname for clients to connect to.
        #[arg(long = "route", value_name = "HOST")]
        route: Option<String>,
        /// The database's name on the server.
        #[arg(long, value_name = "DB")]
        database: Option<String>,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
        // Last: its help heading holds for the arguments after it.
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Remove a pooled database and its credentials.
    Remove {
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The pools: per database and role, clients (connected, holding a
    /// server connection, waiting), server connections (open, idle),
    /// transactions, waits and closes (PgBouncer's SHOW POOLS and SHOW
    /// STATS).
    Pools {
        /// Only this database's pools.
        name: Option<String>,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The credentials the edge logs in to a database with, one per role.
    Credential {
        #[command(subcommand)]
        cmd: CredentialCmd,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum CredentialCmd {
    /// Store the password the edge logs in as ROLE with (the edge keeps it
    /// encrypted, and never shows it again). A password is not taken on
    /// the command line, where it would land in the shell's history.
    Set {
        /// The database's name.
        name: String,
        /// The PostgreSQL role.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove the credential of a role.
    Remove {
        /// The database's name.
        name: String,
        /// The PostgreSQL role.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Where the password comes from (exactly one).
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct PasswordArgs {
    /// A file holding the password (one trailing newline is dropped).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

/// `64MiB`, `1GB`, `512KiB`, `1000` (bytes).
fn size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let bad =
        || format!("{text:?} is not a size; write it like 64MiB, 1GiB, 500MB or 1000000 (bytes)");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large a size; the cache takes at most 1TiB"))
}

/// Whole seconds of `--flag`'s duration.
fn secs(flag: &str, d: Duration) -> anyhow::Result<u64> {
    if d.subsec_nanos() != 0 {
        anyhow::bail!(
            "{flag} {d:?} is not a whole number of seconds; round it, like {}s",
            d.as_secs().max(1)
        );
    }
    Ok(d.as_secs())
}

impl SettingsArgs {
    /// The API's fields for the flags given.
    fn fields(&self, body: &mut Map<String, Value>) -> anyhow::Result<()> {
        if let Some(m) = self.pool_mode {
            let m = match m {
                PoolModeArg::Transaction => "transaction",
                PoolModeArg::Session => "session",
            };
            body.insert("pool_mode".into(), json!(m));
        }
        if let Some(a) = self.auth {
            let a = match a {
                AuthArg::Identity => "identity",
                AuthArg::Passthrough => "passthrough",
            };
            body.insert("auth_mode".into(), json!(a));
        }
        if let Some(n) = self.pool_size {
            body.insert("pool_size".into(), json!(n));
        }
        if let Some(n) = self.min_idle {
            body.insert("min_idle".into(), json!(n));
        }
        let mut secs_field = |key: &str, flag: &str, d: Option<Duration>| -> anyhow::Result<()> {
            if let Some(d) = d {
                body.insert(key.into(), json!(secs(flag, d)?));
            }
            Ok(())
        };
        secs_field("idle_timeout_secs", "--idle-timeout", self.idle_timeout)?;
        secs_field("max_lifetime_secs", "--max-lifetime", self.max_lifetime)?;
        secs_field("cache_max_age_secs", "--cache-max-age", self.cache_max_age)?;
        secs_field("cache_swr_secs", "--cache-swr", self.cache_swr)?;
        if let Some(d) = self.checkout_timeout {
            if d.as_nanos() % 1_000_000 != 0 {
                anyhow::bail!("--checkout-timeout {d:?} is not a whole number of milliseconds; round it, like 5s or 1500ms");
            }
            body.insert(
                "checkout_timeout_ms".into(),
                json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            );
        }
        if self.cache {
            eprintln!("warning: the pooler's result cache is not built yet: --cache and its settings are stored for it, and no query is cached until it is");
            body.insert("cache".into(), json!(true));
        } else if self.no_cache {
            body.insert("cache".into(), json!(false));
        }
        if let Some(n) = self.cache_max_size {
            body.insert("cache_max_bytes".into(), json!(n));
        }
        Ok(())
    }
}

/// A database as the API answers it.
#[derive(Deserialize)]
struct DbView {
    name: String,
    hostname: String,
    database: String,
    pool_mode: String,
    auth_mode: String,
    pool_size: u64,
    min_idle: u64,
    idle_timeout_secs: u64,
    max_lifetime_secs: u64,
    checkout_timeout_ms: u64,
    cache: bool,
    cache_max_age_secs: u64,
    cache_swr_secs: u64,
    cache_max_bytes: u64,
    created_at: i64,
    #[serde(default)]
    credentials: Vec<CredentialView>,
}

#[derive(Deserialize)]
struct CredentialView {
    role: String,
    updated_at: i64,
    #[serde(default)]
    decrypts: bool,
}

/// `90s`, `10m`, `1h`: the largest unit that divides `secs`.
fn span(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        s if s.is_multiple_of(60) => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `64MiB`, `500MB`, or bytes.
fn size_text(bytes: u64) -> String {
    const UNITS: [(u64, &str); 8] = [
        (1 << 40, "TiB"),
        (1_000_000_000_000, "TB"),
        (1 << 30, "GiB"),
        (1_000_000_000, "GB"),
        (1 << 20, "MiB"),
        (1_000_000, "MB"),
        (1 << 10, "KiB"),
        (1_000, "KB"),
    ];
    UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map_or_else(
            || format!("{bytes}B"),
            |(unit, name)| format!("{}{name}", bytes / unit),
        )
}

fn roles_text(db: &DbView) -> String {
    if db.credentials.is_empty() {
        return "-".into();
    }
    db.credentials
        .iter()
        .map(|c| c.role.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn cache_text(db: &DbView) -> String {
    if db.cache {
        format!(
            "on (max-age {}, stale-while-revalidate {}, up to {})",
            span(db.cache_max_age_secs),
            span(db.cache_swr_secs),
            size_text(db.cache_max_bytes)
        )
    } else {
        "off".into()
    }
}

fn list_text(dbs: &[DbView]) -> String {
    if dbs.is_empty() {
        return "No pooled databases yet; add one with `warren db add NAME --route HOST --database DB`\n".into();
    }
    let rows: Vec<Vec<String>> = dbs
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.hostname.clone(),
                d.database.clone(),
                d.pool_mode.clone(),
                d.auth_mode.clone(),
                d.pool_size.to_string(),
                if d.cache { "on" } else { "off" }.to_owned(),
                roles_text(d),
            ]
        })
        .collect();
    table(
        &[
            "NAME", "HOSTNAME", "DATABASE", "POOL", "AUTH", "SIZE", "CACHE", "ROLES",
        ],
        &rows,
    )
}

fn show_text(d: &DbView) -> String {
    let mut s = format!(
        "Name:              {}\n\
         Hostname:          {}\n\
         Database:          {}\n\
         Pool mode:         {}\n\
         Auth:              {}\n\
         Pool size:         {} (at least {} idle)\n\
         Idle timeout:      {}\n\
         Max lifetime:      {}\n\
         Checkout timeout:  {}ms\n\
         Result cache:      {}\n\
         Created:           {}\n",
        d.name,
        d.hostname,
        d.database,
        d.pool_mode,
        d.auth_mode,
        d.pool_size,
        d.min_idle,
        span(d.idle_timeout_secs),
        span(d.max_lifetime_secs),
        d.checkout_timeout_ms,
        cache_text(d),
        timestamp(d.created_at),
    );
    if d.credentials.is_empty() {
        s.push_str(&format!(
            "Credentials:       none; set one with `warren db credential set {} --role ROLE --password-file FILE`\n",
            d.name
        ));
    } else {
        s.push_str("Credentials:\n");
        let rows: Vec<Vec<String>> = d
            .credentials
            .iter()
            .map(|c| {
                vec![
                    format!("  {}", c.role),
                    timestamp(c.updated_at),
                    if c.decrypts {
                        "yes".to_owned()
                    } else {
                        format!("NO: set it again with `warren db credential set {} --role {} --password-file FILE`", d.name, c.role)
                    },
                ]
            })
            .collect();
        s.push_str(&table(&["  ROLE", "SET", "DECRYPTS"], &rows));
    }
    s
}

/// Reads the password from `--password-file` or `--password-env`.
async fn read_password(args: &PasswordArgs) -> anyhow::Result<String> {
    let password = match (&args.password_file, &args.password_env) {
        (Some(path), _) => read_password_file(path).await?,
        (None, Some(var)) => std::env::var(var).map_err(|e| match e {
            std::env::VarError::NotPresent => anyhow::anyhow!(
                "the environment variable {var} is not set; export it with the password, or use --password-file"
            ),
            std::env::VarError::NotUnicode(_) => anyhow::anyhow!(
                "the environment variable {var} is not valid UTF-8; put the password in a file and use --password-file"
            ),
        })?,
        (None, None) => anyhow::bail!("give the password with --password-file FILE or --password-env VAR"),
    };
    if password.is_empty() {
        anyhow::bail!(
            "the password is empty; put the role's password on the server in the file or variable"
        );
    }
    Ok(password)
}

async fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let cannot = |e: std::io::Error| {
        anyhow::anyhow!(
            "cannot read the password file {} ({e}); check the path and that it is readable",
            path.display()
        )
    };
    let file = tokio::fs::File::open(path).await.map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_PASSWORD_LEN as u64 + 3)
        .read_to_end(&mut bytes)
        .await
        .map_err(cannot)?;
    let mut text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "the password file {} is not UTF-8 text; write the password in it as text",
            path.display()
        )
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.len() > MAX_PASSWORD_LEN {
        anyhow::bail!(
            "the password in {} is longer than {MAX_PASSWORD_LEN} bytes; is it the right file?",
            path.display()
        );
    }
    Ok(text)
}

fn db_path(name: &str) -> String {
    format!("/v1/databases/{}", encode_segment(name))
}

/// Runs one `warren db` command; returns what to print.
pub(crate) async fn run(cmd: DbCmd) -> anyhow::Result<String> {
    Ok(match cmd {
        DbCmd::Add {
            name,
            route,
            database,
            settings,
            output,
            api,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("hostname".into(), json!(route));
            body.insert("database".into(), json!(database));
            settings.fields(&mut body)?;
            let v = ApiClient::new(&api)?
                .call(Method::POST, "/v1/databases", Some(Value::Object(body)))
                .await?;
            render(output, &v, |d: DbView| {
                format!(
                    "Added pooled database {} on {} ({} pooling, {} auth)\n{}",
                    d.name,
                    d.hostname,
                    d.pool_mode,
                    d.auth_mode,
                    if d.auth_mode == "identity" {
                        format!("Give the edge a role's password with `warren db credential set {} --role ROLE --password-file FILE`\n", d.name)
                    } else {
                        String::new()
                    }
                )
            })?
        }
        DbCmd::List { output, api } => {
            let v = ApiClient::new(&api)?
                .call(Method::GET, "/v1/databases", None)
                .await?;
            render(output, &v, |d: Vec<DbView>| list_text(&d))?
        }
        DbCmd::Show { name, output, api } => {
            let v = ApiClient::new(&api)?
                .call(Method::GET, &db_path(&name), None)
                .await?;
            render(output, &v, |d: DbView| show_text(&d))?
        }
        DbCmd::Set {
            name,
            route,
            database,
            settings,
            output,
            api,
        } => {
            let mut body = Map::new();
            if let Some(r) = route {
                body.insert("hostname".into(), json!(r));
            }
            if let Some(d) = database {
                body.insert("database".into(), json!(d));
            }
            settings.fields(&mut body)?;
            if body.is_empty() {
                anyhow::bail!("nothing to change; give the flags to change, like --pool-size 40 (see `warren db set --help`)");
            }
            let v = ApiClient::new(&api)?
                .call(Method::PATCH, &db_path(&name), Some(Value::Object(body)))
                .await?;
            render(output, &v, |d: DbView| {
                format!("Changed pooled database {}\n{}", d.name, show_text(&d))
            })?
        }
        DbCmd::Pools { name, output, api } => {
            let path = match &name {
                Some(n) => format!("{}/pools", db_path(n)),
                None => "/v1/pools".to_owned(),
            };
            let v = ApiClient::new(&api)?.call(Method::GET, &path, None).await?;
            render(output, &v, |p: Vec<PoolRow>| pools_text(&p))?
        }
        DbCmd::Remove { name, api } => {
            ApiClient::new(&api)?
                .call(Method::DELETE, &db_path(&name), None)
                .await?;
            format!("Removed pooled database {name} and its credentials\n")
        }
        DbCmd::Credential {
            cmd:
                CredentialCmd::Set {
                    name,
                    role,
                    password,
                    api,
                },
        } => {
            let client = ApiClient::new(&api)?;
            let password = read_password(&password).await?;
            let path = format!("{}/credentials/{}", db_path(&name), encode_segment(&role));
            client
                .call(Method::PUT, &path, Some(json!({ "password": password })))
                .await?;
            format!("Stored the password of role {role} for {name}, encrypted at the edge\n")
        }
        DbCmd::Credential {
            cmd: CredentialCmd::Remove { name, role, api },
        } => {
            let path = format!("{}/credentials/{}", db_path(&name), encode_segment(&role));
            ApiClient::new(&api)?
                .call(Method::DELETE, &path, None)
                .await?;
            format!("Removed the credential of role {role} from {name}\n")
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: DbCmd,
    }

    fn parse(args: &[&str]) -> Result<DbCmd, clap::Error> {
        Cli::try_parse_from(std::iter::once("db").chain(args.iter().copied())).map(|c| c.cmd)
    }

    #[test]
    fn command_line_shape() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let DbCmd::Add { settings, .. } = parse(&[
            "add",
            "orders",
            "--route",
            "db.example.com",
            "--database",
            "orders",
            "--pool-mode",
            "session",
            "--auth",
            "passthrough",
            "--pool-size",
            "40",
            "--min-idle",
            "2",
            "--idle-timeout",
            "10m",
            "--max-lifetime",
            "1h",
            "--checkout-timeout",
            "1500ms",
            "--cache",
            "--cache-max-age",
            "60s",
            "--cache-swr",
            "15s",
            "--cache-max-size",
            "64MiB",
        ])
        .unwrap() else {
            panic!("not add")
        };
        let mut body = Map::new();
        settings.fields(&mut body).unwrap();
        assert_eq!(
            Value::Object(body),
            json!({
                "pool_mode": "session",
                "auth_mode": "passthrough",
                "pool_size": 40,
                "min_idle": 2,
                "idle_timeout_secs": 600,
                "max_lifetime_secs": 3600,
                "checkout_timeout_ms": 1500,
                "cache": true,
                "cache_max_age_secs": 60,
                "cache_swr_secs": 15,
                "cache_max_bytes": 64 * 1024 * 1024,
            })
        );

        // Only what is given; --no-cache turns the cache off.
        let DbCmd::Set { settings, .. } = parse(&["set", "orders", "--no-cache"]).unwrap() else {
            panic!("not set")
        };
        let mut body = Map::new();
        settings.fields(&mut body).unwrap();
        assert_eq!(Value::Object(body), json!({ "cache": false }));

        // A password is never an argument, and one source is required.
        assert!(parse(&[
            "credential",
            "set",
            "orders",
            "--role",
            "app",
            "--password",
            "x"
        ])
        .is_err());
        assert!(parse(&["credential", "set", "orders", "--role", "app"]).is_err());
        assert!(parse(&[
            "credential",
            "set",
            "orders",
            "--role",
            "app",
            "--password-file",
            "f",
            "--password-env",
            "V"
        ])
        .is_err());
        assert!(parse(&[
            "credential",
            "set",
            "orders",
            "--role",
            "app",
            "--password-env",
            "V"
        ])
        .is_ok());
    }

    #[test]
    fn sizes_and_spans() {
        assert_eq!(size("64MiB"), Ok(64 << 20));
        assert_eq!(size("1gib"), Ok(1 << 30));
        assert_eq!(size("500MB"), Ok(500_000_000));
        assert_eq!(size("1000"), Ok(1000));
        assert!(size("lots").unwrap_err().contains("is not a size"));
        assert!(size("64 parsecs").is_err());
        assert!(size("99999999999TiB").unwrap_err().contains("too large"));
        assert_eq!(size_text(64 << 20), "64MiB");
        assert_eq!(size_text(500_000_000), "500MB");
        assert_eq!(size_text(1234), "1234B");
        assert_eq!(span(600), "10m");
        assert_eq!(span(3600), "1h");
        assert_eq!(span(90), "90s");
        assert!(secs("--idle-timeout", Duration::from_millis(1500))
            .unwrap_err()
            .to_string()
            .contains("is not a whole number of seconds"));
    }

    #[tokio::test]
    async fn a_password_file_loses_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        assert_eq!(read_password_file(&path).await.unwrap(), "s3cret");
        std::fs::write(&path, "two\nlines\n").unwrap();
        assert_eq!(read_password_file(&path).await.unwrap(), "two\nlines");
        std::fs::write(&path, "x".repeat(MAX_PASSWORD_LEN + 10)).unwrap();
        assert!(read_password_file(&path)
            .await
            .unwrap_err()
            .to_string()
            .contains("longer than 4096 bytes"));
        let e = read_password_file(&dir.path().join("missing"))
            .await
            .unwrap_err();
        assert!(
            e.to_string().starts_with("cannot read the password file"),
            "{e}"
        );
        let args = PasswordArgs {
            password_file: None,
            password_env: Some("WARREN_TEST_NO_SUCH_PASSWORD_VAR".into()),
        };
        assert!(read_password(&args)
            .await
            .unwrap_err()
            .to_string()
            .contains("is not set"));
    }
}

/// One pool, as `GET /v1/pools` shows it.
#[derive(Deserialize)]
struct PoolRow {
    database: String,
    role: String,
    mode: String,
    pool_size: u32,
    clients: u32,
    clients_active: u32,
    clients_waiting: u32,
    servers: u32,
    servers_idle: u32,
    transactions: u64,
    avg_wait_us: u64,
    checkout_timeouts: u64,
    servers_closed: u64,
    statements: usize,
}

fn pools_text(pools: &[PoolRow]) -> String {
    if pools.is_empty() {
        return "No pool yet: a pool is made at its first client\n".to_owned();
    }
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|p| {
            vec![
                p.database.clone(),
                p.role.clone(),
                p.mode.clone(),
                format!("{}/{}/{}", p.clients, p.clients_active, p.clients_waiting),
                format!("{}/{} of {}", p.servers, p.servers_idle, p.pool_size),
                p.transactions.to_string(),
                format!("{:.2}", p.avg_wait_us as f64 / 1000.0),
                p.checkout_timeouts.to_string(),
                p.servers_closed.to_string(),
                p.statements.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "DATABASE",
            "ROLE",
            "MODE",
            "CLIENTS/ACTIVE/WAITING",
            "SERVERS/IDLE",
            "TRANSACTIONS",
            "AVG WAIT MS",
            "TIMEOUTS",
            "CLOSED",
            "STATEMENTS",
        ],
        &rows,
    )
}
