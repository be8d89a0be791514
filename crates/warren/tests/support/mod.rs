//! The one end-to-end harness: real `warren` processes (edge, connector,
//! access client), real peers (curl, psql, pgbench, PostgreSQL), and small
//! origins written here, all on 127.0.0.1.
//!
//! Every process is killed when its handle drops; every wait has a
//! deadline and says what it was waiting for when it runs out.

// Every test binary compiles the whole harness and uses only part of it
// (hence also the re-exports below).
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod access;
pub mod dashboard;
pub mod deps;
pub mod inproc;
pub mod oidc;
pub mod origins;
pub mod ports;
pub mod postgres;

mod curl;
mod edge;
mod load;
mod relay;
mod stack;

pub use curl::{curl, Curl};
pub use edge::{edge_tls, edge_tls_stream, tunnel_json, Edge, HttpsTarget};
pub use load::{load, Load, LoadResult};
pub use relay::UdpRelay;
pub use stack::{write_config, AccessTcp, Connector, Stack};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
/// How long any single readiness wait may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The binary under test.
pub fn warren_bin() -> &'static str {
    env!("CARGO_BIN_EXE_warren")
}

/// Polls `f` until it returns `Some`, or panics naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A temporary directory, removed on drop.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("warren-e2e-")
        .tempdir()
        .expect("temp dir")
}

/// A spawned process whose stderr goes to a log file; killed on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str], envs: &[(&str, &str)], log_dir: &Path) -> Proc {
        Proc::spawn_stdin(name, args, envs, log_dir, Stdio::null())
    }

    /// [`Proc::spawn`] with `stdin` (e.g. `Stdio::piped()`, then written
    /// through `child.stdin`).
    pub fn spawn_stdin(
        name: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        log_dir: &Path,
        stdin: Stdio,
    ) -> Proc {
        let log = log_dir.join(format!("{name}-{}.log", rand_suffix()));
        let err = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(warren_bin());
        cmd.args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(err)
            .env("RUST_LOG", "info")
            .env_remove("WARREN_TOKEN")
            .env_remove("WARREN_API")
            .env_remove("WARREN_API_TOKEN")
            .env_remove("WARREN_SERVICE_TOKEN_ID")
            .env_remove("WARREN_SERVICE_TOKEN_SECRET")
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Proc {
            child,
            log,
            name: name.to_owned(),
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub async fn wait_log(&self, needle: &str) -> String {
        let what = format!("{} to log {needle:?}", self.name);
        eventually(&what, DEADLINE, || async {
            let l = self.logs();
            l.contains(needle).then_some(l)
        })
        .await
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("process is running")
    }

    pub fn signal(&self, sig: &str) {
        let st = std::process::Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill -s {sig} failed");
    }

    /// Waits for the process to exit; returns its status.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        match tokio::time::timeout(DEADLINE, self.child.wait()).await {
            Ok(s) => s.expect("wait"),
            Err(_) => panic!("{} did not exit in time; log:\n{}", self.name, self.logs()),
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Output of a command.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a fixture's Python script with `args`, `input` on its standard
/// input, to completion (within [`DEADLINE`]).
pub async fn python(script: &Path, args: &[&Path], input: &[u8]) -> std::process::Output {
    use tokio::io::AsyncWriteExt as _;
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("the python script timed out")
        .unwrap()
}

/// Runs `warren` with arguments and environment, to completion.
pub async fn warren(args: &[&str], envs: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(warren_bin());
    cmd.args(args)
        .env_remove("WARREN_TOKEN")
        .env_remove("WARREN_API")
        .env_remove("WARREN_API_TOKEN")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let o = tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .expect("warren command timed out")
        .expect("run warren");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}
