use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

mod pools;

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

// ---- error sentences, verbatim ----

#[test]
fn no_rules_errors() {
    let want = "the config has no ingress rules; add an `ingress:` list whose last rule is a \
                catch-all such as `- service: http_status:404`";
    assert_eq!(err(""), want);
    assert_eq!(err("tunnel: abc\n"), want);
    assert_eq!(err("ingress: []\n"), want);
    assert_eq!(err("ingress:\n"), want);
    assert_eq!(err("# only a comment\n"), want);
}

#[test]
fn last_rule_not_catch_all() {
    assert_eq!(
        err("ingress:\n  - hostname: a.example.com\n    service: http://localhost:80\n"),
        "ingress rule 1 is the last rule but it has a hostname or path, so some requests would \
         match no rule; add a catch-all rule at the end, such as `- service: http_status:404`"
    );
    assert_eq!(
        err("ingress:\n  - hostname: a.example.com\n    service: hello_world\n  - path: ^/x\n    service: hello_world\n"),
        "ingress rule 2 is the last rule but it has a hostname or path, so some requests would \
         match no rule; add a catch-all rule at the end, such as `- service: http_status:404`"
    );
}

#[test]
fn catch_all_before_end() {
    let want = "ingress rule 1 matches every request, so the rules after it can never match; \
                move it to the end or give it a hostname";
    assert_eq!(
        err("ingress:\n  - service: hello_world\n  - hostname: a.example.com\n    service: hello_world\n  - service: http_status:404\n"),
        want
    );
    // `*` is a catch-all too, and an empty path is no path.
    assert_eq!(
        err("ingress:\n  - hostname: \"*\"\n    path: \"\"\n    service: hello_world\n  - service: http_status:404\n"),
        want
    );
}

#[test]
fn missing_service() {
    let want = "ingress rule 2 has no service; add one such as `service: http://localhost:8000`";
    assert_eq!(
        err("ingress:\n  - hostname: a.example.com\n    service: hello_world\n  - hostname: b.example.com\n  - service: http_status:404\n"),
        want
    );
    assert_eq!(
        err("ingress:\n  - hostname: a.example.com\n    service: hello_world\n  - service:\n"),
        want
    );
    assert_eq!(
        err("ingress:\n  - hostname: a.example.com\n    service: hello_world\n  - service: \"\"\n"),
        want
    );
}

#[test]
fn bad_path_regex() {
    assert_eq!(
        err("ingress:\n  - path: \"^/api/(\"\n    service: hello_world\n  - service: http_status:404\n"),
        "ingress rule 1 has an invalid path regex \"^/api/(\": unclosed group; fix the regular \
         expression"
    );
}

#[test]
fn unknown_scheme() {
    assert_eq!(
        service_err("ftp://localhost:21"),
        "ingress rule 1 has service \"ftp://localhost:21\" with an unknown scheme \"ftp\"; use \
         http://, https://, tcp://, postgres://, unix:, http_status:NNN or hello_world"
    );
    assert_eq!(
        service_err("bastion"),
        "ingress rule 1 has service \"bastion\" with an unknown scheme \"bastion\"; use \
         http://, https://, tcp://, postgres://, unix:, http_status:NNN or hello_world"
    );
    assert_eq!(
        service_err("redis://db:6379"),
        "ingress rule 1 has service \"redis://db:6379\" with an unknown scheme \"redis\"; \
         use http://, https://, tcp://, postgres://, unix:, http_status:NNN or hello_world"
    );
}

#[test]
fn bad_port() {
    for (svc, port) in [
        ("http://localhost:0", "0"),
        ("http://localhost:65536", "65536"),
        ("https://localhost:abc", "abc"),
        ("tcp://localhost:+80", "+80"),
        ("http://localhost:", ""),
        ("tcp://[::1]:99999", "99999"),
    ] {
        assert_eq!(
            service_err(svc),
            format!(
                "ingress rule 1 has service \"{svc}\" with an invalid port \"{port}\"; use a \
                 number from 1 to 65535"
            )
        );
    }
}

#[test]
fn tcp_without_port() {
    assert_eq!(
        service_err("tcp://localhost"),
        "ingress rule 1 has service \"tcp://localhost\" with no port; add one, as in \
         tcp://localhost:5432"
    );
}

#[test]
fn bad_status() {
    for svc in [
        "http_status:99",
        "http_status:600",
        "http_status:abc",
        "http_status:",
        "http_status:+404",
        "http_status:99999999",
    ] {
        assert_eq!(
            service_err(svc),
            format!(
                "ingress rule 1 has service \"{svc}\" with an invalid status code; use a number \
                 from 100 to 599, as in http_status:404"
            )
        );
    }
}

#[test]
fn bad_hostnames() {
    let check = |hostname: &str, reason: &str| {
        let yaml = format!(
            "ingress:\n  - hostname: \"{hostname}\"\n    service: hello_world\n  - service: http_status:404\n"
        );
        assert_eq!(
            err(&yaml),
            format!(
                "ingress rule 1 has an invalid hostname \"{hostname}\": {reason}; use a name like \
                 app.example.com or *.example.com"
            ),
            "{hostname}"
        );
    };
    check(
        "app.example.com:8080",
        "a hostname cannot have a port, remove \":8080\"",
    );
    check(
        "a.*.example.com",
        "\"*\" may only be the whole first label, as in *.example.com",
    );
    check(
        "*app.example.com",
        "\"*\" may only be the whole first label, as in *.example.com",
    );
    check(
        "*.*.example.com",
        "\"*\" may only be the whole first label, as in *.example.com",
    );
    check("", "it is empty");
    check("app example.com", "a space is not allowed in a hostname");
    check("app!.example.com", "\"!\" is not allowed in a hostname");
    check(
        "app..example.com",
        "it has an empty label (two dots in a row, or a dot at the start or end)",
    );
    check(
        "https://app.example.com",
        "a hostname has no scheme or path, remove \"https://\" and anything after the name",
    );
    check(
        "app.example.com/api",
        "a hostname has no path, remove \"/api\" (use `path:` to match paths)",
    );
}

#[test]
fn service_with_path() {
    assert_eq!(
        service_err("http://localhost:8000/api"),
        "ingress rule 1 has service \"http://localhost:8000/api\" with a path; services cannot \
         have a path, remove \"/api\""
    );
    assert_eq!(
        service_err("https://localhost/a/b"),
        "ingress rule 1 has service \"https://localhost/a/b\" with a path; services cannot have \
         a path, remove \"/a/b\""
    );
}

#[test]
fn bad_durations() {
    assert_eq!(
        origin_err("{ connectTimeout: 10x }"),
        "ingress rule 1 has an invalid originRequest.connectTimeout \"10x\": unknown unit \"x\" \
         (use ns, us, ms, s, m or h); use a duration like 30s or 1m30s"
    );
    assert_eq!(
        origin_err("{ tlsTimeout: \"-5s\" }"),
        "ingress rule 1 has an invalid originRequest.tlsTimeout \"-5s\": it is negative; use a \
         duration like 30s or 1m30s"
    );
    assert_eq!(
        origin_err("{ keepAliveTimeout: -5 }"),
        "ingress rule 1 has an invalid originRequest.keepAliveTimeout \"-5\": it is negative; use \
         a duration like 30s or 1m30s"
    );
    assert_eq!(
        origin_err("{ tcpKeepAlive: 1m3 }"),
        "ingress rule 1 has an invalid originRequest.tcpKeepAlive \"1m3\": \"3\" has no unit \
         (use ns, us, ms, s, m or h); use a duration like 30s or 1m30s"
    );
    assert_eq!(
        origin_err("{ connectTimeout: [1] }"),
        "ingress rule 1 has an invalid originRequest.connectTimeout (a list); use a duration \
         like 30s or 1m30s"
    );
    assert_eq!(
        err("originRequest:\n  connectTimeout: soon\ningress:\n  - service: hello_world\n"),
        "the global originRequest.connectTimeout \"soon\" is invalid: expected a number at \
         \"soon\"; use a duration like 30s or 1m30s"
    );
}

#[test]
fn bad_proxy_protocol() {
    assert_eq!(
        origin_err("{ proxyProtocol: v3 }"),
        "ingress rule 1 has an invalid originRequest.proxyProtocol \"v3\"; use v1 or v2"
    );
    assert_eq!(
        origin_err("{ proxyProtocol: 2 }"),
        "ingress rule 1 has an invalid originRequest.proxyProtocol \"2\"; use v1 or v2"
    );
    assert_eq!(
        err("originRequest:\n  proxyProtocol: yes-please\ningress:\n  - service: hello_world\n"),
        "the global originRequest.proxyProtocol \"yes-please\" is invalid; use v1 or v2"
    );
}

#[test]
fn other_origin_value_errors() {
    assert_eq!(
        origin_err("{ noTLSVerify: maybe }"),
        "ingress rule 1 has an invalid originRequest.noTLSVerify \"maybe\"; use true or false"
    );
    assert_eq!(
        origin_err("{ keepAliveConnections: -1 }"),
        "ingress rule 1 has an invalid originRequest.keepAliveConnections \"-1\"; use a whole \
         number such as 100"
    );
    assert_eq!(
        origin_err("{ caPool: { a: b } }"),
        "ingress rule 1 has an invalid originRequest.caPool (a mapping); use a file path"
    );
    assert_eq!(
        origin_err("[connectTimeout]"),
        "ingress rule 1 has an originRequest that is a list instead of a mapping; write one \
         setting per line below it, such as `connectTimeout: 10s`"
    );
}

#[test]
fn yaml_syntax_error() {
    let e = err("ingress:\n  - service: hello_world\n   bad: [\n");
    assert!(e.starts_with("the config file is not valid YAML: "), "{e}");
    assert!(e.contains("line "), "{e}");
    assert!(e.contains("column "), "{e}");
    let e = err("a: 1\na: 2\n");
    assert!(e.starts_with("the config file is not valid YAML: "), "{e}");
}

#[test]
fn unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.yml");
    let e = IngressConfig::load(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("cannot read the config file {}: ", path.display())),
        "{e}"
    );
}

#[test]
fn load_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, SAMPLE).unwrap();
    assert_eq!(IngressConfig::load(&path).unwrap().rules.len(), 5);
}

#[test]
fn shape_errors() {
    assert_eq!(
        err("just text"),
        "the config file is text instead of a mapping; write it as `ingress:` followed by a list \
         of rules, such as `- service: http_status:404`"
    );
    assert_eq!(
        err("ingress: http://localhost:8000\n"),
        "the config's `ingress:` is text instead of a list of rules; write each rule on its own \
         line starting with `- `, ending with a catch-all such as `- service: http_status:404`"
    );
    assert_eq!(
        err("ingress:\n  - http_status:404\n"),
        "ingress rule 1 is text instead of a mapping; write it as `- hostname: app.example.com` \
         with `service: http://localhost:8000` on the next line"
    );
    assert_eq!(
        err("ingress:\n  - hostname: [a, b]\n    service: hello_world\n  - service: hello_world\n"),
        "ingress rule 1 has a hostname that is a list instead of text; write it as \
         `hostname: app.example.com`"
    );
}

#[test]
fn extra_service_errors() {
    assert_eq!(
        service_err("localhost:8000"),
        "ingress rule 1 has service \"localhost:8000\" with no scheme; add one, as in \
         http://localhost:8000"
    );
    assert_eq!(
        service_err("http:localhost"),
        "ingress rule 1 has service \"http:localhost\" with \"http:\" not followed by \"//\"; \
         write it as http://localhost"
    );
    assert_eq!(
        service_err("http://"),
        "ingress rule 1 has service \"http://\" with no host; add one, as in \
         http://localhost:8000"
    );
    assert_eq!(
        service_err("http://user:pw@localhost"),
        "ingress rule 1 has service \"http://user:pw@localhost\" with a user name; remove \
         \"user:pw@\""
    );
    assert_eq!(
        service_err("unix:"),
        "ingress rule 1 has service \"unix:\" with no socket path; add one, as in \
         unix:/run/app.sock"
    );
    assert_eq!(
        service_err("tcp://::1:5432"),
        "ingress rule 1 has service \"tcp://::1:5432\" with an invalid host \"::1:5432\"; write \
         an IPv6 address in brackets, as in tcp://[::1]:8000"
    );
}

#[test]
fn first_error_in_rule_order_wins() {
    // Rule 2 has a bad service, rule 3 a bad hostname, and the last rule is
    // not a catch-all: rule 2's problem is reported.
    let e = err("ingress:\n  - hostname: a.example.com\n    service: hello_world\n  - hostname: b.example.com\n    service: ftp://x\n  - hostname: \"c:1\"\n    service: hello_world\n");
    assert!(
        e.starts_with("ingress rule 2 has service \"ftp://x\""),
        "{e}"
    );
    // Within a rule: hostname, then path, then service, then originRequest.
    let e = err("ingress:\n  - hostname: \"a:1\"\n    path: \"(\"\n    service: ftp://x\n  - service: hello_world\n");
    assert!(
        e.starts_with("ingress rule 1 has an invalid hostname"),
        "{e}"
    );
    // The global block is checked before the rules.
    let e = err("originRequest: { tlsTimeout: x }\ningress:\n  - service: ftp://x\n");
    assert!(e.starts_with("the global originRequest.tlsTimeout"), "{e}");
}

#[test]
fn url_check_errors() {
    for url in [
        "app.example.com/api",
        "",
        "https://",
        "https:///path",
        "https://a b/",
        "https://app.example.com:x/",
        "1https://app.example.com/",
    ] {
        assert_eq!(
            ingress_for_url_check(url).unwrap_err().to_string(),
            format!("\"{url}\" is not a URL; pass one like https://app.example.com/path")
        );
    }
}

// ---- matching ----

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
    let empty = IngressConfig { rules: vec![] };
    let (index, rule) = empty.find("a.example.com", "/");
    assert_eq!(index, 0);
    assert_eq!(rule.service, Service::HttpStatus(404));

    let mut config = ok(SAMPLE);
    config.rules.pop();
    assert_eq!(config.find("other.org", "/").0, 4);
}

// ---- origin requests ----

#[test]
fn defaults() {
    let o = OriginRequest::default();
    assert_eq!(o.connect_timeout, Duration::from_secs(30));
    assert_eq!(o.tls_timeout, Duration::from_secs(10));
    assert_eq!(o.tcp_keep_alive, Duration::from_secs(30));
    assert_eq!(o.keep_alive_timeout, Duration::from_secs(90));
    assert_eq!(o.keep_alive_connections, 100);
    assert!(!o.no_tls_verify && !o.http2_origin && !o.disable_chunked_encoding);
    assert!(!o.no_happy_eyeballs);
    assert_eq!(o.proxy_protocol, None);
    assert_eq!(o.origin_server_name, None);
    assert_eq!(o.ca_pool, None);
    assert_eq!(o.http_host_header, None);
}

#[test]
fn global_origin_request_merges_with_rules() {
    let config = ok(r#"
originRequest:
  connectTimeout: 10s
  noTLSVerify: true
  httpHostHeader: internal.example.com
  keepAliveConnections: 5
ingress:
  - hostname: a.example.com
    service: https://localhost
    originRequest:
      tlsTimeout: 2s
      noTLSVerify: false
  - hostname: b.example.com
    service: https://localhost
    originRequest:
      httpHostHeader: ""
      caPool: certs/ca.pem
  - service: http_status:404
"#);
    let a = &config.rules[0].origin_request;
    assert_eq!(a.connect_timeout, Duration::from_secs(10)); // global
    assert_eq!(a.tls_timeout, Duration::from_secs(2)); // rule
    assert!(!a.no_tls_verify); // rule overrides global
    assert_eq!(a.http_host_header.as_deref(), Some("internal.example.com"));
    assert_eq!(a.keep_alive_connections, 5);
    assert_eq!(a.keep_alive_timeout, Duration::from_secs(90)); // default

    let b = &config.rules[1].origin_request;
    assert!(b.no_tls_verify);
    assert_eq!(b.http_host_header, None); // "" clears the global value
    assert_eq!(b.ca_pool.as_deref(), Some(Path::new("certs/ca.pem"))); // relative kept

    let last = &config.rules[2].origin_request;
    assert_eq!(last.connect_timeout, Duration::from_secs(10));
    assert!(last.no_tls_verify);
}

#[test]
fn every_origin_setting_parses() {
    let o = origin(
        r#"
      connectTimeout: 1m30s
      tlsTimeout: 500ms
      tcpKeepAlive: 15
      noTLSVerify: true
      originServerName: origin.internal
      caPool: /etc/ca.pem
      httpHostHeader: host.internal
      keepAliveTimeout: 2h
      keepAliveConnections: 7
      http2Origin: true
      disableChunkedEncoding: true
      proxyProtocol: v1
      noHappyEyeballs: true
      sslmode: verify-ca"#,
    );
    assert_eq!(
        o,
        OriginRequest {
            connect_timeout: Duration::from_secs(90),
            tls_timeout: Duration::from_millis(500),
            tcp_keep_alive: Duration::from_secs(15),
            no_tls_verify: true,
            origin_server_name: Some("origin.internal".into()),
            ca_pool: Some(PathBuf::from("/etc/ca.pem")),
            http_host_header: Some("host.internal".into()),
            keep_alive_timeout: Duration::from_secs(7200),
            keep_alive_connections: 7,
            http2_origin: true,
            disable_chunked_encoding: true,
            proxy_protocol: Some(ProxyProtocol::V1),
            no_happy_eyeballs: true,
            sslmode: SslMode::VerifyCa,
            access: None,
        }
    );
    assert_eq!(
        origin("{ proxyProtocol: v2 }").proxy_protocol,
        Some(ProxyProtocol::V2)
    );
    // Explicit nulls leave the value alone.
    assert_eq!(origin("{ connectTimeout: }"), OriginRequest::default());
}

#[test]
fn durations() {
    let d = |s: &str| parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(d("30s"), Duration::from_secs(30));
    assert_eq!(d("1m30s"), Duration::from_secs(90));
    assert_eq!(d("500ms"), Duration::from_millis(500));
    assert_eq!(d("2h"), Duration::from_secs(7200));
    assert_eq!(d("1h2m3s4ms5us6ns"), Duration::new(3723, 4_005_006));
    assert_eq!(d("1.5h"), Duration::from_secs(5400));
    assert_eq!(d(".5s"), Duration::from_millis(500));
    assert_eq!(d("1.s"), Duration::from_secs(1));
    assert_eq!(d("10µs"), Duration::from_micros(10));
    assert_eq!(d("10μs"), Duration::from_micros(10));
    assert_eq!(d("+5s"), Duration::from_secs(5));
    assert_eq!(d("0"), Duration::ZERO);
    assert_eq!(d("45"), Duration::from_secs(45));
    assert_eq!(d(" 3s "), Duration::from_secs(3));
    assert_eq!(
        d("0.123456789123456789123s"),
        Duration::from_nanos(123_456_789)
    );

    let e = |s: &str| parse_duration(s).unwrap_err();
    assert_eq!(e(""), "it is empty");
    assert_eq!(e("-1s"), "it is negative");
    assert_eq!(e("+"), "it has no number");
    assert_eq!(e("s"), "expected a number at \"s\"");
    assert_eq!(e(".s"), "expected a number at \".s\"");
    assert_eq!(e("1.5"), "\"1.5\" has no unit (use ns, us, ms, s, m or h)");
    assert_eq!(e("3d"), "unknown unit \"d\" (use ns, us, ms, s, m or h)");
    assert_eq!(e("99999999999999999999"), "it is too large");
    assert_eq!(e("999999999999h"), "it is too large");
    assert_eq!(e(&"9".repeat(60)), "it is too large");
    assert_eq!(e(&format!("{}s", "9".repeat(60))), "it is too large");
    assert!(parse_duration("584y").is_err());
    // YAML numbers are seconds.
    assert_eq!(
        origin("{ connectTimeout: 12 }").connect_timeout,
        Duration::from_secs(12)
    );
    assert_eq!(
        origin("{ connectTimeout: 1.5 }").connect_timeout,
        Duration::from_millis(1500)
    );
}

#[test]
fn ignored_origin_keys_are_reported_once() {
    let (config, warnings) = IngressConfig::from_yaml_with_warnings(
        r#"
originRequest:
  bastionMode: false
  proxyAddress: 127.0.0.1
ingress:
  - hostname: a.example.com
    service: http://localhost:1
    originRequest:
      bastionMode: true
      ipRules: [{ prefix: 10.0.0.0/8, ports: [80], allow: true }]
      notlsverify: true
  - hostname: b.example.com
    service: http://localhost:1
    originRequest:
      access: { required: true, teamName: x, audTag: [abc] }
      matchSNItoHost: true
      proxyPort: 1080
      proxyType: socks
    weird: 1
  - service: http_status:404
"#,
    )
    .unwrap();
    assert_eq!(config.rules.len(), 3);
    assert_eq!(
        warnings,
        vec![
            "originRequest.access.teamName is not used by warren (the connector gets the keys \
             from its edge) and is ignored (in rule 2)",
            "originRequest.bastionMode is not supported by warren and is ignored (in the global \
             originRequest, rule 1)",
            "originRequest.ipRules is not supported by warren and is ignored (in rule 1)",
            "originRequest.matchSNItoHost is not supported by warren and is ignored (in rule 2)",
            "originRequest.notlsverify is not a known setting and is ignored (did you mean \
             noTLSVerify?) (in rule 1)",
            "originRequest.proxyAddress is not supported by warren and is ignored (in the global \
             originRequest)",
            "originRequest.proxyPort is not supported by warren and is ignored (in rule 2)",
            "originRequest.proxyType is not supported by warren and is ignored (in rule 2)",
            "the ingress rule key \"weird\" is not a known setting and is ignored (in rule 2)",
        ]
    );
    // The misspelt key did not take effect.
    assert!(!config.rules[0].origin_request.no_tls_verify);
}

#[test]
fn realistic_cloudflared_config_loads() {
    let (config, _) = IngressConfig::from_yaml_with_warnings(
        r#"
tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef
credentials-file: /root/.cloudflared/6ff42ae2-765d-4adf-8112-31c55c1551ef.json
loglevel: info
logfile: /var/log/cloudflared.log
protocol: quic
metrics: 0.0.0.0:2000
no-autoupdate: true
grace-period: 30s
edge-ip-version: auto
warp-routing:
  enabled: true
originRequest:
  connectTimeout: 30s
  tlsTimeout: 10s
  tcpKeepAlive: 30s
  noHappyEyeballs: false
  keepAliveTimeout: 1m30s
  keepAliveConnections: 100
  httpHostHeader: ""
  originServerName: ""
  noTLSVerify: false
  disableChunkedEncoding: false
  bastionMode: false
  proxyAddress: 127.0.0.1
  proxyPort: 0
  proxyType: ""
  ipRules:
    - prefix: 192.168.0.0/16
      ports: [443, 8443]
      allow: true
defaults: &defaults
  noTLSVerify: true
ingress:
  - hostname: gitlab.widgetcorp.tech
    service: http://localhost:80
  - hostname: gitlab-ssh.widgetcorp.tech
    service: ssh://localhost:22
  - hostname: rdp.widgetcorp.tech
    service: rdp://localhost
  - hostname: files.widgetcorp.tech
    service: smb://fileserver
  - hostname: "*.widgetcorp.tech"
    path: ^/(static|assets)/
    service: https://10.0.0.5
    originRequest:
      <<: *defaults
      originServerName: internal.widgetcorp.tech
      http2Origin: true
      access:
        required: true
        teamName: widgetcorp
        audTag: [aud1]
  - hostname: hello.widgetcorp.tech
    service: hello_world
  - hostname: sock.widgetcorp.tech
    service: unix+tls:/var/run/app.sock
  - service: http_status:404
"#,
    )
    .unwrap();
    let rules = &config.rules;
    assert_eq!(rules.len(), 8);
    assert_eq!(
        rules[1].service,
        Service::Tcp {
            host: "localhost".into(),
            port: 22
        }
    );
    assert_eq!(
        rules[2].service,
        Service::Tcp {
            host: "localhost".into(),
            port: 3389
        }
    );
    assert_eq!(
        rules[3].service,
        Service::Tcp {
            host: "fileserver".into(),
            port: 445
        }
    );
    let o = &rules[4].origin_request;
    assert!(o.no_tls_verify, "merge key applied");
    assert!(o.http2_origin);
    assert_eq!(
        o.origin_server_name.as_deref(),
        Some("internal.widgetcorp.tech")
    );
    assert_eq!(rules[0].origin_request.origin_server_name, None);
    assert_eq!(
        rules[0].origin_request.keep_alive_timeout,
        Duration::from_secs(90)
    );
    assert_eq!(config.find("x.widgetcorp.tech", "/static/app.js").0, 4);
    assert_eq!(config.find("x.widgetcorp.tech", "/").0, 7);
    assert_eq!(
        rules[6].service,
        Service::Unix {
            path: PathBuf::from("/var/run/app.sock"),
            tls: true
        }
    );
}

// ---- services ----

#[test]
fn http_services_fill_default_ports() {
    assert_eq!(
        service("http://localhost"),
        Service::Http {
            scheme_https: false,
            authority: "localhost:80".into(),
            host: "localhost".into(),
            port: 80,
            base_path: String::new(),
        }
    );
    assert_eq!(
        service("https://origin.internal/"),
        Service::Http {
            scheme_https: true,
            authority: "origin.internal:443".into(),
            host: "origin.internal".into(),
            port: 443,
            base_path: String::new(),
        }
    );
    assert_eq!(
        service("HTTP://127.0.0.1:8080"),
        Service::Http {
            scheme_https: false,
            authority: "127.0.0.1:8080".into(),
            host: "127.0.0.1".into(),
            port: 8080,
            base_path: String::new(),
        }
    );
    assert_eq!(
        service("https://[::1]:8443"),
        Service::Http {
            scheme_https: true,
            authority: "[::1]:8443".into(),
            host: "::1".into(),
            port: 8443,
            base_path: String::new(),
        }
    );
}

#[test]
fn tcp_and_special_services() {
    assert_eq!(
        service("tcp://localhost:5432"),
        Service::Tcp {
            host: "localhost".into(),
            port: 5432
        }
    );
    assert_eq!(
        service("ssh://bastion:2222"),
        Service::Tcp {
            host: "bastion".into(),
            port: 2222
        }
    );
    assert_eq!(service("http_status:503"), Service::HttpStatus(503));
    assert_eq!(service("http_status:100"), Service::HttpStatus(100));
    assert_eq!(service("http_status:599"), Service::HttpStatus(599));
    assert_eq!(service("hello_world"), Service::HelloWorld);
}

#[test]
fn unix_services() {
    assert_eq!(
        service("unix:/run/app.sock"),
        Service::Unix {
            path: PathBuf::from("/run/app.sock"),
            tls: false
        }
    );
    assert_eq!(
        service("unix:///run/app.sock"),
        Service::Unix {
            path: PathBuf::from("/run/app.sock"),
            tls: false
        }
    );
    assert_eq!(
        service("unix+tls:/run/app.sock"),
        Service::Unix {
            path: PathBuf::from("/run/app.sock"),
            tls: true
        }
    );
    assert_eq!(
        service("unix:relative/app.sock"),
        Service::Unix {
            path: PathBuf::from("relative/app.sock"),
            tls: false
        }
    );
}

#[test]
fn service_display_round_trips() {
    for svc in [
        "http://localhost:8000",
        "http://localhost",
        "https://localhost",
        "https://localhost:8443",
        "https://[::1]:8443",
        "tcp://localhost:5432",
        "tcp://[::1]:5432",
        "unix:/run/app.sock",
        "unix+tls:/run/app.sock",
        "http_status:404",
        "hello_world",
    ] {
        assert_eq!(service(svc).to_string(), svc);
    }
    assert_eq!(
        service("http://localhost:80/").to_string(),
        "http://localhost"
    );
    assert_eq!(service("ssh://localhost").to_string(), "tcp://localhost:22");
}

// ---- --url, describe, URL check ----

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

#[test]
fn errors_never_panic_on_odd_input() {
    // A few inputs a fuzzer would try; none may panic.
    for text in [
        "\0",
        "- a\n- b\n",
        "ingress: {a: b}\n",
        "ingress:\n  - ~\n",
        "ingress:\n  - !tag { service: hello_world }\n",
        "ingress:\n  - service: !!binary aGVsbG8=\n",
        "ingress:\n  - { service: [a] }\n",
        "ingress:\n  - { ? [a] : b, service: hello_world }\n",
        "ingress:\n  - { hostname: 12, service: hello_world }\n  - service: hello_world\n",
        "ingress:\n  - { service: \"unix+tls:\" }\n",
        "ingress:\n  - { service: \"http://[\" }\n",
        "ingress:\n  - { service: \"http://[::1\" }\n",
        "ingress:\n  - { service: \"http://[::1]x\" }\n",
        "ingress:\n  - { service: \"https://é\" }\n",
        "ingress:\n  - { service: \"é://x\" }\n",
        "ingress:\n  - { service: \"ht:tp\" }\n",
        "ingress:\n  - { service: \":\" }\n",
        "ingress:\n  - { service: hello_world, originRequest: { connectTimeout: 1e400 } }\n",
        "ingress:\n  - { service: hello_world, originRequest: { connectTimeout: .nan } }\n",
        "ingress:\n  - { service: hello_world, originRequest: { connectTimeout: -.inf } }\n",
        "ingress:\n  - { service: hello_world, originRequest: { connectTimeout: 1e30 } }\n",
        "ingress:\n  - { service: hello_world, originRequest: { connectTimeout: \"1é\" } }\n",
        "ingress:\n  - { service: hello_world, originRequest: { keepAliveConnections: 1e3 } }\n",
        "ingress:\n  - { service: hello_world, originRequest: 5 }\n",
        "a: &a [*a]\n",
        "a: &x 1\nb: *y\n",
        "<<: 5\n",
        "ingress:\n  - { hostname: \"*.\", service: hello_world }\n  - service: hello_world\n",
        "ingress:\n  - { hostname: \"é.example.com\", service: hello_world }\n  - service: hello_world\n",
        "ingress:\n  - { path: \"\\\\\", service: hello_world }\n  - service: hello_world\n",
        "ingress:\n  - { path: \"a{99999}{99999}\", service: hello_world }\n  - service: hello_world\n",
    ] {
        let _ = IngressConfig::from_yaml(text);
    }
    for url in [
        "http://[",
        "http://[::1",
        "é://x",
        "http://é",
        "://",
        "http://a:b:c",
    ] {
        let _ = ingress_for_url_check(url);
    }
}

#[test]
fn billion_laughs_is_bounded() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..12 {
        let prev = if i == 0 {
            "a".to_string()
        } else {
            format!("a{}", i - 1)
        };
        text.push_str(&format!(
            "a{i}: &a{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    let e = err(&text);
    assert!(e.starts_with("the config file is not valid YAML: "), "{e}");
}

#[test]
fn postgres_services_and_sslmode() {
    assert_eq!(
        service("postgres://db.internal"),
        Service::Postgres {
            host: "db.internal".into(),
            port: 5432
        }
    );
    let s = service("postgresql://[::1]:6432");
    assert_eq!(s.to_string(), "postgres://[::1]:6432");
    assert_eq!(service("postgres://db:5432").to_string(), "postgres://db");
    assert_eq!(origin("{}").sslmode, SslMode::VerifyFull);
    for (text, mode) in [
        ("verify-full", SslMode::VerifyFull),
        ("verify-ca", SslMode::VerifyCa),
        ("require", SslMode::Require),
        ("Disable", SslMode::Disable),
    ] {
        assert_eq!(origin(&format!("{{ sslmode: {text} }}")).sslmode, mode);
    }
    assert_eq!(
        origin_err("{ sslmode: prefer }"),
        "ingress rule 1 has an invalid originRequest.sslmode \"prefer\"; use verify-full (the default), verify-ca, require or disable"
    );
}

// ---- originRequest.access ----

const TAG: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn access_parses_and_merges() {
    let config = ok(&format!(
        r#"
originRequest:
  access:
    required: true
    audTag: ["{TAG}"]
    teamName: widgetcorp
ingress:
  - hostname: a.example.com
    service: http://localhost:1
  - hostname: b.example.com
    service: http://localhost:1
    originRequest:
      access: {{ required: true, audTag: [t1, t2] }}
  - hostname: c.example.com
    service: http://localhost:1
    originRequest:
      access: {{ required: false }}
  - hostname: d.example.com
    service: tcp://localhost:22
    originRequest:
      connectTimeout: 5s
  - service: http_status:404
"#
    ));
    let access = |i: usize| config.rules[i].origin_request.access.clone();
    let global = Some(OriginAccess {
        required: true,
        aud_tags: vec![TAG.into()],
    });
    // Inherited from the global block.
    assert_eq!(access(0), global);
    // A rule's block replaces the global one whole.
    assert_eq!(
        access(1),
        Some(OriginAccess {
            required: true,
            aud_tags: vec!["t1".into(), "t2".into()],
        })
    );
    assert_eq!(
        access(2),
        Some(OriginAccess {
            required: false,
            aud_tags: vec![],
        })
    );
    // Other settings leave it alone.
    assert_eq!(access(3), global);
    assert_eq!(access(4), global);
    // Not set: None.
    assert_eq!(origin("{}").access, None);
    // One tag may be written without a list; numbers are text.
    assert_eq!(
        origin("{ access: { required: true, audTag: abc } }").access,
        Some(OriginAccess {
            required: true,
            aud_tags: vec!["abc".into()],
        })
    );
    assert_eq!(
        origin("{ access: { required: true, audTag: [123] } }")
            .access
            .unwrap()
            .aud_tags,
        vec!["123".to_string()]
    );
    // An empty block or explicit nulls: not required.
    assert_eq!(
        origin("{ access: { required: , audTag: } }").access,
        Some(OriginAccess::default())
    );
    assert_eq!(origin("{ access: }").access, None);
}

#[test]
fn access_errors() {
    assert_eq!(
        origin_err("{ access: { required: true } }"),
        "ingress rule 1's originRequest.access.required needs audTag: the application's tag \
         from `warren access app show APP`"
    );
    assert_eq!(
        origin_err("{ access: { required: true, audTag: [] } }"),
        "ingress rule 1's originRequest.access.required needs audTag: the application's tag \
         from `warren access app show APP`"
    );
    assert_eq!(
        err("originRequest:\n  access: { required: true, teamName: x }\ningress:\n  - service: http_status:404\n"),
        "the global originRequest.access.required needs audTag: the application's tag from \
         `warren access app show APP`"
    );
    assert_eq!(
        origin_err("{ access: { requierd: true, audTag: [x] } }"),
        "ingress rule 1's originRequest.access has an unknown setting \"requierd\"; use \
         required, audTag or teamName"
    );
    assert_eq!(
        origin_err("{ access: { Required: true, audTag: [x] } }"),
        "ingress rule 1's originRequest.access has an unknown setting \"Required\" (did you \
         mean required?); use required, audTag or teamName"
    );
    assert_eq!(
        origin_err("{ access: true }"),
        "ingress rule 1's originRequest.access is true/false instead of a mapping; write it as \
         `access: { required: true, audTag: [TAG] }` with the application's tag from \
         `warren access app show APP`"
    );
    assert_eq!(
        origin_err("{ access: { required: yes, audTag: [x] } }"),
        "ingress rule 1 has an invalid originRequest.access.required \"yes\"; use true or false"
    );
    assert_eq!(
        origin_err("{ access: { required: true, audTag: { a: b } } }"),
        "ingress rule 1 has an invalid originRequest.access.audTag (a mapping); use a list of \
         application tags from `warren access app show APP`, such as `audTag: [TAG]`"
    );
    assert_eq!(
        origin_err("{ access: { required: true, audTag: [x, \"\"] } }"),
        "ingress rule 1 has an invalid originRequest.access.audTag \"\"; use a list of \
         application tags from `warren access app show APP`, such as `audTag: [TAG]`"
    );
    assert_eq!(
        origin_err("{ access: { required: true, audTag: [x], teamName: [a] } }"),
        "ingress rule 1 has an invalid originRequest.access.teamName (a list); use text"
    );
    // The first problem in rule order wins, as elsewhere.
    let e = err(
        "ingress:\n  - hostname: a.example.com\n    service: http://localhost:1\n    \
         originRequest: { access: { required: true } }\n  - service: http_status:404\n    \
         originRequest: { access: 1 }\n",
    );
    assert!(
        e.starts_with("ingress rule 1's originRequest.access.required"),
        "{e}"
    );
}

#[test]
fn access_ignored_keys_warn_and_describe_shows_it() {
    let (config, warnings) = IngressConfig::from_yaml_with_warnings(
        r#"
ingress:
  - hostname: a.example.com
    service: http://localhost:1
    originRequest:
      access: { required: true, audTag: [t1, t2], teamName: corp, environment: fed }
  - service: http_status:404
"#,
    )
    .unwrap();
    assert_eq!(
        warnings,
        vec![
            "originRequest.access.environment is not used by warren (the connector gets the \
             keys from its edge) and is ignored (in rule 1)",
            "originRequest.access.teamName is not used by warren (the connector gets the keys \
             from its edge) and is ignored (in rule 1)",
        ]
    );
    assert_eq!(
        config.rules[0].describe(0),
        "rule 1\n  hostname: a.example.com\n  service: http://localhost:1\n  \
         originRequest.access.required: true\n  originRequest.access.audTag: t1, t2"
    );
}
