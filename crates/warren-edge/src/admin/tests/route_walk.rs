//! The route walk: what the admin router serves and what its OpenAPI
//! document (`GET /api/openapi.json`, fetched from the real router) says
//! agree.
//!
//! - every documented operation is served, answers with a status it
//!   documents, and asks for the admin token exactly when the document
//!   says it does;
//! - on a documented path, every method the router takes is documented;
//! - every path the `warren` crate's sources and tests name in a string
//!   literal (the CLI's admin client, `tunnel ingress`, the end-to-end
//!   tests) is, with every method the router takes on it, documented:
//!   so a new endpoint fails here once anything calls it, however it was
//!   registered.
//!
//! That no endpoint is registered outside `routes!` at all is
//! `clippy.toml`'s part (`Router::route` and its kin are refused).
//!
//! **The one exception is the dashboard**, `/ui` and everything under it:
//! HTML pages for people, registered in `admin/ui/mod.rs` (the only place
//! that may call `Router::route`, and only for paths under `/ui`). The
//! walk checks the exception stays that narrow: no dashboard path is in
//! the document, the dashboard answers every `/ui/` path with HTML or a
//! redirect and never with the API's fallbacks, and no path outside
//! `/ui` is answered by it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use axum::http::Uri;

use super::*;
use crate::admin::{METHOD_NOT_ALLOWED, NO_SUCH_ENDPOINT};

/// The methods the walk tries on every path.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The operations that need no admin token.
const PUBLIC: [(&str, &str); 2] = [("GET", "/v1/health"), ("GET", "/api/openapi.json")];

/// What a path parameter is filled with.
const PLACEHOLDER: &str = "nothing";

/// Whether `path` is the dashboard's (see the module doc).
fn is_dashboard(path: &str) -> bool {
    path == crate::admin::ui::PREFIX || path.starts_with("/ui/")
}

/// One answer of the router, whatever its body.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Which of the router's fallbacks gave it, if one did: no route has
    /// the path, or the path's route does not take the method.
    fn fallback(&self) -> Option<&'static str> {
        let v = self.json()?;
        let error = v["error"].as_str()?;
        if self.status == StatusCode::NOT_FOUND && error == NO_SUCH_ENDPOINT {
            Some("the 404 fallback")
        } else if self.status == StatusCode::METHOD_NOT_ALLOWED && error == METHOD_NOT_ALLOWED {
            Some("the 405 fallback")
        } else {
            None
        }
    }

    fn describe(&self) -> String {
        format!("{} {}", self.status, String::from_utf8_lossy(&self.body))
    }
}

impl Api {
    /// `method uri`, with the admin token or without, and `{}` as a JSON
    /// body when `json_body`.
    async fn answer(&self, method: &str, uri: &str, token: bool, json_body: bool) -> Answer {
        let mut req = axum::http::Request::builder().method(method).uri(uri);
        if token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        }
        let body = if json_body {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from("{}")
        } else {
            Body::empty()
        };
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Answer { status, body }
    }
}

/// One operation of the document.
struct Operation<'a> {
    method: String,
    path: &'a str,
    op: &'a Value,
}

impl Operation<'_> {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn is_public(&self) -> bool {
        PUBLIC
            .iter()
            .any(|&(method, path)| method == self.method && path == self.path)
    }

    fn documents_status(&self, status: StatusCode) -> bool {
        self.op["responses"]
            .as_object()
            .is_some_and(|r| r.contains_key(status.as_str()))
    }

    /// The path with every `{parameter}` filled.
    fn uri(&self) -> String {
        fill(self.path)
    }
}

/// `template` with every `{...}` replaced by [`PLACEHOLDER`].
fn fill(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str(PLACEHOLDER);
                rest = &rest[open + close + 1..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether the path template `template` matches the concrete `path`.
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if t.starts_with('{') && t.ends_with('}') {
                !p.is_empty()
            } else {
                t == p
            }
        })
}

/// The document, as the router serves it.
async fn document(api: &Api) -> Value {
    let answer = api.answer("GET", "/api/openapi.json", false, false).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.describe());
    answer
        .json()
        .unwrap_or_else(|| panic!("the document is not JSON: {}", answer.describe()))
}

/// Every operation of `doc`.
fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let paths = doc["paths"].as_object().expect("the document has paths");
    let mut ops = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("a path item is an object") {
            if matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
            ) {
                ops.push(Operation {
                    method: method.to_ascii_uppercase(),
                    path,
                    op,
                });
            }
        }
    }
    ops
}

fn is_documented(ops: &[Operation<'_>], method: &str, path: &str) -> bool {
    ops.iter()
        .any(|o| o.method == method && matches(o.path, path))
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_admin_token_scheme() {
    let api = Api::new().await;
    let doc = document(&api).await;
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi: {version:?}");
    assert_eq!(doc["info"]["title"], "Warren admin API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"][crate::admin::openapi::SCHEME],
        json!({
            "type": "http",
            "scheme": "bearer",
            "description": "The contents of <data-dir>/admin-token (what WARREN_API_TOKEN is set to for the CLI)."
        })
    );
    assert_eq!(
        doc["components"]["schemas"]["ApiErrorBody"]["required"],
        json!(["error"])
    );

    let ops = operations(&doc);
    assert!(ops.len() >= 35, "only {} operations", ops.len());
    let declared: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("the document declares its tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let mut ids = BTreeSet::new();
    for o in &ops {
        let name = o.name();
        // The admin token exactly where the token check is layered.
        let security = &o.op["security"];
        if o.is_public() {
            assert!(security.is_null(), "{name} is public but says {security}");
        } else {
            assert_eq!(security, &json!([{ "admin_token": [] }]), "{name}");
        }
        // A one-line summary, a declared tag, a unique operation id.
        let summary = o.op["summary"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && !summary.contains('\n'),
            "{name}: summary {summary:?}"
        );
        let tags: Vec<&str> = o.op["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(
            !tags.is_empty() && tags.iter().all(|t| declared.contains(t)),
            "{name}: tags {tags:?} (declared: {declared:?})"
        );
        let id = o.op["operationId"].as_str().unwrap_or_default();
        assert!(
            ids.insert(id.to_owned()),
            "{name}: operationId {id:?} again"
        );
        // The path's parameters are the ones it documents.
        let in_path: BTreeSet<&str> = o
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let documented: BTreeSet<&str> = o.op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(in_path, documented, "{name}: path parameters");
        // Every error answer is the one error body.
        for (status, response) in o.op["responses"].as_object().expect("responses") {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ApiErrorBody",
                    "{name} {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    let api = Api::new().await;
    let doc = document(&api).await;
    let mut refs = BTreeSet::new();
    fn collect(v: &Value, refs: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    refs.insert(r.clone());
                }
                m.values().for_each(|v| collect(v, refs));
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, refs)),
            _ => {}
        }
    }
    collect(&doc, &mut refs);
    assert!(refs.len() >= 20, "only {refs:?}");
    for r in &refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r} is not a schema reference"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }
}

#[tokio::test]
async fn every_documented_operation_is_served_as_documented() {
    let api = Api::new().await;
    let doc = document(&api).await;
    let ops = operations(&doc);
    for o in &ops {
        let name = o.name();
        let body = o.op.get("requestBody").is_some();
        let with = api.answer(&o.method, &o.uri(), true, body).await;
        if let Some(fallback) = with.fallback() {
            panic!("{name} is documented but answered by {fallback}");
        }
        assert!(
            o.documents_status(with.status),
            "{name} answered {}, which it does not document",
            with.describe()
        );
        let without = api.answer(&o.method, &o.uri(), false, body).await;
        if o.is_public() {
            assert_ne!(without.status, StatusCode::UNAUTHORIZED, "{name}");
        } else {
            assert_eq!(
                without.status,
                StatusCode::UNAUTHORIZED,
                "{name} says it needs the admin token but answered {}",
                without.describe()
            );
        }
    }
}

#[tokio::test]
async fn no_undocumented_method_is_served_on_a_documented_path() {
    let api = Api::new().await;
    let doc = document(&api).await;
    let ops = operations(&doc);
    let paths: BTreeSet<&str> = ops.iter().map(|o| o.path).collect();
    for path in paths {
        for method in METHODS {
            if is_documented(&ops, method, path) {
                continue;
            }
            let answer = api.answer(method, &fill(path), true, false).await;
            assert_eq!(
                answer.fallback(),
                Some("the 405 fallback"),
                "{method} {path} is served ({}) but not documented",
                answer.describe()
            );
        }
    }
}

/// The `.rs` files under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every string literal of `source` that starts with `/` and reads as a
/// request path once its format placeholders (`{}`, `{name}`) are filled
/// and its query is cut off.
fn path_literals(source: &str, out: &mut BTreeSet<String>) {
    for (at, _) in source.match_indices("\"/") {
        let literal = &source[at + 1..];
        let Some(end) = literal.find('"') else {
            continue;
        };
        let literal = &literal[..end];
        if literal.contains(['\\', ' ', '\n']) {
            continue;
        }
        let path = fill(literal.split('?').next().unwrap_or_default());
        if path.parse::<Uri>().is_ok_and(|u| u.path() == path) {
            out.insert(path);
        }
    }
}

#[tokio::test]
async fn every_path_the_clients_call_is_documented_with_every_method_served() {
    let warren = Path::new(env!("CARGO_MANIFEST_DIR")).join("../warren");
    assert!(
        warren.join("src/admin_cli").is_dir(),
        "the CLI's admin client is not at {}",
        warren.display()
    );
    let mut files = Vec::new();
    rust_files(&warren.join("src"), &mut files);
    rust_files(&warren.join("tests"), &mut files);
    let mut literals = BTreeSet::new();
    for file in &files {
        path_literals(&std::fs::read_to_string(file).unwrap(), &mut literals);
    }

    let api = Api::new().await;
    let doc = document(&api).await;
    let ops = operations(&doc);
    let mut served: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for path in &literals {
        if is_dashboard(path) {
            // The dashboard's pages: see `the_dashboard_is_html_under_ui_and_nowhere_in_the_document`.
            continue;
        }
        for method in METHODS {
            let answer = api.answer(method, path, true, false).await;
            if answer.fallback().is_some() {
                continue;
            }
            assert!(
                is_documented(&ops, method, path),
                "{method} {path} (named in the warren crate's sources) is served ({}) but not documented",
                answer.describe()
            );
            served.entry(path.clone()).or_default().push(method);
        }
    }
    // The scan found what the CLI calls, so the walk above checked
    // something: the tunnel, route, access and audit commands.
    for (method, path) in [
        ("POST", "/v1/tunnels"),
        ("GET", "/v1/tunnels/nothing/token"),
        ("POST", "/v1/routes"),
        ("GET", "/v1/access/apps/nothing"),
        ("PUT", "/v1/tunnels/nothing/ingress"),
        ("GET", "/v1/audit/verify"),
    ] {
        assert!(
            served.get(path).is_some_and(|m| m.contains(&method)),
            "{method} {path} was not among the served client paths: {served:?}"
        );
    }
    assert!(
        served.len() >= 20,
        "only {} served paths: {served:?}",
        served.len()
    );
}

#[tokio::test]
async fn the_dashboard_is_html_under_ui_and_nowhere_in_the_document() {
    let api = Api::new().await;
    let doc = document(&api).await;
    let ops = operations(&doc);
    for o in &ops {
        assert!(
            !is_dashboard(o.path),
            "{} is documented, but /ui is the dashboard's",
            o.name()
        );
    }
    // Every page the dashboard registers is under /ui, and answers as the
    // dashboard: a page, or a redirect to the sign-in page; never JSON.
    let pages = crate::admin::ui::paths();
    assert!(pages.len() >= 15, "{pages:?}");
    for page in pages {
        assert!(is_dashboard(page), "{page} is outside /ui");
        let uri = fill(&page.replace("{*rest}", "nothing/else"));
        let answer = api.answer("GET", &uri, false, false).await;
        assert!(
            answer.fallback().is_none() && answer.json().is_none(),
            "GET {uri} answered like the API: {}",
            answer.describe()
        );
        assert!(
            answer.status.is_success()
                || answer.status.is_redirection()
                || answer.status == StatusCode::NOT_FOUND
                || answer.status == StatusCode::METHOD_NOT_ALLOWED,
            "GET {uri}: {}",
            answer.describe()
        );
    }
    // Paths the dashboard does not have are its 404 page under /ui, and
    // the API's 404 everywhere else.
    let unknown = api.answer("GET", "/ui/no/such/page", false, false).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.fallback().is_none(), "{}", unknown.describe());
    for path in ["/uix", "/v1/ui", "/u"] {
        let answer = api.answer("GET", path, true, false).await;
        assert_eq!(
            answer.fallback(),
            Some("the 404 fallback"),
            "{path}: {}",
            answer.describe()
        );
    }
}
