//! `warren access app|policy|service-token|idp|session|keys`: access
//! control over the admin API.

use hyper::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit::span_secs;
use super::text::{parse, render, table, timestamp};
use super::{encode_segment, ApiArgs, ApiClient, Output};

/// Access administration.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum AccessAdminCmd {
    /// Access applications: hostnames (and a path) behind policies.
    App {
        #[command(subcommand)]
        cmd: AppCmd,
    },
    /// An application's ordered policies.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// Service tokens for machines (headers Warren-Access-Client-Id and
    /// Warren-Access-Client-Secret).
    ServiceToken {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// The OpenID Connect identity provider users sign in with.
    Idp {
        #[command(subcommand)]
        cmd: IdpCmd,
    },
    /// Signed-in sessions.
    Session {
        #[command(subcommand)]
        cmd: SessionCmd,
    },
    /// Identity-token signing keys.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum AppCmd {
    /// Create an application (it denies everyone until a policy allows).
    Create {
        name: String,
        /// Hostname it covers (repeatable): app.example.com or *.example.com.
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Cover only this path and below it.
        #[arg(long)]
        path: Option<String>,
        /// How long a sign-in lasts (30m, 24h, 7d).
        #[arg(long, default_value = "24h")]
        session_duration: String,
        /// Record the SQL statements of PostgreSQL sessions in the audit log.
        #[arg(long)]
        statement_log: bool,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List applications.
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show an application and its policies.
    Show {
        name: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Change an application's settings.
    Update {
        name: String,
        #[arg(long)]
        session_duration: Option<String>,
        /// Turn the PostgreSQL statement log on or off.
        #[arg(long)]
        statement_log: Option<bool>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete an application (its hostnames are then denied unless public).
    Delete {
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// What a policy does.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum ActionArg {
    Allow,
    Deny,
    Bypass,
    ServiceAuth,
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum PolicyCmd {
    /// Add a policy. Rules: everyone, email=ADDR, email-domain=DOMAIN,
    /// group=NAME, ip=CIDR, any-service-token, service-token=NAME.
    Add {
        app: String,
        name: String,
        #[arg(long, value_enum)]
        action: ActionArg,
        /// Any one must match (repeatable).
        #[arg(long, required = true)]
        include: Vec<String>,
        /// None may match (repeatable).
        #[arg(long)]
        exclude: Vec<String>,
        /// All must match (repeatable).
        #[arg(long)]
        require: Vec<String>,
        /// Place among the policies, 1 = evaluated first [default: last].
        #[arg(long)]
        position: Option<usize>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List an application's policies in evaluation order.
    List {
        app: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove a policy.
    Remove {
        app: String,
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum TokenCmd {
    /// Create a service token; its secret is printed once.
    Create {
        name: String,
        /// Expire after this long (90d); default never.
        #[arg(long)]
        duration: Option<String>,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List service tokens (never their secrets).
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Revoke a token: every edge refuses it within a second, and
    /// connections opened with it are closed.
    Revoke {
        /// Name or client id.
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Give a token a new secret (printed once); the old one stops working.
    Rotate {
        name: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum IdpCmd {
    /// Add (or replace) an OpenID Connect provider. Register
    /// https://HOST/.warren/callback as its redirect URI for each
    /// protected hostname.
    Add {
        name: String,
        /// Issuer URL (discovery is at ISSUER/.well-known/openid-configuration).
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        client_id: String,
        #[arg(long, env = "WARREN_IDP_CLIENT_SECRET", hide_env_values = true)]
        client_secret: String,
        /// Comma-separated scopes [default: openid,email,profile].
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// The ID-token claim listing the user's groups [default: groups].
        #[arg(long)]
        groups_claim: Option<String>,
        /// PEM file of CAs to trust for the provider.
        #[arg(long)]
        ca_file: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List identity providers.
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove an identity provider.
    Remove {
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum SessionCmd {
    /// List sessions that have not expired.
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Revoke a session (by id) or every session of a user (by email);
    /// open connections under it are closed.
    Revoke {
        session: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum KeysCmd {
    /// Make a new signing key; the previous one stays published.
    Rotate {
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `email=a@b.c` → `{"email": "a@b.c"}`, `everyone` → `"everyone"`.
fn rule(text: &str) -> anyhow::Result<Value> {
    let (kind, value) = match text.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim())),
        None => (text.trim(), None),
    };
    let key = match kind {
        "everyone" | "any-service-token" if value.is_none() => {
            return Ok(json!(kind.replace('-', "_")))
        }
        "email" => "email",
        "email-domain" | "email_domain" => "email_domain",
        "group" => "group",
        "ip" | "ip-range" | "ip_range" => "ip_range",
        "service-token" | "service_token" => "service_token",
        _ => anyhow::bail!(
            "{text:?} is not a rule; use everyone, email=ADDR, email-domain=DOMAIN, group=NAME, ip=CIDR, any-service-token or service-token=NAME"
        ),
    };
    match value {
        Some(v) if !v.is_empty() => Ok(json!({ key: v })),
        _ => anyhow::bail!("the rule {text:?} needs a value, as in {kind}=VALUE"),
    }
}

fn session_secs(text: &str) -> anyhow::Result<i64> {
    span_secs(text)
        .filter(|s| *s > 0)
        .ok_or_else(|| anyhow::anyhow!("{text:?} is not a duration; use 30m, 24h or 7d"))
}

#[derive(Deserialize)]
struct AppView {
    name: String,
    tag: String,
    app: AppSpec,
    #[serde(default)]
    statement_log: bool,
}

#[derive(Deserialize)]
struct AppSpec {
    hostnames: Vec<String>,
    #[serde(default)]
    path_prefix: Option<String>,
    session_duration_secs: u64,
    #[serde(default)]
    policies: Vec<Value>,
}

#[derive(Deserialize)]
struct TokenView {
    id: String,
    name: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    #[serde(default)]
    client_secret: Option<String>,
}

fn rules_text(v: &Value) -> String {
    v.as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| match r {
                    Value::String(s) => s.clone(),
                    Value::Object(m) => m
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

fn policies_text(policies: &[Value]) -> String {
    if policies.is_empty() {
        return "No policies: everyone is denied. Add one with `warren access policy add APP NAME --action allow --include ...`\n".into();
    }
    let rows: Vec<Vec<String>> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            vec![
                (i + 1).to_string(),
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["action"].as_str().unwrap_or_default().to_owned(),
                rules_text(&p["include"]),
                rules_text(&p["exclude"]),
                rules_text(&p["require"]),
            ]
        })
        .collect();
    table(
        &["#", "POLICY", "ACTION", "INCLUDE", "EXCLUDE", "REQUIRE"],
        &rows,
    )
}

fn app_text(a: &AppView) -> String {
    format!(
        "Application {}\n  hostnames:        {}{}\n  session duration: {}s\n  audience tag:     {}\n  statement log:    {}\n\n{}",
        a.name,
        a.app.hostnames.join(", "),
        a.app
            .path_prefix
            .as_deref()
            .map(|p| format!(" (path {p})"))
            .unwrap_or_default(),
        a.app.session_duration_secs,
        a.tag,
        if a.statement_log { "on" } else { "off" },
        policies_text(&a.app.policies),
    )
}

fn tokens_text(tokens: &[TokenView]) -> String {
    if tokens.is_empty() {
        return "No service tokens yet; create one with `warren access service-token create NAME`\n".into();
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.id.clone(),
                timestamp(t.created_at),
                t.expires_at.map_or("never".into(), timestamp),
                t.revoked_at.map_or("-".into(), timestamp),
            ]
        })
        .collect();
    table(
        &["NAME", "CLIENT ID", "CREATED", "EXPIRES", "REVOKED"],
        &rows,
    )
}

fn secret_text(t: &TokenView, verb: &str) -> String {
    format!(
        "{verb} service token {}.\nClient ID:     {}\nClient secret: {}\nThe secret is shown only now; store it safely. Send both as the headers\nWarren-Access-Client-Id and Warren-Access-Client-Secret, or pass them to\n`warren access tcp --service-token-id ... --service-token-secret ...`.\n",
        t.name,
        t.id,
        t.client_secret.as_deref().unwrap_or_default()
    )
}

/// Runs one access admin command; returns what to print.
pub(crate) async fn run(cmd: AccessAdminCmd) -> anyhow::Result<String> {
    Ok(match cmd {
        AccessAdminCmd::App { cmd } => match cmd {
            AppCmd::Create {
                name,
                hosts,
                path,
                session_duration,
                statement_log,
                output,
                api,
            } => {
                let body = json!({
                    "name": name,
                    "hostnames": hosts,
                    "path_prefix": path,
                    "session_duration_secs": session_secs(&session_duration)?,
                    "statement_log": statement_log,
                });
                let v = ApiClient::new(&api)?
                    .call(Method::POST, "/v1/access/apps", Some(body))
                    .await?;
                render(output, &v, |a: AppView| {
                    format!(
                        "Created access application {} for {}; it denies everyone until you add a policy:\n  warren access policy add {} NAME --action allow --include email-domain=example.com\n",
                        a.name,
                        a.app.hostnames.join(", "),
                        a.name
                    )
                })?
            }
            AppCmd::List { output, api } => {
                let v = ApiClient::new(&api)?
                    .call(Method::GET, "/v1/access/apps", None)
                    .await?;
                render(output, &v, |apps: Vec<AppView>| {
                    if apps.is_empty() {
                        return "No access applications yet; create one with `warren access app create NAME --host HOST`\n".into();
                    }
                    let rows: Vec<Vec<String>> = apps
                        .iter()
                        .map(|a| {
                            vec![
                                a.name.clone(),
                                a.app.hostnames.join(","),
                                a.app.path_prefix.clone().unwrap_or_else(|| "/".into()),
                                a.app.policies.len().to_string(),
                                format!("{}s", a.app.session_duration_secs),
                            ]
                        })
                        .collect();
                    table(&["NAME", "HOSTNAMES", "PATH", "POLICIES", "SESSION"], &rows)
                })?
            }
            AppCmd::Show { name, output, api } => {
                let path = format!("/v1/access/apps/{}", encode_segment(&name));
                let v = ApiClient::new(&api)?.call(Method::GET, &path, None).await?;
                render(output, &v, |a: AppView| app_text(&a))?
            }
            AppCmd::Update {
                name,
                session_duration,
                statement_log,
                api,
            } => {
                let mut body = json!({});
                if let Some(d) = session_duration {
                    body["session_duration_secs"] = json!(session_secs(&d)?);
                }
                if let Some(s) = statement_log {
                    body["statement_log"] = json!(s);
                }
                let path = format!("/v1/access/apps/{}", encode_segment(&name));
                let v = ApiClient::new(&api)?
                    .call(Method::PATCH, &path, Some(body))
                    .await?;
                app_text(&parse(&v)?)
            }
            AppCmd::Delete { name, api } => {
                let path = format!("/v1/access/apps/{}", encode_segment(&name));
                ApiClient::new(&api)?
                    .call(Method::DELETE, &path, None)
                    .await?;
                format!("Deleted access application {name}\n")
            }
        },
        AccessAdminCmd::Policy { cmd } => match cmd {
            PolicyCmd::Add {
                app,
                name,
                action,
                include,
                exclude,
                require,
                position,
                api,
            } => {
                let rules = |list: &[String]| -> anyhow::Result<Vec<Value>> {
                    list.iter().map(|r| rule(r)).collect()
                };
                let action = match action {
                    ActionArg::Allow => "allow",
                    ActionArg::Deny => "deny",
                    ActionArg::Bypass => "bypass",
                    ActionArg::ServiceAuth => "service_auth",
                };
                let body = json!({
                    "name": name,
                    "action": action,
                    "include": rules(&include)?,
                    "exclude": rules(&exclude)?,
                    "require": rules(&require)?,
                    "position": position,
                });
                let path = format!("/v1/access/apps/{}/policies", encode_segment(&app));
                let v = ApiClient::new(&api)?
                    .call(Method::POST, &path, Some(body))
                    .await?;
                let a: AppView = parse(&v)?;
                format!(
                    "Added policy {name} to {}\n{}",
                    a.name,
                    policies_text(&a.app.policies)
                )
            }
            PolicyCmd::List { app, output, api } => {
                let path = format!("/v1/access/apps/{}", encode_segment(&app));
                let v = ApiClient::new(&api)?.call(Method::GET, &path, None).await?;
                match output {
                    Output::Json => {
                        format!("{}\n", serde_json::to_string_pretty(&v["app"]["policies"])?)
                    }
                    Output::Text => policies_text(&parse::<AppView>(&v)?.app.policies),
                }
            }
            PolicyCmd::Remove { app, name, api } => {
                let path = format!(
                    "/v1/access/apps/{}/policies/{}",
                    encode_segment(&app),
                    encode_segment(&name)
                );
                ApiClient::new(&api)?
                    .call(Method::DELETE, &path, None)
                    .await?;
                format!("Removed policy {name} from {app}\n")
            }
        },
        AccessAdminCmd::ServiceToken { cmd } => match cmd {
            TokenCmd::Create {
                name,
                duration,
                output,
                api,
            } => {
                let days = duration
                    .map(|d| session_secs(&d).map(|s| (s + 86_399) / 86_400))
                    .transpose()?;
                let v = ApiClient::new(&api)?
                    .call(
                        Method::POST,
                        "/v1/access/service-tokens",
                        Some(json!({ "name": name, "duration_days": days })),
                    )
                    .await?;
                render(output, &v, |t: TokenView| secret_text(&t, "Created"))?
            }
            TokenCmd::List { output, api } => {
                let v = ApiClient::new(&api)?
                    .call(Method::GET, "/v1/access/service-tokens", None)
                    .await?;
                render(output, &v, |t: Vec<TokenView>| tokens_text(&t))?
            }
            TokenCmd::Revoke { name, api } => {
                let path = format!("/v1/access/service-tokens/{}/revoke", encode_segment(&name));
                ApiClient::new(&api)?
                    .call(Method::POST, &path, None)
                    .await?;
                format!("Revoked service token {name}\n")
            }
            TokenCmd::Rotate { name, output, api } => {
                let path = format!("/v1/access/service-tokens/{}/rotate", encode_segment(&name));
                let v = ApiClient::new(&api)?
                    .call(Method::POST, &path, None)
                    .await?;
                render(output, &v, |t: TokenView| secret_text(&t, "Rotated"))?
            }
        },
        AccessAdminCmd::Idp { cmd } => match cmd {
            IdpCmd::Add {
                name,
                issuer,
                client_id,
                client_secret,
                scopes,
                groups_claim,
                ca_file,
                api,
            } => {
                let body = json!({
                    "name": name,
                    "issuer": issuer,
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "scopes": scopes,
                    "groups_claim": groups_claim,
                    "ca_file": ca_file,
                });
                ApiClient::new(&api)?
                    .call(Method::POST, "/v1/access/idps", Some(body))
                    .await?;
                format!("Identity provider {name} set ({issuer}). Register https://HOST/.warren/callback as a redirect URI for each protected hostname.\n")
            }
            IdpCmd::List { output, api } => {
                let v = ApiClient::new(&api)?
                    .call(Method::GET, "/v1/access/idps", None)
                    .await?;
                render(output, &v, |idps: Vec<Value>| {
                    let rows: Vec<Vec<String>> = idps
                        .iter()
                        .map(|i| {
                            ["name", "issuer", "client_id", "groups_claim"]
                                .iter()
                                .map(|k| i[*k].as_str().unwrap_or_default().to_owned())
                                .collect()
                        })
                        .collect();
                    table(&["NAME", "ISSUER", "CLIENT ID", "GROUPS CLAIM"], &rows)
                })?
            }
            IdpCmd::Remove { name, api } => {
                let path = format!("/v1/access/idps/{}", encode_segment(&name));
                ApiClient::new(&api)?
                    .call(Method::DELETE, &path, None)
                    .await?;
                format!("Removed identity provider {name}\n")
            }
        },
        AccessAdminCmd::Session { cmd } => match cmd {
            SessionCmd::List { output, api } => {
                let v = ApiClient::new(&api)?
                    .call(Method::GET, "/v1/access/sessions", None)
                    .await?;
                render(output, &v, |s: Vec<Value>| {
                    let rows: Vec<Vec<String>> = s
                        .iter()
                        .map(|s| {
                            vec![
                                s["id"].as_str().unwrap_or_default().to_owned(),
                                s["email"].as_str().unwrap_or_default().to_owned(),
                                s["app"].as_str().unwrap_or_default().to_owned(),
                                timestamp(s["expires_at"].as_i64().unwrap_or(0)),
                                if s["revoked_at"].is_null() {
                                    "-".into()
                                } else {
                                    "revoked".into()
                                },
                            ]
                        })
                        .collect();
                    table(&["SESSION", "USER", "APP", "EXPIRES", "STATE"], &rows)
                })?
            }
            SessionCmd::Revoke { session, api } => {
                let v = ApiClient::new(&api)?
                    .call(
                        Method::POST,
                        "/v1/access/sessions/revoke",
                        Some(json!({ "session": session })),
                    )
                    .await?;
                format!(
                    "Revoked {} session(s) of {session}\n",
                    v["revoked"].as_u64().unwrap_or(0)
                )
            }
        },
        AccessAdminCmd::Keys {
            cmd: KeysCmd::Rotate { api },
        } => {
            let v = ApiClient::new(&api)?
                .call(Method::POST, "/v1/access/keys/rotate", None)
                .await?;
            format!(
                "New signing key {}; the previous key stays published.\n",
                v["kid"].as_str().unwrap_or_default()
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_to_the_api_shape() {
        assert_eq!(rule("everyone").unwrap(), json!("everyone"));
        assert_eq!(
            rule("any-service-token").unwrap(),
            json!("any_service_token")
        );
        assert_eq!(
            rule("email=a@example.com").unwrap(),
            json!({"email": "a@example.com"})
        );
        assert_eq!(
            rule("email-domain=example.com").unwrap(),
            json!({"email_domain": "example.com"})
        );
        assert_eq!(
            rule("ip=10.0.0.0/8").unwrap(),
            json!({"ip_range": "10.0.0.0/8"})
        );
        assert_eq!(
            rule("service-token=ci").unwrap(),
            json!({"service_token": "ci"})
        );
        assert!(rule("email=")
            .unwrap_err()
            .to_string()
            .contains("needs a value"));
        assert!(rule("emial=x")
            .unwrap_err()
            .to_string()
            .contains("is not a rule"));
        assert_eq!(session_secs("7d").unwrap(), 604_800);
        assert!(session_secs("soon").is_err());
    }
}
