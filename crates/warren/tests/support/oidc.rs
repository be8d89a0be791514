//! A real OpenID Connect provider (`tests/fixtures/oidc/provider.js`, the
//! npm `oidc-provider` package) and a headless Chromium driven by
//! `browser.js` (playwright-core), both installed by `scripts/test-deps.sh`
//! (tests that need them carry `cfg_attr(warren_missing_oidc, ignore)`, see
//! [`super::deps`]). [`Provider::start_controlled`] turns on the provider's
//! test control (`tamper.js`: the next ID token breaks one validation
//! rule), and [`sign_in`] drives a sign-in through the edge with curl,
//! without a browser.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::deps::{self, require, Dep};
use super::{curl, origins, Edge, Stack, DEADLINE};

/// The fixture directory.
pub fn fixtures() -> PathBuf {
    deps::oidc_fixtures(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// The test users (from provider.js).
pub const ALICE: (&str, &str) = ("alice@example.com", "alice-password");
pub const BOB: (&str, &str) = ("bob@other.test", "bob-password");
pub const CLIENT_ID: &str = "warren-test";
pub const CLIENT_SECRET: &str = "warren-test-secret";

/// Which provider [`alice_app`] signs in through.
pub enum Kind {
    /// [`Provider::start`].
    Plain,
    /// [`Provider::start_without_device_flow`].
    WithoutDeviceFlow,
    /// [`Provider::start_controlled`].
    Controlled,
}

/// An edge serving `host` (an HTTP echo origin) as the access application
/// `app`, whose one policy lets Alice in, with a provider of `kind` as its
/// identity provider `test`, asked for `scopes` (comma-separated).
pub async fn alice_app(host: &str, kind: Kind, scopes: &str) -> (Stack, Provider) {
    let echo = origins::http_echo().await;
    let s = Stack::start(
        &[],
        &format!("  - hostname: {host}\n    service: http://{echo}\n"),
    )
    .await;
    let e = &s.edge;
    e.ok(&["tunnel", "route", "dns", "office", host]).await;
    e.ok(&["access", "app", "create", "app", "--host", host])
        .await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "app",
        "alice",
        "--action",
        "allow",
        "--include",
        "email=alice@example.com",
    ])
    .await;
    let uris = [format!(
        "https://{host}:{}/.warren/callback",
        e.https.port()
    )];
    let (control, device_flow) = match kind {
        Kind::Plain => (false, true),
        Kind::WithoutDeviceFlow => (false, false),
        Kind::Controlled => (true, true),
    };
    let idp = Provider::start_with(&uris, s.path(), control, device_flow).await;
    e.ok(&[
        "access",
        "idp",
        "add",
        "test",
        "--issuer",
        &idp.issuer,
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
        "--scopes",
        scopes,
    ])
    .await;
    (s, idp)
}

/// A running provider.
pub struct Provider {
    _child: Child,
    pub issuer: String,
}

impl Provider {
    /// Starts the provider accepting these redirect URIs; waits for its
    /// readiness line.
    pub async fn start(redirect_uris: &[String], log_dir: &Path) -> Provider {
        Provider::start_with(redirect_uris, log_dir, false, true).await
    }

    /// [`Provider::start`] without the device authorization grant
    /// (`DEVICE_FLOW=0`): its discovery document names no device
    /// authorization endpoint.
    pub async fn start_without_device_flow(redirect_uris: &[String], log_dir: &Path) -> Provider {
        Provider::start_with(redirect_uris, log_dir, false, false).await
    }

    /// [`Provider::start`] with the test control on (`TEST_CONTROL=1`):
    /// see [`Provider::tamper_next`].
    pub async fn start_controlled(redirect_uris: &[String], log_dir: &Path) -> Provider {
        Provider::start_with(redirect_uris, log_dir, true, true).await
    }

    async fn start_with(
        redirect_uris: &[String],
        log_dir: &Path,
        control: bool,
        device_flow: bool,
    ) -> Provider {
        require(Dep::Oidc);
        let log = std::fs::File::create(log_dir.join("oidc-provider.log")).unwrap();
        let mut child = Command::new("node")
            .arg("provider.js")
            .current_dir(fixtures())
            .env("PORT", "0")
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URIS", redirect_uris.join(","))
            .env("TEST_CONTROL", if control { "1" } else { "0" })
            .env("DEVICE_FLOW", if device_flow { "1" } else { "0" })
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

    /// Arms `tamper` (a name in `tamper.js`) for the next ID token the
    /// token endpoint issues. Needs [`Provider::start_controlled`].
    pub async fn tamper_next(&self, tamper: &str) {
        let body = serde_json::json!({ "tamper": tamper }).to_string();
        let url = format!("{}/test/next-id-token", self.issuer);
        let r = curl(&[
            "-sS",
            "-i",
            "--max-time",
            "10",
            "-H",
            "content-type: application/json",
            "--data-binary",
            &body,
            &url,
        ])
        .await;
        assert_eq!(r.status, 200, "arming {tamper}: {} {}", r.body, r.stderr);
    }

    /// The test control's state: `pending`, `applied` (every tamper used,
    /// in order), `jwks_fetches`, `rotated_published`.
    pub async fn state(&self) -> Value {
        let url = format!("{}/test/state", self.issuer);
        let r = curl(&["-sS", "-i", "--max-time", "10", &url]).await;
        assert_eq!(r.status, 200, "{} {}", r.body, r.stderr);
        serde_json::from_str(&r.body).expect("the test control's state")
    }
}

/// Where a curl-driven sign-in ended.
#[derive(Debug)]
pub struct SignIn {
    pub status: u16,
    pub url: String,
    /// The last page, HTML entities decoded.
    pub text: String,
}

/// Opens `https://host{path}` at `edge` as a browser would (`Accept:
/// text/html`, cookies kept, redirects followed), signs in as `user` on
/// the provider's login form, and follows the redirects back to the edge:
/// its callback's page (a refusal), or the page signed in to. No browser:
/// curl with a cookie jar in `dir`.
pub async fn sign_in(
    edge: &Edge,
    host: &str,
    path: &str,
    user: (&str, &str),
    dir: &Path,
) -> SignIn {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let jar = dir.join(format!("cookies-{n}.txt")).display().to_string();
    let port = edge.https.port();
    let resolve = format!("{host}:{port}:127.0.0.1");
    let ca = edge.ca.display().to_string();
    let common = [
        "-sS",
        "-L",
        "--max-redirs",
        "20",
        "--max-time",
        "60",
        "--cacert",
        &ca,
        "--resolve",
        &resolve,
        "-c",
        &jar,
        "-b",
        &jar,
        "-H",
        "accept: text/html",
        "-w",
        "\n%{http_code} %{url_effective}",
    ];
    let start = format!("https://{host}:{port}{path}");
    let mut args = common.to_vec();
    args.push(&start);
    let (status, login, form) = page(&args).await;
    assert!(
        status == 200 && login.contains("/interaction/") && form.contains("name=\"username\""),
        "{start} did not lead to the provider's login form: {status} {login}\n{form}"
    );
    let (username, password) = (
        format!("username={}", user.0),
        format!("password={}", user.1),
    );
    let submit = format!("{login}/login");
    let mut args = common.to_vec();
    args.extend([
        "--data-urlencode",
        &username,
        "--data-urlencode",
        &password,
        &submit,
    ]);
    let (status, url, body) = page(&args).await;
    SignIn {
        status,
        url,
        text: unescape(&body),
    }
}

/// curl `args` (ending in `-w "\n%{http_code} %{url_effective}"`): the
/// last response's status, URL and body.
async fn page(args: &[&str]) -> (u16, String, String) {
    require(Dep::Curl);
    let o = tokio::time::timeout(
        Duration::from_secs(90),
        Command::new("curl").args(args).output(),
    )
    .await
    .expect("curl timed out")
    .expect("run curl");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "curl {args:?} failed: {}\n{out}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (body, last) = out.rsplit_once('\n').expect("curl's -w line");
    let (status, url) = last.split_once(' ').expect("status and URL");
    (status.parse().unwrap_or(0), url.to_owned(), body.to_owned())
}

/// Text with the HTML entities the edge's pages use decoded.
fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
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
    browse_with(url, user, resolve, then, expect_host, &[]).await
}

/// Opens the provider's device verification URL `url` (which carries the
/// user code) as the user on another device would: confirms the device,
/// signs in as `user`, and ends on the provider's page saying the device
/// is signed in.
pub async fn confirm_device(url: &str, user: (&str, &str)) -> Visit {
    browse_with(
        url,
        user,
        &[],
        None,
        None,
        &[("CONFIRM", "#confirm"), ("DONE", "#device-done")],
    )
    .await
}

/// [`browse`] with more of `browser.js`'s settings in `envs`: `CONFIRM`
/// (a selector clicked before the login form, such as a sign-in
/// button), `THEN_WAIT` (a selector waited for on `then`'s page),
/// `SCREENSHOT` (a PNG of the last page).
pub async fn browse_env(
    url: &str,
    user: (&str, &str),
    then: Option<&str>,
    envs: &[(&str, &str)],
) -> Visit {
    browse_with(url, user, &[], then, None, envs).await
}

async fn browse_with(
    url: &str,
    user: (&str, &str),
    resolve: &[&str],
    then: Option<&str>,
    expect_host: Option<&str>,
    envs: &[(&str, &str)],
) -> Visit {
    require(Dep::Oidc);
    let mut cmd = Command::new("node");
    cmd.envs(envs.iter().copied());
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
