//! Ingress parsing and matching tests, one file per topic; the helpers
//! here build a config from YAML and return it or its error sentence.

use super::*;

mod access;
mod cloudflared;
mod errors;
mod matching;
mod origin_request;
mod pools;
mod services;
mod url_and_describe;

/// The error text for `yaml`, which must be rejected.
fn err(yaml: &str) -> String {
    match IngressConfig::from_yaml(yaml) {
        Ok(config) => panic!("expected an error, got {config:#?}"),
        Err(e) => e.to_string(),
    }
}

fn ok(yaml: &str) -> IngressConfig {
    IngressConfig::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"))
}

/// The error text for a config whose first rule has `service: svc`.
fn service_err(svc: &str) -> String {
    err(&format!(
        "ingress:\n  - hostname: a.example.com\n    service: \"{svc}\"\n  - service: http_status:404\n"
    ))
}

/// The service parsed from a config whose only rule has `service: svc`.
fn service(svc: &str) -> Service {
    ok(&format!("ingress:\n  - service: \"{svc}\"\n"))
        .rules
        .remove(0)
        .service
}

/// The error text for rule 1's `originRequest: {block}`.
fn origin_err(block: &str) -> String {
    err(&format!(
        "ingress:\n  - service: http_status:404\n    originRequest: {block}\n"
    ))
}

fn origin(block: &str) -> OriginRequest {
    ok(&format!(
        "ingress:\n  - service: http_status:404\n    originRequest: {block}\n"
    ))
    .rules
    .remove(0)
    .origin_request
}

const SAMPLE: &str = r#"
tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef
credentials-file: /x.json
originRequest:
  connectTimeout: 10s
ingress:
  - hostname: app.example.com
    path: ^/api/.*$
    service: http://localhost:8000
    originRequest:
      noTLSVerify: true
  - hostname: "*.example.com"
    service: https://localhost:8443
  - hostname: db.example.com
    service: tcp://localhost:5432
    originRequest: { proxyProtocol: v2 }
  - hostname: sock.example.com
    service: unix:/run/app.sock
  - service: http_status:404
"#;
