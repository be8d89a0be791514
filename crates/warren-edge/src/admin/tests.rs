//! The admin API over `tower::ServiceExt::oneshot`, against a real store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::Router;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use warren_proto::token::{ca_pin, verify_secret, TunnelToken};
use warren_store::Store;

use super::*;
use crate::registry::Registry;
use crate::routes::RouteTable;
use crate::secrets::{bootstrap_admin_token, TunnelSecrets};

mod databases;
mod route_walk;

/// The admin routers' body timeout in these tests.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

struct Api {
    _dir: tempfile::TempDir,
    state: AdminState,
    app: Router,
    token: String,
}

impl Api {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let token = bootstrap_admin_token(&store, dir.path())
            .await
            .unwrap()
            .unwrap();
        let routes = RouteTable::new();
        let access = crate::access::Access::start(
            store.clone(),
            crate::audit::AuditSink::start(
                store.clone(),
                std::time::Duration::from_secs(3600),
                crate::audit::OnAuditFailure::Refuse,
                Default::default(),
            ),
            routes.clone(),
            Default::default(),
        )
        .await
        .unwrap();
        let state = AdminState {
            store,
            secrets: Arc::new(TunnelSecrets::load_or_create(dir.path()).unwrap()),
            access,
            routes,
            registry: Registry::new(),
            metrics: Default::default(),
            token_edges: vec!["127.0.0.1:7844".into(), "127.0.0.2:7844".into()],
            ca_pin: ca_pin(b"ca"),
            databases: crate::databases::Databases::load(dir.path()).unwrap(),
            pg_pools: Default::default(),
            route_policy: crate::routes::RoutePolicy {
                domain: Some("example.com".into()),
                outside_domain: false,
            },
        };
        let app = router(state.clone(), BODY_TIMEOUT);
        Self {
            _dir: dir,
            state,
            app,
            token,
        }
    }

    async fn send(&self, req: axum::http::Request<Body>) -> (StatusCode, Value) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        (status, json)
    }

    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    async fn create(&self, name: &str) -> Value {
        let (status, body) = self
            .call("POST", "/v1/tunnels", Some(json!({ "name": name })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn token_of(&self, tunnel: &str, method: &str, action: &str) -> TunnelToken {
        let (status, body) = self
            .call(method, &format!("/v1/tunnels/{tunnel}/{action}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        TunnelToken::decode(body["token"].as_str().unwrap()).unwrap()
    }

    async fn stored_hash(&self, id: &str) -> Vec<u8> {
        self.state
            .store
            .tunnel_secret_hash(id)
            .await
            .unwrap()
            .unwrap()
    }
}

fn error(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
}

#[tokio::test]
async fn health_is_open_and_everything_else_needs_the_token() {
    let api = Api::new().await;
    let get = |uri: &str, auth: Option<&str>| {
        let mut req = axum::http::Request::builder().uri(uri);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        req.body(Body::empty()).unwrap()
    };
    let (status, body) = api.send(get("/v1/health", None)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));

    for auth in [
        None,
        Some("Bearer"),
        Some("Bearer wat_nope"),
        Some("Basic dXNlcjpwYXNz"),
    ] {
        let resp = api
            .app
            .clone()
            .oneshot(get("/v1/tunnels", auth))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let (_, body) = api.send(get("/v1/routes", auth)).await;
        assert!(error(&body).contains("WARREN_API_TOKEN"), "{body}");
        assert!(error(&body).contains("admin-token"), "{body}");
    }
    let lower = format!("bearer {}", api.token);
    let (status, _) = api.send(get("/v1/tunnels", Some(&lower))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn creates_lists_gets_and_deletes_tunnels() {
    let api = Api::new().await;
    let created = api.create("office").await;
    assert_eq!(created["name"], "office");
    assert_eq!(created["secret_generation"], 1);
    assert_eq!(created["status"], "inactive");
    assert_eq!(created["connections"], json!([]));
    assert!(created.get("secret_hash").is_none());
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, body) = api
        .call("POST", "/v1/tunnels", Some(json!({"name": "office"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error(&body).contains("already exists"), "{body}");
    let (status, _) = api
        .call("POST", "/v1/tunnels", Some(json!({"name": "no spaces"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    api.create("lab").await;
    let (status, list) = api.call("GET", "/v1/tunnels", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lab", "office"]);
    assert_eq!(list[1]["status"], "inactive");
    assert_eq!(list[1]["connections"], json!([]));

    for key in ["office", id.as_str()] {
        let (status, info) = api.call("GET", &format!("/v1/tunnels/{key}"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(info["id"], id.as_str());
        assert_eq!(info["routes"], json!([]));
    }
    let (status, body) = api.call("GET", "/v1/tunnels/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error(&body),
        "no tunnel named or with id \"nope\"; list tunnels with `warren tunnel list`"
    );

    let (status, body) = api.call("DELETE", "/v1/tunnels/office", None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _) = api.call("GET", &format!("/v1/tunnels/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call("DELETE", "/v1/tunnels/office", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn token_carries_a_secret_that_matches_the_stored_hash() {
    let api = Api::new().await;
    let id = api.create("office").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = api.token_of("office", "GET", "token").await;
    assert_eq!(token.tunnel_id, id);
    assert_eq!(token.edges, ["127.0.0.1:7844", "127.0.0.2:7844"]);
    assert_eq!(token.ca_pin, ca_pin(b"ca"));
    assert!(verify_secret(&token.secret, &api.stored_hash(&id).await));
    // Asking again gives the same token: it is re-derived, not stored.
    assert_eq!(api.token_of(&id, "GET", "token").await, token);
}

#[tokio::test]
async fn rotating_changes_the_secret() {
    let api = Api::new().await;
    let id = api.create("office").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let old = api.token_of("office", "GET", "token").await;
    let new = api.token_of("office", "POST", "rotate-secret").await;
    assert_ne!(new.secret, old.secret);
    let hash = api.stored_hash(&id).await;
    assert!(verify_secret(&new.secret, &hash));
    assert!(!verify_secret(&old.secret, &hash));
    assert_eq!(api.token_of("office", "GET", "token").await, new);
    let (_, info) = api.call("GET", "/v1/tunnels/office", None).await;
    assert_eq!(info["secret_generation"], 2);

    // The replaced secret is kept for the grace window (a day unless the
    // request says otherwise), and ended on request.
    let kept = api.state.store.tunnel_secrets(&id).await.unwrap().unwrap();
    let (previous, until) = kept.previous.expect("the old secret is kept for a day");
    assert!(verify_secret(&old.secret, &previous));
    assert_eq!(info["previous_secret_valid_until"], until);
    let (status, answer) = api
        .call("POST", "/v1/tunnels/office/revoke-old-secret", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["revoked"], true);
    assert_eq!(answer["closed_connections"], 0);
    let (_, info) = api.call("GET", "/v1/tunnels/office", None).await;
    assert!(info.get("previous_secret_valid_until").is_none(), "{info}");
    let (_, answer) = api
        .call("POST", "/v1/tunnels/office/revoke-old-secret", None)
        .await;
    assert_eq!(answer["revoked"], false);

    // Without a window the old secret ends at once; windows are bounded.
    let (status, _) = api
        .call(
            "POST",
            "/v1/tunnels/office/rotate-secret?grace_seconds=0",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let kept = api.state.store.tunnel_secrets(&id).await.unwrap().unwrap();
    assert!(kept.previous.is_none());
    for bad in ["grace_seconds=2592001", "grace_seconds=soon"] {
        let (status, answer) = api
            .call(
                "POST",
                &format!("/v1/tunnels/office/rotate-secret?{bad}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("grace"),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn token_is_refused_when_the_key_no_longer_matches() {
    let api = Api::new().await;
    api.create("office").await;
    let mut state = api.state.clone();
    state.secrets = Arc::new(TunnelSecrets::from_key([9; 32]));
    let app = router(state, BODY_TIMEOUT);
    let req = axum::http::Request::builder()
        .uri("/v1/tunnels/office/token")
        .header(header::AUTHORIZATION, format!("Bearer {}", api.token))
        .body(Body::empty())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn route_crud_reloads_the_route_table() {
    let api = Api::new().await;
    api.create("office").await;
    let (status, route) = api
        .call(
            "POST",
            "/v1/routes",
            Some(json!({"tunnel": "office", "hostname": "App.Example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{route}");
    assert_eq!(route["hostname"], "app.example.com");
    assert_eq!(route["tunnel_name"], "office");
    assert_eq!(
        api.state.routes.lookup("app.example.com").unwrap().tunnels[0].name,
        "office"
    );

    let (status, body) = api
        .call(
            "POST",
            "/v1/routes",
            Some(json!({"tunnel": "office", "hostname": "app.example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        error(&body).contains("already routes to tunnel office"),
        "{body}"
    );
    let (status, _) = api
        .call(
            "POST",
            "/v1/routes",
            Some(json!({"tunnel": "office", "hostname": "http://x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .call(
            "POST",
            "/v1/routes",
            Some(json!({"tunnel": "nope", "hostname": "x.example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, info) = api.call("GET", "/v1/tunnels/office", None).await;
    assert_eq!(info["routes"], json!(["app.example.com"]));
    let (status, list) = api.call("GET", "/v1/routes", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (status, _) = api.call("DELETE", "/v1/routes/app.example.com", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(api.state.routes.lookup("app.example.com").is_none());
    let (status, body) = api.call("DELETE", "/v1/routes/app.example.com", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error(&body).contains("no route"), "{body}");
}

#[tokio::test]
async fn deleting_a_tunnel_drops_its_routes_from_the_table() {
    let api = Api::new().await;
    api.create("office").await;
    let (status, _) = api
        .call(
            "POST",
            "/v1/routes",
            Some(json!({"tunnel": "office", "hostname": "*.example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(api.state.routes.lookup("a.example.com").is_some());
    let (status, _) = api.call("DELETE", "/v1/tunnels/office", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(api.state.routes.lookup("a.example.com").is_none());
    let (_, list) = api.call("GET", "/v1/routes", None).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn bad_requests_get_json_sentences() {
    let api = Api::new().await;
    let raw = |body: Body, content_type: &str| {
        axum::http::Request::builder()
            .method("POST")
            .uri("/v1/tunnels")
            .header(header::AUTHORIZATION, format!("Bearer {}", api.token))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .unwrap()
    };
    let (status, body) = api
        .send(raw(Body::from("{not json"), "application/json"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).contains(r#"{"name": "office"}"#), "{body}");
    let (status, _) = api.send(raw(Body::from("{}"), "application/json")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = api.send(raw(Body::from("{}"), "text/plain")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(BODY_LIMIT));
    let (status, body) = api.send(raw(Body::from(big), "application/json")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error(&body).contains("larger than"), "{body}");

    let (status, body) = api.call("GET", "/v2/nothing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    error(&body);
    let (status, body) = api.call("PUT", "/v1/tunnels", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    error(&body);
}

#[tokio::test]
async fn a_body_that_stops_short_is_answered_408_after_the_timeout() {
    let api = Api::new().await;
    let app = router(api.state.clone(), std::time::Duration::from_millis(200));
    // Half a JSON body, then nothing: what a client whose Content-Length
    // promises more than it sends looks like to the handler.
    let half = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        b"{\"name\": ",
    ))])
    .chain(futures_util::stream::pending());
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/tunnels")
        .header(header::AUTHORIZATION, format!("Bearer {}", api.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(half))
        .unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), app.oneshot(req))
        .await
        .expect("the API answers a stalled body instead of waiting for it")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("did not arrive"),
        "{v}"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_answered_413() {
    let api = Api::new().await;
    let big = vec![b' '; BODY_LIMIT + 1];
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/tunnels")
        .header(header::AUTHORIZATION, format!("Bearer {}", api.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    let (status, v) = api.send(req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(v["error"].as_str().unwrap().contains("larger than"), "{v}");
}

#[tokio::test]
async fn durations_past_a_year_are_refused_with_a_sentence() {
    let api = Api::new().await;
    let (status, v) = api
        .call(
            "POST",
            "/v1/access/service-tokens",
            Some(json!({"name": "ci", "duration_days": 9_000_000_000_000_000_000u64 / 1_000})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("give 1 to 366 days"),
        "{v}"
    );
    let (status, v) = api
        .call(
            "POST",
            "/v1/access/service-tokens",
            Some(json!({"name": "ci", "duration_days": 366})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    let (status, v) = api
        .call(
            "POST",
            "/v1/access/apps",
            Some(json!({"name": "wiki", "hostnames": ["wiki.example.com"], "session_duration_secs": u64::MAX})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("longer than a year"),
        "{v}"
    );
}

#[tokio::test]
async fn routes_outside_the_domain_or_over_a_public_suffix_are_refused() {
    let api = Api::new().await;
    api.create("office").await;
    for (host, says) in [
        ("*.test", "a public suffix"),
        ("*.co.uk", "a public suffix"),
        ("app.example.org", "not under the edge's domain example.com"),
    ] {
        let (status, body) = api
            .call(
                "POST",
                "/v1/routes",
                Some(json!({"tunnel": "office", "hostname": host})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{host}: {body}");
        assert!(error(&body).contains(says), "{host}: {body}");
        assert!(api
            .state
            .routes
            .lookup(host.trim_start_matches("*."))
            .is_none());
    }
    let (status, body) = api
        .call(
            "POST",
            "/v1/routes",
            Some(json!({"tunnel": "office", "hostname": "*.apps.example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
