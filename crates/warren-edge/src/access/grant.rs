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
