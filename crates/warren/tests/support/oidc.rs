//! A real OpenID Connect provider (`tests/fixtures/oidc/provider.js`, the
//! npm `oidc-provider` package) and a headless Chromium driven by
//! `browser.js` (playwright-core), both installed by `scripts/test-deps.sh`
//! (tests that need them carry `cfg_attr(warren_missing_oidc, ignore)`, see
//! [`super::deps`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::deps::{self, require, Dep};
use super::DEADLINE;

/// The fixture directory.
pub fn fixtures() -> PathBuf {
    deps::oidc_fixtures(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// The test users (from provider.js).
pub const ALICE: (&str, &str) = ("alice@example.com", "alice-password");
pub const BOB: (&str, &str) = ("bob@other.test", "bob-password");
pub const CLIENT_ID: &str = "warren-test";
pub const CLIENT_SECRET: &str = "warren-test-secret";

/// A running provider.
pub struct Provider {
    _child: Child,
    pub issuer: String,
}

impl Provider {
    /// Starts the provider accepting these redirect URIs; waits for its
    /// readiness line.
    pub async fn start(redirect_uris: &[String], log_dir: &Path) -> Provider {
        require(Dep::Oidc);
        let log = std::fs::File::create(log_dir.join("oidc-provider.log")).unwrap();
        let mut child = Command::new("node")
            .arg("provider.js")
            .current_dir(fixtures())
            .env("PORT", "0")
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URIS", redirect_uris.join(","))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start node provider.js");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("the OIDC provider did not get ready in time")
            .unwrap()
            .expect("the OIDC provider exited before getting ready");
        let v: Value = serde_json::from_str(&line).expect("readiness line");
        // Keep reading: a closed pipe would fail the provider's next write.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Provider {
            _child: child,
            issuer: v["issuer"].as_str().unwrap().to_owned(),
        }
    }
}

/// What the browser saw.
#[derive(Debug)]
pub struct Visit {
    pub json: Value,
}

impl Visit {
    pub fn status(&self) -> i64 {
        self.json["status"].as_i64().unwrap_or(0)
    }
    pub fn body(&self) -> &str {
        self.json["body"].as_str().unwrap_or("")
    }
    pub fn then(&self) -> &Value {
        &self.json["then"]
    }
}

/// Opens `url` in a fresh headless Chromium (hostnames in `resolve`
/// mapped to 127.0.0.1), signs in as `user` if the provider asks, and
/// optionally visits `then` afterwards. `expect_host` is where the
/// sign-in ends (default: the start URL's host).
pub async fn browse(
    url: &str,
    user: (&str, &str),
    resolve: &[&str],
    then: Option<&str>,
    expect_host: Option<&str>,
) -> Visit {
    require(Dep::Oidc);
    let mut cmd = Command::new("node");
    cmd.arg("browser.js")
        .current_dir(fixtures())
        .env("URL", url)
        .env("USERNAME", user.0)
        .env("PASSWORD", user.1)
        .env("RESOLVE", resolve.join(","))
        .env("TIMEOUT_MS", "20000")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(t) = then {
        cmd.env("THEN_URL", t);
    }
    if let Some(h) = expect_host {
        cmd.env("EXPECT_HOST", h);
    }
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("browser.js did not finish")
        .expect("run browser.js");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "browser.js printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(json.get("error").is_none(), "browser.js failed: {json}");
    Visit { json }
}
