//! `warren access login`: a sign-in through the browser, handed back to
//! the CLI on a loopback listener, and the token cache under `~/.warren/`.
//!
//! The CLI listens on `127.0.0.1:<random port>` and opens (or prints)
//! `https://HOST/.warren/login?cli=http://127.0.0.1:<port>/callback`. The
//! edge runs the identity provider's flow and finally redirects the
//! browser to the loopback URL with the token, which is cached at
//! `~/.warren/tokens/HOST` (directory 0700, file 0600).

use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(
        "{0:?} is not an https:// URL of a protected hostname; use e.g. https://app.example.com"
    )]
    BadUrl(String),
    #[error("cannot listen on loopback for the sign-in answer: {0}")]
    Listen(std::io::Error),
    #[error("the sign-in did not finish within {0:?}; run `warren access login` again")]
    Timeout(Duration),
    #[error("the sign-in answer had no token; run `warren access login` again")]
    NoToken,
    #[error(
        "cannot use the token cache {path}: {source}; check that your home directory is writable"
    )]
    Cache {
        path: String,
        source: std::io::Error,
    },
    #[error("there is no HOME directory to keep the token in; set HOME or WARREN_HOME")]
    NoHome,
    /// The edge refused the sign-in; its sentence.
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error("the edge's answer to the sign-in makes no sense ({0}); check that --edge is a Warren edge of the same version")]
    BadAnswer(String),
    #[error(transparent)]
    Edge(crate::AccessError),
    #[error("the edge at {edge} did not answer within {after:?}; check --edge and try again")]
    EdgeTimeout { edge: String, after: Duration },
    #[error(
        "cannot read the pasted code: {0}; paste the code the sign-in page showed and press Enter"
    )]
    Paste(String),
}

/// `https://host[:port]` → (`host`, `host[:port]`).
pub fn parse_url(url: &str) -> Result<(String, String), LoginError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| LoginError::BadUrl(url.to_owned()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(h, _)| h)
        .to_ascii_lowercase();
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err(LoginError::BadUrl(url.to_owned()));
    }
    Ok((host, authority.to_ascii_lowercase()))
}

/// `~/.warren` (or `$WARREN_HOME`).
pub fn home() -> Result<PathBuf, LoginError> {
    if let Some(h) = std::env::var_os("WARREN_HOME") {
        return Ok(PathBuf::from(h));
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".warren"))
        .ok_or(LoginError::NoHome)
}

fn token_path(host: &str) -> Result<PathBuf, LoginError> {
    Ok(home()?.join("tokens").join(host))
}

/// The `exp` claim of a JWT (not verified: the edge verifies it).
pub fn expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["exp"].as_i64()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The cached token for `host`, if there is one that has not expired.
pub fn cached(host: &str) -> Option<String> {
    let text = std::fs::read_to_string(token_path(host).ok()?).ok()?;
    let token = text.trim().to_owned();
    (expiry(&token)? > now() + 5).then_some(token)
}

/// Whether a cached token for `host` exists but has expired.
pub fn expired(host: &str) -> bool {
    let Some(text) = token_path(host)
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
    else {
        return false;
    };
    expiry(text.trim()).is_some_and(|e| e <= now() + 5)
}

/// Writes the token for `host`, readable only by the user.
pub fn store(host: &str, token: &str) -> Result<PathBuf, LoginError> {
    let path = token_path(host)?;
    write_private(&path, token.as_bytes()).map_err(|source| LoginError::Cache {
        path: path.display().to_string(),
        source,
    })?;
    Ok(path)
}

/// Replaces `path` with `data`, readable only by the user (its directory
/// 0700, the file 0600 from its creation), through a temporary file so a
/// reader never sees half of it.
pub(crate) fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Runs the sign-in for `url`: `show` is called with the URL to open
/// (the caller prints it and may start a browser); waits up to `timeout`
/// for the browser to come back; caches and returns the token.
pub async fn login(
    url: &str,
    timeout: Duration,
    show: impl FnOnce(&str),
) -> Result<String, LoginError> {
    let (host, authority) = parse_url(url)?;
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(LoginError::Listen)?;
    let port = listener.local_addr().map_err(LoginError::Listen)?.port();
    let callback = format!("http://127.0.0.1:{port}/callback");
    show(&format!(
        "https://{authority}/.warren/login?cli={}",
        encode(&callback)
    ));
    let token = tokio::time::timeout(timeout, answer(&listener))
        .await
        .map_err(|_| LoginError::Timeout(timeout))??;
    store(&host, &token)?;
    Ok(token)
}

/// Waits for `GET /callback?token=...` and answers the browser.
async fn answer(listener: &TcpListener) -> Result<String, LoginError> {
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            continue;
        };
        // One request line and headers; bounded.
        let mut buf = vec![0u8; 16 * 1024];
        let mut n = 0;
        while n < buf.len() {
            match tcp.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(m) => n += m,
            }
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf[..n]);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("");
        let token = target
            .strip_prefix("/callback?")
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")))
            .map(decode)
            .filter(|t| !t.is_empty());
        let (status, body) = match &token {
            Some(_) => (
                "200 OK",
                "Signed in. You can close this window and return to the terminal.",
            ),
            None => ("400 Bad Request", "This is not a sign-in answer."),
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tcp.write_all(resp.as_bytes()).await;
        let _ = tcp.shutdown().await;
        if let Some(t) = token {
            return Ok(t);
        }
    }
}

/// What stays as it is in a query value: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_expiry() {
        assert_eq!(
            parse_url("https://App.Example.com:8443/x").unwrap(),
            ("app.example.com".into(), "app.example.com:8443".into())
        );
        assert!(parse_url("http://app.example.com").is_err());
        assert!(parse_url("https://").is_err());
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":4102444800}"#);
        assert_eq!(expiry(&format!("h.{payload}.s")), Some(4_102_444_800));
        assert_eq!(expiry("nope"), None);
        assert_eq!(
            decode(&encode("http://127.0.0.1:1/cb?a=b")),
            "http://127.0.0.1:1/cb?a=b"
        );
    }

    #[tokio::test]
    async fn caches_privately_and_hands_back_the_token() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("WARREN_HOME", dir.path());
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":4102444800}"#);
        let token = format!("h.{payload}.s");
        let t2 = token.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let browser = tokio::spawn(async move {
            let url = rx.await.unwrap();
            let cb = decode(url.split("cli=").nth(1).unwrap());
            let addr = cb
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap()
                .to_owned();
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(
                format!(
                    "GET /callback?token={} HTTP/1.1\r\nhost: x\r\n\r\n",
                    encode(&t2)
                )
                .as_bytes(),
            )
            .await
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        });
        let got = login("https://db.example.com", Duration::from_secs(10), |u| {
            tx.send(u.to_owned()).unwrap();
        })
        .await
        .unwrap();
        assert_eq!(got, token);
        assert!(browser.await.unwrap().contains("Signed in"));
        assert_eq!(cached("db.example.com").as_deref(), Some(token.as_str()));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tokens/db.example.com"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
