//! `warren access app|policy|service-token|idp|session|keys`: access
//! control over the admin API.
//!
//! One module per resource, each with its subcommands, its views of the
//! API's JSON and its `run`.

mod apps;
mod idps;
mod keys;
mod policies;
mod service_tokens;
mod sessions;

use super::audit::span_secs;

use apps::AppCmd;
use idps::IdpCmd;
use keys::KeysCmd;
use policies::PolicyCmd;
use service_tokens::TokenCmd;
use sessions::SessionCmd;

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

/// A positive duration such as `30m`, `24h` or `7d`, in seconds.
fn session_secs(text: &str) -> anyhow::Result<i64> {
    span_secs(text)
        .filter(|s| *s > 0)
        .ok_or_else(|| anyhow::anyhow!("{text:?} is not a duration; use 30m, 24h or 7d"))
}

/// Runs one access admin command; returns what to print.
pub(crate) async fn run(cmd: AccessAdminCmd) -> anyhow::Result<String> {
    match cmd {
        AccessAdminCmd::App { cmd } => apps::run(cmd).await,
        AccessAdminCmd::Policy { cmd } => policies::run(cmd).await,
        AccessAdminCmd::ServiceToken { cmd } => service_tokens::run(cmd).await,
        AccessAdminCmd::Idp { cmd } => idps::run(cmd).await,
        AccessAdminCmd::Session { cmd } => sessions::run(cmd).await,
        AccessAdminCmd::Keys { cmd } => keys::run(cmd).await,
    }
}
