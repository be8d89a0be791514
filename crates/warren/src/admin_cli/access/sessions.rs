//! `warren access session`: list and revoke signed-in sessions.

use hyper::Method;
use serde_json::{json, Value};

use crate::admin_cli::text::{render, table, timestamp};
use crate::admin_cli::{ApiArgs, ApiClient, Output};

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

/// Runs one `SessionCmd` command; returns what to print.
pub(super) async fn run(cmd: SessionCmd) -> anyhow::Result<String> {
    Ok(match cmd {
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
    })
}
