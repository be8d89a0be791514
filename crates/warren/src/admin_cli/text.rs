//! API answers and their text form: tables, dates, ages.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::*;

#[derive(Deserialize)]
pub(super) struct TunnelView {
    pub(super) id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) secret_generation: i64,
    pub(super) created_at: i64,
    #[serde(default)]
    pub(super) status: String,
    #[serde(default)]
    pub(super) up_since: Option<i64>,
    #[serde(default)]
    pub(super) connectors: Vec<ConnectorView>,
    /// Only counted in text output; `--output json` shows them whole.
    #[serde(default)]
    pub(super) connections: Vec<Value>,
    #[serde(default)]
    pub(super) routes: Vec<String>,
    #[serde(default)]
    pub(super) previous_secret_valid_until: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct ConnectorView {
    pub(super) id: String,
    #[serde(default)]
    pub(super) version: String,
    #[serde(default)]
    pub(super) source_ip: String,
    #[serde(default)]
    pub(super) edge_addrs: Vec<String>,
    #[serde(default)]
    pub(super) connections_up: usize,
    #[serde(default)]
    pub(super) connections_configured: usize,
    #[serde(default)]
    pub(super) connected_since: i64,
    #[serde(default)]
    pub(super) draining: bool,
    #[serde(default)]
    pub(super) previous_secret: bool,
    /// Its answer to the last stored config pushed to it.
    #[serde(default)]
    pub(super) config: Option<ConfigView>,
}

#[derive(Deserialize)]
pub(super) struct ConfigView {
    pub(super) version: u64,
    pub(super) applied: bool,
    #[serde(default)]
    pub(super) message: String,
}

#[derive(Deserialize)]
pub(super) struct RouteView {
    pub(super) hostname: String,
    pub(super) tunnel_id: String,
    pub(super) tunnel_name: String,
    pub(super) created_at: i64,
    #[serde(default)]
    pub(super) steering: String,
    #[serde(default)]
    pub(super) tunnels: Vec<RouteMemberView>,
    #[serde(default)]
    pub(super) public: bool,
}

/// What a new route's access is, said once when it is created.
pub(super) fn access_note(r: &RouteView) -> &'static str {
    if r.public {
        "; it is public"
    } else {
        "; it is denied to everyone until an access application allows (`warren access app create`), or pass --public"
    }
}

#[derive(Deserialize)]
pub(super) struct RouteMemberView {
    pub(super) tunnel_name: String,
    #[serde(default)]
    pub(super) weight: i64,
}

/// `a, b` for failover; `a (3), b (1)` for weighted.
pub(super) fn member_list(r: &RouteView) -> String {
    r.tunnels
        .iter()
        .map(|m| {
            if r.steering == "weighted" {
                format!("{} ({})", m.tunnel_name, m.weight)
            } else {
                m.tunnel_name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Deserialize)]
pub(super) struct TokenView {
    pub(super) token: String,
}

pub(super) fn parse<T: DeserializeOwned>(v: &Value) -> Result<T, ClientError> {
    T::deserialize(v).map_err(|e| ClientError::Unexpected {
        url: "the admin API".to_owned(),
        status: StatusCode::OK,
        detail: format!("unexpected JSON: {e}"),
    })
}

/// The API's JSON, pretty, or its text form.
pub(super) fn render<T: DeserializeOwned>(
    output: Output,
    v: &Value,
    text: impl FnOnce(T) -> String,
) -> Result<String, ClientError> {
    match output {
        Output::Json => Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        )),
        Output::Text => Ok(text(parse(v)?)),
    }
}

pub(super) fn created_text(t: &TunnelView) -> String {
    format!(
        "Created tunnel {} (id {})\nGet the token for its connector with `warren tunnel token {}`\n",
        t.name, t.id, t.name
    )
}

pub(super) fn tunnels_text(tunnels: &[TunnelView], now: i64) -> String {
    if tunnels.is_empty() {
        return "No tunnels yet; create one with `warren tunnel create NAME`\n".to_owned();
    }
    let rows = tunnels
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.id.clone(),
                t.status.clone(),
                t.connections.len().to_string(),
                format!("{} ({})", timestamp(t.created_at), ago(now, t.created_at)),
            ]
        })
        .collect::<Vec<_>>();
    table(&["NAME", "ID", "STATUS", "CONNECTIONS", "CREATED"], &rows)
}

pub(super) fn info_text(t: &TunnelView, now: i64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Name:               {}", t.name);
    let _ = writeln!(s, "ID:                 {}", t.id);
    match t.up_since {
        Some(since) => {
            let _ = writeln!(
                s,
                "Status:             {} (connected since {}, {})",
                t.status,
                timestamp(since),
                ago(now, since)
            );
        }
        None => {
            let _ = writeln!(s, "Status:             {}", t.status);
        }
    }
    let _ = writeln!(
        s,
        "Created:            {} ({})",
        timestamp(t.created_at),
        ago(now, t.created_at)
    );
    let _ = writeln!(s, "Secret generation:  {}", t.secret_generation);
    if let Some(until) = t.previous_secret_valid_until {
        let _ = writeln!(
            s,
            "Previous secret:    accepted until {} ({} left); end it now with `warren tunnel rotate-secret {} --revoke-old`",
            timestamp(until),
            left(now, until),
            t.name
        );
    }
    if t.routes.is_empty() {
        let _ = writeln!(
            s,
            "Routes:             none; add one with `warren tunnel route dns {} HOSTNAME`",
            t.name
        );
    } else {
        let _ = writeln!(s, "Routes:             {}", t.routes.join(", "));
    }
    let _ = writeln!(s, "Connections:        {}", t.connections.len());
    if t.connectors.is_empty() {
        let _ = writeln!(
            s,
            "Connectors:         none; start one with `warren tunnel run --token \"$(warren tunnel token {})\"`",
            t.name
        );
        return s;
    }
    let rows = t
        .connectors
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.version.clone(),
                c.source_ip.clone(),
                c.edge_addrs.join(","),
                format!(
                    "{}/{}{}{}",
                    c.connections_up,
                    c.connections_configured,
                    if c.draining { ", draining" } else { "" },
                    if c.previous_secret {
                        ", previous secret"
                    } else {
                        ""
                    }
                ),
                format!(
                    "{} ({})",
                    timestamp(c.connected_since),
                    ago(now, c.connected_since)
                ),
                match &c.config {
                    Some(cfg) if cfg.applied => format!("v{}", cfg.version),
                    Some(cfg) => format!("not v{}", cfg.version),
                    None => "-".to_owned(),
                },
            ]
        })
        .collect::<Vec<_>>();
    s.push('\n');
    s.push_str(&table(
        &[
            "CONNECTOR ID",
            "VERSION",
            "SOURCE IP",
            "EDGE",
            "CONNS UP",
            "CONNECTED SINCE",
            "STORED CONFIG",
        ],
        &rows,
    ));
    for c in &t.connectors {
        if let Some(cfg) = c.config.as_ref().filter(|cfg| !cfg.applied) {
            let _ = writeln!(
                s,
                "Connector {} does not run stored config v{}: {}",
                c.id, cfg.version, cfg.message
            );
        }
    }
    s
}

pub(super) fn routes_text(routes: &[RouteView]) -> String {
    if routes.is_empty() {
        return "No routes yet; add one with `warren tunnel route dns TUNNEL HOSTNAME`\n"
            .to_owned();
    }
    let rows = routes
        .iter()
        .map(|r| {
            let (tunnel, id) = if r.tunnels.len() > 1 {
                (
                    format!("{}: {}", r.steering, member_list(r)),
                    "-".to_owned(),
                )
            } else {
                (r.tunnel_name.clone(), r.tunnel_id.clone())
            };
            let access = if r.public { "public" } else { "apps only" };
            vec![
                r.hostname.clone(),
                tunnel,
                id,
                access.to_owned(),
                timestamp(r.created_at),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &["HOSTNAME", "TUNNEL", "TUNNEL ID", "ACCESS", "CREATED"],
        &rows,
    )
}

/// Left-aligned columns separated by two spaces, no trailing blanks.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:<w$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DD HH:MM:SS UTC` for unix seconds.
pub(super) fn timestamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A rough age: `5s ago`, `3m ago`, `2h 5m ago`, `4d 1h ago`.
pub(super) fn ago(now: i64, then: i64) -> String {
    format!("{} ago", span(now.saturating_sub(then)))
}

/// How long until `then` (`5m`, `23h 59m`).
pub(super) fn left(now: i64, then: i64) -> String {
    span(then.saturating_sub(now))
}

fn span(d: i64) -> String {
    let d = d.max(0);
    match d {
        0..60 => format!("{d}s"),
        60..3600 => format!("{}m", d / 60),
        3600..86_400 => format!("{}h {}m", d / 3600, d % 3600 / 60),
        _ => format!("{}d {}h", d / 86_400, d % 86_400 / 3600),
    }
}
