//! Keeping decisions true: the refresh loop that follows the store's
//! control generation, and the re-decision of every open connection after
//! each change (and every `recheck`, for expiries).

use std::sync::Arc;

use warren_policy::{Facts, Outcome};
use warren_store::StoreError;

use super::{reason, Inner, Snapshot, Watched, Who};
use crate::audit::now;
use crate::routes::RouteTable;

/// `None` if the session or service token behind `who` is still valid,
/// or why not.
pub(super) fn credentials_hold(snap: &Snapshot, who: &Who) -> Option<String> {
    let now = now();
    if let Some(id) = &who.token_id {
        match snap.tokens.get(id) {
            None => return Some("service token revoked".into()),
            Some(t) if t.expires_at.is_some_and(|e| e <= now) => {
                return Some("service token expired".into())
            }
            Some(_) => {}
        }
    }
    if let Some(sid) = &who.session {
        if snap.session_revoked(sid) {
            return Some("session revoked".into());
        }
    }
    if who.expires_at.is_some_and(|e| e <= now) {
        return Some("session expired".into());
    }
    None
}

pub(super) async fn refresh(inner: &Inner) -> Result<(), StoreError> {
    let snap = Snapshot::load(&inner.store).await?;
    inner.routes.reload(&inner.store).await?;
    if let Some(databases) = &inner.databases {
        databases.reload(&inner.store).await?;
    }
    tracing::debug!(generation = snap.generation, "access snapshot refreshed");
    *inner.snapshot.write().expect("snapshot lock") = Arc::new(snap);
    recheck(inner);
    Ok(())
}

/// Polls the control generation; reloads and re-decides on change, and
/// re-decides open connections every `recheck` regardless.
pub(super) async fn refresh_loop(inner: std::sync::Weak<Inner>) {
    let (refresh_every, recheck_every) = match inner.upgrade() {
        Some(i) => (i.settings.refresh, i.settings.recheck),
        None => return,
    };
    let mut tick = tokio::time::interval(refresh_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_recheck = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let current = inner.snapshot.read().expect("snapshot lock").generation;
        match inner.store.control_generation().await {
            Ok(g) if g != current => {
                if let Err(e) = refresh(&inner).await {
                    tracing::error!("cannot reload the access configuration: {e}");
                }
                last_recheck = tokio::time::Instant::now();
            }
            Ok(_) => {
                if last_recheck.elapsed() >= recheck_every {
                    recheck(&inner);
                    last_recheck = tokio::time::Instant::now();
                }
            }
            Err(e) => tracing::error!("cannot read the control generation: {e}"),
        }
    }
}

/// Decides every open connection again; closes the ones no longer allowed.
fn recheck(inner: &Inner) {
    let snap = inner.snapshot.read().expect("snapshot lock").clone();
    inner
        .live
        .recheck(|w| still_allowed(&snap, &inner.routes, w));
}

/// `None` if the connection may stay open, or why it may not.
fn still_allowed(snap: &Snapshot, routes: &RouteTable, w: &Watched) -> Option<String> {
    if let Some(why) = credentials_hold(snap, &w.who) {
        return Some(why);
    }
    match snap.app_for(&w.host, &w.path) {
        None => {
            let public = routes.lookup(&w.host).is_some_and(|r| r.public);
            (!public).then(|| "no access application covers the hostname any more".into())
        }
        Some(app) => {
            let facts = Facts {
                identity: w.who.identity.clone(),
                source_ip: w.source.ip(),
            };
            let d = warren_policy::decide(&app.app, &facts);
            (d.outcome != Outcome::Allow).then(|| format!("access policy changed ({})", reason(&d)))
        }
    }
}
