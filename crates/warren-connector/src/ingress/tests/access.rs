//! `originRequest.access`: parsing, merging, errors, ignored keys.

use super::*;

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
        origin_err("{ access: { required: maybe, audTag: [x] } }"),
        "ingress rule 1 has an invalid originRequest.access.required \"maybe\"; use true or false"
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
    // Every problem is reported, in rule order, as elsewhere.
    let e = err(
        "ingress:\n  - hostname: a.example.com\n    service: http://localhost:1\n    \
         originRequest: { access: { required: true } }\n  - service: http_status:404\n    \
         originRequest: { access: 1 }\n",
    );
    assert!(
        e.starts_with(
            "2 problems in the config: 1) ingress rule 1's originRequest.access.required"
        ),
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
      access: { required: true, audTag: [00000000000000000000000000000001, 0000000000000000000000000000000a], teamName: corp, environment: fed }
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
         originRequest.access.required: true\n  originRequest.access.audTag: \
         00000000000000000000000000000001, 0000000000000000000000000000000a"
    );
}
