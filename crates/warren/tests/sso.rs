//! Sign-in through a real OpenID Connect provider, driven by headless
//! Chromium: a protected page sends the browser to the provider's login
//! form and back; the origin gets an identity it verifies against the
//! edge's JWKS; email and group rules decide; a denied user gets a 403
//! page; logout; forged session cookies are refused; `warren access login`
//! through the loopback hand-off, `access token`, and `access tcp` using
//! the cached token.

mod support;

use serde_json::{json, Value};
use support::access::verify_assertion;
use support::deps::{require, Dep};
use support::oidc::{self, browse, Provider, ALICE, BOB};
use support::{origins, AccessTcp, Proc, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const APP: &str = "app.example.com";
const ADMIN: &str = "admin.example.com";
const DB: &str = "db.example.com";

struct Sso {
    s: Stack,
    _idp: Provider,
    port: u16,
}

/// APP (email rule: Alice) and ADMIN (group rule: admins), HTTP echo
/// origins, and DB (TCP echo; Alice), on routes that are not public.
async fn protected() -> Stack {
    let echo = origins::http_echo().await;
    let tcp = origins::tcp_echo().await;
    let s = Stack::start(
        &[],
        &format!(
            "  - hostname: {APP}\n    service: http://{echo}\n  - hostname: {ADMIN}\n    service: http://{echo}\n  - hostname: {DB}\n    service: tcp://{tcp}\n"
        ),
    )
    .await;
    let e = &s.edge;
    for h in [APP, ADMIN, DB] {
        e.ok(&["tunnel", "route", "dns", "office", h]).await;
    }
    e.ok(&["access", "app", "create", "app", "--host", APP])
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
    e.ok(&["access", "app", "create", "admin", "--host", ADMIN])
        .await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "admin",
        "admins",
        "--action",
        "allow",
        "--include",
        "group=admins",
    ])
    .await;
    e.ok(&["access", "app", "create", "db", "--host", DB]).await;
    e.ok(&[
        "access",
        "policy",
        "add",
        "db",
        "alice",
        "--action",
        "allow",
        "--include",
        "email=alice@example.com",
    ])
    .await;
    s
}

impl Sso {
    async fn start() -> Sso {
        let s = protected().await;
        let e = &s.edge;
        let port = e.https.port();
        let uris: Vec<String> = [APP, ADMIN, DB]
            .iter()
            .map(|h| format!("https://{h}:{port}/.warren/callback"))
            .collect();
        let idp = Provider::start(&uris, s.path()).await;
        e.ok(&[
            "access",
            "idp",
            "add",
            "test",
            "--issuer",
            &idp.issuer,
            "--client-id",
            oidc::CLIENT_ID,
            "--client-secret",
            oidc::CLIENT_SECRET,
            "--scopes",
            "openid,email,profile,groups",
        ])
        .await;
        Sso { s, _idp: idp, port }
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }
}

#[cfg_attr(
    any(warren_missing_curl, warren_missing_oidc),
    ignore = "needs curl and the OIDC fixture with Chromium; .ci/run and scripts/test-deps.sh install what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_in_policies_identity_and_logout() {
    let sso = Sso::start().await;
    let e = &sso.s.edge;
    let hosts = [APP, ADMIN];

    // Alice: protected page → provider's form → back → the origin's answer.
    let v = browse(
        &sso.url(APP, "/hello?x=1"),
        ALICE,
        &hosts,
        Some(&sso.url(APP, "/.warren/logout")),
        None,
    )
    .await;
    assert_eq!(v.status(), 200, "{:?}", v.json);
    assert_eq!(v.json["url"], sso.url(APP, "/hello?x=1"));
    let seen: Value = serde_json::from_str(v.body()).expect("the echo origin's JSON");
    assert_eq!(seen["path"], "/hello?x=1");
    let jwt = seen["headers"]["warren-access-jwt-assertion"]
        .as_str()
        .expect("assertion");
    assert!(
        seen["headers"]["cookie"]
            .as_str()
            .is_none_or(|c| !c.contains("warren_session")),
        "the edge's cookie reached the origin: {seen}"
    );
    let jwks = e.curl(APP, "/.warren/certs", &[]).await;
    let claims = verify_assertion(jwt, &jwks.body, &e.app_tag("app").await, APP);
    assert_eq!(claims["email"], "alice@example.com", "{claims}");
    assert_eq!(claims["groups"], json!(["admins", "staff"]), "{claims}");
    assert_eq!(claims["type"], "user");
    let cookie = v.json["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "warren_session")
        .expect("session cookie")
        .clone();
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["secure"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Lax", "{cookie}");
    // Logout revokes the session.
    assert_eq!(v.then()["status"], 200);
    assert!(v.then()["body"]
        .as_str()
        .unwrap()
        .contains("You are signed out of app"));
    let sessions = e
        .ok(&["access", "session", "list", "--output", "json"])
        .await;
    let sessions: Vec<Value> = serde_json::from_str(&sessions).unwrap();
    assert!(
        sessions
            .iter()
            .any(|s| s["email"] == "alice@example.com" && !s["revoked_at"].is_null()),
        "{sessions:?}"
    );

    // Bob is not on the email rule: a 403 page that names the application.
    let v = browse(&sso.url(APP, "/"), BOB, &hosts, None, None).await;
    assert_eq!(v.status(), 403, "{:?}", v.json);
    assert!(
        v.body().contains("Access to app was denied"),
        "{}",
        v.body()
    );
    assert!(
        !v.body().contains("email"),
        "the page must not say which rule: {}",
        v.body()
    );

    // Group rule: admins only.
    let v = browse(&sso.url(ADMIN, "/"), ALICE, &hosts, None, None).await;
    assert_eq!(v.status(), 200, "{:?}", v.json);
    let v = browse(&sso.url(ADMIN, "/"), BOB, &hosts, None, None).await;
    assert_eq!(v.status(), 403, "{:?}", v.json);

    let audit = e.audit().await;
    assert!(
        audit.iter().any(|x| x["identity"] == "bob@other.test"
            && x["decision"] == "deny"
            && x["app"] == "app"
            && x["rule"] == "default deny"),
        "{audit:#?}"
    );
    assert!(
        audit.iter().any(|x| x["identity"] == "alice@example.com"
            && x["decision"] == "allow"
            && x["rule"] == "admins: include group admins"),
        "{audit:#?}"
    );
    assert!(
        audit
            .iter()
            .any(|x| x["kind"] == "login" && x["identity"] == "bob@other.test"),
        "{audit:#?}"
    );
}

/// The newest signing key of the edge, read from its store as only the
/// edge can.
fn edge_key(e: &support::Edge) -> (String, Vec<u8>) {
    require(Dep::Python3);
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute('SELECT kid, hex(pkcs8) FROM signing_keys ORDER BY created_at DESC LIMIT 1').fetchone(); print(r[0], r[1])",
        ])
        .arg(e.dir.join("warren.db"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (kid, hex) = text.trim().split_once(' ').expect("a signing key");
    (kid.to_owned(), hex::decode(hex).unwrap())
}

fn mint(kid: &str, pkcs8: &[u8], claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ec_der(pkcs8),
    )
    .unwrap()
}

#[cfg_attr(
    any(warren_missing_curl, warren_missing_python3),
    ignore = "needs curl and python3; .ci/run installs what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_session_cookies_are_refused() {
    let s = protected().await;
    let e = &s.edge;
    let (tag, other_tag) = (e.app_tag("app").await, e.app_tag("admin").await);
    let (kid, key) = edge_key(e);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = |aud: &str, exp: i64| {
        json!({"iss": format!("https://{APP}"), "aud": [aud], "sub": "user-alice",
               "email": "alice@example.com", "groups": [], "type": "user",
               "iat": now, "exp": exp, "sid": "s-forged"})
    };
    let with = |token: String| async move {
        let cookie = format!("Cookie: warren_session={token}");
        e.curl(APP, "/", &["-H", &cookie]).await
    };
    // Signed with the edge's own key (only the edge has it): accepted,
    // which shows the forgeries below differ in one thing each.
    let r = with(mint(&kid, &key, &claims(&tag, now + 300))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Expired.
    let r = with(mint(&kid, &key, &claims(&tag, now - 10))).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.headers.contains("warren-error: sign-in-required"));
    // Another application's audience.
    assert_eq!(
        with(mint(&kid, &key, &claims(&other_tag, now + 300)))
            .await
            .status,
        401
    );
    // Same key id, another key: a bad signature.
    let rng = ring::rand::SystemRandom::new();
    let other = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    assert_eq!(
        with(mint(&kid, other.as_ref(), &claims(&tag, now + 300)))
            .await
            .status,
        401
    );
    // alg "none".
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(format!(r#"{{"alg":"none","kid":"{kid}"}}"#)),
        b64.encode(claims(&tag, now + 300).to_string())
    );
    assert_eq!(with(none).await.status, 401);
}

/// `warren access login` with the browser coming back to the CLI's
/// loopback listener; returns once the CLI exited.
async fn cli_login(sso: &Sso, host: &str, home: &std::path::Path) {
    let url = sso.url(host, "");
    let home_s = home.display().to_string();
    let mut p = Proc::spawn(
        "login",
        &["access", "login", &url, "--no-browser", "--timeout", "60s"],
        &[("WARREN_HOME", &home_s)],
        sso.s.path(),
    );
    browser_for(&p, host).await;
    let st = p.wait_exit().await;
    assert!(st.success(), "{}", p.logs());
    assert!(
        p.logs().contains(&format!("Signed in to {host}")),
        "{}",
        p.logs()
    );
}

/// Sends `msg` through `addr` to the TCP echo origin, half-closes, and
/// returns everything that came back.
async fn echo(addr: std::net::SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(msg).await.unwrap();
    c.shutdown().await.unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).await.unwrap();
    back
}

/// Signs in as Alice through the URL `p` printed, coming back to its
/// loopback listener.
async fn browser_for(p: &Proc, host: &str) {
    let log = p.wait_log("/.warren/login?cli=").await;
    let open = log
        .lines()
        .find(|l| l.contains("/.warren/login?cli="))
        .unwrap()
        .trim()
        .to_owned();
    let port = open
        .split("127.0.0.1%3A")
        .nth(1)
        .and_then(|r| r.split('%').next())
        .expect("loopback port in the URL");
    let v = browse(
        &open,
        ALICE,
        &[host],
        None,
        Some(&format!("127.0.0.1:{port}")),
    )
    .await;
    assert!(v.body().contains("Signed in"), "{:?}", v.json);
}

#[cfg_attr(
    any(warren_missing_curl, warren_missing_oidc),
    ignore = "needs curl and the OIDC fixture with Chromium; .ci/run and scripts/test-deps.sh install what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_login_token_and_access_tcp() {
    let sso = Sso::start().await;
    let e = &sso.s.edge;
    let home = support::temp_dir();
    let home_s = home.path().display().to_string();

    cli_login(&sso, APP, home.path()).await;
    let cached = home.path().join("tokens").join(APP);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cached).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let t = support::warren(&["access", "token", APP], &[("WARREN_HOME", &home_s)]).await;
    assert_eq!(t.code, 0, "{}", t.stderr);
    let header = format!("warren-access-token: {}", t.stdout.trim());
    let r = e.curl(APP, "/", &["-H", &header]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // No token for a hostname the user did not sign in to.
    let none = support::warren(&["access", "token", DB], &[("WARREN_HOME", &home_s)]).await;
    assert_ne!(none.code, 0);
    assert!(
        none.stderr
            .contains("warren access login https://db.example.com"),
        "{}",
        none.stderr
    );

    // access tcp without a sign-in for the hostname asks for one first ...
    let first = AccessTcp::spawn(e, DB, sso.s.path(), &[("WARREN_HOME", &home_s)]);
    first
        .wait_log("db.example.com: it needs you to sign in.")
        .await;
    browser_for(&first, DB).await;
    let first = AccessTcp::ready(first).await;
    assert_eq!(echo(first.addr, b"hi").await, b"hi<eof>");
    drop(first);
    // ... and the next one uses the cached token without asking.
    let access = AccessTcp::start_with(e, DB, sso.s.path(), &[("WARREN_HOME", &home_s)]).await;
    assert!(
        !access.proc.logs().contains("sign in"),
        "{}",
        access.proc.logs()
    );
    assert_eq!(echo(access.addr, b"hello").await, b"hello<eof>");

    // Revoking the user's sessions closes an open connection and stops
    // the token.
    let mut open = tokio::net::TcpStream::connect(access.addr).await.unwrap();
    open.write_all(b"ping").await.unwrap();
    let mut four = [0u8; 4];
    open.read_exact(&mut four).await.unwrap();
    let t0 = tokio::time::Instant::now();
    e.ok(&["access", "session", "revoke", "alice@example.com"])
        .await;
    let mut rest = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        open.read_to_end(&mut rest),
    )
    .await
    .expect("the connection was not closed")
    .ok();
    eprintln!(
        "the connection was closed {:?} after the session was revoked",
        t0.elapsed()
    );
    assert_eq!(e.curl(APP, "/", &["-H", &header]).await.status, 401);

    let audit = e.audit().await;
    assert!(
        audit.iter().any(|x| x["kind"] == "connection"
            && x["identity"] == "alice@example.com"
            && x["app"] == "db"
            && x["end_reason"] == "closed"),
        "{audit:#?}"
    );
    let revoked = support::eventually(
        "the revoked connection in the audit log",
        support::DEADLINE,
        || async {
            let v = e.audit().await;
            v.into_iter()
                .find(|x| x["end_reason"] == "access revoked: session revoked")
        },
    )
    .await;
    assert_eq!(revoked["identity"], "alice@example.com");
}
