//! `warren access idp`: the OpenID Connect identity provider.

use hyper::Method;
use serde_json::{json, Value};

use crate::admin_cli::text::{render, table};
use crate::admin_cli::{encode_segment, ApiArgs, ApiClient, Output};

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

/// Runs one `IdpCmd` command; returns what to print.
pub(super) async fn run(cmd: IdpCmd) -> anyhow::Result<String> {
    Ok(match cmd {
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
    })
}
