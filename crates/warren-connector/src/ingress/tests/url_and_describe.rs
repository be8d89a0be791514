//! `--url` single rules, rule descriptions and the URL check.

use super::*;

#[test]
fn single_url_rule() {
    let config = IngressConfig::single("http://localhost:3000").unwrap();
    assert_eq!(config.rules.len(), 1);
    let (index, rule) = config.find("random-words.example.com", "/anything");
    assert_eq!(index, 0);
    assert!(rule.is_catch_all());
    assert_eq!(rule.service.to_string(), "http://localhost:3000");
    assert_eq!(rule.origin_request, OriginRequest::default());

    assert_eq!(
        IngressConfig::single("localhost:3000")
            .unwrap_err()
            .to_string(),
        "ingress rule 1 has service \"localhost:3000\" with no scheme; add one, as in \
         http://localhost:3000"
    );
    assert_eq!(
        IngressConfig::single("").unwrap_err(),
        ConfigError::MissingService { rule: 1 }
    );
}

#[test]
fn describe_rules() {
    let config = ok(r#"
ingress:
  - hostname: app.example.com
    service: http://localhost:8000
  - hostname: "*.example.com"
    path: ^/api
    service: https://localhost:8443
    originRequest: { noTLSVerify: true, connectTimeout: 5s, proxyProtocol: v2 }
  - service: http_status:404
"#);
    assert_eq!(
        config.rules[1].describe(1),
        "rule 2\n  hostname: *.example.com\n  path: ^/api\n  service: https://localhost:8443\n  \
         originRequest.connectTimeout: 5s\n  originRequest.noTLSVerify: true\n  \
         originRequest.proxyProtocol: v2"
    );
    assert_eq!(
        config.rules[2].describe(2),
        "rule 3 (catch-all)\n  service: http_status:404"
    );
    // No overflow on silly indexes.
    assert!(config.rules[0].describe(usize::MAX).starts_with("rule "));
}

#[test]
fn url_check() {
    let check = |url: &str| ingress_for_url_check(url).unwrap();
    assert_eq!(
        check("https://app.example.com/api/x"),
        ("app.example.com".into(), "/api/x".into())
    );
    assert_eq!(
        check("https://App.Example.COM:8443/api/x?y=1#frag"),
        ("app.example.com".into(), "/api/x".into())
    );
    assert_eq!(
        check("http://app.example.com"),
        ("app.example.com".into(), "/".into())
    );
    assert_eq!(
        check("http://app.example.com?x=1"),
        ("app.example.com".into(), "/".into())
    );
    assert_eq!(
        check("http://user@app.example.com/"),
        ("app.example.com".into(), "/".into())
    );
    assert_eq!(check("http://[::1]:80/x"), ("::1".into(), "/x".into()));

    let config = ok(SAMPLE);
    let (host, path) = check("https://APP.example.com/api/v1");
    assert_eq!(config.find(&host, &path).0, 0);
}
