//! `originRequest`: defaults, merging, every setting, durations, ignored keys.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

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

    let e = |s: &str| parse_duration(s).unwrap_err().to_string();
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
            "originRequest.access.audTag \"abc\" is not a Warren application tag (32 lower-case \
             hex digits, shown by `warren access app show APP`); the edge signs tokens for \
             Warren applications only, so a Cloudflare Access tag never matches (in rule 2)",
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

#[test]
fn host_names_with_line_breaks_or_spaces_are_refused() {
    for bad in [
        "\"app.internal\\r\\nX-Injected: 1\"",
        "\"app internal\"",
        "\"evil.example/x?\"",
    ] {
        for key in ["httpHostHeader", "originServerName"] {
            let e = err(&format!(
                "ingress:\n  - hostname: a.example.com\n    service: http://localhost:1\n    originRequest:\n      {key}: {bad}\n  - service: http_status:404\n"
            ));
            assert!(e.contains(key), "{e}");
            assert!(e.contains("without spaces, line breaks"), "{e}");
            // The value is quoted with its escapes, never a raw line break.
            assert!(!e.contains('\n') && !e.contains('\r'), "{e:?}");
        }
    }
    let ok = ok("ingress:\n  - service: http://localhost:1\n    originRequest:\n      httpHostHeader: app.internal:8080\n");
    assert_eq!(
        ok.rules[0].origin_request.http_host_header.as_deref(),
        Some("app.internal:8080")
    );
}
