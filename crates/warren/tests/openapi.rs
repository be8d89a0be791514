//! The admin API's OpenAPI document as a real edge serves it: fetched
//! without a token from `GET /api/openapi.json` on the admin listener, it
//! is valid OpenAPI 3.1 by `openapi-spec-validator` (the 3.1 schema and its
//! semantic checks: path parameters declared, operation ids unique,
//! references that resolve), and the JSON bodies the edge answers with —
//! tunnels with a live connector, routes, ingress pushes, pooled
//! databases and their credentials, applications with every kind of rule,
//! service tokens, identity providers, the audit log, errors — match the schemas it gives them
//! (`tests/fixtures/openapi/validate.py`). A broken copy is refused, so a
//! pass means the validator ran.

mod support;

use std::net::SocketAddr;

use serde_json::{json, Value};
use support::deps::{openapi_fixtures, require, Dep};
use support::{curl, eventually, origins, Connector, Edge, DEADLINE};

/// The answers of a real edge, kept for the validator.
struct Api<'a> {
    edge: &'a Edge,
    answers: Vec<Value>,
}

impl Api<'_> {
    /// `method path` with the admin token (and `body` as JSON); checks the
    /// status and keeps the answer under the documented `template`.
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let auth = format!("Authorization: Bearer {}", self.edge.token);
        let got = fetch(self.edge.admin, method, path, Some(&auth), body).await;
        assert_eq!(got.0, status, "{method} {path}: {}", got.1);
        let body: Value = serde_json::from_str(&got.1)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {}", got.1));
        self.answers.push(json!({
            "method": method,
            "path": template,
            "status": status,
            "body": body,
        }));
        body
    }
}

/// `method http://{admin}{path}` with curl: (status, body).
async fn fetch(
    admin: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let url = format!("http://{admin}{path}");
    let mut args = vec!["-sS", "-i", "--max-time", "10", "-X", method];
    if let Some(auth) = auth {
        args.extend(["-H", auth]);
    }
    let body = body.map(|b| b.to_string());
    if let Some(body) = &body {
        args.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
    }
    args.push(&url);
    let r = curl(&args).await;
    (r.status, r.body)
}

/// Runs `validate.py` on `doc` and `answers`: its summary, or its errors.
async fn validate(dir: &std::path::Path, doc: &str, answers: &[Value]) -> Result<Value, String> {
    require(Dep::OpenApiValidator);
    let script = openapi_fixtures(env!("CARGO_MANIFEST_DIR").as_ref()).join("validate.py");
    let answers_file = dir.join("answers.json");
    std::fs::write(&answers_file, serde_json::to_vec(answers).unwrap()).unwrap();
    let out = support::python(&script, &[&answers_file], doc.as_bytes()).await;
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("the validator prints JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[cfg_attr(
    any(warren_missing_curl, warren_missing_openapi_spec_validator),
    ignore = "needs curl and openapi-spec-validator; scripts/test-deps.sh installs them"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_document_is_valid_openapi_3_1_and_the_answers_match_it() {
    require(Dep::OpenApiValidator);
    let dir = support::temp_dir();
    let edge = Edge::start(dir.path()).await;

    // Served without a token, as JSON.
    let (status, text) = fetch(edge.admin, "GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, 200, "{text}");
    let doc: Value = serde_json::from_str(&text).expect("the document is JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Warren admin API");

    let token = edge.tunnel("office", &["app.example.com"]).await;
    let _connector = Connector::start(&edge, &token, &[], dir.path());
    edge.wait_connections("office", 2).await;
    let closed = origins::closed_port().await;

    let mut api = Api {
        edge: &edge,
        answers: Vec::new(),
    };
    let t = "/v1/tunnels/{tunnel}";
    api.call("GET", "/v1/health", "/v1/health", None, 200).await;
    api.call(
        "POST",
        "/v1/tunnels",
        "/v1/tunnels",
        Some(json!({"name": "spare"})),
        201,
    )
    .await;
    let ingress = "ingress:\n  - hostname: app.example.com\n    service: http_status:200\n  - service: http_status:404\n";
    let pushed = api
        .call(
            "PUT",
            &format!("{t}/ingress"),
            "/v1/tunnels/office/ingress",
            Some(json!({ "config": ingress })),
            200,
        )
        .await;
    assert_eq!(
        pushed["connections"].as_array().map(Vec::len),
        Some(2),
        "{pushed}"
    );
    api.call(
        "GET",
        &format!("{t}/ingress"),
        "/v1/tunnels/office/ingress",
        None,
        200,
    )
    .await;
    api.call(
        "POST",
        &format!("{t}/rotate-secret"),
        "/v1/tunnels/office/rotate-secret?grace_seconds=600",
        None,
        200,
    )
    .await;
    // A connector, its pushed config and the replaced secret's window.
    let office = api.call("GET", t, "/v1/tunnels/office", None, 200).await;
    assert_eq!(
        office["connectors"].as_array().map(Vec::len),
        Some(1),
        "{office}"
    );
    assert!(office["previous_secret_valid_until"].is_i64(), "{office}");
    api.call("GET", "/v1/tunnels", "/v1/tunnels", None, 200)
        .await;
    api.call(
        "GET",
        &format!("{t}/token"),
        "/v1/tunnels/office/token",
        None,
        200,
    )
    .await;
    api.call(
        "POST",
        "/v1/routes",
        "/v1/routes",
        Some(
            json!({"hostname": "pool.example.com", "steering": "weighted",
                    "tunnels": [{"tunnel": "office", "weight": 2}, {"tunnel": "spare"}]}),
        ),
        201,
    )
    .await;
    api.call("GET", "/v1/routes", "/v1/routes", None, 200).await;

    // A pooled database and a credential (whose answers carry no password).
    let d = "/v1/databases/{name}";
    api.call(
        "POST",
        "/v1/databases",
        "/v1/databases",
        Some(
            json!({"name": "orders", "hostname": "pool.example.com", "database": "orders",
                    "pool_mode": "session", "cache": true}),
        ),
        201,
    )
    .await;
    api.call(
        "PATCH",
        d,
        "/v1/databases/orders",
        Some(json!({"pool_size": 5, "cache_max_bytes": 1048576})),
        200,
    )
    .await;
    let set = api
        .call(
            "PUT",
            &format!("{d}/credentials/{{role}}"),
            "/v1/databases/orders/credentials/app",
            Some(json!({"password": "not-shown"})),
            200,
        )
        .await;
    assert!(!set.to_string().contains("not-shown"), "{set}");
    api.call("GET", d, "/v1/databases/orders", None, 200).await;
    api.call("GET", "/v1/databases", "/v1/databases", None, 200)
        .await;
    api.call("GET", d, "/v1/databases/nothing", None, 404).await;

    let app = json!({
        "name": "wiki",
        "hostnames": ["app.example.com"],
        "policies": [
            {"name": "staff", "action": "allow",
             "include": [{"email_domain": "example.com"}, {"email": "ops@example.org"}],
             "exclude": [{"ip_range": "192.0.2.0/24"}],
             "require": [{"group": "staff"}],
             "db_roles": ["app"]},
            {"name": "ci", "action": "service_auth",
             "include": [{"service_token": "ci"}, "any_service_token", "everyone"]},
        ],
    });
    api.call("POST", "/v1/access/apps", "/v1/access/apps", Some(app), 201)
        .await;
    let a = "/v1/access/apps/{name}";
    api.call(
        "PATCH",
        a,
        "/v1/access/apps/wiki",
        Some(json!({"statement_log": true})),
        200,
    )
    .await;
    api.call(
        "POST",
        &format!("{a}/policies"),
        "/v1/access/apps/wiki/policies",
        Some(json!({"name": "office", "action": "bypass",
                    "include": [{"ip_range": "10.0.0.0/8"}], "position": 1})),
        200,
    )
    .await;
    api.call(
        "DELETE",
        &format!("{a}/policies/{{policy}}"),
        "/v1/access/apps/wiki/policies/office",
        None,
        200,
    )
    .await;
    api.call("GET", a, "/v1/access/apps/wiki", None, 200).await;
    api.call("GET", "/v1/access/apps", "/v1/access/apps", None, 200)
        .await;
    let s = "/v1/access/service-tokens";
    api.call(
        "POST",
        s,
        s,
        Some(json!({"name": "ci", "duration_days": 30})),
        201,
    )
    .await;
    api.call("GET", s, s, None, 200).await;
    api.call(
        "POST",
        &format!("{s}/{{name}}/rotate"),
        &format!("{s}/ci/rotate"),
        None,
        200,
    )
    .await;
    api.call(
        "POST",
        &format!("{s}/{{name}}/revoke"),
        &format!("{s}/ci/revoke"),
        None,
        200,
    )
    .await;
    // A loopback issuer nothing listens on: the edge never reaches out.
    let idp = json!({"name": "corp", "issuer": format!("http://127.0.0.1:{closed}"),
                     "client_id": "warren", "client_secret": "not-shown"});
    let stored = api
        .call("POST", "/v1/access/idps", "/v1/access/idps", Some(idp), 201)
        .await;
    assert!(stored.get("client_secret").is_none(), "{stored}");
    api.call("GET", "/v1/access/idps", "/v1/access/idps", None, 200)
        .await;
    api.call(
        "GET",
        "/v1/access/sessions",
        "/v1/access/sessions",
        None,
        200,
    )
    .await;
    api.call(
        "POST",
        "/v1/access/sessions/revoke",
        "/v1/access/sessions/revoke",
        Some(json!({"session": "nobody@example.com"})),
        200,
    )
    .await;
    api.call(
        "POST",
        "/v1/access/keys/rotate",
        "/v1/access/keys/rotate",
        None,
        200,
    )
    .await;

    // An entry in the audit log: a request to the application's hostname.
    let r = edge.curl("app.example.com", "/", &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let auth = format!("Authorization: Bearer {}", edge.token);
    eventually("an audit entry", DEADLINE, || async {
        let (_, body) = fetch(edge.admin, "GET", "/v1/audit", Some(&auth), None).await;
        let v: Value = serde_json::from_str(&body).ok()?;
        (!v["entries"].as_array()?.is_empty()).then_some(())
    })
    .await;
    api.call("GET", "/v1/audit", "/v1/audit?limit=5", None, 200)
        .await;
    api.call("GET", "/v1/audit/verify", "/v1/audit/verify", None, 200)
        .await;

    api.call(
        "POST",
        &format!("{t}/revoke-old-secret"),
        "/v1/tunnels/office/revoke-old-secret",
        None,
        200,
    )
    .await;
    // Errors, in the one error body.
    api.call("GET", t, "/v1/tunnels/nothing", None, 404).await;
    api.call("POST", "/v1/tunnels", "/v1/tunnels", Some(json!({})), 422)
        .await;

    let summary = validate(dir.path(), &text, &api.answers)
        .await
        .unwrap_or_else(|e| {
            panic!("openapi-spec-validator refused the document or an answer:\n{e}")
        });
    assert_eq!(
        summary["paths"].as_u64(),
        doc["paths"].as_object().map(|p| p.len() as u64)
    );
    assert_eq!(summary["answers"].as_u64(), Some(api.answers.len() as u64));

    // The validator does refuse a broken document: a path parameter that
    // the operation does not declare.
    let mut broken = doc.clone();
    broken["paths"]["/v1/tunnels/{tunnel}/token"]["get"]["parameters"] = json!([]);
    let refused = validate(dir.path(), &broken.to_string(), &[])
        .await
        .expect_err("the validator accepted an undeclared path parameter");
    assert!(refused.contains("tunnel"), "{refused}");
    // And an answer that does not match its schema.
    let wrong =
        [json!({"method": "GET", "path": "/v1/health", "status": 200, "body": {"status": 1}})];
    let refused = validate(dir.path(), &text, &wrong)
        .await
        .expect_err("the validator accepted a body that does not match its schema");
    assert!(refused.contains("/v1/health"), "{refused}");
}
