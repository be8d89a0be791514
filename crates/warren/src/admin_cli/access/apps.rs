//! `warren access app`: create, list, show, update, delete applications.

use hyper::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::policies::policies_text;
use super::session_secs;
use crate::admin_cli::text::{parse, render, table};
use crate::admin_cli::{encode_segment, ApiArgs, ApiClient, Output};

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

#[derive(Deserialize)]
pub(super) struct AppView {
    pub(super) name: String,
    tag: String,
    pub(super) app: AppSpec,
    #[serde(default)]
    statement_log: bool,
}

#[derive(Deserialize)]
pub(super) struct AppSpec {
    hostnames: Vec<String>,
    #[serde(default)]
    path_prefix: Option<String>,
    session_duration_secs: u64,
    #[serde(default)]
    pub(super) policies: Vec<Value>,
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

/// Runs one `AppCmd` command; returns what to print.
pub(super) async fn run(cmd: AppCmd) -> anyhow::Result<String> {
    Ok(match cmd {
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
    })
}
