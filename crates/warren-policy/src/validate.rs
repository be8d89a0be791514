//! Checks an application before the store keeps it, with one sentence per
//! problem that says where it is and what to change.

use std::collections::HashSet;
use std::fmt;

use crate::cidr::CidrError;
use crate::hosts::normalize_path;
use crate::model::{Action, Application, Clause, Policy, Rule};

/// Where a rule is: `application "intranet", policy "staff", include rule 2`
/// (rules are counted from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRef {
    /// The application's name.
    pub application: String,
    /// The policy's name.
    pub policy: String,
    /// The list the rule is in.
    pub clause: Clause,
    /// The rule's position in that list, from 1.
    pub position: usize,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "application {:?}, policy {:?}, {} rule {}",
            self.application, self.policy, self.clause, self.position
        )
    }
}

/// Why an application cannot be stored. Each message is one sentence that
/// names the application (and policy and rule) and says what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The application has no name.
    #[error(
        "an application needs a name; give it one that says what it protects, like \"intranet\""
    )]
    EmptyName,
    /// The application covers no hostname.
    #[error("application {application:?} covers no hostnames; add at least one, like app.example.com or *.example.com")]
    NoHostnames {
        /// The application.
        application: String,
    },
    /// A hostname is not one.
    #[error("application {application:?}: hostname {hostname:?} {reason}")]
    BadHostname {
        /// The application.
        application: String,
        /// The hostname as written.
        hostname: String,
        /// What is wrong and what to write instead.
        reason: &'static str,
    },
    /// The path prefix does not start with `/` or has a query.
    #[error("application {application:?}: path prefix {prefix:?} {reason}")]
    BadPathPrefix {
        /// The application.
        application: String,
        /// The prefix as written.
        prefix: String,
        /// What is wrong and what to write instead.
        reason: &'static str,
    },
    /// The path prefix has `..`, `//`, percent-encoding or `\`.
    #[error("application {application:?}: path prefix {prefix:?} is not in normal form, so it would not compare with request paths as written; write it as {normal:?}")]
    PathPrefixNotNormal {
        /// The application.
        application: String,
        /// The prefix as written.
        prefix: String,
        /// The same path in normal form.
        normal: String,
    },
    /// Sessions would expire at once.
    #[error("application {application:?} has a session duration of 0 seconds; set session_duration_secs to how long a sign-in lasts, like 86400 for a day")]
    ZeroSessionDuration {
        /// The application.
        application: String,
    },
    /// A policy has no name.
    #[error("application {application:?}: policy {position} has no name; give every policy a name, since decisions and the audit log show it")]
    EmptyPolicyName {
        /// The application.
        application: String,
        /// The policy's position, from 1.
        position: usize,
    },
    /// Two policies share a name.
    #[error("application {application:?} has two policies named {policy:?}; rename one, since decisions and the audit log name the policy that decided")]
    DuplicatePolicyName {
        /// The application.
        application: String,
        /// The repeated name.
        policy: String,
    },
    /// A policy with no include rule never matches.
    #[error("application {application:?}, policy {policy:?} has no include rules, so it can never match; add one, like everyone or email_domain example.com")]
    EmptyInclude {
        /// The application.
        application: String,
        /// The policy.
        policy: String,
    },
    /// An `ip_range` is not a network.
    #[error("{at}: ip_range {range:?} {reason}")]
    BadCidr {
        /// Where the rule is.
        at: RuleRef,
        /// The range as written.
        range: String,
        /// Why it is not a network, and what to write.
        reason: CidrError,
    },
    /// An `email` is not one address.
    #[error("{at}: email {email:?} is not an email address; write one address like alice@example.com, or use email_domain for a whole domain")]
    BadEmail {
        /// Where the rule is.
        at: RuleRef,
        /// The value as written.
        email: String,
    },
    /// An `email_domain` is empty or not a domain.
    #[error("{at}: email_domain {domain:?} {reason}")]
    BadEmailDomain {
        /// Where the rule is.
        at: RuleRef,
        /// The value as written.
        domain: String,
        /// What is wrong and what to write instead.
        reason: &'static str,
    },
    /// A `group` is empty.
    #[error("{at}: the group name is empty; write it exactly as the identity provider's group claim has it")]
    EmptyGroup {
        /// Where the rule is.
        at: RuleRef,
    },
    /// A `service_token` has no name.
    #[error(
        "{at}: the service token name is empty; write the token's name, or use any_service_token"
    )]
    EmptyServiceTokenName {
        /// Where the rule is.
        at: RuleRef,
    },
    /// The rule can never hold for the kind of request the action applies
    /// to, so the policy can never match.
    #[error("{at} ({rule}) can never match under action {action}, which applies only to {}, so the policy never matches; {}", applies_to(*action), wrong_kind_fix(*action))]
    NeverMatches {
        /// Where the rule is.
        at: RuleRef,
        /// The rule, e.g. `any_service_token`.
        rule: String,
        /// The policy's action.
        action: Action,
    },
}

fn applies_to(action: Action) -> &'static str {
    match action {
        Action::ServiceAuth => "service tokens",
        _ => "signed-in users",
    }
}

fn wrong_kind_fix(action: Action) -> &'static str {
    match action {
        Action::ServiceAuth => "use action allow for users, in a policy of its own",
        _ => "use action service_auth for service tokens, in a policy of its own",
    }
}

/// Checks everything `decide` relies on and everything that is surely a
/// mistake; returns the first problem found. An application without
/// policies is valid (it denies everything until one is added).
pub fn validate(app: &Application) -> Result<(), PolicyError> {
    let application = || app.name.clone();
    if app.name.trim().is_empty() {
        return Err(PolicyError::EmptyName);
    }
    if app.hostnames.is_empty() {
        return Err(PolicyError::NoHostnames {
            application: application(),
        });
    }
    for hostname in &app.hostnames {
        if let Some(reason) = hostname_problem(hostname) {
            return Err(PolicyError::BadHostname {
                application: application(),
                hostname: hostname.clone(),
                reason,
            });
        }
    }
    if let Some(prefix) = &app.path_prefix {
        let reason = if !prefix.starts_with('/') {
            Some("does not start with /; write it like /admin")
        } else if prefix.contains(['?', '#']) {
            Some("has a query or fragment; write only the path, like /admin")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(PolicyError::BadPathPrefix {
                application: application(),
                prefix: prefix.clone(),
                reason,
            });
        }
        let normal = normalize_path(prefix);
        if normal != prefix.as_str() {
            return Err(PolicyError::PathPrefixNotNormal {
                application: application(),
                prefix: prefix.clone(),
                normal: normal.into_owned(),
            });
        }
    }
    if app.session_duration_secs == 0 {
        return Err(PolicyError::ZeroSessionDuration {
            application: application(),
        });
    }

    let mut names = HashSet::new();
    for (i, policy) in app.policies.iter().enumerate() {
        if policy.name.trim().is_empty() {
            return Err(PolicyError::EmptyPolicyName {
                application: application(),
                position: i + 1,
            });
        }
        if !names.insert(policy.name.as_str()) {
            return Err(PolicyError::DuplicatePolicyName {
                application: application(),
                policy: policy.name.clone(),
            });
        }
        if policy.include.is_empty() {
            return Err(PolicyError::EmptyInclude {
                application: application(),
                policy: policy.name.clone(),
            });
        }
        validate_policy(app, policy)?;
    }
    Ok(())
}

fn validate_policy(app: &Application, policy: &Policy) -> Result<(), PolicyError> {
    let at = |clause, i: usize| RuleRef {
        application: app.name.clone(),
        policy: policy.name.clone(),
        clause,
        position: i + 1,
    };
    let clauses = [
        (Clause::Include, &policy.include),
        (Clause::Exclude, &policy.exclude),
        (Clause::Require, &policy.require),
    ];
    for (clause, rules) in clauses {
        for (i, rule) in rules.iter().enumerate() {
            check_rule(rule, || at(clause, i))?;
        }
    }

    // Rules that cannot hold for the only kind of request the action
    // applies to: one such require rule, or nothing but such include rules.
    let wrong_kind: fn(&Rule) -> bool = match policy.action {
        Action::Allow => Rule::is_about_service_tokens,
        Action::ServiceAuth => Rule::is_about_users,
        Action::Bypass | Action::Deny => return Ok(()),
    };
    let never = |clause, i: usize, rule: &Rule| PolicyError::NeverMatches {
        at: at(clause, i),
        rule: rule.to_string(),
        action: policy.action,
    };
    if let Some((i, rule)) = policy
        .require
        .iter()
        .enumerate()
        .find(|(_, r)| wrong_kind(r))
    {
        return Err(never(Clause::Require, i, rule));
    }
    if policy.include.iter().all(wrong_kind) {
        if let Some(rule) = policy.include.first() {
            return Err(never(Clause::Include, 0, rule));
        }
    }
    Ok(())
}

fn check_rule(rule: &Rule, at: impl Fn() -> RuleRef) -> Result<(), PolicyError> {
    match rule {
        Rule::Everyone | Rule::AnyServiceToken => Ok(()),
        Rule::Email(email) => {
            let ok = !email.contains(char::is_whitespace)
                && email
                    .rsplit_once('@')
                    .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
            if ok {
                Ok(())
            } else {
                Err(PolicyError::BadEmail {
                    at: at(),
                    email: email.clone(),
                })
            }
        }
        Rule::EmailDomain(domain) => match email_domain_problem(domain) {
            None => Ok(()),
            Some(reason) => Err(PolicyError::BadEmailDomain {
                at: at(),
                domain: domain.clone(),
                reason,
            }),
        },
        Rule::Group(group) if group.is_empty() => Err(PolicyError::EmptyGroup { at: at() }),
        Rule::Group(_) => Ok(()),
        Rule::IpRange(range) => match range.net() {
            Ok(_) => Ok(()),
            Err(reason) => Err(PolicyError::BadCidr {
                at: at(),
                range: range.as_str().to_owned(),
                reason: reason.clone(),
            }),
        },
        Rule::ServiceToken(name) if name.is_empty() => {
            Err(PolicyError::EmptyServiceTokenName { at: at() })
        }
        Rule::ServiceToken(_) => Ok(()),
    }
}

fn email_domain_problem(domain: &str) -> Option<&'static str> {
    if domain.is_empty() {
        Some("is empty; write the domain after the @, like example.com")
    } else if domain.contains('@') {
        Some("contains @; write only the domain, like example.com, or use email for one address")
    } else if domain.contains('*') {
        Some("has a wildcard, but email_domain matches one domain exactly and not its subdomains; add one rule per domain, like sub.example.com")
    } else if dns_name_problem(domain) {
        Some("is not a domain; write it like example.com, an internationalised domain in its xn-- form")
    } else {
        None
    }
}

fn hostname_problem(hostname: &str) -> Option<&'static str> {
    let name = hostname.strip_prefix("*.").unwrap_or(hostname);
    if hostname.is_empty() {
        Some("is empty; write a hostname like app.example.com or *.example.com")
    } else if hostname.contains("://") || hostname.contains('/') {
        Some("has a scheme or path; write the hostname alone, like app.example.com, and put a path in path_prefix")
    } else if hostname.contains(':') {
        Some("has a port; write the hostname alone, like app.example.com")
    } else if name.contains('*') {
        Some("has a * that is not its whole first label; write a wildcard as *.example.com")
    } else if dns_name_problem(name) {
        Some("is not a hostname; use letters, digits, - and . only, like app.example.com, an internationalised name in its xn-- form")
    } else {
        None
    }
}

/// True when `name` is not dot-separated non-empty labels of ASCII
/// letters, digits and `-`.
fn dns_name_problem(name: &str) -> bool {
    name.split('.').any(|label| {
        label.is_empty()
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

#[cfg(test)]
mod tests {
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
}
