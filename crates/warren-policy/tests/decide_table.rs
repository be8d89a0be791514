//! The decision table: one row per behaviour of `decide`, each with the
//! outcome and the policy and rule that must be named for it.

use std::net::IpAddr;

use warren_policy::{decide, Action, Application, Decision, Facts, IpRange, Outcome, Policy, Rule};

struct Case {
    what: &'static str,
    policies: Vec<Policy>,
    facts: Facts,
    outcome: Outcome,
    /// `(policy, rule)`; `None` for the default deny.
    by: Option<(&'static str, &'static str)>,
}

// --- builders ------------------------------------------------------------

fn p(name: &str, action: Action, include: Vec<Rule>) -> Policy {
    Policy {
        name: name.into(),
        action,
        include,
        exclude: vec![],
        require: vec![],
    }
}

fn allow(name: &str, include: Vec<Rule>) -> Policy {
    p(name, Action::Allow, include)
}

fn deny(name: &str, include: Vec<Rule>) -> Policy {
    p(name, Action::Deny, include)
}

fn bypass(name: &str, include: Vec<Rule>) -> Policy {
    p(name, Action::Bypass, include)
}

fn service(name: &str, include: Vec<Rule>) -> Policy {
    p(name, Action::ServiceAuth, include)
}

fn excluding(mut policy: Policy, rules: Vec<Rule>) -> Policy {
    policy.exclude = rules;
    policy
}

fn requiring(mut policy: Policy, rules: Vec<Rule>) -> Policy {
    policy.require = rules;
    policy
}

fn email(s: &str) -> Rule {
    Rule::Email(s.into())
}

fn domain(s: &str) -> Rule {
    Rule::EmailDomain(s.into())
}

fn group(s: &str) -> Rule {
    Rule::Group(s.into())
}

fn range(s: &str) -> Rule {
    Rule::IpRange(IpRange::new(s))
}

fn token(s: &str) -> Rule {
    Rule::ServiceToken(s.into())
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

const OUT: &str = "203.0.113.9";

fn user(email: &str, groups: &[&str]) -> Facts {
    user_from(email, groups, OUT)
}

fn user_from(email: &str, groups: &[&str], from: &str) -> Facts {
    Facts::user(
        email,
        groups.iter().map(|g| g.to_string()).collect(),
        ip(from),
    )
}

fn svc(name: &str) -> Facts {
    Facts::service_token(name, ip(OUT))
}

fn anon(from: &str) -> Facts {
    Facts::anonymous(ip(from))
}

fn app(policies: Vec<Policy>) -> Application {
    Application {
        name: "intranet".into(),
        hostnames: vec!["intranet.example.com".into()],
        path_prefix: None,
        session_duration_secs: 3600,
        policies,
    }
}

// --- the table -----------------------------------------------------------

fn cases() -> Vec<Case> {
    use Outcome::{Allow, Deny, NeedsLogin};
    let staff = || allow("staff", vec![domain("example.com")]);
    vec![
        // everyone, and what the action makes of it
        Case {
            what: "allow everyone lets a user in",
            policies: vec![allow("all", vec![Rule::Everyone])],
            facts: user("a@anywhere.org", &[]),
            outcome: Allow,
            by: Some(("all", "include everyone")),
        },
        Case {
            what: "allow everyone asks an anonymous request to log in",
            policies: vec![allow("all", vec![Rule::Everyone])],
            facts: anon(OUT),
            outcome: NeedsLogin,
            by: Some(("all", "include everyone")),
        },
        Case {
            what: "allow everyone does not admit a service token",
            policies: vec![allow("all", vec![Rule::Everyone])],
            facts: svc("ci"),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "service_auth everyone admits any service token",
            policies: vec![service("tokens", vec![Rule::Everyone])],
            facts: svc("ci"),
            outcome: Allow,
            by: Some(("tokens", "include everyone")),
        },
        Case {
            what: "service_auth everyone does not admit a user",
            policies: vec![service("tokens", vec![Rule::Everyone])],
            facts: user("a@example.com", &[]),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "bypass everyone makes the application public",
            policies: vec![bypass("public", vec![Rule::Everyone]), staff()],
            facts: anon(OUT),
            outcome: Allow,
            by: Some(("public", "include everyone")),
        },
        Case {
            what: "bypass also lets a signed-in user through",
            policies: vec![bypass("public", vec![Rule::Everyone])],
            facts: user("a@example.com", &[]),
            outcome: Allow,
            by: Some(("public", "include everyone")),
        },
        Case {
            what: "deny everyone cannot be dodged by leaving credentials out",
            policies: vec![
                deny("lockdown", vec![Rule::Everyone]),
                bypass("public", vec![Rule::Everyone]),
            ],
            facts: anon(OUT),
            outcome: Deny,
            by: Some(("lockdown", "include everyone")),
        },
        Case {
            what: "deny everyone stops a service token too",
            policies: vec![
                deny("lockdown", vec![Rule::Everyone]),
                service("tokens", vec![Rule::AnyServiceToken]),
            ],
            facts: svc("ci"),
            outcome: Deny,
            by: Some(("lockdown", "include everyone")),
        },
        // email
        Case {
            what: "email matches exactly",
            policies: vec![allow("alice", vec![email("alice@example.com")])],
            facts: user("alice@example.com", &[]),
            outcome: Allow,
            by: Some(("alice", "include email alice@example.com")),
        },
        Case {
            what: "email ignores ASCII case",
            policies: vec![allow("alice", vec![email("Alice@Example.COM")])],
            facts: user("aLICE@example.com", &[]),
            outcome: Allow,
            by: Some(("alice", "include email Alice@Example.COM")),
        },
        Case {
            what: "another email is denied by default",
            policies: vec![allow("alice", vec![email("alice@example.com")])],
            facts: user("bob@example.com", &[]),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "a Unicode look-alike (Kelvin sign) does not fold onto ASCII",
            policies: vec![allow("kate", vec![email("kate@example.com")])],
            facts: user("\u{212A}ate@example.com", &[]),
            outcome: Deny,
            by: None,
        },
        // email_domain
        Case {
            what: "email_domain matches the domain",
            policies: vec![staff()],
            facts: user("bob@example.com", &[]),
            outcome: Allow,
            by: Some(("staff", "include email_domain example.com")),
        },
        Case {
            what: "email_domain ignores ASCII case",
            policies: vec![allow("staff", vec![domain("Example.Com")])],
            facts: user("bob@EXAMPLE.com", &[]),
            outcome: Allow,
            by: Some(("staff", "include email_domain Example.Com")),
        },
        Case {
            what: "email_domain is not a suffix match",
            policies: vec![staff()],
            facts: user("eve@notexample.com", &[]),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "email_domain does not match subdomains",
            policies: vec![staff()],
            facts: user("bob@sub.example.com", &[]),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "email_domain takes the domain after the last @",
            policies: vec![staff()],
            facts: user("eve@example.com@evil.org", &[]),
            outcome: Deny,
            by: None,
        },
        // group
        Case {
            what: "group claim contains the group",
            policies: vec![allow("admins", vec![group("admins")])],
            facts: user("a@example.com", &["staff", "admins"]),
            outcome: Allow,
            by: Some(("admins", "include group admins")),
        },
        Case {
            what: "group names compare exactly",
            policies: vec![allow("admins", vec![group("admins")])],
            facts: user("a@example.com", &["Admins", "admins-ro"]),
            outcome: Deny,
            by: None,
        },
        // ip_range
        Case {
            what: "ip_range v4 matches a user inside",
            policies: vec![allow("office", vec![range("198.51.100.0/24")])],
            facts: user_from("a@example.com", &[], "198.51.100.20"),
            outcome: Allow,
            by: Some(("office", "include ip_range 198.51.100.0/24")),
        },
        Case {
            what: "ip_range v4 does not match outside",
            policies: vec![allow("office", vec![range("198.51.100.0/24")])],
            facts: user_from("a@example.com", &[], "198.51.101.20"),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "ip_range v6 matches inside",
            policies: vec![bypass("v6-lan", vec![range("2001:db8:1::/48")])],
            facts: anon("2001:db8:1:ffff::7"),
            outcome: Allow,
            by: Some(("v6-lan", "include ip_range 2001:db8:1::/48")),
        },
        Case {
            what: "ip_range v6 does not match outside",
            policies: vec![bypass("v6-lan", vec![range("2001:db8:1::/48")])],
            facts: anon("2001:db8:2::7"),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "an IPv4-mapped source matches the IPv4 range",
            policies: vec![bypass("lan", vec![range("10.0.0.0/8")])],
            facts: anon("::ffff:10.1.2.3"),
            outcome: Allow,
            by: Some(("lan", "include ip_range 10.0.0.0/8")),
        },
        Case {
            what: "an IPv4 range never matches an IPv6 source",
            policies: vec![bypass("all-v4", vec![range("0.0.0.0/0")])],
            facts: anon("2001:db8::1"),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "ip_range matches a service token too",
            policies: vec![bypass("lan", vec![range("10.0.0.0/8")])],
            facts: Facts::service_token("ci", ip("10.0.0.5")),
            outcome: Allow,
            by: Some(("lan", "include ip_range 10.0.0.0/8")),
        },
        // service tokens
        Case {
            what: "any_service_token admits a token",
            policies: vec![staff(), service("ci", vec![Rule::AnyServiceToken])],
            facts: svc("deploy"),
            outcome: Allow,
            by: Some(("ci", "include any_service_token")),
        },
        Case {
            what: "a named token admits that token",
            policies: vec![service("ci", vec![token("deploy")])],
            facts: svc("deploy"),
            outcome: Allow,
            by: Some(("ci", "include service_token deploy")),
        },
        Case {
            what: "a named token does not admit another",
            policies: vec![service("ci", vec![token("deploy")])],
            facts: svc("backup"),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "rules about users never match a token named like an address",
            policies: vec![deny("no-bob", vec![email("bob@example.com")])],
            facts: svc("bob@example.com"),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "rules about tokens never match a user",
            policies: vec![bypass("tokens", vec![Rule::AnyServiceToken])],
            facts: user("deploy@example.com", &[]),
            outcome: Deny,
            by: None,
        },
        // exclude, require, order
        Case {
            what: "exclude beats include",
            policies: vec![excluding(staff(), vec![email("mallory@example.com")])],
            facts: user("MALLORY@example.com", &[]),
            outcome: Deny,
            by: Some(("staff", "exclude email mallory@example.com")),
        },
        Case {
            what: "an exclude range beats include",
            policies: vec![excluding(staff(), vec![range("10.0.0.0/8")])],
            facts: user_from("bob@example.com", &[], "10.9.8.7"),
            outcome: Deny,
            by: Some(("staff", "exclude ip_range 10.0.0.0/8")),
        },
        Case {
            what: "an exclude v6 range that does not match lets the user in",
            policies: vec![excluding(staff(), vec![range("2001:db8::/32")])],
            facts: user_from("bob@example.com", &[], "2001:db9::1"),
            outcome: Allow,
            by: Some(("staff", "include email_domain example.com")),
        },
        Case {
            what: "require narrows: a user outside the group is denied",
            policies: vec![requiring(staff(), vec![group("admins")])],
            facts: user("bob@example.com", &["staff"]),
            outcome: Deny,
            by: Some(("staff", "require group admins")),
        },
        Case {
            what: "require narrows: every require rule must hold",
            policies: vec![requiring(
                staff(),
                vec![group("admins"), range("10.0.0.0/8")],
            )],
            facts: user_from("bob@example.com", &["admins"], "10.0.0.1"),
            outcome: Allow,
            by: Some(("staff", "include email_domain example.com")),
        },
        Case {
            what: "first match wins: an earlier deny",
            policies: vec![deny("no-bob", vec![email("bob@example.com")]), staff()],
            facts: user("bob@example.com", &[]),
            outcome: Deny,
            by: Some(("no-bob", "include email bob@example.com")),
        },
        Case {
            what: "first match wins: an earlier allow",
            policies: vec![staff(), deny("no-bob", vec![email("bob@example.com")])],
            facts: user("bob@example.com", &[]),
            outcome: Allow,
            by: Some(("staff", "include email_domain example.com")),
        },
        Case {
            what: "a later policy decides after an earlier one is ruled out",
            policies: vec![
                excluding(staff(), vec![email("bob@example.com")]),
                allow("bob-from-office", vec![email("bob@example.com")]),
            ],
            facts: user("bob@example.com", &[]),
            outcome: Allow,
            by: Some(("bob-from-office", "include email bob@example.com")),
        },
        Case {
            what: "a deny's exclude is not named as what stopped the request",
            policies: vec![
                excluding(
                    deny("outsiders", vec![Rule::Everyone]),
                    vec![range("10.0.0.0/8")],
                ),
                allow("alice", vec![email("alice@example.com")]),
            ],
            facts: user_from("bob@example.com", &[], "10.0.0.1"),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "no policies: default deny",
            policies: vec![],
            facts: user("a@example.com", &[]),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "an empty include never matches",
            policies: vec![allow("empty", vec![])],
            facts: user("a@example.com", &[]),
            outcome: Deny,
            by: None,
        },
        // anonymous requests
        Case {
            what: "anonymous meets an allow it might pass: log in",
            policies: vec![staff()],
            facts: anon(OUT),
            outcome: NeedsLogin,
            by: Some(("staff", "include email_domain example.com")),
        },
        Case {
            what: "anonymous: a bypass that does not match leads to login",
            policies: vec![bypass("office", vec![range("10.0.0.0/8")]), staff()],
            facts: anon(OUT),
            outcome: NeedsLogin,
            by: Some(("staff", "include email_domain example.com")),
        },
        Case {
            what: "anonymous: a deny matched first wins over login",
            policies: vec![deny("blocked", vec![range("203.0.113.0/24")]), staff()],
            facts: anon(OUT),
            outcome: Deny,
            by: Some(("blocked", "include ip_range 203.0.113.0/24")),
        },
        Case {
            what: "anonymous: a deny about users cannot be judged, so log in",
            policies: vec![
                excluding(
                    deny("only-boss", vec![Rule::Everyone]),
                    vec![email("boss@example.com")],
                ),
                allow("boss", vec![email("boss@example.com")]),
            ],
            facts: anon(OUT),
            outcome: NeedsLogin,
            by: Some(("only-boss", "include everyone")),
        },
        Case {
            what: "anonymous: a bypass for a group needs a login to tell",
            policies: vec![bypass("friends", vec![group("friends")])],
            facts: anon(OUT),
            outcome: NeedsLogin,
            by: Some(("friends", "include group friends")),
        },
        Case {
            what: "anonymous: only service_auth policies, so a login would not help",
            policies: vec![service("ci", vec![Rule::AnyServiceToken])],
            facts: anon(OUT),
            outcome: Deny,
            by: None,
        },
        Case {
            what: "anonymous: an allow ruled out by its ip require is denied, not sent to log in",
            policies: vec![requiring(staff(), vec![range("10.0.0.0/8")])],
            facts: anon(OUT),
            outcome: Deny,
            by: Some(("staff", "require ip_range 10.0.0.0/8")),
        },
        Case {
            what: "anonymous: an allow that requires a service token can never match",
            policies: vec![requiring(staff(), vec![Rule::AnyServiceToken])],
            facts: anon(OUT),
            outcome: Deny,
            by: Some(("staff", "require any_service_token")),
        },
        // fail closed on rules validate rejects
        Case {
            what: "an invalid CIDR denies when reached",
            policies: vec![
                excluding(
                    allow("all", vec![Rule::Everyone]),
                    vec![range("10.0.0.0/33")],
                ),
                allow("alice", vec![email("alice@example.com")]),
            ],
            facts: user("alice@example.com", &[]),
            outcome: Deny,
            by: Some(("all", "exclude ip_range 10.0.0.0/33 (invalid)")),
        },
        Case {
            what: "an invalid rule after a deciding include is never reached",
            policies: vec![allow("all", vec![Rule::Everyone, range("nonsense")])],
            facts: user("alice@example.com", &[]),
            outcome: Allow,
            by: Some(("all", "include everyone")),
        },
        Case {
            what: "an empty email_domain does not match an address ending in @",
            policies: vec![allow("blank", vec![domain("")])],
            facts: user("a@", &[]),
            outcome: Deny,
            by: Some(("blank", "include email_domain \"\" (invalid)")),
        },
    ]
}

#[test]
fn decision_table() {
    let cases = cases();
    assert!(cases.len() >= 30, "the issue asks for at least 30 cases");
    let mut failures = Vec::new();
    for case in &cases {
        let got = decide(&app(case.policies.clone()), &case.facts);
        let want = Decision {
            outcome: case.outcome,
            policy: case.by.map(|(policy, _)| policy.to_owned()),
            rule: Some(case.by.map_or("default deny", |(_, rule)| rule).to_owned()),
        };
        if got != want {
            failures.push(format!("{}:\n   want {want:?}\n    got {got:?}", case.what));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_kind_and_action_is_in_the_table() {
    let cases = cases();
    let rules = cases
        .iter()
        .flat_map(|c| &c.policies)
        .flat_map(|p| p.include.iter().chain(&p.exclude).chain(&p.require));
    let mut kinds: Vec<&str> = rules.map(Rule::kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "any_service_token",
            "email",
            "email_domain",
            "everyone",
            "group",
            "ip_range",
            "service_token"
        ]
    );
    for action in [
        Action::Allow,
        Action::Deny,
        Action::Bypass,
        Action::ServiceAuth,
    ] {
        assert!(
            cases
                .iter()
                .any(|c| c.policies.first().map(|p| p.action) == Some(action)),
            "{action}"
        );
    }
    for outcome in [Outcome::Allow, Outcome::Deny, Outcome::NeedsLogin] {
        assert!(cases.iter().any(|c| c.outcome == outcome), "{outcome:?}");
    }
}

#[test]
fn application_json_shape() {
    let app = Application {
        path_prefix: Some("/admin".into()),
        ..app(vec![
            requiring(
                excluding(
                    allow("staff", vec![domain("example.com"), group("admins")]),
                    vec![range("10.0.0.0/8")],
                ),
                vec![Rule::Everyone],
            ),
            service("ci", vec![Rule::AnyServiceToken, token("deploy")]),
            p("bad", Action::Bypass, vec![range("10.0.0.0/33")]),
        ])
    };
    let json = serde_json::to_value(&app).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "name": "intranet",
            "hostnames": ["intranet.example.com"],
            "path_prefix": "/admin",
            "session_duration_secs": 3600,
            "policies": [
                {
                    "name": "staff",
                    "action": "allow",
                    "include": [{"email_domain": "example.com"}, {"group": "admins"}],
                    "exclude": [{"ip_range": "10.0.0.0/8"}],
                    "require": ["everyone"]
                },
                {
                    "name": "ci",
                    "action": "service_auth",
                    "include": ["any_service_token", {"service_token": "deploy"}],
                    "exclude": [],
                    "require": []
                },
                {
                    "name": "bad",
                    "action": "bypass",
                    "include": [{"ip_range": "10.0.0.0/33"}],
                    "exclude": [],
                    "require": []
                }
            ]
        })
    );
    // A bad range survives the store so validate can name it.
    let back: Application = serde_json::from_value(json).unwrap();
    assert_eq!(back, app);
    assert!(warren_policy::validate(&back).is_err());

    // A misspelt list must not be silently dropped (it would fail open).
    let typo = r#"{"name":"a","hostnames":["a.example.com"],"session_duration_secs":60,
        "policies":[{"name":"p","action":"allow","include":["everyone"],"exlude":[]}]}"#;
    assert!(serde_json::from_str::<Application>(typo).is_err());

    let facts = Facts::user("a@example.com", vec!["g".into()], ip("::1"));
    assert_eq!(
        serde_json::to_value(&facts).unwrap(),
        serde_json::json!({
            "identity": {"type": "user", "email": "a@example.com", "groups": ["g"]},
            "source_ip": "::1"
        })
    );
    let decision = decide(&app, &Facts::service_token("deploy", ip("192.0.2.1")));
    assert_eq!(
        serde_json::to_value(&decision).unwrap(),
        serde_json::json!({
            "outcome": "allow",
            "policy": "ci",
            "rule": "include any_service_token"
        })
    );
}
