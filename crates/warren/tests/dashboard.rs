//! The dashboard on the admin listener (`/ui/`), against a real edge and
//! connector: with curl, signing in with the admin token, the session
//! cookie, forms refused without their CSRF token or from another site,
//! a service token's secret shown once, a route deleted and a token
//! revoked through the API's own functions, the audit log filtered and
//! paged; with headless Chromium, signing in through the identity
//! provider as a member of the admin group (and refused, with a sentence,
//! as someone who is not), the tunnels page seen (a screenshot is kept
//! under the target directory), and the traffic page drawing its plots.

mod support;

use serde_json::Value;
use support::dashboard::{attribute, csrf_of, element_text, Dashboard};
use support::oidc::{self, browse_env, Provider, ALICE, BOB};
use support::{curl, eventually, origins, Stack, DEADLINE};

const APP: &str = "app.example.com";

/// An edge whose tunnel `office` serves APP (an HTTP echo origin, public
/// route) from a connected connector, with `envs` for the edge.
async fn stack(envs: &[(&str, &str)]) -> Stack {
    let echo = origins::http_echo().await;
    Stack::start_with_env(
        &[APP],
        &format!("  - hostname: {APP}\n    service: http://{echo}\n"),
        envs,
    )
    .await
}

fn location(r: &support::Curl) -> String {
    r.headers
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn set_cookies(r: &support::Curl) -> Vec<String> {
    r.headers
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .map(|l| l.trim().to_owned())
        .collect()
}

#[cfg_attr(warren_missing_curl, ignore = "needs curl; .ci/run installs it")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_signs_in_and_the_session_cookie_never_holds_it() {
    let s = stack(&[]).await;
    let e = &s.edge;
    let d = Dashboard::new(e, s.path());

    // Without a session every page leads to the sign-in page.
    let root = d.get("/ui/").await;
    assert_eq!(root.status, 303, "{}", root.headers);
    assert_eq!(location(&root), "/ui/tunnels");
    for path in [
        "/ui/tunnels",
        "/ui/routes",
        "/ui/service-tokens",
        "/ui/audit",
        "/ui/traffic",
    ] {
        let r = d.get(path).await;
        assert_eq!(r.status, 303, "{path}: {}", r.headers);
        assert_eq!(location(&r), "/ui/sign-in?why=expired", "{path}");
    }
    // htmx and scripts are told with a 401 where to go.
    let r = d.get_with("/ui/tunnels", &["hx-request: true"]).await;
    assert_eq!(r.status, 401);
    assert!(
        r.headers.contains("hx-redirect: /ui/sign-in"),
        "{}",
        r.headers
    );

    // The sign-in page, with the strict CSP and its form's own CSRF cookie.
    let form = d.get("/ui/sign-in").await;
    assert_eq!(form.status, 200);
    assert!(
        form.headers
            .contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{}",
        form.headers
    );
    assert!(form.headers.contains("x-content-type-options: nosniff"));
    let csrf = csrf_of(&form.body).expect("the form's CSRF token");

    // A wrong token is refused with a sentence.
    let wrong = d
        .post(
            "/ui/sign-in",
            &[("_csrf", &csrf), ("token", "wat_0000")],
            &[],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let error = element_text(&wrong.body, "error").unwrap_or_default();
    assert!(error.contains("not this edge's admin token"), "{error}");

    // The admin token signs in; the cookie is a random id, HttpOnly and
    // SameSite=Strict (not Secure: the admin listener is plain HTTP).
    let ok = d
        .post("/ui/sign-in", &[("_csrf", &csrf), ("token", &e.token)], &[])
        .await;
    assert_eq!(ok.status, 303, "{} {}", ok.headers, ok.body);
    assert_eq!(location(&ok), "/ui/tunnels");
    let cookies = set_cookies(&ok);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("warren_admin="))
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"));
    assert!(session.contains("; httponly"), "{session}");
    assert!(session.contains("; samesite=strict"), "{session}");
    assert!(session.contains("; path=/ui"), "{session}");
    assert!(!session.contains("secure"), "{session}");
    let token = e.token.to_ascii_lowercase();
    for c in &cookies {
        assert!(
            !c.contains(&token) && !c.contains(&token[4..]),
            "the token is in {c}"
        );
    }
    let jar = std::fs::read_to_string(d.jar()).unwrap();
    assert!(
        !jar.contains(&e.token),
        "the admin token is in the cookie jar"
    );

    // The tunnels page: the tunnel, active, its connector and route.
    let page = d.get("/ui/tunnels").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("data-tunnel=\"office\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<span class=\"status active\">active</span>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("2 of 2 connections"), "{}", page.body);
    assert!(page.body.contains(APP));
    assert!(page.headers.contains("cache-control: no-store"));
    // One tunnel, its connections.
    let one = d.get("/ui/tunnels/office").await;
    assert_eq!(one.status, 200);
    assert!(one.body.contains("Connections"), "{}", one.body);
    // The static files, with their types.
    for (file, ty) in [
        ("htmx.min.js", "text/javascript"),
        ("uPlot.iife.min.js", "text/javascript"),
        ("uPlot.min.css", "text/css"),
        ("dashboard.css", "text/css"),
        ("traffic.js", "text/javascript"),
    ] {
        let r = d.get(&format!("/ui/static/{file}")).await;
        assert_eq!(r.status, 200, "{file}");
        assert!(
            r.headers.contains(&format!("content-type: {ty}")),
            "{file}: {}",
            r.headers
        );
    }

    // Signing out ends the session: the cookie's id no longer opens a page.
    let csrf = csrf_of(&page.body).unwrap();
    let out = d.post("/ui/sign-out", &[("_csrf", &csrf)], &[]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(location(&out), "/ui/sign-in?why=signed-out");
    let id = session
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("warren_admin=");
    let admin = format!("http://{}/ui/tunnels", e.admin);
    let cookie = format!("warren_admin={id}");
    let again = curl(&["-sS", "-i", "-H", &format!("cookie: {cookie}"), &admin]).await;
    assert_eq!(again.status, 303, "{}", again.headers);
    assert_eq!(location(&again), "/ui/sign-in?why=expired");
}

#[cfg_attr(warren_missing_curl, ignore = "needs curl; .ci/run installs it")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_their_csrf_token_or_from_another_site_are_refused() {
    let s = stack(&[]).await;
    let e = &s.edge;
    let d = Dashboard::new(e, s.path());
    let refused = |r: &support::Curl, what: &str| {
        assert_eq!(r.status, 403, "{what}: {} {}", r.headers, r.body);
        let text = element_text(&r.body, "message").unwrap_or_default();
        assert!(
            text.contains("refused") || text.contains("security token"),
            "{what}: {text}"
        );
    };

    // The sign-in form itself: no token, a wrong one, another site.
    let form = d.get("/ui/sign-in").await;
    let csrf = csrf_of(&form.body).unwrap();
    let r = d.post("/ui/sign-in", &[("token", &e.token)], &[]).await;
    refused(&r, "sign-in without a CSRF token");
    let r = d
        .post(
            "/ui/sign-in",
            &[("_csrf", &"0".repeat(64)), ("token", &e.token)],
            &[],
        )
        .await;
    refused(&r, "sign-in with a wrong CSRF token");
    let r = d
        .post(
            "/ui/sign-in",
            &[("_csrf", &csrf), ("token", &e.token)],
            &["origin: http://evil.example"],
        )
        .await;
    refused(&r, "sign-in from another origin");
    assert!(r.body.contains("evil.example"), "{}", r.body);
    let r = d
        .post(
            "/ui/sign-in",
            &[("_csrf", &csrf), ("token", &e.token)],
            &["sec-fetch-site: cross-site"],
        )
        .await;
    refused(&r, "sign-in from a cross-site page");
    assert!(set_cookies(&r)
        .iter()
        .all(|c| !c.starts_with("warren_admin=")));

    // Signed in: every action needs the session's token, from this site.
    let csrf = d.sign_in(&e.token).await;
    let fields = |t: &'static str| [("name", t), ("duration_days", "")];
    let r = d.post("/ui/service-tokens", &fields("ci"), &[]).await;
    refused(&r, "create without a CSRF token");
    let wrong = format!(
        "{}{}",
        &csrf[..63],
        if csrf.ends_with('0') { '1' } else { '0' }
    );
    let mut with_wrong = fields("ci").to_vec();
    with_wrong.push(("_csrf", &wrong));
    let r = d.post("/ui/service-tokens", &with_wrong, &[]).await;
    refused(&r, "create with a wrong CSRF token");
    let r = d
        .post(
            "/ui/service-tokens",
            &fields("ci"),
            &[&format!("x-warren-csrf: {wrong}")],
        )
        .await;
    refused(&r, "create with a wrong CSRF header");
    let mut with_right = fields("ci").to_vec();
    with_right.push(("_csrf", &csrf));
    let r = d
        .post(
            "/ui/service-tokens",
            &with_right,
            &["origin: http://evil.example"],
        )
        .await;
    refused(&r, "create from another origin");
    let r = d
        .post(
            "/ui/routes/delete",
            &[("hostname", APP), ("_csrf", "")],
            &[],
        )
        .await;
    refused(&r, "delete with an empty CSRF token");
    let r = d.post("/ui/sign-out", &[], &[]).await;
    refused(&r, "sign-out without a CSRF token");
    // The other session's token is not this one's.
    let other = Dashboard::new(e, s.path());
    let other_csrf = other.sign_in(&e.token).await;
    assert_ne!(other_csrf, csrf);
    let mut with_other = fields("ci").to_vec();
    with_other.push(("_csrf", &other_csrf));
    let r = d.post("/ui/service-tokens", &with_other, &[]).await;
    refused(&r, "create with another session's CSRF token");

    // Nothing was made or deleted.
    let tokens = e
        .ok(&["access", "service-token", "list", "--output", "json"])
        .await;
    assert!(!tokens.contains("\"ci\""), "{tokens}");
    let routes = e.ok(&["tunnel", "route", "list", "--output", "json"]).await;
    assert!(routes.contains(APP), "{routes}");

    // With its token, from this origin, the same form works.
    let r = d
        .post(
            "/ui/service-tokens",
            &with_right,
            &[
                &format!("origin: {}", d.base),
                "sec-fetch-site: same-origin",
            ],
        )
        .await;
    assert_eq!(r.status, 201, "{} {}", r.headers, r.body);
}

#[cfg_attr(warren_missing_curl, ignore = "needs curl; .ci/run installs it")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_token_secret_is_shown_once_and_actions_go_through_the_api() {
    let s = stack(&[]).await;
    let e = &s.edge;
    let d = Dashboard::new(e, s.path());
    let csrf = d.sign_in(&e.token).await;

    // Created: the answer shows the secret, and nothing shows it again.
    let r = d
        .post(
            "/ui/service-tokens",
            &[("name", "ci"), ("duration_days", "30"), ("_csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.headers.contains("cache-control: no-store"),
        "{}",
        r.headers
    );
    let secret = element_text(&r.body, "client-secret").expect("the secret is on the page");
    let client_id = element_text(&r.body, "client-id").unwrap();
    assert_eq!(secret.len(), 64, "{secret}");
    assert!(client_id.ends_with(".access"), "{client_id}");
    for path in [
        "/ui/service-tokens",
        "/ui/tunnels",
        "/ui/audit?kind=&from=",
        "/ui/apps",
    ] {
        let page = d.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains(&secret),
            "{path} shows the secret again"
        );
    }
    let listed = d.get("/ui/service-tokens").await;
    assert!(listed.body.contains(&client_id), "{}", listed.body);
    assert!(listed
        .body
        .contains("<span class=\"status active\">active</span>"));
    let api = e
        .ok(&["access", "service-token", "list", "--output", "json"])
        .await;
    assert!(api.contains(&client_id) && !api.contains(&secret), "{api}");
    // The same name again: the API's sentence, on the page.
    let again = d
        .post(
            "/ui/service-tokens",
            &[("name", "ci"), ("_csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(
        element_text(&again.body, "error").is_some(),
        "{}",
        again.body
    );
    assert!(!again.body.contains(&secret));
    // A duration the API refuses, refused with its sentence.
    let long = d
        .post(
            "/ui/service-tokens",
            &[
                ("name", "long"),
                ("duration_days", "9999"),
                ("_csrf", &csrf),
            ],
            &[],
        )
        .await;
    assert_eq!(long.status, 400);
    assert!(element_text(&long.body, "error")
        .unwrap()
        .contains("1 to 366"));

    // Revoked from the page, as htmx sends it (the token in a header).
    let r = d
        .post(
            "/ui/service-tokens/revoke",
            &[("name", "ci")],
            &[&format!("x-warren-csrf: {csrf}"), "hx-request: true"],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(element_text(&r.body, "notice")
        .unwrap()
        .contains("Revoked the service token ci"));
    let api = e
        .ok(&["access", "service-token", "list", "--output", "json"])
        .await;
    let v: Value = serde_json::from_str(&api).unwrap();
    let ci = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap();
    assert!(ci["revoked_at"].is_number(), "{ci}");

    // A route deleted from the page is gone for the edge at once.
    let before = e.curl(APP, "/", &[]).await;
    assert_eq!(before.status, 200, "{}", before.body);
    let r = d
        .post(
            "/ui/routes/delete",
            &[("hostname", APP), ("_csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(element_text(&r.body, "notice").unwrap().contains(APP));
    let after = e.curl(APP, "/", &[]).await;
    assert_eq!(after.status, 404, "{}", after.body);
    let gone = d
        .post(
            "/ui/routes/delete",
            &[("hostname", APP), ("_csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(gone.status, 404);
    assert!(element_text(&gone.body, "error")
        .unwrap()
        .contains("no route for the hostname"));

    // The audit log: the sign-in is there, filtered by kind and identity,
    // a page at a time; a hostname no entry has finds nothing.
    Dashboard::new(e, s.path()).sign_in(&e.token).await;
    // The audit writer appends in batches: wait for both sign-ins.
    eventually("both sign-ins in the audit log", DEADLINE, || async {
        let r = d.get("/ui/audit?kind=dashboard&identity=admin+token").await;
        (r.body.matches("<td class=\"num\">").count() >= 2).then_some(())
    })
    .await;
    let all = d
        .get("/ui/audit?kind=dashboard&identity=admin+token&limit=1")
        .await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert!(all.body.contains("signed_in"), "{}", all.body);
    assert_eq!(
        all.body.matches("<td class=\"num\">").count(),
        1,
        "{}",
        all.body
    );
    let next = attribute(&all.body, "next", "href").expect("a next page");
    assert!(
        next.contains("after=") && next.contains("identity=admin%20token"),
        "{next}"
    );
    let second = d.get(&next).await;
    assert_eq!(second.status, 200);
    assert!(second.body.contains("signed_in"), "{}", second.body);
    let first_seq = all
        .body
        .split("<td class=\"num\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let second_seq = second
        .body
        .split("<td class=\"num\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert!(
        second_seq.parse::<i64>().unwrap() > first_seq.parse::<i64>().unwrap(),
        "{first_seq} then {second_seq}"
    );
    let none = d.get("/ui/audit?hostname=nothing.example.com").await;
    assert!(none.body.contains("id=\"no-entries\""), "{}", none.body);
    let future = d.get("/ui/audit?from=2999-01-01T00:00").await;
    assert!(future.body.contains("id=\"no-entries\""), "{}", future.body);
    let past = d
        .get("/ui/audit?kind=dashboard&from=&to=2000-01-01T00:00")
        .await;
    assert!(past.body.contains("id=\"no-entries\""), "{}", past.body);
    let bad = d.get("/ui/audit?from=yesterday").await;
    assert_eq!(bad.status, 400);
}

/// An edge with `--admin-group admins` whose identity provider is the
/// fixture, which sends browsers back to the dashboard's callback.
async fn with_provider() -> (Stack, Provider) {
    let s = stack(&[("WARREN_ADMIN_GROUP", "admins")]).await;
    let e = &s.edge;
    let idp = Provider::start(&[format!("http://{}/ui/callback", e.admin)], s.path()).await;
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
        "openid,email,groups",
    ])
    .await;
    (s, idp)
}

#[cfg_attr(
    any(warren_missing_curl, warren_missing_oidc),
    ignore = "needs curl and the OIDC fixture with Chromium; .ci/run and scripts/test-deps.sh install what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_group_signs_in_through_the_identity_provider_and_others_are_told_why_not() {
    let (s, _idp) = with_provider().await;
    let e = &s.edge;
    let sign_in = format!("http://{}/ui/sign-in", e.admin);
    let tunnels = format!("http://{}/ui/tunnels", e.admin);

    // The sign-in page offers the provider.
    let d = Dashboard::new(e, s.path());
    let form = d.get("/ui/sign-in").await;
    assert!(form.body.contains("id=\"sso\""), "{}", form.body);

    // Alice is in admins: from the sign-in page's button through the
    // provider's login form, back to the dashboard's tunnels page.
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-tunnels.png");
    let shot_s = shot.display().to_string();
    let alice = browse_env(
        &sign_in,
        ALICE,
        Some(&tunnels),
        &[
            ("CONFIRM", "#sso"),
            ("THEN_WAIT", "tr[data-tunnel=office] .status.active"),
            ("SCREENSHOT", &shot_s),
        ],
    )
    .await;
    let then = alice.then();
    assert_eq!(then["status"], 200, "{}", alice.json);
    assert_eq!(then["found"], true, "{}", alice.json);
    let body = then["body"].as_str().unwrap_or_default();
    assert!(body.contains("office") && body.contains("active"), "{body}");
    assert!(body.contains(ALICE.0), "who is signed in: {body}");
    let cookie = then["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "warren_admin")
        .unwrap_or_else(|| panic!("no session cookie: {}", alice.json));
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000),
        "no screenshot at {shot_s}"
    );

    // Bob signs in at the provider, but is not in admins.
    let bob = browse_env(&sign_in, BOB, Some(&tunnels), &[("CONFIRM", "#sso")]).await;
    assert_eq!(bob.status(), 403, "{}", bob.json);
    assert!(
        bob.body().contains("bob@other.test is signed in at the identity provider but is not a member of the group admins"),
        "{}",
        bob.body()
    );
    // ... and the dashboard stays closed to him.
    assert!(
        bob.then()["url"]
            .as_str()
            .unwrap_or_default()
            .contains("/ui/sign-in"),
        "{}",
        bob.json
    );

    // Both are in the audit log.
    d.sign_in(&e.token).await;
    let audit = d.get("/ui/audit?kind=dashboard").await;
    assert!(
        audit.body.contains(ALICE.0) && audit.body.contains("signed_in"),
        "{}",
        audit.body
    );
    assert!(
        audit.body.contains(BOB.0) && audit.body.contains("not in group admins"),
        "{}",
        audit.body
    );
}

#[cfg_attr(
    any(warren_missing_curl, warren_missing_oidc),
    ignore = "needs curl and the OIDC fixture with Chromium; .ci/run and scripts/test-deps.sh install what is missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traffic_page_plots_what_a_tunnel_carried() {
    let (s, _idp) = with_provider().await;
    let e = &s.edge;
    for _ in 0..20 {
        let r = e.curl(APP, "/", &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // The ring is sampled every 10 s: wait until a sample has the requests.
    let d = Dashboard::new(e, s.path());
    d.sign_in(&e.token).await;
    eventually("a traffic sample with the requests", DEADLINE, || async {
        let r = d
            .get_with(
                "/ui/traffic.json?tunnel=office",
                &["accept: application/json"],
            )
            .await;
        let v: Value = serde_json::from_str(&r.body).ok()?;
        let total: f64 = v["requests"]
            .as_array()?
            .iter()
            .filter_map(Value::as_f64)
            .map(|rate| rate * v["period"].as_f64().unwrap_or(10.0))
            .sum();
        (total >= 19.0).then_some(())
    })
    .await;

    let traffic = format!("http://{}/ui/traffic?tunnel=office", e.admin);
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-traffic.png");
    let shot_s = shot.display().to_string();
    let visit = browse_env(
        &format!("http://{}/ui/sign-in", e.admin),
        ALICE,
        Some(&traffic),
        &[
            ("CONFIRM", "#sso"),
            (
                "THEN_WAIT",
                "section#traffic[data-drawn] figure.plot canvas",
            ),
            ("SCREENSHOT", &shot_s),
        ],
    )
    .await;
    let then = visit.then();
    assert_eq!(then["status"], 200, "{}", visit.json);
    assert_eq!(then["found"], true, "no plot was drawn: {}", visit.json);
    assert!(
        then["body"]
            .as_str()
            .unwrap_or_default()
            .contains("Requests and connections per second"),
        "{}",
        visit.json
    );
}
