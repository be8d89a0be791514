//! Error sentences, verbatim, and odd input that must not panic.

use super::*;

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
    // A bare word that is no scheme, host or cloudflared mode.
    assert_eq!(
        service_err("bastian"),
        "ingress rule 1 has service \"bastian\" with an unknown scheme \"bastian\"; use \
         http://, https://, tcp://, postgres://, unix:, http_status:NNN or hello_world"
    );
    // Something before `://` that cannot be a scheme.
    assert_eq!(
        service_err("1http://localhost:80"),
        "ingress rule 1 has service \"1http://localhost:80\" with an unknown scheme \"1http\"; \
         use http://, https://, tcp://, postgres://, unix:, http_status:NNN or hello_world"
    );
    // Another scheme is TCP, which needs a port.
    assert_eq!(
        service_err("redis://db"),
        "ingress rule 1 has service \"redis://db\" with no port; add one, as in \
         tcp://localhost:5432"
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
    let e = IngressConfig::load(&path, DEFAULT_MAX_CONFIG_BYTES)
        .unwrap_err()
        .to_string();
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
    assert_eq!(
        IngressConfig::load(&path, DEFAULT_MAX_CONFIG_BYTES)
            .unwrap()
            .rules
            .len(),
        5
    );
}

#[test]
fn a_file_over_the_size_bound_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, SAMPLE).unwrap();
    let limit = SAMPLE.len() as u64 - 1;
    let e = IngressConfig::load(&path, limit).unwrap_err().to_string();
    assert!(e.contains(&format!("larger than {limit} bytes")), "{e}");
    assert!(e.contains("--max-config-size"), "{e}");
    // A device that never ends is refused too, after the bound.
    let e = IngressConfig::load(std::path::Path::new("/dev/zero"), 1024)
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than 1024 bytes"), "{e}");
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
fn errors_are_listed_in_rule_order() {
    // Rule 2 has a bad service, rule 3 a bad hostname: both are reported,
    // rule 2's first.
    let e = err("ingress:\n  - hostname: a.example.com\n    service: hello_world\n  - hostname: b.example.com\n    service: ftp://x\n  - hostname: \"c:1\"\n    service: hello_world\n");
    assert!(
        e.starts_with("2 problems in the config: 1) ingress rule 2 has service \"ftp://x\""),
        "{e}"
    );
    assert!(
        e.contains("; 2) ingress rule 3 has an invalid hostname"),
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
fn metrics_address() {
    let with = |m: &str| format!("metrics: {m}\ningress:\n  - service: http_status:404\n");
    assert_eq!(
        ok(&with("localhost:2000")).metrics,
        Some("127.0.0.1:2000".parse().unwrap())
    );
    assert_eq!(
        ok(&with("0.0.0.0:2000")).metrics,
        Some("0.0.0.0:2000".parse().unwrap())
    );
    assert_eq!(
        ok(&with("\"[::1]:9100\"")).metrics,
        Some("[::1]:9100".parse().unwrap())
    );
    assert_eq!(ok("ingress:\n  - service: http_status:404\n").metrics, None);
    assert_eq!(
        err(&with("2000")),
        "the config's `metrics: 2000` is not an address to listen on (it has no port); write it \
         as HOST:PORT, such as `metrics: localhost:2000`"
    );
    assert!(
        err(&with("metrics.internal:2000")).contains("the host must be an IP address or localhost")
    );
    assert!(err(&with("localhost:99999")).contains("the port is not a number"));
}

#[test]
fn every_top_level_key_is_honoured_or_warned_about_by_name() {
    let yaml = "tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\ncredentials-file: /x.json\nwarp-routing:\n  enabled: true\nprotocol: http2\nloglevel: debug\nsomething-new: 1\ngrace-period: 45s\nmetrics: localhost:2000\noriginRequest:\n  noHappyEyeballs: true\n  disableChunkedEncoding: true\ningress:\n  - service: http_status:404\n";
    let (config, warnings) = IngressConfig::from_yaml_with_warnings(yaml).unwrap();
    assert_eq!(
        config.grace_period,
        Some(std::time::Duration::from_secs(45))
    );
    assert!(config.metrics.is_some());
    let all = warnings.join("\n");
    for want in [
        "`tunnel` is ignored: a Warren connector is identified by its token",
        "`credentials-file` is ignored",
        "`warp-routing` is ignored: private network routing is not supported yet",
        "`protocol` is ignored",
        "`loglevel` is ignored: set RUST_LOG",
        "`something-new` is ignored: it is not a Warren setting",
        "originRequest.disableChunkedEncoding is not supported",
    ] {
        assert!(all.contains(want), "missing {want:?} in\n{all}");
    }
    // Honoured keys say nothing.
    for quiet in ["grace-period", "metrics", "noHappyEyeballs"] {
        assert!(!all.contains(quiet), "{quiet} warned about:\n{all}");
    }
    assert!(
        err("grace-period: soon\ningress:\n  - service: http_status:404\n")
            .contains("the config's `grace-period: soon` is not a duration")
    );
}

#[test]
fn one_run_reports_every_wrong_rule() {
    let text = err("ingress:\n  - hostname: a.example.com\n    service: gopher://x\n  - service: http_status:404\n  - hostname: b.example.com\n    service: http://localhost:1\n    originRequest:\n      connectTimeout: soon\n");
    assert!(text.starts_with("3 problems in the config: 1) "), "{text}");
    assert!(text.contains("2) ") && text.contains("3) "), "{text}");
    // Each is the sentence it would be alone.
    let alone = err("ingress:\n  - service: http_status:404\n  - service: http_status:404\n");
    assert!(!alone.contains("problems in the config"), "{alone}");
    let e = IngressConfig::from_yaml("ingress:\n  - service: gopher://x\n  - hostname: a.example.com\n    service: hello_world\n").unwrap_err();
    assert_eq!(e.problems().len(), 2, "{e}");
}
