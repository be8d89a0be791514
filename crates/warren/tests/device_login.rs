//! Sign-in on a host without a browser, against the real provider
//! (`tests/fixtures/oidc/provider.js`): `warren access login --device` (and
//! without `--device` in an SSH session) prints the provider's verification
//! URL and user code, the user confirms on "another device" (headless
//! Chromium), and the CLI caches a token that reaches the app; a user the
//! policy refuses gets its sentence and no token; and, with a provider
//! that has no device grant (`DEVICE_FLOW=0`), the fallback: a URL whose
//! last page shows a one-time code, pasted into the CLI's stdin.

mod support;

use std::process::Stdio;

use support::oidc::{self, browse, confirm_device, Provider, ALICE, BOB};
use support::{Proc, Stack};
use tokio::io::AsyncWriteExt;

const APP: &str = "app.example.com";

struct Device {
    s: Stack,
    _idp: Provider,
    port: u16,
    home: tempfile::TempDir,
}

impl Device {
    /// APP (an HTTP echo origin, a policy allowing Alice) and the provider,
    /// with or without its device grant.
    async fn start(device_flow: bool) -> Device {
        let kind = if device_flow {
            oidc::Kind::Plain
        } else {
            oidc::Kind::WithoutDeviceFlow
        };
        let (s, idp) = oidc::alice_app(APP, kind, "openid,email,profile,groups").await;
        let port = s.edge.https.port();
        Device {
            s,
            _idp: idp,
            port,
            home: support::temp_dir(),
        }
    }

    /// `warren access login [extra] https://APP:PORT` against the edge on
    /// 127.0.0.1, with its own `WARREN_HOME`, and `envs`.
    fn login(&self, extra: &[&str], envs: &[(&str, &str)], stdin: Stdio) -> Proc {
        let url = format!("https://{APP}:{}", self.port);
        let edge = format!("127.0.0.1:{}", self.port);
        let ca = self.s.edge.ca.display().to_string();
        let home = self.home.path().display().to_string();
        let mut args = vec!["access", "login"];
        args.extend_from_slice(extra);
        args.extend([
            url.as_str(),
            "--edge",
            &edge,
            "--ca-cert",
            &ca,
            "--timeout",
            "60s",
        ]);
        let mut all = vec![
            ("WARREN_HOME", home.as_str()),
            ("SSH_CONNECTION", ""),
            ("SSH_TTY", ""),
            ("DISPLAY", ""),
        ];
        all.extend_from_slice(envs);
        Proc::spawn_stdin("login", &args, &all, self.s.path(), stdin)
    }

    fn token_file(&self) -> std::path::PathBuf {
        self.home.path().join("tokens").join(APP)
    }

    /// The cached token reaches the app.
    async fn token_works(&self) {
        let home = self.home.path().display().to_string();
        let t = support::warren(&["access", "token", APP], &[("WARREN_HOME", &home)]).await;
        assert_eq!(t.code, 0, "{}", t.stderr);
        let token = t.stdout.trim();
        assert!(token.split('.').count() == 3, "not a JWT: {token}");
        let header = format!("warren-access-token: {token}");
        let r = self.s.edge.curl(APP, "/", &["-H", &header]).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

/// The verification URL carrying the user code, and the user code, from
/// what the CLI printed.
async fn device_prompt(p: &Proc) -> (String, String) {
    let log = p.wait_log("Waiting for the sign-in").await;
    let code = log
        .lines()
        .find_map(|l| l.strip_prefix("and enter the code"))
        .expect("the user code line")
        .trim()
        .to_owned();
    let complete = log
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http") && l.contains("user_code="))
        .expect("the complete verification URL")
        .to_owned();
    (complete, code)
}

#[cfg_attr(
    any(warren_missing_curl, warren_missing_oidc),
    ignore = "needs curl and the OIDC fixture with Chromium; .ci/run and scripts/test-deps.sh install what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_grant_signs_in_and_the_token_reaches_the_app() {
    let d = Device::start(true).await;
    let mut p = d.login(&["--device"], &[], Stdio::null());
    let (complete, code) = device_prompt(&p).await;
    assert!(
        !code.is_empty() && complete.contains("/device"),
        "{complete} {code}"
    );
    let v = confirm_device(&complete, ALICE).await;
    assert!(v.body().contains("device is signed in"), "{:?}", v.json);
    let st = p.wait_exit().await;
    assert!(st.success(), "{}", p.logs());
    let logs = p.logs();
    assert!(logs.contains(&format!("Signed in to {APP}")), "{logs}");
    d.token_works().await;
    // The CLI never prints the token.
    let token = std::fs::read_to_string(d.token_file()).unwrap();
    assert!(!logs.contains(token.trim()), "{logs}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(d.token_file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    support::eventually(
        "Alice's sign-in in the audit log",
        support::DEADLINE,
        || async {
            d.s.edge.audit().await.into_iter().find(|x| {
                x["kind"] == "login"
                    && x["identity"] == "alice@example.com"
                    && x["decision"] == "signed_in"
            })
        },
    )
    .await;
}

#[cfg_attr(
    any(warren_missing_curl, warren_missing_oidc),
    ignore = "needs curl and the OIDC fixture with Chromium; .ci/run and scripts/test-deps.sh install what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_ssh_the_device_grant_is_automatic_and_the_policy_decides() {
    let d = Device::start(true).await;
    // No --device: an SSH session has no browser to open.
    let mut p = d.login(
        &[],
        &[("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22")],
        Stdio::null(),
    );
    p.wait_log("No browser can be opened here (this is an SSH session)")
        .await;
    let (complete, _) = device_prompt(&p).await;
    // Bob signs in at the provider, but the app's policy allows only Alice.
    let v = confirm_device(&complete, BOB).await;
    assert!(v.body().contains("device is signed in"), "{:?}", v.json);
    let st = p.wait_exit().await;
    assert!(!st.success(), "{}", p.logs());
    let logs = p.logs();
    assert!(
        logs.contains("Access to app was denied."),
        "no refusal sentence: {logs}"
    );
    assert!(!d.token_file().exists(), "a refused user got a token");
    // The audit log is written in batches: wait for the refusal's entry.
    support::eventually(
        "Bob's refused sign-in in the audit log",
        support::DEADLINE,
        || async {
            d.s.edge.audit().await.into_iter().find(|x| {
                x["kind"] == "login" && x["identity"] == "bob@other.test" && x["decision"] == "deny"
            })
        },
    )
    .await;
    let audit = d.s.edge.audit().await;
    assert!(
        !audit
            .iter()
            .any(|x| x["kind"] == "login" && x["decision"] == "signed_in"),
        "{audit:#?}"
    );
}

#[cfg_attr(
    any(warren_missing_curl, warren_missing_oidc),
    ignore = "needs curl and the OIDC fixture with Chromium; .ci/run and scripts/test-deps.sh install what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_device_grant_a_pasted_code_signs_in_once() {
    let d = Device::start(false).await;
    let mut p = d.login(&["--device"], &[], Stdio::piped());
    let log = p.wait_log("/.warren/login?cli=paste").await;
    let url = log
        .lines()
        .map(str::trim)
        .find(|l| l.ends_with("/.warren/login?cli=paste"))
        .expect("the URL to open")
        .to_owned();
    assert_eq!(
        url,
        format!("https://{APP}:{}/.warren/login?cli=paste", d.port)
    );
    let v = browse(&url, ALICE, &[APP], None, None).await;
    assert_eq!(v.status(), 200, "{:?}", v.json);
    let body = v.body();
    let code = body
        .lines()
        .find(|l| l.contains("Paste this code"))
        .and_then(|l| l.rsplit(": ").next())
        .expect("the code on the page")
        .trim()
        .to_owned();
    assert!(code.len() >= 20, "{body}");
    // The page shows a code, not the token.
    assert!(code.split('.').count() == 1, "{code}");
    let mut stdin = p.child.stdin.take().unwrap();
    stdin
        .write_all(format!("{code}\n").as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    let st = p.wait_exit().await;
    assert!(st.success(), "{}", p.logs());
    assert!(p.logs().contains(&format!("Signed in to {APP}")));
    d.token_works().await;
    // The code works once.
    let again =
        d.s.edge
            .curl(
                APP,
                "/.warren/device/redeem",
                &["--data-binary", &format!(r#"{{"code":"{code}"}}"#)],
            )
            .await;
    assert_eq!(again.status, 410, "{}", again.body);
    assert!(again.body.contains("code-not-valid"), "{}", again.body);
}
