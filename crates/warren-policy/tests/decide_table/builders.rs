//! Policies, rules, facts and the application the table decides on.

use std::net::IpAddr;

use warren_policy::{Action, Application, Facts, IpRange, Policy, Rule};

pub(crate) fn p(name: &str, action: Action, include: Vec<Rule>) -> Policy {
    Policy {
        name: name.into(),
        action,
        include,
        exclude: vec![],
        require: vec![],
        db_roles: vec![],
    }
}

pub(crate) fn allow(name: &str, include: Vec<Rule>) -> Policy {
    p(name, Action::Allow, include)
}

pub(crate) fn deny(name: &str, include: Vec<Rule>) -> Policy {
    p(name, Action::Deny, include)
}

pub(crate) fn bypass(name: &str, include: Vec<Rule>) -> Policy {
    p(name, Action::Bypass, include)
}

pub(crate) fn service(name: &str, include: Vec<Rule>) -> Policy {
    p(name, Action::ServiceAuth, include)
}

pub(crate) fn excluding(mut policy: Policy, rules: Vec<Rule>) -> Policy {
    policy.exclude = rules;
    policy
}

pub(crate) fn requiring(mut policy: Policy, rules: Vec<Rule>) -> Policy {
    policy.require = rules;
    policy
}

pub(crate) fn email(s: &str) -> Rule {
    Rule::Email(s.into())
}

pub(crate) fn domain(s: &str) -> Rule {
    Rule::EmailDomain(s.into())
}

pub(crate) fn group(s: &str) -> Rule {
    Rule::Group(s.into())
}

pub(crate) fn range(s: &str) -> Rule {
    Rule::IpRange(IpRange::new(s))
}

pub(crate) fn token(s: &str) -> Rule {
    Rule::ServiceToken(s.into())
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub(crate) const OUT: &str = "203.0.113.9";

pub(crate) fn user(email: &str, groups: &[&str]) -> Facts {
    user_from(email, groups, OUT)
}

pub(crate) fn user_from(email: &str, groups: &[&str], from: &str) -> Facts {
    Facts::user(
        email,
        groups.iter().map(|g| g.to_string()).collect(),
        ip(from),
    )
}

pub(crate) fn svc(name: &str) -> Facts {
    Facts::service_token(name, ip(OUT))
}

pub(crate) fn anon(from: &str) -> Facts {
    Facts::anonymous(ip(from))
}

pub(crate) fn app(policies: Vec<Policy>) -> Application {
    Application {
        name: "intranet".into(),
        hostnames: vec!["intranet.example.com".into()],
        path_prefix: None,
        session_duration_secs: 3600,
        policies,
    }
}
