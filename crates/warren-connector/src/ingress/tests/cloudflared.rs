//! cloudflared spellings that load: other schemes as TCP, `bastion` and
//! `socks-proxy` with a warning and an error answer, Unicode hostnames,
//! and the `audTag` warning.

use super::*;

/// The config and its warnings, for YAML that must load.
fn loaded(yaml: &str) -> (IngressConfig, Vec<String>) {
    IngressConfig::from_yaml_with_warnings(yaml).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn other_schemes_are_tcp_with_a_warning() {
    let (config, warnings) = loaded(
        "ingress:\n  - hostname: cache.example.com\n    service: redis://cache.internal:6379\n  - hostname: vnc.example.com\n    service: VNC://[::1]:5900\n  - service: http_status:404\n",
    );
    assert_eq!(
        config.rules[0].service,
        Service::Tcp {
            host: "cache.internal".into(),
            port: 6379
        }
    );
    assert_eq!(
        config.rules[1].service,
        Service::Tcp {
            host: "::1".into(),
            port: 5900
        }
    );
    assert_eq!(
        warnings,
        [
            "the service \"VNC://[::1]:5900\" has a scheme Warren does not know (\"VNC\"), so it \
             is proxied as raw TCP, as cloudflared does; write it as tcp://[::1]:5900 to say so \
             (in rule 2)",
            "the service \"redis://cache.internal:6379\" has a scheme Warren does not know \
             (\"redis\"), so it is proxied as raw TCP, as cloudflared does; write it as \
             tcp://cache.internal:6379 to say so (in rule 1)",
        ]
    );
    // The known TCP aliases carry no warning.
    let (_, warnings) = loaded("ingress:\n  - service: ssh://localhost\n");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn bastion_and_socks_proxy_load_with_a_warning_per_rule() {
    let (config, warnings) = loaded(
        "ingress:\n  - hostname: ssh.example.com\n    service: bastion\n  - hostname: jump.example.com\n    originRequest:\n      bastionMode: yes\n  - hostname: socks.example.com\n    service: socks-proxy\n  - hostname: app.example.com\n    service: http://localhost:8000\n  - service: http_status:404\n",
    );
    let services: Vec<String> = config.rules.iter().map(|r| r.service.to_string()).collect();
    assert_eq!(
        services,
        [
            "bastion",
            "bastion",
            "socks-proxy",
            "http://localhost:8000",
            "http_status:404"
        ]
    );
    let all = warnings.join("\n");
    assert!(
        all.contains(
            "the `bastion` service is not supported and every request it matches is answered \
             with an error: Warren has no bastion mode; give each SSH host its own rule, such as \
             `service: ssh://HOST:22`, and reach it with `warren access tcp` (in rule 1, rule 2)"
        ),
        "{all}"
    );
    assert!(
        all.contains("the `socks-proxy` service is not supported") && all.contains("(in rule 3)"),
        "{all}"
    );
    // The answer a matching request gets.
    assert_eq!(
        Unsupported::Bastion.answer("ssh.example.com"),
        "ssh.example.com is served by the `bastion` service, which Warren does not support: \
         Warren has no bastion mode; give each SSH host its own rule, such as \
         `service: ssh://HOST:22`, and reach it with `warren access tcp`"
    );
    // bastionMode false and no service is still a rule without a service.
    assert_eq!(
        err("ingress:\n  - hostname: a.example.com\n    originRequest: { bastionMode: false }\n  - service: http_status:404\n"),
        "ingress rule 1 has no service; add one such as `service: http://localhost:8000`"
    );
}

#[test]
fn url_shortcut_refuses_an_unsupported_mode() {
    assert_eq!(
        IngressConfig::single("socks-proxy")
            .unwrap_err()
            .to_string(),
        "ingress rule 1 has service \"socks-proxy\", which Warren does not support: Warren's \
         connector has no SOCKS proxy service; give each origin its own rule, such as \
         `service: tcp://HOST:PORT`"
    );
    assert_eq!(
        IngressConfig::single("redis://localhost:6379")
            .unwrap()
            .rules[0]
            .service,
        Service::Tcp {
            host: "localhost".into(),
            port: 6379
        }
    );
}

#[test]
fn unicode_hostnames_match_as_punycode() {
    let config = ok(
        "ingress:\n  - hostname: bücher.example\n    service: hello_world\n  - hostname: \"*.Straße.example\"\n    service: http_status:204\n  - service: http_status:404\n",
    );
    assert_eq!(
        config.rules[0].hostname.as_deref(),
        Some("xn--bcher-kva.example")
    );
    // UTS 46 keeps ß (IDNA 2008), as browsers and cloudflared's Go do.
    assert_eq!(
        config.rules[1].hostname.as_deref(),
        Some("*.xn--strae-oqa.example")
    );
    assert_eq!(config.find("xn--bcher-kva.example", "/").0, 0);
    assert_eq!(config.find("a.xn--strae-oqa.example", "/").0, 1);
    assert_eq!(config.find("bücher.example", "/").0, 2);
    // A Unicode name IDNA refuses is an error naming the rule.
    let e = err("ingress:\n  - hostname: \"a\u{200D}\u{0301}.example\"\n    service: hello_world\n  - service: http_status:404\n");
    assert!(
        e.starts_with("ingress rule 1 has an invalid hostname"),
        "{e}"
    );
    assert!(e.contains("punycode"), "{e}");
}

#[test]
fn an_aud_tag_that_is_not_warrens_is_warned_about() {
    let cloudflare_tag = "a".repeat(64);
    let (config, warnings) = loaded(&format!(
        "ingress:\n  - hostname: a.example.com\n    service: hello_world\n    originRequest:\n      access: {{ required: true, audTag: [{cloudflare_tag}, 0123456789abcdef0123456789abcdef] }}\n  - service: http_status:404\n"
    ));
    assert_eq!(
        config.rules[0]
            .origin_request
            .access
            .as_ref()
            .unwrap()
            .aud_tags
            .len(),
        2
    );
    assert_eq!(
        warnings,
        [format!(
            "originRequest.access.audTag \"{cloudflare_tag}\" is not a Warren application tag (32 \
             lower-case hex digits, shown by `warren access app show APP`); the edge signs tokens \
             for Warren applications only, so a Cloudflare Access tag never matches (in rule 1)"
        )]
    );
}
