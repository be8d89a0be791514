//! One rule kind at a time: everyone, email, email_domain, group,
//! ip_range, service tokens.

use warren_policy::{Facts, Outcome, Rule};

use super::builders::*;
use super::Case;

/// Rows for each rule kind, and what the action makes of it.
pub(crate) fn cases() -> Vec<Case> {
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
    ]
}
