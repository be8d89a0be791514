//! `warren audit list|verify` over the admin API.

use std::fmt::Write as _;

use hyper::Method;
use serde::Deserialize;
use serde_json::Value;

use super::text::{table, timestamp};
use super::{encode_segment, ApiArgs, ApiClient, Output};

/// The audit log of every access decision and connection.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum AuditCmd {
    /// List entries, oldest first.
    List {
        /// Only entries from this long ago (30m, 24h, 7d) or since this unix
        /// time.
        #[arg(long)]
        since: Option<String>,
        /// Only this access application.
        #[arg(long)]
        app: Option<String>,
        /// Only this user email or service token name.
        #[arg(long)]
        identity: Option<String>,
        /// Only this decision (allow, deny, ...).
        #[arg(long)]
        decision: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Check the hash chain: exits non-zero if an entry was changed or
    /// removed.
    Verify {
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Deserialize)]
struct Page {
    entries: Vec<Value>,
    next_after: Option<i64>,
}

#[derive(Deserialize)]
struct Verdict {
    checked: u64,
    broken_at: Option<i64>,
    problem: Option<String>,
}

/// `30m`, `24h`, `7d` ago, or a unix time, as unix seconds.
fn since_secs(text: &str, now: i64) -> anyhow::Result<i64> {
    if let Ok(t) = text.parse::<i64>() {
        return Ok(t);
    }
    Ok(now - span_secs(text).ok_or_else(|| bad_since(text))?)
}

/// `90s`, `30m`, `24h`, `7d` in seconds.
pub(super) fn span_secs(text: &str) -> Option<i64> {
    let (num, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = num.parse().ok().filter(|n| *n >= 0)?;
    n.checked_mul(match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    })
}

fn bad_since(text: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "--since {text:?} is neither a duration (30m, 24h, 7d) nor a unix time; use one of those"
    )
}

pub(crate) async fn run(cmd: AuditCmd) -> anyhow::Result<()> {
    let text = match cmd {
        AuditCmd::List {
            since,
            app,
            identity,
            decision,
            limit,
            output,
            api,
        } => {
            let mut query = Vec::new();
            if let Some(s) = since {
                query.push(format!("since={}", since_secs(&s, super::now())?));
            }
            for (k, v) in [("app", app), ("identity", identity), ("decision", decision)] {
                if let Some(v) = v {
                    query.push(format!("{k}={}", encode_segment(&v)));
                }
            }
            let client = ApiClient::new(&api)?;
            let mut entries: Vec<Value> = Vec::new();
            let mut after = None;
            while entries.len() < limit {
                let mut q = query.clone();
                q.push(format!("limit={}", (limit - entries.len()).min(1000)));
                if let Some(a) = after {
                    q.push(format!("after={a}"));
                }
                let v = client
                    .call(Method::GET, &format!("/v1/audit?{}", q.join("&")), None)
                    .await?;
                let page: Page = super::text::parse(&v)?;
                entries.extend(page.entries);
                match page.next_after {
                    Some(a) => after = Some(a),
                    None => break,
                }
            }
            match output {
                Output::Json => format!("{}\n", serde_json::to_string_pretty(&entries)?),
                Output::Text => entries_text(&entries),
            }
        }
        AuditCmd::Verify { api } => {
            let v = ApiClient::new(&api)?
                .call(Method::GET, "/v1/audit/verify", None)
                .await?;
            let verdict: Verdict = super::text::parse(&v)?;
            match verdict.broken_at {
                None => format!(
                    "The audit log is intact: {} entries checked.\n",
                    verdict.checked
                ),
                Some(at) => anyhow::bail!(
                    "the audit log was tampered with at entry {at}: {}; the {} entries before it are intact",
                    verdict.problem.unwrap_or_default(),
                    verdict.checked
                ),
            }
        }
    };
    print!("{text}");
    Ok(())
}

fn entries_text(entries: &[Value]) -> String {
    if entries.is_empty() {
        return "No audit entries match.\n".to_owned();
    }
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
    let n = |v: &Value, k: &str| v[k].as_i64().unwrap_or(0);
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let identity = match s(e, "identity") {
                i if i.is_empty() => "-".to_owned(),
                i => i,
            };
            let mut moved = String::new();
            let _ = write!(moved, "{}/{}", n(e, "bytes_up"), n(e, "bytes_down"));
            vec![
                n(e, "seq").to_string(),
                timestamp(n(e, "time")),
                identity,
                s(e, "source"),
                s(e, "hostname"),
                s(e, "tunnel"),
                s(e, "decision"),
                moved,
                format!("{} ms", n(e, "duration_ms")),
                s(e, "end_reason"),
            ]
        })
        .collect();
    table(
        &[
            "SEQ",
            "TIME",
            "IDENTITY",
            "SOURCE",
            "HOSTNAME",
            "TUNNEL",
            "DECISION",
            "BYTES UP/DOWN",
            "DURATION",
            "END",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_unix_times() {
        assert_eq!(since_secs("30m", 10_000).unwrap(), 8_200);
        assert_eq!(since_secs("2d", 200_000).unwrap(), 27_200);
        assert_eq!(since_secs("1700000000", 0).unwrap(), 1_700_000_000);
        assert!(since_secs("soon", 0)
            .unwrap_err()
            .to_string()
            .contains("neither a duration"));
    }
}
