//! `warren access service-token`: create, list, revoke, rotate.

use hyper::Method;
use serde::Deserialize;
use serde_json::json;

use super::session_secs;
use crate::admin_cli::text::{render, table, timestamp};
use crate::admin_cli::{encode_segment, ApiArgs, ApiClient, Output};

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

/// Runs one `TokenCmd` command; returns what to print.
pub(super) async fn run(cmd: TokenCmd) -> anyhow::Result<String> {
    Ok(match cmd {
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
    })
}
