//! Anonymous requests, and failing closed on rules `validate` rejects.

use warren_policy::{Outcome, Rule};

use super::builders::*;
use super::Case;

/// Rows for anonymous requests and invalid rules.
pub(crate) fn cases() -> Vec<Case> {
    use Outcome::{Allow, Deny, NeedsLogin};
    let staff = || allow("staff", vec![domain("example.com")]);
    vec![
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
