//! Combining: exclude, require, and the order of policies.

use warren_policy::{Outcome, Rule};

use super::builders::*;
use super::Case;

/// Rows for exclude, require and policy order.
pub(crate) fn cases() -> Vec<Case> {
    use Outcome::{Allow, Deny};
    let staff = || allow("staff", vec![domain("example.com")]);
    vec![
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
    ]
}
