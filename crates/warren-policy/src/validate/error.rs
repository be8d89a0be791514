//! [`PolicyError`], one sentence per problem, and [`RuleRef`], where a
//! rule is.

use std::fmt;

use crate::cidr::CidrError;
use crate::model::{Action, Clause};

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
    /// Sessions would last longer than [`crate::MAX_SESSION_SECS`].
    #[error("application {application:?} has a session duration of {secs} seconds, longer than a year; set session_duration_secs to at most 31536000 (a year; a day, 86400, is usual)")]
    SessionDurationTooLong {
        /// The application.
        application: String,
        /// The duration asked for.
        secs: u64,
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
    /// A database role is not a PostgreSQL role name.
    #[error("application {application:?}, policy {policy:?}: database role {role:?} {reason}")]
    BadDbRole {
        /// The application.
        application: String,
        /// The policy.
        policy: String,
        /// The role as written.
        role: String,
        /// What is wrong and what to write instead.
        reason: &'static str,
    },
    /// A database role is listed twice.
    #[error("application {application:?}, policy {policy:?} lists the database role {role:?} twice; list each role once")]
    DuplicateDbRole {
        /// The application.
        application: String,
        /// The policy.
        policy: String,
        /// The repeated role.
        role: String,
    },
    /// A policy that denies, or lets requests through without an
    /// identity, has database roles.
    #[error("application {application:?}, policy {policy:?} has database roles, but its action {action} {}; put the roles on an allow or service_auth policy", db_roles_unused(*action))]
    DbRolesNotGranted {
        /// The application.
        application: String,
        /// The policy.
        policy: String,
        /// The policy's action.
        action: Action,
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

fn db_roles_unused(action: Action) -> &'static str {
    match action {
        Action::Deny => "refuses every request it matches, so no one would ever be given them",
        _ => "lets requests through without an identity, so no identity would be mapped to them",
    }
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
