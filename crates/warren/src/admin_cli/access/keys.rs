//! `warren access keys`: identity-token signing keys.

use hyper::Method;

use crate::admin_cli::{ApiArgs, ApiClient};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum KeysCmd {
    /// Make a new signing key; the previous one stays published.
    Rotate {
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Runs one `KeysCmd` command; returns what to print.
pub(super) async fn run(cmd: KeysCmd) -> anyhow::Result<String> {
    let KeysCmd::Rotate { api } = cmd;
    let v = ApiClient::new(&api)?
        .call(Method::POST, "/v1/access/keys/rotate", None)
        .await?;
    Ok(format!(
        "New signing key {}; the previous key stays published.\n",
        v["kid"].as_str().unwrap_or_default()
    ))
}
