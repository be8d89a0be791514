//! Every sentence `validate` can give, and what it accepts.

use super::*;
use crate::cidr::IpRange;

fn app(policies: Vec<Policy>) -> Application {
    Application {
        name: "intranet".into(),
        hostnames: vec![
            "intranet.example.com".into(),
            "*.intranet.example.com".into(),
        ],
        path_prefix: None,
        session_duration_secs: 86_400,
        policies,
    }
}

fn policy(name: &str, action: Action, include: Vec<Rule>) -> Policy {
    Policy {
        name: name.into(),
        action,
        include,
        exclude: vec![],
        require: vec![],
        db_roles: vec![],
    }
}

fn staff() -> Policy {
    policy(
        "staff",
        Action::Allow,
        vec![Rule::EmailDomain("example.com".into())],
    )
}

/// The message for an application changed by `edit`.
fn message(edit: impl FnOnce(&mut Application)) -> String {
    let mut a = app(vec![staff()]);
    edit(&mut a);
    validate(&a).expect_err("should be rejected").to_string()
}

#[test]
fn valid_applications() {
    assert_eq!(
        validate(&app(vec![])),
        Ok(()),
        "no policies yet: denies all"
    );
    let mut full = app(vec![
        staff(),
        Policy {
            exclude: vec![Rule::Email("Mallory@Example.com".into())],
            require: vec![Rule::IpRange(IpRange::new("2001:db8::/32"))],
            ..policy(
                "v6-admins",
                Action::Allow,
                vec![Rule::Group("admins".into())],
            )
        },
        policy(
            "ci",
            Action::ServiceAuth,
            vec![Rule::ServiceToken("ci".into())],
        ),
        policy(
            "office",
            Action::Bypass,
            vec![Rule::IpRange(IpRange::new("192.0.2.7"))],
        ),
        policy("rest", Action::Deny, vec![Rule::Everyone]),
    ]);
    full.path_prefix = Some("/admin/".into());
    assert_eq!(validate(&full), Ok(()));
}

#[test]
fn application_sentences() {
    assert_eq!(
        message(|a| a.name = " ".into()),
        "an application needs a name; give it one that says what it protects, like \"intranet\""
    );
    assert_eq!(
        message(|a| a.hostnames.clear()),
        "application \"intranet\" covers no hostnames; add at least one, like app.example.com or *.example.com"
    );
    assert_eq!(
        message(|a| a.session_duration_secs = 0),
        "application \"intranet\" has a session duration of 0 seconds; set session_duration_secs to how long a sign-in lasts, like 86400 for a day"
    );
    assert_eq!(
        message(|a| a.session_duration_secs = u64::MAX),
        "application \"intranet\" has a session duration of 18446744073709551615 seconds, longer than a year; set session_duration_secs to at most 31536000 (a year; a day, 86400, is usual)"
    );
    let mut longest = app(vec![]);
    longest.session_duration_secs = crate::MAX_SESSION_SECS;
    assert!(validate(&longest).is_ok());
    assert_eq!(
        message(|a| a.path_prefix = Some("admin".into())),
        "application \"intranet\": path prefix \"admin\" does not start with /; write it like /admin"
    );
    assert_eq!(
        message(|a| a.path_prefix = Some("/a//b/../admin".into())),
        "application \"intranet\": path prefix \"/a//b/../admin\" is not in normal form, so it would not compare with request paths as written; write it as \"/a/admin\""
    );
    assert!(message(|a| a.path_prefix = Some("/admin?x".into())).contains("has a query"));
}

#[test]
fn hostname_sentences() {
    let bad = |h: &str| message(|a| a.hostnames = vec![h.into()]);
    assert_eq!(
        bad("app.example.com:443"),
        "application \"intranet\": hostname \"app.example.com:443\" has a port; write the hostname alone, like app.example.com"
    );
    assert!(bad("").contains("is empty"));
    assert!(bad("https://app.example.com").contains("put a path in path_prefix"));
    assert!(bad("app.example.com/x").contains("put a path in path_prefix"));
    assert!(bad("app.*.example.com").contains("write a wildcard as *.example.com"));
    assert!(bad("*").contains("write a wildcard as *.example.com"));
    assert!(bad("*.").contains("is not a hostname"));
    assert!(bad("app..example.com").contains("is not a hostname"));
    assert!(bad("app.example.com.").contains("is not a hostname"));
    assert!(bad("bücher.example").contains("xn-- form"));
}

#[test]
fn policy_sentences() {
    let with = |p: Policy| message(|a| a.policies.push(p));
    assert_eq!(
        with(policy("empty", Action::Allow, vec![])),
        "application \"intranet\", policy \"empty\" has no include rules, so it can never match; add one, like everyone or email_domain example.com"
    );
    assert_eq!(
        with(staff()),
        "application \"intranet\" has two policies named \"staff\"; rename one, since decisions and the audit log name the policy that decided"
    );
    assert_eq!(
        with(policy("", Action::Deny, vec![Rule::Everyone])),
        "application \"intranet\": policy 2 has no name; give every policy a name, since decisions and the audit log show it"
    );
}

#[test]
fn rule_sentences() {
    let with = |p: Policy| message(|a| a.policies.push(p));
    assert_eq!(
        with(Policy {
            exclude: vec![
                Rule::IpRange(IpRange::new("10.0.0.0/8")),
                Rule::IpRange(IpRange::new("10.0.0.0/33")),
            ],
            ..policy("lan", Action::Allow, vec![Rule::Everyone])
        }),
        "application \"intranet\", policy \"lan\", exclude rule 2: ip_range \"10.0.0.0/33\" has prefix length 33, longer than the 32 bits of the address; use at most /32"
    );
    assert_eq!(
        with(policy("lan", Action::Bypass, vec![Rule::IpRange(IpRange::new("10.1.0.0/8"))])),
        "application \"intranet\", policy \"lan\", include rule 1: ip_range \"10.1.0.0/8\" has address bits set beyond its prefix length; write the network as 10.0.0.0/8"
    );
    assert!(with(policy(
        "v6",
        Action::Bypass,
        vec![Rule::IpRange(IpRange::new("2001:db8:::/32"))]
    ))
    .contains("does not start with an IPv4 or IPv6 address"));
    assert_eq!(
        with(policy("d", Action::Allow, vec![Rule::EmailDomain(String::new())])),
        "application \"intranet\", policy \"d\", include rule 1: email_domain \"\" is empty; write the domain after the @, like example.com"
    );
    assert!(with(policy(
        "d",
        Action::Allow,
        vec![Rule::EmailDomain("@example.com".into())]
    ))
    .contains("contains @; write only the domain"));
    assert!(with(policy(
        "d",
        Action::Allow,
        vec![Rule::EmailDomain("*.example.com".into())]
    ))
    .contains("not its subdomains; add one rule per domain"));
    assert!(with(policy(
        "d",
        Action::Allow,
        vec![Rule::EmailDomain("example com".into())]
    ))
    .contains("is not a domain"));
    assert_eq!(
        with(Policy {
            require: vec![Rule::Email("alice".into())],
            ..policy("e", Action::Allow, vec![Rule::Everyone])
        }),
        "application \"intranet\", policy \"e\", require rule 1: email \"alice\" is not an email address; write one address like alice@example.com, or use email_domain for a whole domain"
    );
    assert!(with(policy(
        "e",
        Action::Allow,
        vec![Rule::Email("@example.com".into())]
    ))
    .contains("is not an email address"));
    assert_eq!(
        with(policy("g", Action::Allow, vec![Rule::Group(String::new())])),
        "application \"intranet\", policy \"g\", include rule 1: the group name is empty; write it exactly as the identity provider's group claim has it"
    );
    assert_eq!(
        with(policy("t", Action::ServiceAuth, vec![Rule::ServiceToken(String::new())])),
        "application \"intranet\", policy \"t\", include rule 1: the service token name is empty; write the token's name, or use any_service_token"
    );
}

#[test]
fn rules_that_can_never_match_the_action() {
    let with = |p: Policy| message(|a| a.policies.push(p));
    assert_eq!(
        with(policy("ci", Action::Allow, vec![Rule::AnyServiceToken])),
        "application \"intranet\", policy \"ci\", include rule 1 (any_service_token) can never match under action allow, which applies only to signed-in users, so the policy never matches; use action service_auth for service tokens, in a policy of its own"
    );
    assert_eq!(
        with(Policy {
            require: vec![Rule::Group("bots".into())],
            ..policy("ci", Action::ServiceAuth, vec![Rule::AnyServiceToken])
        }),
        "application \"intranet\", policy \"ci\", require rule 1 (group bots) can never match under action service_auth, which applies only to service tokens, so the policy never matches; use action allow for users, in a policy of its own"
    );
    // One include rule of the right kind is enough; a stray exclude is
    // harmless.
    let mixed = app(vec![Policy {
        exclude: vec![Rule::ServiceToken("old".into())],
        ..policy(
            "mixed",
            Action::Allow,
            vec![Rule::AnyServiceToken, Rule::Email("a@example.com".into())],
        )
    }]);
    assert_eq!(validate(&mixed), Ok(()));
}

#[test]
fn database_roles() {
    let with_roles = |action, roles: &[&str]| Policy {
        db_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        ..policy("analysts", action, vec![Rule::Group("analysts".into())])
    };
    let ok = app(vec![
        with_roles(Action::Allow, &["analyst", "Read Only", &"r".repeat(63)]),
        Policy {
            db_roles: vec!["ci".into()],
            ..policy("ci", Action::ServiceAuth, vec![Rule::AnyServiceToken])
        },
    ]);
    assert_eq!(validate(&ok), Ok(()));

    let with = |p: Policy| message(|a| a.policies.push(p));
    assert_eq!(
        with(with_roles(Action::Allow, &[""])),
        "application \"intranet\", policy \"analysts\": database role \"\" is empty; write the PostgreSQL role's name, like app"
    );
    assert!(with(with_roles(Action::Allow, &[&"r".repeat(64)]))
        .contains("is longer than 63 bytes, and PostgreSQL truncates role names to 63"));
    assert!(with(with_roles(Action::Allow, &["a\0b"])).contains("contains a NUL byte"));
    assert_eq!(
        with(with_roles(Action::Allow, &["analyst", "analyst"])),
        "application \"intranet\", policy \"analysts\" lists the database role \"analyst\" twice; list each role once"
    );
    assert_eq!(
        with(with_roles(Action::Deny, &["analyst"])),
        "application \"intranet\", policy \"analysts\" has database roles, but its action deny refuses every request it matches, so no one would ever be given them; put the roles on an allow or service_auth policy"
    );
    assert!(with(with_roles(Action::Bypass, &["analyst"]))
        .contains("its action bypass lets requests through without an identity"));
    assert_eq!(db_role_problem("app"), None);
}

#[test]
fn database_roles_in_json() {
    let p: Policy = serde_json::from_str(
        r#"{"name": "a", "action": "allow", "include": ["everyone"], "db_roles": ["app"]}"#,
    )
    .unwrap();
    assert_eq!(p.db_roles, ["app"]);
    // Left out when empty, so stored policies without roles read as before.
    let none: Policy =
        serde_json::from_str(r#"{"name": "a", "action": "allow", "include": ["everyone"]}"#)
            .unwrap();
    assert!(none.db_roles.is_empty());
    assert!(!serde_json::to_string(&none).unwrap().contains("db_roles"));
    // Unknown fields are still refused.
    let e = serde_json::from_str::<Policy>(
        r#"{"name": "a", "action": "allow", "include": ["everyone"], "db_role": ["app"]}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `db_role`"), "{e}");
}
