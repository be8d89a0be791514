//! `warren access policy`: an application's ordered policies, and the
//! `KIND=VALUE` rule syntax.

use hyper::Method;
use serde_json::{json, Value};

use super::apps::AppView;
use crate::admin_cli::text::{parse, table};
use crate::admin_cli::{encode_segment, ApiArgs, ApiClient, Output};

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
        /// A PostgreSQL role a request this policy allows may use on a
        /// pooled database (`warren db`); repeatable. Only on allow and
        /// service-auth policies.
        #[arg(long = "db-role", value_name = "ROLE")]
        db_roles: Vec<String>,
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

/// `analyst, reporting`; empty when the policy gives no database role.
fn roles_text(v: &Value) -> String {
    v.as_array()
        .map(|roles| {
            roles
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

pub(super) fn policies_text(policies: &[Value]) -> String {
    if policies.is_empty() {
        return "No policies: everyone is denied. Add one with `warren access policy add APP NAME --action allow --include ...`\n".into();
    }
    // The database roles' column only when a policy gives one.
    let roles = policies
        .iter()
        .any(|p| p["db_roles"].as_array().is_some_and(|r| !r.is_empty()));
    let rows: Vec<Vec<String>> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut row = vec![
                (i + 1).to_string(),
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["action"].as_str().unwrap_or_default().to_owned(),
                rules_text(&p["include"]),
                rules_text(&p["exclude"]),
                rules_text(&p["require"]),
            ];
            if roles {
                row.push(roles_text(&p["db_roles"]));
            }
            row
        })
        .collect();
    let mut header = vec!["#", "POLICY", "ACTION", "INCLUDE", "EXCLUDE", "REQUIRE"];
    if roles {
        header.push("DB ROLES");
    }
    table(&header, &rows)
}

/// Runs one `PolicyCmd` command; returns what to print.
pub(super) async fn run(cmd: PolicyCmd) -> anyhow::Result<String> {
    Ok(match cmd {
        PolicyCmd::Add {
            app,
            name,
            action,
            include,
            exclude,
            require,
            db_roles,
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
                "db_roles": db_roles,
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_cli::access::session_secs;

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

    #[test]
    fn database_roles_get_a_column_only_when_a_policy_has_some() {
        let plain = json!({"name": "staff", "action": "allow", "include": ["everyone"]});
        assert!(!policies_text(std::slice::from_ref(&plain)).contains("DB ROLES"));
        let text = policies_text(&[
            plain,
            json!({"name": "analysts", "action": "allow", "include": [{"group": "analysts"}],
                   "db_roles": ["analyst", "reporting"]}),
        ]);
        let mut lines = text.lines();
        assert!(lines.next().unwrap().ends_with("DB ROLES"), "{text}");
        assert!(
            lines.nth(1).unwrap().ends_with("analyst, reporting"),
            "{text}"
        );
    }
}
