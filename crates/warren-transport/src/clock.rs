//! The clock the protocol cores' drivers read: tokio's, so a test on a
//! paused runtime (`tokio::time::pause`) drives QUIC, the control stream's
//! keep-alive and every deadline in virtual time. The cores themselves
//! read no clock; their drivers pass them this one.

use std::time::Instant;

/// Now, as the cores take it.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Sleeps until `at`, or forever for `None` (a core with no timer).
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
