//! The policy model the store keeps as JSON, and the facts of a request.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::cidr::IpRange;

/// A set of hostnames (and optionally a path prefix) behind one set of
/// ordered policies.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// Name shown in decisions, audit entries and the denied page.
    pub name: String,
    /// Exact hostnames or `*.example.com` wildcards (any depth of
    /// subdomain, never the apex itself).
    pub hostnames: Vec<String>,
    /// Covers only this path and what lies below it, on a segment boundary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// How long a session established for this application lasts.
    pub session_duration_secs: u64,
    /// Evaluated in order; the first that matches decides.
    #[serde(default)]
    pub policies: Vec<Policy>,
}

/// One policy: an action and the rules that select who it applies to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Unique within its application; named in decisions.
    pub name: String,
    /// What happens to a request the policy matches.
    pub action: Action,
    /// At least one must match (an empty list never matches).
    pub include: Vec<Rule>,
    /// None may match.
    #[serde(default)]
    pub exclude: Vec<Rule>,
    /// All must match.
    #[serde(default)]
    pub require: Vec<Rule>,
    /// The database roles a request this policy allows may use on a
    /// pooled PostgreSQL database (`warren db`); empty: none. Meaningful
    /// on `allow` and `service_auth` policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub db_roles: Vec<String>,
}

/// What a matching policy does.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let a signed-in user through.
    Allow,
    /// Refuse the request.
    Deny,
    /// Let the request through without asking for an identity.
    Bypass,
    /// Let a service token through.
    ServiceAuth,
}

impl Action {
    /// The name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Bypass => "bypass",
            Action::ServiceAuth => "service_auth",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition on a request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Any request (what that means depends on the action; see the crate
    /// documentation).
    Everyone,
    /// A user with exactly this address (ASCII case-insensitive).
    Email(String),
    /// A user whose address is `…@` exactly this domain (ASCII
    /// case-insensitive; subdomains do not match).
    EmailDomain(String),
    /// A user whose identity-provider group claim contains this name
    /// exactly.
    Group(String),
    /// A request from this network (IPv4 or IPv6 CIDR, or one address).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "10.0.0.0/8"))]
    IpRange(IpRange),
    /// Any valid service token.
    AnyServiceToken,
    /// The service token with this name.
    ServiceToken(String),
}

impl Rule {
    /// The rule's kind, as in JSON: `email_domain`, `ip_range`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Rule::Everyone => "everyone",
            Rule::Email(_) => "email",
            Rule::EmailDomain(_) => "email_domain",
            Rule::Group(_) => "group",
            Rule::IpRange(_) => "ip_range",
            Rule::AnyServiceToken => "any_service_token",
            Rule::ServiceToken(_) => "service_token",
        }
    }

    /// Whether the rule can only ever match a user.
    pub(crate) fn is_about_users(&self) -> bool {
        matches!(self, Rule::Email(_) | Rule::EmailDomain(_) | Rule::Group(_))
    }

    /// Whether the rule can only ever match a service token.
    pub(crate) fn is_about_service_tokens(&self) -> bool {
        matches!(self, Rule::AnyServiceToken | Rule::ServiceToken(_))
    }
}

/// `email_domain example.com`, `everyone`, `ip_range 10.0.0.0/8`,
/// `group "Domain Admins"`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())?;
        match self {
            Rule::Everyone | Rule::AnyServiceToken => Ok(()),
            // Quoted only when a bare value would not read as one word.
            Rule::Email(v) | Rule::EmailDomain(v) | Rule::Group(v) | Rule::ServiceToken(v)
                if v.is_empty() || v.contains(char::is_whitespace) =>
            {
                write!(f, " {v:?}")
            }
            Rule::Email(v) | Rule::EmailDomain(v) | Rule::Group(v) | Rule::ServiceToken(v) => {
                write!(f, " {v}")
            }
            Rule::IpRange(r) => write!(f, " {r}"),
        }
    }
}

/// Which of a policy's rule lists a rule is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Clause {
    /// `include`: any one must match.
    Include,
    /// `exclude`: none may match.
    Exclude,
    /// `require`: all must match.
    Require,
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Clause::Include => "include",
            Clause::Exclude => "exclude",
            Clause::Require => "require",
        })
    }
}

/// Who is asking, as the edge established it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Identity {
    /// A user signed in through the identity provider.
    User {
        /// The address the identity provider vouched for.
        email: String,
        /// The identity provider's group claim.
        #[serde(default)]
        groups: Vec<String>,
    },
    /// A request that presented a valid, unrevoked service token.
    ServiceToken {
        /// The token's name.
        name: String,
    },
}

/// What `decide` knows about one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// `None` for a request with neither a session nor a service token.
    pub identity: Option<Identity>,
    /// The client's address as the edge saw it.
    pub source_ip: IpAddr,
}

impl Facts {
    /// A request with no identity.
    pub fn anonymous(source_ip: IpAddr) -> Self {
        Facts {
            identity: None,
            source_ip,
        }
    }

    /// A signed-in user's request.
    pub fn user(email: impl Into<String>, groups: Vec<String>, source_ip: IpAddr) -> Self {
        Facts {
            identity: Some(Identity::User {
                email: email.into(),
                groups,
            }),
            source_ip,
        }
    }

    /// A request carrying a valid service token.
    pub fn service_token(name: impl Into<String>, source_ip: IpAddr) -> Self {
        Facts {
            identity: Some(Identity::ServiceToken { name: name.into() }),
            source_ip,
        }
    }
}
