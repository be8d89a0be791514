//! Warren's access policy engine, as a pure function.
//!
//! An [`Application`] covers hostnames (exact, or `*.example.com`) and an
//! optional path prefix, and holds ordered [`Policy`]s. A policy has an
//! [`Action`] and three lists of [`Rule`]s: include, exclude and require.
//! [`decide`] takes an application and the [`Facts`] of one request (who is
//! asking, if anyone, and from which address) and returns a [`Decision`]:
//! the [`Outcome`], and the policy and rule that decided it, for the audit
//! log. [`validate`] checks an application before the store keeps it;
//! [`most_specific`] picks the application that covers a request.
//!
//! **This crate does no IO and keeps no state.** The edge gathers the facts
//! (session cookie, service-token headers, source address) and acts on the
//! outcome; the store keeps these types as JSON.
//!
//! # Semantics
//!
//! Close to Cloudflare Access, with the choices below stated once here.
//!
//! - **A policy matches** when at least one include rule matches (an empty
//!   include never matches), no exclude rule matches, and every require rule
//!   matches.
//! - **Policies are evaluated in order; the first that matches decides.**
//!   When none does, the request is denied (default deny).
//! - **Who a rule is about.** `email`, `email_domain` and `group` are about
//!   users and never match a service token; `any_service_token` and
//!   `service_token` never match a user. `everyone` and `ip_range` match any
//!   request, anonymous ones included.
//! - **Who an action applies to.** `bypass` and `deny` apply to every
//!   request; `allow` only to users (a service token skips allow policies);
//!   `service_auth` only to service tokens (a user skips them). So the action
//!   says what `everyone` means: `allow` + `everyone` is any signed-in user,
//!   `service_auth` + `everyone` any valid service token, `bypass` +
//!   `everyone` the whole internet, `deny` + `everyone` nobody. A `deny`
//!   cannot be dodged by leaving credentials out.
//! - **Outcomes of a match:** `bypass` allows without an identity, `allow`
//!   allows the user, `service_auth` allows the service token, `deny` denies.
//! - **Anonymous requests** (no session, no service token) are evaluated as
//!   a user we do not know yet: `everyone` and `ip_range` are decided, rules
//!   about users are *unknown*, rules about service tokens are false. The
//!   first policy that matches or might match decides: a `bypass` that
//!   certainly matches allows, a `deny` that certainly matches denies, and
//!   anything else (an `allow`, or a `bypass`/`deny` whose match depends on
//!   who the user turns out to be) is [`Outcome::NeedsLogin`], so the edge
//!   sends the browser to the identity provider. When no policy could match
//!   even after a login, the request is denied rather than sent on a
//!   pointless round trip through the identity provider.
//! - **Email addresses and domains compare ASCII-case-insensitively**;
//!   other characters must be equal, so a Unicode look-alike (`K`, the
//!   Kelvin sign) never folds onto an ASCII address. `email_domain
//!   example.com` matches `a@example.com` only: not `a@notexample.com` and
//!   not `a@sub.example.com` (as in Cloudflare); list each subdomain as its
//!   own rule. Group names and service-token names compare exactly.
//! - **Source addresses**: an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`,
//!   as a dual-stack socket reports it) is matched as the IPv4 address.
//! - **Fail closed.** A rule [`validate`] rejects because its value is
//!   missing or does not parse (an empty email, an `ip_range` that is not a
//!   network) denies the request if evaluation reaches it; `decide` never
//!   panics.
//!
//! - **Database roles.** A policy's `db_roles` are the PostgreSQL roles a
//!   request it allows may use on a pooled database; `decide` does not
//!   read them (the edge takes them from the deciding policy). Only
//!   `allow` and `service_auth` policies may have them: a `deny` gives
//!   nothing and a `bypass` has no identity to map.
//!
//! The deciding rule is described as `include email_domain example.com`,
//! `exclude ip_range 10.0.0.0/8`, `require group admins`, or `default deny`.
//! When a request is denied by default after an allowing policy's include
//! matched but an exclude or require rule ruled it out, the decision names
//! that policy and rule: it is what stopped the request.

#![forbid(unsafe_code)]

mod cidr;
mod decide;
mod hosts;
mod model;
mod validate;

pub use cidr::{CidrError, IpNet, IpRange};
pub use decide::{decide, Decision, Outcome};
pub use hosts::most_specific;
pub use model::{Action, Application, Clause, Facts, Identity, Policy, Rule};
pub use validate::{db_role_problem, validate, PolicyError, RuleRef, MAX_DB_ROLE_LEN};

/// The longest a sign-in session may last: a year. Longer durations are
/// refused rather than left to saturate into "never expires".
pub const MAX_SESSION_SECS: u64 = 365 * 86_400;
