//! `service: pool` and `originPool`: error sentences, defaults, describe.

use std::time::Duration;

use super::{err, ok, service};
use crate::ingress::*;

/// The error text for rule 1 `service: pool` with `originPool: {block}`.
fn pool_err(block: &str) -> String {
    err(&format!(
        "ingress:\n  - hostname: api.example.com\n    service: pool\n    originPool: {block}\n  - service: http_status:404\n"
    ))
}

fn pool(block: &str) -> OriginPool {
    match ok(&format!(
        "ingress:\n  - hostname: api.example.com\n    service: pool\n    originPool: {block}\n  - service: http_status:404\n"
    ))
    .rules
    .remove(0)
    .service
    {
        Service::Pool(pool) => pool,
        other => panic!("not a pool: {other}"),
    }
}

#[test]
fn pool_without_origin_pool() {
    assert_eq!(
        err("ingress:\n  - hostname: api.example.com\n    service: pool\n  - service: http_status:404\n"),
        "ingress rule 1 has `service: pool` but no originPool; add one listing the origins, such \
         as `originPool: { origins: [http://10.0.0.5:8000, http://10.0.0.6:8000] }`"
    );
}

#[test]
fn origin_pool_without_pool_service() {
    assert_eq!(
        err("ingress:\n  - hostname: api.example.com\n    service: http://10.0.0.5:8000\n    originPool: { origins: [http://10.0.0.6:8000] }\n  - service: http_status:404\n"),
        "ingress rule 1 has an originPool but its service is \"http://10.0.0.5:8000\"; write \
         `service: pool` to use the pool, or remove originPool"
    );
}

#[test]
fn pool_without_origins() {
    let want = "ingress rule 1 has an originPool with no origins; list them under `origins:`, \
                such as `origins: [http://10.0.0.5:8000, http://10.0.0.6:8000]`";
    assert_eq!(pool_err("{ origins: [] }"), want);
    assert_eq!(pool_err("{ origins: }"), want);
    assert_eq!(pool_err("{ steering: hash }"), want);
}

#[test]
fn pool_with_mixed_origins() {
    assert_eq!(
        pool_err("{ origins: [http://10.0.0.5:8000, https://10.0.0.6, tcp://10.0.0.7:5432] }"),
        "ingress rule 1 mixes HTTP and TCP origins in its originPool (\"http://10.0.0.5:8000\" \
         and \"tcp://10.0.0.7:5432\"); a pool's origins must be all http(s):// or all tcp://, so \
         remove the other kind"
    );
    assert_eq!(
        pool_err("{ origins: [ssh://10.0.0.7, http://10.0.0.5:8000] }"),
        "ingress rule 1 mixes HTTP and TCP origins in its originPool (\"http://10.0.0.5:8000\" \
         and \"ssh://10.0.0.7\"); a pool's origins must be all http(s):// or all tcp://, so \
         remove the other kind"
    );
}

#[test]
fn pool_origin_of_the_wrong_kind() {
    // postgres:// is not a Service yet, so it is refused like any other
    // scheme a pool cannot balance.
    for origin in [
        "unix:/run/app.sock",
        "hello_world",
        "http_status:503",
        "postgres://db:5432",
        "pool",
        "",
    ] {
        assert_eq!(
            pool_err(&format!(
                "{{ origins: [http://10.0.0.5:8000, \"{origin}\"] }}"
            )),
            format!(
                "ingress rule 1 has originPool origin \"{origin}\", which is not an http://, \
                 https:// or tcp:// service; a pool spreads requests over network origins, so \
                 use one of those"
            )
        );
    }
    // Problems within an origin are the service parser's.
    assert_eq!(
        pool_err("{ origins: [http://10.0.0.5:0] }"),
        "ingress rule 1 has service \"http://10.0.0.5:0\" with an invalid port \"0\"; use a \
         number from 1 to 65535"
    );
    assert_eq!(
        pool_err("{ origins: [tcp://10.0.0.5:1, tcp://10.0.0.5:1] }"),
        "ingress rule 1 has an invalid originPool.origins \"tcp://10.0.0.5:1\"; it is the same \
         origin as \"tcp://10.0.0.5:1\", so list it once"
    );
}

#[test]
fn pool_with_unknown_steering() {
    assert_eq!(
        pool_err("{ origins: [http://a:1], steering: random }"),
        "ingress rule 1 has an invalid originPool.steering \"random\"; use round_robin, \
         least_outstanding or hash"
    );
    assert_eq!(
        pool_err("{ origins: [http://a:1], steering: [hash] }"),
        "ingress rule 1 has an invalid originPool.steering (a list); write it as text"
    );
}

#[test]
fn pool_with_bad_hash_on() {
    let check = |hash_on: &str, fix: &str| {
        assert_eq!(
            pool_err(&format!(
                "{{ origins: [http://a:1], steering: hash, hashOn: \"{hash_on}\" }}"
            )),
            format!("ingress rule 1 has an invalid originPool.hashOn \"{hash_on}\"; {fix}"),
        );
    };
    check("ip", "use header:NAME, cookie:NAME or client_ip");
    check("Header:X-User", "use header:NAME, cookie:NAME or client_ip");
    check("header:", "add the header's name, as in header:X-User");
    check(
        "header:X User",
        "\"X User\" is not a header name; use header:NAME, cookie:NAME or client_ip",
    );
    check("cookie:", "add the cookie's name, as in cookie:session");
    check(
        "cookie:a=b",
        "\"a=b\" is not a cookie name; use header:NAME, cookie:NAME or client_ip",
    );
    assert_eq!(
        pool_err("{ origins: [tcp://a:1], steering: hash, hashOn: \"header:X-User\" }"),
        "ingress rule 1 has an invalid originPool.hashOn \"header:X-User\"; a pool of TCP \
         origins sees no headers or cookies, so use client_ip"
    );
    assert_eq!(
        pool_err("{ origins: [http://a:1], hashOn: \"header:X-User\" }"),
        "ingress rule 1 has an invalid originPool.hashOn \"header:X-User\"; it only applies with \
         `steering: hash` and the steering is round_robin, so set `steering: hash` or remove \
         hashOn"
    );
    assert_eq!(
        pool_err("{ origins: [http://a:1], steering: least_outstanding, hashOn: client_ip }"),
        "ingress rule 1 has an invalid originPool.hashOn \"client_ip\"; it only applies with \
         `steering: hash` and the steering is least_outstanding, so set `steering: hash` or \
         remove hashOn"
    );
}

#[test]
fn pool_with_bad_health_check() {
    let check = |block: &str| {
        pool_err(&format!(
            "{{ origins: [http://a:1], healthCheck: {block} }}"
        ))
    };
    assert_eq!(
        check("{ interval: 5x }"),
        "ingress rule 1 has an invalid originPool.healthCheck.interval \"5x\": unknown unit \"x\" \
         (use ns, us, ms, s, m or h); use a duration like 5s or 500ms"
    );
    assert_eq!(
        check("{ timeout: \"-2s\" }"),
        "ingress rule 1 has an invalid originPool.healthCheck.timeout \"-2s\": it is negative; \
         use a duration like 5s or 500ms"
    );
    assert_eq!(
        check("{ interval: 0s }"),
        "ingress rule 1 has an invalid originPool.healthCheck.interval \"0s\": it is zero; use a \
         duration like 5s or 500ms"
    );
    assert_eq!(
        check("{ timeout: 0 }"),
        "ingress rule 1 has an invalid originPool.healthCheck.timeout \"0\": it is zero; use a \
         duration like 5s or 500ms"
    );
    assert_eq!(
        check("{ interval: [5s] }"),
        "ingress rule 1 has an invalid originPool.healthCheck.interval (a list); use a duration \
         like 5s or 500ms"
    );
    for (key, value) in [
        ("unhealthyAfter", "0"),
        ("healthyAfter", "0"),
        ("healthyAfter", "-1"),
        ("unhealthyAfter", "two"),
        ("unhealthyAfter", "1.5"),
    ] {
        assert_eq!(
            check(&format!("{{ {key}: {value} }}")),
            format!(
                "ingress rule 1 has an invalid originPool.healthCheck.{key} \"{value}\"; use a \
                 whole number of at least 1, such as 2"
            )
        );
    }
    assert_eq!(
        check("{ path: healthz }"),
        "ingress rule 1 has an invalid originPool.healthCheck.path \"healthz\"; use a path \
         starting with /, such as /healthz"
    );
    assert_eq!(
        pool_err("{ origins: [tcp://a:1], healthCheck: { path: /healthz } }"),
        "ingress rule 1 has an invalid originPool.healthCheck.path \"/healthz\"; remove it: TCP \
         origins are checked by connecting"
    );
}

#[test]
fn pool_shape_errors() {
    assert_eq!(
        pool_err("[http://a:1]"),
        "ingress rule 1 has an originPool that is a list instead of a mapping; write one \
         setting per line below it, such as `origins: [http://10.0.0.5:8000, \
         http://10.0.0.6:8000]`"
    );
    assert_eq!(
        pool_err("{ origins: http://a:1 }"),
        "ingress rule 1 has an originPool.origins that is text instead of a list; write it as \
         `origins: [http://10.0.0.5:8000, http://10.0.0.6:8000]`"
    );
    assert_eq!(
        pool_err("{ origins: [{ url: http://a:1 }] }"),
        "ingress rule 1 has an originPool origin that is a mapping instead of text; write each \
         origin as a URL, such as http://10.0.0.5:8000"
    );
    assert_eq!(
        pool_err("{ origins: [http://a:1], healthCheck: 5s }"),
        "ingress rule 1 has an originPool.healthCheck that is text instead of a mapping; write \
         one setting per line below it, such as `interval: 5s`"
    );
}

#[test]
fn pool_defaults() {
    let p = pool("{ origins: [http://10.0.0.5:8000, \"https://10.0.0.6\"] }");
    assert_eq!(p.steering, Steering::RoundRobin);
    assert!(!p.is_tcp());
    assert_eq!(
        p.health_check,
        HealthCheck {
            path: Some("/".into()),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            unhealthy_after: 2,
            healthy_after: 2,
        }
    );
    // TCP pools connect instead; ssh:// is a TCP origin.
    let p = pool("{ origins: [tcp://10.0.0.5:5432, ssh://10.0.0.6], steering: hash }");
    assert!(p.is_tcp());
    assert_eq!(p.health_check.path, None);
    assert_eq!(p.steering, Steering::Hash(HashOn::ClientIp));
}

#[test]
fn full_pool_rule() {
    let config = ok(r#"
originRequest: { connectTimeout: 3s }
ingress:
  - hostname: api.example.com
    service: pool
    originPool:
      origins: [http://10.0.0.5:8000, http://10.0.0.6:8000]
      steering: hash
      hashOn: header:X-User
      healthCheck: { path: /healthz?deep=1, interval: 200ms, timeout: 1.5, unhealthyAfter: 3, healthyAfter: 1 }
    originRequest: { httpHostHeader: internal.example.com }
  - hostname: db.example.com
    service: pool
    originPool:
      origins: [tcp://10.0.0.7:5432, tcp://10.0.0.8:5432]
      steering: least_outstanding
  - service: http_status:404
"#);
    let rule = &config.rules[0];
    let Service::Pool(p) = &rule.service else {
        panic!("{}", rule.service)
    };
    assert_eq!(
        p.origins,
        vec![
            service("http://10.0.0.5:8000"),
            service("http://10.0.0.6:8000")
        ]
    );
    assert_eq!(p.steering, Steering::Hash(HashOn::Header("x-user".into())));
    assert_eq!(
        p.health_check,
        HealthCheck {
            path: Some("/healthz?deep=1".into()),
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(1500),
            unhealthy_after: 3,
            healthy_after: 1,
        }
    );
    // The rule's originRequest (with the globals) is there for every origin.
    assert_eq!(rule.origin_request.connect_timeout, Duration::from_secs(3));
    assert_eq!(
        rule.origin_request.http_host_header.as_deref(),
        Some("internal.example.com")
    );
    assert_eq!(config.find("api.example.com", "/x").0, 0);
    assert_eq!(
        rule.describe(0),
        "rule 1\n  hostname: api.example.com\n  service: pool [http://10.0.0.5:8000, \
         http://10.0.0.6:8000]\n  originPool.steering: hash on header:x-user\n  \
         originPool.healthCheck: GET /healthz?deep=1 every 200ms, timeout 1.5s, unhealthyAfter \
         3, healthyAfter 1\n  originRequest.connectTimeout: 3s\n  \
         originRequest.httpHostHeader: internal.example.com"
    );
    assert_eq!(
        config.rules[1].describe(1),
        "rule 2\n  hostname: db.example.com\n  service: pool [tcp://10.0.0.7:5432, \
         tcp://10.0.0.8:5432]\n  originPool.steering: least_outstanding\n  \
         originPool.healthCheck: TCP connect every 5s, timeout 2s, unhealthyAfter 2, \
         healthyAfter 2\n  originRequest.connectTimeout: 3s"
    );
}

#[test]
fn unknown_pool_keys_are_reported() {
    let (config, warnings) = IngressConfig::from_yaml_with_warnings(
        "ingress:\n  - hostname: a.example.com\n    service: pool\n    originPool:\n      origins: [http://a:1]\n      Steering: hash\n      healthCheck: { unhealthy_after: 5 }\n  - service: http_status:404\n",
    )
    .unwrap();
    assert_eq!(
        warnings,
        vec![
            "originPool.Steering is not a known setting and is ignored (did you mean steering?) \
             (in rule 1)",
            "originPool.healthCheck.unhealthy_after is not a known setting and is ignored (in \
             rule 1)",
        ]
    );
    let Service::Pool(p) = &config.rules[0].service else {
        panic!()
    };
    assert_eq!(p.steering, Steering::RoundRobin);
    assert_eq!(p.health_check.unhealthy_after, 2);
}
