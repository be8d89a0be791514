//! The decision table: one row per behaviour of `decide`, each with the
//! outcome and the policy and rule that must be named for it.
//!
//! `builders` makes policies, facts and applications; the rows are in
//! `rules` (one rule kind at a time), `policies` (exclude, require,
//! order) and `edges` (anonymous requests, invalid rules); `json` checks
//! the stored shape.

mod builders;
mod edges;
mod json;
mod policies;
mod rules;

use warren_policy::{decide, Action, Decision, Facts, Outcome, Policy, Rule};

use builders::app;

pub(crate) struct Case {
    pub(crate) what: &'static str,
    pub(crate) policies: Vec<Policy>,
    pub(crate) facts: Facts,
    pub(crate) outcome: Outcome,
    /// `(policy, rule)`; `None` for the default deny.
    pub(crate) by: Option<(&'static str, &'static str)>,
}

/// Every row, in table order.
fn cases() -> Vec<Case> {
    let mut all = rules::cases();
    all.extend(policies::cases());
    all.extend(edges::cases());
    all
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
