//! Checks an application before the store keeps it, with one sentence per
//! problem that says where it is and what to change.
//!
//! The sentences are in `error` ([`PolicyError`], [`RuleRef`]).

mod error;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use crate::hosts::normalize_path;
use crate::model::{Action, Application, Clause, Policy, Rule};

pub use error::{PolicyError, RuleRef};

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

    if app.session_duration_secs > crate::MAX_SESSION_SECS {
        return Err(PolicyError::SessionDurationTooLong {
            application: application(),
            secs: app.session_duration_secs,
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
        validate_db_roles(app, policy)?;
    }
    Ok(())
}

/// The longest PostgreSQL role name: the server truncates identifiers to
/// `NAMEDATALEN - 1` bytes.
pub const MAX_DB_ROLE_LEN: usize = 63;

/// Why `role` cannot be a PostgreSQL role name, or `None` if it can: it
/// must be 1 to [`MAX_DB_ROLE_LEN`] bytes with no NUL (the server would
/// truncate a longer one, and the protocol cannot carry a NUL). The store
/// checks the roles of database credentials with the same rule.
pub fn db_role_problem(role: &str) -> Option<&'static str> {
    if role.is_empty() {
        Some("is empty; write the PostgreSQL role's name, like app")
    } else if role.len() > MAX_DB_ROLE_LEN {
        Some("is longer than 63 bytes, and PostgreSQL truncates role names to 63; use the role's name exactly as the server has it")
    } else if role.contains('\0') {
        Some("contains a NUL byte, which a PostgreSQL role name cannot; write the role's name exactly as the server has it")
    } else {
        None
    }
}

fn validate_db_roles(app: &Application, policy: &Policy) -> Result<(), PolicyError> {
    if policy.db_roles.is_empty() {
        return Ok(());
    }
    if matches!(policy.action, Action::Deny | Action::Bypass) {
        return Err(PolicyError::DbRolesNotGranted {
            application: app.name.clone(),
            policy: policy.name.clone(),
            action: policy.action,
        });
    }
    for (i, role) in policy.db_roles.iter().enumerate() {
        if let Some(reason) = db_role_problem(role) {
            return Err(PolicyError::BadDbRole {
                application: app.name.clone(),
                policy: policy.name.clone(),
                role: role.clone(),
                reason,
            });
        }
        if policy.db_roles[..i].contains(role) {
            return Err(PolicyError::DuplicateDbRole {
                application: app.name.clone(),
                policy: policy.name.clone(),
                role: role.clone(),
            });
        }
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
