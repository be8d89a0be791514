//! Matching: rule order, wildcards, paths, catch-alls.

use super::*;

#[test]
fn sample_loads_and_matches_in_order() {
    let config = ok(SAMPLE);
    assert_eq!(config.rules.len(), 5);
    let idx = |host: &str, path: &str| config.find(host, path).0;
    assert_eq!(idx("app.example.com", "/api/users"), 0);
    // Rule 1's path does not match, so the wildcard rule takes it.
    assert_eq!(idx("app.example.com", "/"), 1);
    assert_eq!(idx("x.example.com", "/api/users"), 1);
    // Rule 2 is first for db.example.com too: order matters.
    assert_eq!(idx("db.example.com", "/"), 1);
    assert_eq!(idx("example.com", "/"), 4);
    assert_eq!(idx("other.org", "/api/"), 4);
    let (_, rule) = config.find("nothing.test", "/");
    assert_eq!(rule.service, Service::HttpStatus(404));
}

#[test]
fn specific_rules_before_wildcards() {
    let config = ok("ingress:\n  - hostname: db.example.com\n    service: tcp://localhost:5432\n  - hostname: \"*.example.com\"\n    service: http://localhost:8080\n  - service: http_status:404\n");
    assert_eq!(config.find("db.example.com", "/").0, 0);
    assert_eq!(config.find("web.example.com", "/").0, 1);
    assert_eq!(config.find("a.b.example.com", "/").0, 1);
    assert_eq!(config.find("example.com", "/").0, 2);
}

#[test]
fn wildcard_semantics() {
    assert!(match_hostname("*.example.com", "a.example.com"));
    assert!(match_hostname("*.example.com", "a.b.example.com"));
    assert!(!match_hostname("*.example.com", "example.com"));
    assert!(!match_hostname("*.example.com", ".example.com"));
    assert!(!match_hostname("*.example.com", "aexample.com"));
    assert!(!match_hostname("*.example.com", "a.example.com.evil.org"));
    assert!(!match_hostname("*.example.com", "a..example.com"));
    assert!(match_hostname("*", "anything.at.all"));
    assert!(match_hostname("*", ""));
    assert!(match_hostname("app.example.com", "app.example.com"));
    assert!(!match_hostname("app.example.com", "x.app.example.com"));
    assert!(!match_hostname("app.example.com", "app.example.co"));
    // Case-insensitive both ways.
    assert!(match_hostname("App.Example.COM", "app.example.com"));
    assert!(match_hostname("*.EXAMPLE.com", "a.example.com"));
    assert!(match_hostname("app.example.com", "APP.example.com"));
    // Never panics on odd input (multi-byte characters near the cut).
    assert!(!match_hostname("*.example.com", "ä.exampleé.com"));
    assert!(!match_hostname("*.a", "éa"));
    assert!(!match_hostname("*x", "x"));
}

#[test]
fn hostname_patterns_match_case_insensitively_in_rules() {
    let config = ok("ingress:\n  - hostname: App.Example.COM\n    service: hello_world\n  - service: http_status:404\n");
    assert_eq!(config.find("app.example.com", "/").0, 0);
    assert_eq!(config.rules[0].hostname.as_deref(), Some("App.Example.COM"));
}

#[test]
fn path_regex_is_unanchored() {
    let config = ok("ingress:\n  - path: /static/\n    service: http://localhost:1\n  - hostname: a.example.com\n    path: \\.(png|jpg)$\n    service: http://localhost:2\n  - path: ^/exact$\n    service: http://localhost:3\n  - service: http_status:404\n");
    assert_eq!(config.find("x.test", "/static/a.css").0, 0);
    assert_eq!(config.find("x.test", "/app/static/a.css").0, 0);
    assert_eq!(config.find("a.example.com", "/img/cat.png").0, 1);
    assert_eq!(config.find("b.example.com", "/img/cat.png").0, 3);
    assert_eq!(config.find("x.test", "/exact").0, 2);
    assert_eq!(config.find("x.test", "/exact/more").0, 3);
}

#[test]
fn path_only_and_wildcard_catch_all_rules() {
    // A final `hostname: "*"` rule is a valid catch-all.
    let config = ok("ingress:\n  - path: ^/a\n    service: hello_world\n  - hostname: \"*\"\n    service: http_status:503\n");
    assert_eq!(config.find("x", "/a").0, 0);
    assert_eq!(config.find("x", "/b").0, 1);
    assert!(config.rules[1].is_catch_all());
}

#[test]
fn find_on_hand_built_config_never_panics() {
    let empty = IngressConfig {
        rules: vec![],
        metrics: None,
        grace_period: None,
    };
    let (index, rule) = empty.find("a.example.com", "/");
    assert_eq!(index, 0);
    assert_eq!(rule.service, Service::HttpStatus(404));

    let mut config = ok(SAMPLE);
    config.rules.pop();
    assert_eq!(config.find("other.org", "/").0, 4);
}
