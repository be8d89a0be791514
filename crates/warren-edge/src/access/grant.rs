//! What a decision gives: who the request proved to be ([`Who`]), an
//! allowed request's [`Grant`] (and the identity token it earns the
//! origin), or why it was refused ([`Refusal`]).

use std::sync::Arc;

use warren_policy::{Decision, Identity};
use warren_store::AppRow;

use super::{Claims, Keys};
use crate::audit::now;

/// Who a request proved to be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    pub identity: Option<Identity>,
    /// The identity provider's subject, or the service token's client id.
    pub sub: String,
    /// The session the identity came from.
    pub session: Option<String>,
    /// The service token's client id.
    pub token_id: Option<String>,
    /// When the session or the token expires.
    pub expires_at: Option<i64>,
}

impl Who {
    /// The user's email or the service token's name, for the audit log.
    pub fn label(&self) -> String {
        match &self.identity {
            Some(Identity::User { email, .. }) => email.clone(),
            Some(Identity::ServiceToken { name }) => name.clone(),
            None => String::new(),
        }
    }
}

/// An allowed request.
#[derive(Debug, Clone)]
pub struct Grant {
    /// `None` on a public route no application covers.
    pub app: Option<Arc<AppRow>>,
    pub who: Who,
    pub decision: Decision,
}

impl Grant {
    /// The application's name, or empty.
    pub fn app_name(&self) -> String {
        self.app
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_default()
    }

    /// `policy: rule`, or `public route`.
    pub fn reason(&self) -> String {
        reason(&self.decision)
    }

    /// The database roles the request may use on a pooled database: the
    /// `db_roles` of the policy that allowed it. Empty on a public route
    /// no application covers.
    pub fn db_roles(&self) -> Vec<String> {
        let (Some(app), Some(policy)) = (&self.app, &self.decision.policy) else {
            return Vec::new();
        };
        app.app
            .policies
            .iter()
            .find(|p| p.name == *policy)
            .map(|p| p.db_roles.clone())
            .unwrap_or_default()
    }

    /// The signed identity for the origin, if the request has one.
    pub fn assertion(&self, keys: &Keys, host: &str) -> Option<String> {
        let app = self.app.as_ref()?;
        let identity = self.who.identity.as_ref()?;
        let now = now();
        let session_end =
            now.saturating_add(i64::try_from(app.app.session_duration_secs).unwrap_or(i64::MAX));
        let exp = self
            .who
            .expires_at
            .map_or(session_end, |e| e.min(session_end));
        keys.sign(&claims_for(
            identity,
            &self.who.sub,
            host,
            &app.tag,
            now,
            exp,
            None,
        ))
    }
}

/// The claims of an identity token.
pub fn claims_for(
    identity: &Identity,
    sub: &str,
    host: &str,
    tag: &str,
    iat: i64,
    exp: i64,
    sid: Option<String>,
) -> Claims {
    let (email, groups, kind, common_name) = match identity {
        Identity::User { email, groups } => (email.clone(), groups.clone(), "user", None),
        Identity::ServiceToken { name } => (
            String::new(),
            Vec::new(),
            "service_token",
            Some(name.clone()),
        ),
    };
    Claims {
        iss: format!("https://{host}"),
        aud: vec![tag.to_owned()],
        sub: sub.to_owned(),
        email,
        groups,
        kind: kind.to_owned(),
        common_name,
        iat,
        exp,
        sid,
    }
}

/// `policy: rule` of a decision.
pub fn reason(d: &Decision) -> String {
    match (&d.policy, &d.rule) {
        (Some(p), Some(r)) => format!("{p}: {r}"),
        (None, Some(r)) => r.clone(),
        (Some(p), None) => p.clone(),
        (None, None) => String::new(),
    }
}

/// Why a request was not let through.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// No application covers the hostname and its route is not public.
    NotProtected,
    /// The application's policies deny this identity.
    Denied {
        app: Arc<AppRow>,
        who: Box<Who>,
        decision: Decision,
    },
    /// The policies need a signed-in user.
    NeedsLogin {
        app: Arc<AppRow>,
        decision: Decision,
    },
    /// A service token was presented and is not valid.
    BadServiceToken { app: Arc<AppRow> },
    /// Too many bad service-token secrets from this address.
    TooManyAttempts { app: Arc<AppRow> },
}

impl Refusal {
    /// The application, if one covers the request.
    pub fn app(&self) -> Option<&Arc<AppRow>> {
        match self {
            Refusal::NotProtected => None,
            Refusal::Denied { app, .. }
            | Refusal::NeedsLogin { app, .. }
            | Refusal::BadServiceToken { app }
            | Refusal::TooManyAttempts { app } => Some(app),
        }
    }

    /// The audit decision and rule.
    pub fn audit_parts(&self) -> (&'static str, String, String) {
        match self {
            Refusal::NotProtected => (
                "deny",
                String::new(),
                "no access application covers the hostname and its route is not public".into(),
            ),
            Refusal::Denied { who, decision, .. } => ("deny", who.label(), reason(decision)),
            Refusal::NeedsLogin { decision, .. } => {
                ("login_required", String::new(), reason(decision))
            }
            Refusal::BadServiceToken { .. } => (
                "deny",
                String::new(),
                "invalid, revoked or expired service token".into(),
            ),
            Refusal::TooManyAttempts { .. } => (
                "deny",
                String::new(),
                "too many failed service-token attempts from this address".into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use warren_policy::{decide, Action, Application, Facts, Outcome, Policy, Rule};

    use super::*;

    fn policy(name: &str, action: Action, include: Rule, db_roles: &[&str]) -> Policy {
        Policy {
            name: name.into(),
            action,
            include: vec![include],
            exclude: vec![],
            require: vec![],
            db_roles: db_roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    fn grant(app: &Arc<AppRow>, facts: &Facts) -> Grant {
        let decision = decide(&app.app, facts);
        assert_eq!(decision.outcome, Outcome::Allow, "{decision:?}");
        Grant {
            app: Some(app.clone()),
            who: Who {
                identity: facts.identity.clone(),
                ..Who::default()
            },
            decision,
        }
    }

    #[test]
    fn db_roles_are_the_deciding_policys() {
        let app = Arc::new(AppRow {
            name: "orders".into(),
            tag: "t".into(),
            app: Application {
                name: "orders".into(),
                hostnames: vec!["db.example.com".into()],
                path_prefix: None,
                session_duration_secs: 3600,
                policies: vec![
                    policy(
                        "analysts",
                        Action::Allow,
                        Rule::Group("analysts".into()),
                        &["analyst", "reporting"],
                    ),
                    policy(
                        "staff",
                        Action::Allow,
                        Rule::EmailDomain("example.com".into()),
                        &[],
                    ),
                    policy("ci", Action::ServiceAuth, Rule::AnyServiceToken, &["ci"]),
                ],
            },
            statement_log: false,
            created_at: 0,
        });
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let analyst = Facts::user("a@example.com", vec!["analysts".into()], ip);
        assert_eq!(grant(&app, &analyst).db_roles(), ["analyst", "reporting"]);
        let staff = Facts::user("b@example.com", vec![], ip);
        assert!(grant(&app, &staff).db_roles().is_empty());
        let ci = Facts::service_token("ci", ip);
        assert_eq!(grant(&app, &ci).db_roles(), ["ci"]);

        let public = Grant {
            app: None,
            who: Who::default(),
            decision: Decision {
                outcome: Outcome::Allow,
                policy: None,
                rule: Some("public route".into()),
            },
        };
        assert!(public.db_roles().is_empty());
    }
}
