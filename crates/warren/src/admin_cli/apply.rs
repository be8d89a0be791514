//! `warren apply -f warren.yaml [--dry-run] [--prune]` and `warren export`:
//! the edge's configuration kept in a file (see `warren_edge::declared`
//! for its shape).
//!
//! The CLI reads the file and every secret it names (`*_env`, `*_file`)
//! here, so secrets stay out of the file; a service token's secret goes to
//! the edge only as its SHA-256. The edge plans and applies the whole file
//! in one transaction (`POST /v1/apply`) and answers the plan, printed
//! like `terraform plan`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use hyper::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use warren_edge::declared::Declared;
use warren_proto::token::hash_secret;
use warren_transport::file::read_bounded;

use super::{print, ApiArgs, ApiClient, Output};

/// Largest declared-state file read.
const MAX_FILE: u64 = 4 * 1024 * 1024;
/// Largest ingress or secret file a declared state names.
const MAX_PART: u64 = 1024 * 1024;

/// `warren apply`.
#[derive(clap::Args, Debug)]
pub(crate) struct ApplyArgs {
    /// The declared state, YAML (`warren export` writes one).
    #[arg(long, short = 'f')]
    file: PathBuf,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Delete the tunnels, routes, applications and identity providers the
    /// file does not name, and revoke its unnamed service tokens.
    #[arg(long)]
    prune: bool,
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    api: ApiArgs,
}

/// `warren export`.
#[derive(clap::Args, Debug)]
pub(crate) struct ExportArgs {
    /// Write the state to this file instead of standard output.
    #[arg(long = "file", short = 'f')]
    file: Option<PathBuf>,
    #[command(flatten)]
    api: ApiArgs,
}

pub(crate) async fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let declared = read_declared(&args.file)?;
    let body = json!({
        "declared": declared,
        "dry_run": args.dry_run,
        "prune": args.prune,
    });
    let v = ApiClient::new(&args.api)?
        .call(Method::POST, "/v1/apply", Some(body))
        .await?;
    match args.output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&v)?)),
        Output::Text => {
            let answer: Answer = serde_json::from_value(v)
                .context("the admin API answered an apply with unexpected JSON")?;
            print(&plan_text(&answer, args.dry_run))
        }
    }
}

pub(crate) async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let v = ApiClient::new(&args.api)?
        .call(Method::GET, "/v1/export", None)
        .await?;
    let mut declared: Declared = serde_json::from_value(v)
        .context("the admin API answered an export with unexpected JSON")?;
    let mut notes = Vec::new();
    for idp in &mut declared.identity_providers {
        let var = secret_var(&idp.name);
        notes.push(format!(
            "identity provider {}: its client secret is not exported; set {var} before applying the file",
            idp.name
        ));
        idp.client_secret_env = Some(var);
    }
    let value = serde_json::to_value(&declared).context("cannot write the state")?;
    let yaml =
        serde_norway::to_string(&readable(value)).context("cannot write the state as YAML")?;
    let text = format!(
        "# The edge's state, from `warren export`; apply it with `warren apply -f FILE`.\n{yaml}"
    );
    match &args.file {
        Some(path) => {
            write_private(path, &text)?;
            eprintln!("wrote {}", path.display());
        }
        None => print(&text)?,
    }
    for note in notes {
        eprintln!("note: {note}");
    }
    Ok(())
}

/// The state as YAML values in reading order: the sections as
/// [`Declared`] lists them, and in each entry its `name` or `hostname`
/// first (JSON's maps, through which the state passes, are sorted).
fn readable(value: Value) -> serde_norway::Value {
    const SECTIONS: &[&str] = &[
        "tunnels",
        "routes",
        "identity_providers",
        "apps",
        "service_tokens",
    ];
    let rank = |key: &str| match key {
        "name" | "hostname" => 0,
        _ => SECTIONS
            .iter()
            .position(|s| *s == key)
            .map_or(usize::MAX, |i| i + 1),
    };
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by_key(|(k, _)| rank(k));
            serde_norway::Value::Mapping(
                entries
                    .into_iter()
                    .map(|(k, v)| (serde_norway::Value::String(k), readable(v)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            serde_norway::Value::Sequence(items.into_iter().map(readable).collect())
        }
        other => serde_norway::to_value(other).unwrap_or(serde_norway::Value::Null),
    }
}

/// `WARREN_IDP_<NAME>_CLIENT_SECRET`, the name upper-cased with every
/// other character `_`.
fn secret_var(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("WARREN_IDP_{name}_CLIENT_SECRET")
}

/// An export holds service token hashes and application tags: owner-only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads `path` and everything it names, so the edge gets a state with
/// every secret resolved and no file names.
pub(crate) fn read_declared(path: &Path) -> anyhow::Result<Declared> {
    let text = read_bounded(path, MAX_FILE)
        .map_err(|e| anyhow!("cannot read the declared state {}: {e}", path.display()))?;
    // Through JSON's data model, so that a policy rule is written as the
    // map `{email_domain: example.com}` (the API's shape) rather than as
    // YAML's `!email_domain` tag.
    let not_declared = |e: &dyn std::fmt::Display| {
        anyhow!(
            "{} is not a Warren declared state: {e}; it holds tunnels, routes, identity_providers, apps and service_tokens (see `warren export`)",
            path.display()
        )
    };
    let value: Value = serde_norway::from_str(&text).map_err(|e| not_declared(&e))?;
    let value = if value.is_null() { json!({}) } else { value };
    let mut d: Declared = serde_json::from_value(value).map_err(|e| not_declared(&e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let part = |p: &Path, what: &str| -> anyhow::Result<String> {
        let full = dir.join(p);
        read_bounded(&full, MAX_PART)
            .map_err(|e| anyhow!("cannot read {what} from {}: {e}", full.display()))
    };
    for t in &mut d.tunnels {
        if let Some(file) = t.ingress_file.take() {
            if t.ingress.is_some() {
                bail!(
                    "tunnel {} has both ingress and ingress_file; keep one",
                    t.name
                );
            }
            t.ingress = Some(part(&file, &format!("the ingress of tunnel {}", t.name))?);
        }
    }
    for idp in &mut d.identity_providers {
        let what = format!("identity provider {}", idp.name);
        if idp.client_secret.is_some() {
            bail!(
                "{what} has client_secret written in the file; keep secrets out of it: name an environment variable (client_secret_env) or a file (client_secret_file)"
            );
        }
        idp.client_secret = secret(
            &what,
            idp.client_secret_env.take(),
            idp.client_secret_file.take(),
            &part,
        )?;
    }
    for t in &mut d.service_tokens {
        let what = format!("service token {}", t.name);
        let given = secret(&what, t.secret_env.take(), t.secret_file.take(), &part)?;
        if let Some(s) = given {
            if t.secret_sha256.is_some() {
                bail!("{what} has both secret_sha256 and a secret to read; keep one");
            }
            t.secret_sha256 = Some(hex::encode(hash_secret(s.as_bytes())));
        }
    }
    Ok(d)
}

/// The secret named by an environment variable or a file (its text
/// without the final line break), if either is given.
fn secret(
    what: &str,
    env: Option<String>,
    file: Option<PathBuf>,
    part: &dyn Fn(&Path, &str) -> anyhow::Result<String>,
) -> anyhow::Result<Option<String>> {
    let value = match (env, file) {
        (Some(_), Some(_)) => bail!("{what} names both an environment variable and a file for its secret; keep one"),
        (Some(var), None) => std::env::var(&var).map_err(|_| {
            anyhow!("{what} takes its secret from the environment variable {var}, which is not set; set it, or name a file instead")
        })?,
        (None, Some(file)) => part(&file, &format!("the secret of {what}"))?,
        (None, None) => return Ok(None),
    };
    let value = value.trim_end_matches(['\r', '\n']).to_owned();
    if value.is_empty() {
        bail!("the secret of {what} is empty");
    }
    Ok(Some(value))
}

#[derive(Deserialize)]
struct Answer {
    changes: Vec<Change>,
    applied: bool,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    new_secrets: Vec<NewSecret>,
}

#[derive(Deserialize)]
struct Change {
    action: String,
    kind: String,
    name: String,
    #[serde(default)]
    detail: String,
}

#[derive(Deserialize)]
struct NewSecret {
    name: String,
    client_id: String,
    client_secret: String,
}

/// The plan as `+`/`~`/`-` lines, a summary, then warnings and new
/// secrets.
fn plan_text(a: &Answer, dry_run: bool) -> String {
    let mut out = String::new();
    if a.changes.is_empty() {
        out.push_str("No changes: the edge already matches the file.\n");
    }
    let (mut create, mut update, mut delete) = (0, 0, 0);
    for c in &a.changes {
        let sign = match c.action.as_str() {
            "create" => {
                create += 1;
                '+'
            }
            "update" => {
                update += 1;
                '~'
            }
            _ => {
                delete += 1;
                '-'
            }
        };
        let kind = c.kind.replace('_', " ");
        let _ = write!(out, "{sign} {} {kind} {}", c.action, c.name);
        if !c.detail.is_empty() {
            let _ = write!(out, " ({})", c.detail);
        }
        out.push('\n');
    }
    if !a.changes.is_empty() {
        let _ = writeln!(
            out,
            "\nPlan: {create} to create, {update} to update, {delete} to delete."
        );
        out.push_str(if a.applied {
            "Applied.\n"
        } else if dry_run {
            "Dry run: nothing was changed.\n"
        } else {
            "Nothing was changed.\n"
        });
    }
    for w in &a.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for s in &a.new_secrets {
        let _ = writeln!(
            out,
            "service token {}: client id {}, secret {} (shown once; keep it safe)",
            s.name, s.client_id, s.client_secret
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_read_from_env_and_files_and_never_kept_inline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ci.secret"), "s3cret\n").unwrap();
        std::fs::write(
            dir.path().join("office.yml"),
            "ingress:\n  - service: hello_world\n",
        )
        .unwrap();
        let var = "WARREN_TEST_APPLY_IDP_SECRET";
        std::env::set_var(var, "idp-secret");
        let file = dir.path().join("warren.yaml");
        std::fs::write(
            &file,
            format!(
                "tunnels:\n  - name: office\n    ingress_file: office.yml\nidentity_providers:\n  - name: corp\n    issuer: https://id.example.com\n    client_id: warren\n    client_secret_env: {var}\nservice_tokens:\n  - name: ci\n    secret_file: ci.secret\n"
            ),
        )
        .unwrap();
        let d = read_declared(&file).unwrap();
        assert_eq!(
            d.tunnels[0].ingress.as_deref(),
            Some("ingress:\n  - service: hello_world\n")
        );
        assert_eq!(d.tunnels[0].ingress_file, None);
        assert_eq!(
            d.identity_providers[0].client_secret.as_deref(),
            Some("idp-secret")
        );
        assert_eq!(d.identity_providers[0].client_secret_env, None);
        assert_eq!(
            d.service_tokens[0].secret_sha256.as_deref(),
            Some(hex::encode(hash_secret(b"s3cret")).as_str())
        );
        assert_eq!(d.service_tokens[0].secret_file, None);

        std::fs::write(
            &file,
            "identity_providers:\n  - {name: corp, issuer: https://id.example.com, client_id: w, client_secret: plain}\n",
        )
        .unwrap();
        let e = read_declared(&file).unwrap_err().to_string();
        assert!(e.contains("keep secrets out of it"), "{e}");

        std::fs::write(
            &file,
            "service_tokens:\n  - {name: ci, secret_env: WARREN_TEST_UNSET_VAR}\n",
        )
        .unwrap();
        let e = read_declared(&file).unwrap_err().to_string();
        assert!(e.contains("WARREN_TEST_UNSET_VAR, which is not set"), "{e}");

        std::fs::write(&file, "tunnel:\n  - name: x\n").unwrap();
        let e = read_declared(&file).unwrap_err().to_string();
        assert!(
            e.contains("is not a Warren declared state: unknown field `tunnel`"),
            "{e}"
        );
    }

    #[test]
    fn exports_read_in_order() {
        let v = json!({
            "service_tokens": [{"secret_sha256": "ab", "name": "ci"}],
            "tunnels": [{"name": "office"}],
            "routes": [{"tunnel": "office", "hostname": "a.example.com", "public": true}],
        });
        assert_eq!(
            serde_norway::to_string(&readable(v)).unwrap(),
            "tunnels:\n- name: office\nroutes:\n- hostname: a.example.com\n  public: true\n  tunnel: office\nservice_tokens:\n- name: ci\n  secret_sha256: ab\n"
        );
    }

    #[test]
    fn secret_variable_names() {
        assert_eq!(
            secret_var("corp-sso.v2"),
            "WARREN_IDP_CORP_SSO_V2_CLIENT_SECRET"
        );
    }
}
