//! What the end-to-end tests need besides Rust, and where it is looked
//! for. Shared by `build.rs` and the harness, so both agree:
//!
//! - `build.rs` (outside CI) sets `cfg(warren_missing_*)` for each missing
//!   dependency; the tests that need it carry
//!   `#[cfg_attr(warren_missing_*, ignore = "...")]`, so they are skipped
//!   *and counted* (nextest's `N skipped`) instead of passing empty.
//! - Under `CI` (set and not `false`/`0`) nothing is marked missing: the
//!   tests run, and the harness's [`require`] fails them with the install
//!   hint.
//!
//! `WARREN_TEST_PRETEND_MISSING=postgres,oidc,...` makes both sides treat
//! those dependencies as missing, to exercise the skip and the failure.
//!
//! Plain `std`: it is compiled into the build script too.

use std::path::{Path, PathBuf};

/// Names dependencies to treat as missing (comma-separated), for testing
/// the skip and the failure paths.
pub const PRETEND_VAR: &str = "WARREN_TEST_PRETEND_MISSING";

/// One outside dependency of some end-to-end tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dep {
    /// curl, the HTTP client of most tests.
    Curl,
    /// PostgreSQL server binaries (initdb, pg_ctl) and psql.
    Postgres,
    /// pgbench.
    Pgbench,
    /// The OIDC provider fixture (node, its node_modules) and Chromium.
    Oidc,
    /// python3 (edits or reads the edge's SQLite file).
    Python3,
    /// The `prometheus_client` Python package, whose OpenMetrics parser
    /// reads what `/metrics` serves.
    PromClient,
    /// The `kubernetes-validate` Python package (the Kubernetes API's
    /// schemas), for `deploy/kubernetes`.
    KubeValidate,
    /// The `openapi-spec-validator` Python package, which checks the admin
    /// API's `/api/openapi.json`.
    OpenApiValidator,
    /// `systemd-analyze`, for `deploy/systemd`.
    SystemdAnalyze,
}

impl Dep {
    pub const ALL: [Dep; 9] = [
        Dep::Curl,
        Dep::Postgres,
        Dep::Pgbench,
        Dep::Oidc,
        Dep::Python3,
        Dep::PromClient,
        Dep::KubeValidate,
        Dep::OpenApiValidator,
        Dep::SystemdAnalyze,
    ];

    /// The name used in `WARREN_TEST_PRETEND_MISSING` and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Dep::Curl => "curl",
            Dep::Postgres => "postgres",
            Dep::Pgbench => "pgbench",
            Dep::Oidc => "oidc",
            Dep::Python3 => "python3",
            Dep::PromClient => "prometheus_client",
            Dep::KubeValidate => "kubernetes-validate",
            Dep::OpenApiValidator => "openapi-spec-validator",
            Dep::SystemdAnalyze => "systemd-analyze",
        }
    }

    /// The cfg `build.rs` sets when this is missing (outside CI).
    pub fn cfg(self) -> &'static str {
        match self {
            Dep::Curl => "warren_missing_curl",
            Dep::Postgres => "warren_missing_postgres",
            Dep::Pgbench => "warren_missing_pgbench",
            Dep::Oidc => "warren_missing_oidc",
            Dep::Python3 => "warren_missing_python3",
            Dep::PromClient => "warren_missing_prometheus_client",
            Dep::KubeValidate => "warren_missing_kubernetes_validate",
            Dep::OpenApiValidator => "warren_missing_openapi_spec_validator",
            Dep::SystemdAnalyze => "warren_missing_systemd_analyze",
        }
    }

    /// How to install it.
    pub fn hint(self) -> &'static str {
        match self {
            Dep::Curl => "install it with .ci/run (apt-get install curl)",
            Dep::Postgres | Dep::Pgbench => {
                "install them with .ci/run (apt-get install postgresql postgresql-client)"
            }
            Dep::Oidc => {
                "install them with scripts/test-deps.sh (Chromium, and npm ci in tests/fixtures/oidc; needs Node.js 20+)"
            }
            Dep::Python3 => "install it with .ci/run (apt-get install python3)",
            Dep::PromClient => {
                "install it with scripts/test-deps.sh (pip install into tests/fixtures/metrics/site)"
            }
            Dep::KubeValidate => {
                "install it with scripts/test-deps.sh (pip install into tests/fixtures/deploy/site)"
            }
            Dep::OpenApiValidator => {
                "install it with scripts/test-deps.sh (pip install into tests/fixtures/openapi/site)"
            }
            Dep::SystemdAnalyze => "install it with .ci/run (apt-get install systemd)",
        }
    }

    /// The files this dependency is made of, or what is missing.
    /// `manifest_dir` is `crates/warren`.
    pub fn find(self, manifest_dir: &Path) -> Result<Vec<PathBuf>, String> {
        if pretended_missing(self) {
            return Err(format!("{} names it", PRETEND_VAR));
        }
        let tool = |name: &str| on_path(name).ok_or_else(|| format!("no {name} on PATH"));
        match self {
            Dep::Curl => Ok(vec![tool("curl")?]),
            Dep::Python3 => Ok(vec![tool("python3")?]),
            Dep::Pgbench => Ok(vec![tool("pgbench")?]),
            Dep::SystemdAnalyze => Ok(vec![tool("systemd-analyze")?]),
            Dep::KubeValidate => {
                let module =
                    deploy_fixtures(manifest_dir).join("site/kubernetes_validate/__init__.py");
                if !module.is_file() {
                    return Err(format!("{} is not installed", module.display()));
                }
                Ok(vec![tool("python3")?, module])
            }
            Dep::OpenApiValidator => {
                let module =
                    openapi_fixtures(manifest_dir).join("site/openapi_spec_validator/__init__.py");
                if !module.is_file() {
                    return Err(format!("{} is not installed", module.display()));
                }
                Ok(vec![tool("python3")?, module])
            }
            Dep::PromClient => {
                let parser = metrics_fixtures(manifest_dir)
                    .join("site/prometheus_client/openmetrics/parser.py");
                if !parser.is_file() {
                    return Err(format!("{} is not installed", parser.display()));
                }
                Ok(vec![tool("python3")?, parser])
            }
            Dep::Postgres => {
                let bin = postgres_bin_dir().ok_or(
                    "no PostgreSQL server binaries (initdb and pg_ctl on PATH or in /usr/lib/postgresql/*/bin)",
                )?;
                Ok(vec![bin.join("initdb"), bin.join("pg_ctl"), tool("psql")?])
            }
            Dep::Oidc => {
                let modules = oidc_fixtures(manifest_dir).join("node_modules");
                let mut found = vec![tool("node")?];
                for package in ["oidc-provider", "playwright-core"] {
                    let stamp = modules.join(package).join("package.json");
                    if !stamp.is_file() {
                        return Err(format!(
                            "{} is not installed",
                            modules.join(package).display()
                        ));
                    }
                    found.push(stamp);
                }
                let chromium = PathBuf::from("/usr/bin/chromium");
                if !is_executable(&chromium) {
                    return Err("no /usr/bin/chromium".into());
                }
                found.push(chromium);
                Ok(found)
            }
        }
    }

    /// Existing directories where this dependency would appear once it is
    /// installed (for `build.rs` to notice an install).
    pub fn watch(self, manifest_dir: &Path) -> Vec<PathBuf> {
        let mut dirs = path_dirs();
        match self {
            Dep::Postgres => dirs.push(PathBuf::from("/usr/lib/postgresql")),
            Dep::Oidc => dirs.push(oidc_fixtures(manifest_dir)),
            Dep::PromClient => dirs.push(metrics_fixtures(manifest_dir)),
            Dep::KubeValidate => dirs.push(deploy_fixtures(manifest_dir)),
            Dep::OpenApiValidator => dirs.push(openapi_fixtures(manifest_dir)),
            _ => {}
        }
        dirs.retain(|d| d.is_dir());
        dirs
    }
}

/// Whether the tests run under CI: `CI` is set to anything but ``,
/// `false` or `0`. There a missing dependency is a failure, never a skip.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "false" | "0"))
}

fn pretended_missing(dep: Dep) -> bool {
    std::env::var(PRETEND_VAR).is_ok_and(|v| v.split(',').any(|name| name.trim() == dep.name()))
}

/// The directories on `PATH`.
pub fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable `name` on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    path_dirs()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// The directory of the PostgreSQL server binaries: that of `initdb` on
/// `PATH` if `pg_ctl` is beside it (`/usr/local/bin/initdb` may be a lone
/// wrapper), else the newest `/usr/lib/postgresql/*/bin`.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    if pretended_missing(Dep::Postgres) {
        return None;
    }
    if let Some(dir) = on_path("initdb").and_then(|p| p.parent().map(Path::to_path_buf)) {
        if is_executable(&dir.join("pg_ctl")) {
            return Some(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| is_executable(&p.join("initdb")) && is_executable(&p.join("pg_ctl")))
        .collect();
    found.sort();
    found.pop()
}

/// `tests/fixtures/oidc` of the workspace.
pub fn oidc_fixtures(manifest_dir: &Path) -> PathBuf {
    // crates/warren → the workspace root.
    let root = manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir);
    root.join("tests/fixtures/oidc")
}

/// Where the metrics tests' parser lives (`parse.py`, and the
/// `prometheus_client` package installed beside it in `site/`).
pub fn metrics_fixtures(manifest_dir: &Path) -> PathBuf {
    let root = manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir);
    root.join("tests/fixtures/metrics")
}

/// Where the deployment tests' validator is installed (`site/`).
pub fn deploy_fixtures(manifest_dir: &Path) -> PathBuf {
    let root = manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir);
    root.join("tests/fixtures/deploy")
}

/// Where the OpenAPI test's script lives (`validate.py`, and the
/// `openapi-spec-validator` package installed beside it in `site/`).
pub fn openapi_fixtures(manifest_dir: &Path) -> PathBuf {
    let root = manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir);
    root.join("tests/fixtures/openapi")
}

/// Panics, saying what is missing and how to install it, unless `dep` is
/// here. The harness calls it before using a dependency: a test that was
/// not skipped (under CI, or with `--run-ignored`) must fail without it,
/// never pass without exercising anything.
pub fn require(dep: Dep) {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Err(missing) = dep.find(manifest_dir) {
        let why = if is_ci() {
            "under CI a missing test dependency is a failure, never a skip"
        } else {
            "outside CI the build marks such a test ignored; it ran anyway (--run-ignored, or the dependency went away after the build)"
        };
        panic!(
            "this test needs {} but it is missing ({missing}); {}; {why}",
            dep.name(),
            dep.hint()
        );
    }
}
