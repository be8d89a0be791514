//! Arbitrary bytes as the JSON body of every admin API endpoint that reads
//! one, sent through the real router (token check, body limit and timer,
//! handlers) to a real store. No answer may be a 5xx; every 4xx must be
//! `{"error": "<sentence>"}`; every 2xx must be JSON (or empty for 204).
//! What a body created or changed is undone through the API, so every
//! input meets the same store.
//!
//! The first byte picks the endpoint (low nibble) and the Content-Type
//! (high nibble); the rest is the body.
#![no_main]

use std::cell::RefCell;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tower::ServiceExt;
use warren_edge::fuzz::AdminApi;

/// The app every input may change; reset after a change.
const APP: &str = "wiki";
/// The route whose public flag inputs may set.
const ROUTE: &str = "app.example.com";

/// Every endpoint that reads a JSON body, with the names it needs made by
/// [`Fixture::seed`].
const ENDPOINTS: &[(Method, &str)] = &[
    (Method::POST, "/v1/tunnels"),
    (Method::POST, "/v1/routes"),
    (Method::POST, "/v1/access/apps"),
    (Method::PATCH, "/v1/access/apps/wiki"),
    (Method::POST, "/v1/access/apps/wiki/policies"),
    (Method::POST, "/v1/access/service-tokens"),
    (Method::POST, "/v1/access/idps"),
    (Method::POST, "/v1/access/sessions/revoke"),
    (Method::PATCH, "/v1/routes/app.example.com"),
    (Method::PUT, "/v1/tunnels/t1/ingress"),
    (Method::POST, "/v1/apply"),
];

/// `/v1/apply` gets the input as its declared state, always as a dry run
/// (a second `dry_run` in the input is a duplicate field, refused): the
/// planner and every store step run, then roll back.
const APPLY: usize = 10;

/// Service tokens cannot be deleted through the API, and every access
/// change reloads them all: start over with a fresh store after this many
/// inputs, so the store stays small.
const INPUTS_PER_STORE: u32 = 50_000;

/// A runtime, a store in a temporary directory and the router over it.
struct Fixture {
    rt: tokio::runtime::Runtime,
    api: Option<(AdminApi, tempfile::TempDir)>,
    inputs: u32,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            api: None,
            inputs: 0,
        }
    }

    /// Runs `input` against the API, opened and seeded afresh every
    /// [`INPUTS_PER_STORE`] inputs.
    fn run(&mut self, input: impl AsyncFnOnce(&AdminApi)) {
        self.inputs += 1;
        if self.inputs > INPUTS_PER_STORE {
            self.inputs = 1;
            // Dropped inside the runtime: the store's pool closes on it.
            let _guard = self.rt.enter();
            self.api = None;
        }
        if self.api.is_none() {
            // Memory-backed where there is one: the store writes a lot.
            let shm = std::path::Path::new("/dev/shm");
            let dir = if shm.is_dir() {
                tempfile::tempdir_in(shm)
            } else {
                tempfile::tempdir()
            }
            .unwrap();
            let api = self.rt.block_on(async {
                let api = AdminApi::open(dir.path()).await.unwrap();
                seed(&api).await;
                api
            });
            self.api = Some((api, dir));
        }
        let (api, _) = self.api.as_ref().unwrap();
        self.rt.block_on(input(api));
    }
}

/// Sends one request with the admin token and checks the answer's shape.
async fn call(
    api: &AdminApi,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", api.token));
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let resp = api
        .router
        .clone()
        .oneshot(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !status.is_server_error(),
        "{method} {uri}: {status}: {text}"
    );
    if status == StatusCode::NO_CONTENT {
        assert!(bytes.is_empty(), "{method} {uri}: 204 with a body: {text}");
        return (status, Value::Null);
    }
    let value: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{method} {uri}: {status}: not JSON ({e}): {text}"));
    if status.is_client_error() {
        let error = value.get("error").and_then(Value::as_str);
        assert!(
            value.is_object() && error.is_some_and(|e| !e.is_empty()),
            "{method} {uri}: {status} without an error sentence: {text}"
        );
    } else {
        assert!(status.is_success(), "{method} {uri}: {status}: {text}");
    }
    (status, value)
}

/// A POST that must create what `body` describes.
async fn create(api: &AdminApi, uri: &str, body: Value) {
    let body = Bytes::from(body.to_string());
    let (status, answer) = call(api, Method::POST, uri, Some("application/json"), body).await;
    assert_eq!(status, StatusCode::CREATED, "POST {uri}: {answer}");
}

/// A DELETE that must succeed.
async fn delete(api: &AdminApi, uri: &str) {
    let (status, answer) = call(api, Method::DELETE, uri, None, Bytes::new()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "DELETE {uri}: {answer}");
}

/// The tunnels, route and app the endpoints' paths name.
async fn seed(api: &AdminApi) {
    for name in ["t1", "t2"] {
        create(api, "/v1/tunnels", json!({ "name": name })).await;
    }
    let route = json!({ "tunnel": "t1", "hostname": ROUTE });
    create(api, "/v1/routes", route).await;
    create_app(api).await;
}

async fn create_app(api: &AdminApi) {
    let staff =
        json!({"name": "staff", "action": "allow", "include": [{"email_domain": "example.com"}]});
    let app = json!({ "name": APP, "hostnames": ["wiki.example.com"], "policies": [staff] });
    create(api, "/v1/access/apps", app).await;
}

/// `segment` as one percent-encoded path segment.
fn segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Undoes what a successful body did at endpoint `i`, through the API.
async fn undo(api: &AdminApi, i: usize, answer: &Value) {
    let field = |name: &str| {
        let v = answer[name].as_str();
        segment(v.unwrap_or_else(|| panic!("no {name} in {answer}")))
    };
    match i {
        0 => delete(api, &format!("/v1/tunnels/{}", field("id"))).await,
        1 => delete(api, &format!("/v1/routes/{}", field("hostname"))).await,
        2 => delete(api, &format!("/v1/access/apps/{}", field("name"))).await,
        3 | 4 => {
            delete(api, &format!("/v1/access/apps/{APP}")).await;
            create_app(api).await;
        }
        6 => delete(api, &format!("/v1/access/idps/{}", field("name"))).await,
        // Service tokens stay (see INPUTS_PER_STORE); revoking sessions,
        // a route's public flag, a stored config (no connector runs it)
        // and a dry-run apply change nothing the next input needs.
        _ => {}
    }
}

thread_local! {
    static FIXTURE: RefCell<Fixture> = RefCell::new(Fixture::new());
}

fuzz_target!(|data: &[u8]| {
    let [pick, body @ ..] = data else {
        return;
    };
    let i = usize::from(pick & 0x0f) % ENDPOINTS.len();
    let content_type = match pick >> 4 {
        15 => None,
        14 => Some("text/plain"),
        13 => Some("application/json; charset=utf-8"),
        _ => Some("application/json"),
    };
    let (method, uri) = &ENDPOINTS[i];
    FIXTURE.with_borrow_mut(|f| {
        f.run(async |api| {
            let body = if i == APPLY {
                [&b"{\"dry_run\": true, \"declared\": "[..], body, b"}"].concat().into()
            } else {
                Bytes::copy_from_slice(body)
            };
            let (status, answer) = call(api, method.clone(), uri, content_type, body).await;
            if status.is_success() {
                undo(api, i, &answer).await;
            }
        })
    });
});
