//! The decision: request facts in, outcome and its reason out.
//!
//! Rules evaluate to yes, no, or *unknown* (a rule about users, asked of an
//! anonymous request). Evaluating allocates nothing; the one allocation is
//! the description of the deciding rule at the end.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{Action, Application, Clause, Facts, Identity, Policy, Rule};

/// What the edge does with the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Let it through.
    Allow,
    /// Refuse it (403, or a refused upgrade).
    Deny,
    /// Send the client to the identity provider first.
    NeedsLogin,
}

/// An outcome and why, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do.
    pub outcome: Outcome,
    /// The policy that decided, if one did.
    pub policy: Option<String>,
    /// The deciding rule, e.g. `include email_domain example.com`,
    /// `exclude ip_range 10.0.0.0/8`, or `default deny`.
    pub rule: Option<String>,
}

/// Decides one request against one application. See the crate
/// documentation for the semantics. Never panics.
pub fn decide(app: &Application, facts: &Facts) -> Decision {
    let subject = Subject::of(facts);
    // A dual-stack socket reports IPv4 clients as `::ffff:a.b.c.d`.
    let ip = facts.source_ip.to_canonical();
    // The first allowing policy that an exclude or require rule ruled out.
    let mut ruled_out: Option<(&Policy, Clause, &Rule)> = None;

    for policy in &app.policies {
        let Some(on_match) = on_match(policy.action, &subject) else {
            continue;
        };
        match evaluate(policy, &subject, ip) {
            Eval::Match { certain, rule } => {
                let outcome = if certain {
                    on_match
                } else {
                    Outcome::NeedsLogin
                };
                return Decision::by(outcome, policy, Clause::Include, rule, "");
            }
            Eval::Invalid { clause, rule } => {
                return Decision::by(Outcome::Deny, policy, clause, rule, " (invalid)");
            }
            Eval::Miss { ruled_out_by } => {
                if ruled_out.is_none() && policy.action != Action::Deny {
                    ruled_out = ruled_out_by.map(|(clause, rule)| (policy, clause, rule));
                }
            }
        }
    }
    match ruled_out {
        Some((policy, clause, rule)) => Decision::by(Outcome::Deny, policy, clause, rule, ""),
        None => Decision {
            outcome: Outcome::Deny,
            policy: None,
            rule: Some("default deny".to_owned()),
        },
    }
}

impl Decision {
    fn by(outcome: Outcome, policy: &Policy, clause: Clause, rule: &Rule, note: &str) -> Self {
        Decision {
            outcome,
            policy: Some(policy.name.clone()),
            rule: Some(format!("{clause} {rule}{note}")),
        }
    }
}

/// Who the rules are asked about.
enum Subject<'a> {
    User {
        email: &'a str,
        groups: &'a [String],
    },
    ServiceToken {
        name: &'a str,
    },
    /// No identity: a user we do not know yet.
    Anonymous,
}

impl<'a> Subject<'a> {
    fn of(facts: &'a Facts) -> Self {
        match &facts.identity {
            Some(Identity::User { email, groups }) => Subject::User { email, groups },
            Some(Identity::ServiceToken { name }) => Subject::ServiceToken { name },
            None => Subject::Anonymous,
        }
    }
}

/// The outcome of a certain match, or `None` when the action does not apply
/// to this kind of request and the policy is skipped.
fn on_match(action: Action, subject: &Subject<'_>) -> Option<Outcome> {
    match (action, subject) {
        (Action::Bypass, _) => Some(Outcome::Allow),
        (Action::Deny, _) => Some(Outcome::Deny),
        (Action::Allow, Subject::User { .. }) => Some(Outcome::Allow),
        (Action::Allow, Subject::Anonymous) => Some(Outcome::NeedsLogin),
        (Action::Allow, Subject::ServiceToken { .. }) => None,
        (Action::ServiceAuth, Subject::ServiceToken { .. }) => Some(Outcome::Allow),
        (Action::ServiceAuth, Subject::User { .. } | Subject::Anonymous) => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tri {
    No,
    Unknown,
    Yes,
}

impl From<bool> for Tri {
    fn from(b: bool) -> Self {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }
}

enum Eval<'a> {
    /// `certain` is false when the match depends on who an anonymous user
    /// turns out to be. `rule` is the include rule that matched.
    Match { certain: bool, rule: &'a Rule },
    /// `ruled_out_by` names the exclude or require rule that certainly
    /// stopped a policy whose include matched.
    Miss {
        ruled_out_by: Option<(Clause, &'a Rule)>,
    },
    /// Evaluation reached a rule that does not validate.
    Invalid { clause: Clause, rule: &'a Rule },
}

/// Three-valued: include is an OR, exclude a NOR, require an AND; each
/// stops early only on an answer the remaining rules cannot change, so an
/// invalid rule that is skipped could not have changed the result.
fn evaluate<'a>(policy: &'a Policy, subject: &Subject<'_>, ip: IpAddr) -> Eval<'a> {
    let mut include: Option<(Tri, &Rule)> = None;
    for rule in &policy.include {
        match matches(rule, subject, ip) {
            Err(()) => {
                return Eval::Invalid {
                    clause: Clause::Include,
                    rule,
                }
            }
            Ok(Tri::Yes) => {
                include = Some((Tri::Yes, rule));
                break;
            }
            Ok(Tri::Unknown) if include.is_none() => include = Some((Tri::Unknown, rule)),
            Ok(_) => {}
        }
    }
    let Some((mut certainty, include_rule)) = include else {
        return Eval::Miss { ruled_out_by: None };
    };

    for rule in &policy.exclude {
        match matches(rule, subject, ip) {
            Err(()) => {
                return Eval::Invalid {
                    clause: Clause::Exclude,
                    rule,
                }
            }
            Ok(Tri::Yes) => {
                return Eval::Miss {
                    ruled_out_by: Some((Clause::Exclude, rule)),
                }
            }
            Ok(Tri::Unknown) => certainty = Tri::Unknown,
            Ok(Tri::No) => {}
        }
    }
    for rule in &policy.require {
        match matches(rule, subject, ip) {
            Err(()) => {
                return Eval::Invalid {
                    clause: Clause::Require,
                    rule,
                }
            }
            Ok(Tri::No) => {
                return Eval::Miss {
                    ruled_out_by: Some((Clause::Require, rule)),
                }
            }
            Ok(Tri::Unknown) => certainty = Tri::Unknown,
            Ok(Tri::Yes) => {}
        }
    }
    Eval::Match {
        certain: certainty == Tri::Yes,
        rule: include_rule,
    }
}

/// `Err` for a rule `validate` rejects because its value is missing or
/// does not parse: an empty value could otherwise match an empty claim.
fn matches(rule: &Rule, subject: &Subject<'_>, ip: IpAddr) -> Result<Tri, ()> {
    if let Rule::Email(v) | Rule::EmailDomain(v) | Rule::Group(v) | Rule::ServiceToken(v) = rule {
        if v.is_empty() {
            return Err(());
        }
    }
    Ok(match rule {
        Rule::Everyone => Tri::Yes,
        Rule::IpRange(range) => Tri::from(range.net().map_err(|_| ())?.contains(ip)),
        Rule::Email(_) | Rule::EmailDomain(_) | Rule::Group(_) => match subject {
            Subject::User { email, groups } => Tri::from(user_matches(rule, email, groups)),
            Subject::ServiceToken { .. } => Tri::No,
            Subject::Anonymous => Tri::Unknown,
        },
        Rule::AnyServiceToken => Tri::from(matches!(subject, Subject::ServiceToken { .. })),
        Rule::ServiceToken(want) => {
            Tri::from(matches!(subject, Subject::ServiceToken { name } if name == want))
        }
    })
}

fn user_matches(rule: &Rule, email: &str, groups: &[String]) -> bool {
    match rule {
        Rule::Email(want) => email.eq_ignore_ascii_case(want),
        Rule::EmailDomain(want) => email
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.eq_ignore_ascii_case(want)),
        Rule::Group(want) => groups.iter().any(|g| g == want),
        _ => false,
    }
}
