//! `GET /ui/audit`: the audit log, oldest first, filtered by kind,
//! identity, hostname and a time range (UTC), a page at a time.
//!
//! The store filters by identity and start time itself (what `GET
//! /v1/audit` asks of it); kind, hostname and the end of the range are
//! checked here on what it returns. Each request reads at most
//! [`SCAN_BUDGET`] entries, in batches: when that fills no page, the page
//! says so and links on from where it stopped. Entries are appended in
//! time order (give or take the clocks of several edge processes on one
//! store), so the scan stops once it is [`SKEW`] past the range's end.
//! The paging cursor is the sequence number of the last entry looked at.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use warren_store::{AuditFilter, AuditRecord};

use super::session::Signed;
use super::{html, message, utc, Chrome, Ctx};
use crate::access::oidc::encode;

/// Entries read from the store at once.
const BATCH: u32 = 500;
/// Entries one request reads at most.
const SCAN_BUDGET: usize = 5000;
/// How far past the end of the range an entry may be before the scan
/// stops, in seconds.
const SKEW: i64 = 300;
/// Entries per page by default, and at most.
const PAGE: usize = 50;
const MAX_PAGE: usize = 500;

#[derive(Deserialize, Default)]
pub(super) struct Filters {
    kind: Option<String>,
    identity: Option<String>,
    hostname: Option<String>,
    /// `YYYY-MM-DDTHH:MM[:SS]`, UTC (what a `datetime-local` input sends).
    from: Option<String>,
    to: Option<String>,
    after: Option<i64>,
    limit: Option<usize>,
}

pub(super) struct Row {
    seq: i64,
    time: String,
    kind: String,
    identity: String,
    source: String,
    app: String,
    hostname: String,
    tunnel: String,
    decision: String,
    rule: String,
    detail: String,
}

impl From<AuditRecord> for Row {
    fn from(r: AuditRecord) -> Self {
        let e = r.entry;
        let mut detail = Vec::new();
        if !e.destination.is_empty() {
            detail.push(e.destination.clone());
        }
        if e.bytes_up > 0 || e.bytes_down > 0 {
            detail.push(format!("{} B up, {} B down", e.bytes_up, e.bytes_down));
        }
        if e.duration_ms > 0 {
            detail.push(format!("{} ms", e.duration_ms));
        }
        if !e.end_reason.is_empty() {
            detail.push(e.end_reason.clone());
        }
        Row {
            seq: r.seq,
            time: utc(e.time),
            kind: e.kind,
            identity: e.identity,
            source: e.source,
            app: e.app,
            hostname: e.hostname,
            tunnel: e.tunnel,
            decision: e.decision,
            rule: e.rule,
            detail: detail.join(" · "),
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    kind: String,
    identity: String,
    hostname: String,
    from: String,
    to: String,
    limit: usize,
    rows: Vec<Row>,
    /// The next page, when there may be one.
    next: Option<String>,
    /// The first page of these filters, when this is not it.
    first: Option<String>,
    /// The scan ran out of its budget before the page filled.
    stopped_at: Option<i64>,
    scanned: usize,
}

/// `YYYY-MM-DDTHH:MM[:SS]` (UTC) as Unix seconds.
pub(super) fn parse_utc(text: &str) -> Option<i64> {
    let (date, time) = text.trim().split_once('T')?;
    let mut d = date.split('-').map(str::parse::<i32>);
    let (year, month, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    if d.next().is_some() {
        return None;
    }
    let mut t = time.split(':').map(str::parse::<u8>);
    let (hour, minute) = (t.next()?.ok()?, t.next()?.ok()?);
    let second = match t.next() {
        Some(s) => s.ok()?,
        None => 0,
    };
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    let time = time::Time::from_hms(hour, minute, second).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Unix seconds as a `datetime-local` value (UTC).
fn input_value(unix: i64) -> String {
    let t = utc(unix);
    // "2026-01-31 23:59:59 UTC" → "2026-01-31T23:59"
    t.get(..16).map_or(t.clone(), |s| s.replacen(' ', "T", 1))
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `GET /ui/audit`.
pub(super) async fn page(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Query(f): Query<Filters>,
) -> Response {
    let bad = |text: String| {
        message(
            StatusCode::BAD_REQUEST,
            "The filter is not understood",
            &text,
        )
    };
    // The first visit shows the last day; an emptied field means no bound.
    let from_text = match &f.from {
        None => input_value(crate::audit::now() - 86_400),
        Some(s) => s.trim().to_owned(),
    };
    let from = match from_text.as_str() {
        "" => None,
        s => match parse_utc(s) {
            Some(t) => Some(t),
            None => {
                return bad(format!(
                    "{s:?} is not a time; give it as 2026-01-31T23:59 (UTC), or leave it empty."
                ))
            }
        },
    };
    let to_text = f.to.clone().unwrap_or_default().trim().to_owned();
    let to = match to_text.as_str() {
        "" => None,
        s => match parse_utc(s) {
            Some(t) => Some(t),
            None => {
                return bad(format!(
                    "{s:?} is not a time; give it as 2026-01-31T23:59 (UTC), or leave it empty."
                ))
            }
        },
    };
    let (kind, identity, hostname) = (
        nonempty(&f.kind),
        nonempty(&f.identity),
        nonempty(&f.hostname),
    );
    let limit = f.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);

    let mut cursor = f.after.unwrap_or(0).max(0);
    let mut rows = Vec::new();
    let mut scanned = 0usize;
    // Whether everything after the cursor has been looked at.
    let mut done = false;
    'scan: while rows.len() < limit && scanned < SCAN_BUDGET {
        let batch = match ctx
            .admin
            .store
            .list_audit(&AuditFilter {
                since: from,
                identity: identity.clone(),
                after_seq: Some(cursor),
                limit: BATCH,
                ..Default::default()
            })
            .await
        {
            Ok(b) => b,
            Err(e) => {
                let e = crate::admin::ApiError::from(e);
                return message(
                    e.status(),
                    "The audit log could not be read",
                    &format!("{} Reload the page in a moment.", e.message()),
                );
            }
        };
        let full = batch.len() == BATCH as usize;
        for r in batch {
            scanned += 1;
            cursor = r.seq;
            if to.is_some_and(|to| r.entry.time > to.saturating_add(SKEW)) {
                done = true;
                break 'scan;
            }
            let wanted = to.is_none_or(|to| r.entry.time <= to)
                && kind.as_ref().is_none_or(|k| &r.entry.kind == k)
                && hostname
                    .as_ref()
                    .is_none_or(|h| r.entry.hostname.eq_ignore_ascii_case(h));
            if wanted {
                rows.push(Row::from(r));
                if rows.len() == limit {
                    break 'scan;
                }
            }
        }
        if !full {
            done = true;
            break;
        }
    }
    let filters = |after: Option<i64>| {
        let mut q = format!(
            "/ui/audit?kind={}&identity={}&hostname={}&from={}&to={}&limit={limit}",
            encode(kind.as_deref().unwrap_or("")),
            encode(identity.as_deref().unwrap_or("")),
            encode(hostname.as_deref().unwrap_or("")),
            encode(&from_text),
            encode(&to_text),
        );
        if let Some(a) = after {
            q.push_str(&format!("&after={a}"));
        }
        q
    };
    let more = !done && (rows.len() == limit || scanned >= SCAN_BUDGET);
    let stopped_at = (more && rows.len() < limit).then_some(cursor);
    let next = more.then(|| filters(Some(cursor)));
    let first = f.after.filter(|a| *a > 0).map(|_| filters(None));
    html(
        StatusCode::OK,
        &AuditPage {
            chrome: Chrome::new(&signed, "audit"),
            kind: kind.unwrap_or_default(),
            identity: identity.unwrap_or_default(),
            hostname: hostname.unwrap_or_default(),
            from: from_text.clone(),
            to: to_text.clone(),
            limit,
            rows,
            next,
            first,
            stopped_at,
            scanned,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_inputs_parse_and_round_trip() {
        assert_eq!(parse_utc("1970-01-01T00:00"), Some(0));
        assert_eq!(parse_utc("2026-12-31T23:59:59"), Some(1_798_761_599));
        assert_eq!(parse_utc("2026-12-31T23:59"), Some(1_798_761_540));
        for bad in [
            "",
            "2026-12-31",
            "2026-13-01T00:00",
            "2026-02-30T00:00",
            "2026-01-01T24:00",
            "x-1-1T0:0",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad:?}");
        }
        assert_eq!(input_value(1_798_761_599), "2026-12-31T23:59");
        assert_eq!(parse_utc(&input_value(1_798_761_540)), Some(1_798_761_540));
    }
}
