//! curl, with its `-i` output split into status, headers and body.

use std::time::Duration;

use tokio::process::Command;

use super::deps::{require, Dep};

/// What curl got.
pub struct Curl {
    pub code: i32,
    pub status: u16,
    pub headers: String,
    pub body: String,
    pub stderr: String,
}

/// Runs curl with `-i`-style output and splits it.
pub async fn curl(args: &[&str]) -> Curl {
    require(Dep::Curl);
    let o = tokio::time::timeout(
        Duration::from_secs(90),
        Command::new("curl").args(args).output(),
    )
    .await
    .expect("curl timed out")
    .expect("run curl");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (headers, body) = out
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .unwrap_or((out.clone(), String::new()));
    let status = headers
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Curl {
        code: o.status.code().unwrap_or(-1),
        status,
        headers: headers.to_ascii_lowercase(),
        body,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}
