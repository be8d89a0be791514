//! `warren access pg-cert HOST`: a short-lived client certificate from the
//! edge's CA for the native PostgreSQL listener.
//!
//! A key pair is made here (it never leaves this machine), its CSR is
//! posted to `https://HOST/.warren/pg-cert` with the caller's credentials
//! (a cached sign-in or a service token), and the key, certificate and the
//! edge's CA are written under `~/.warren/pg/` (key 0600).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::login::write_private;
use crate::{AccessError, Credentials};

/// Where the files went and what psql needs.
#[derive(Debug)]
pub struct PgCert {
    pub key: PathBuf,
    pub cert: PathBuf,
    pub ca: PathBuf,
    /// The native listener's port, if the edge said.
    pub port: Option<u16>,
    /// Unix seconds.
    pub expires: Option<i64>,
}

fn io_err(what: &str, e: impl std::fmt::Display) -> AccessError {
    AccessError::Io(std::io::Error::other(format!("{what}: {e}")))
}

/// Requests a certificate for `hostname` from the edge at `edge`
/// (`host:port` of its HTTPS listener) and writes it under `dir`.
pub async fn request(
    hostname: &str,
    edge: &str,
    tls: Arc<rustls::ClientConfig>,
    credentials: &Credentials,
    dir: &std::path::Path,
) -> Result<PgCert, AccessError> {
    let key = rcgen::KeyPair::generate().map_err(|e| io_err("making a key", e))?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.serialize_request(&key))
        .map_err(|e| io_err("making a CSR", e))?;
    let answer = crate::edge_http::request(
        hostname,
        edge,
        tls,
        credentials,
        http::Method::POST,
        "/.warren/pg-cert",
        Bytes::copy_from_slice(csr.der()),
    )
    .await?;
    if !answer.status.is_success() {
        return Err(AccessError::Refused {
            hostname: hostname.to_owned(),
            status: answer.status.as_u16(),
            message: answer.sentence(),
        });
    }
    let port: Option<u16> = answer
        .header("warren-postgres-port")
        .and_then(|v| v.parse().ok());
    let expires: Option<i64> = answer
        .header("warren-certificate-expires")
        .and_then(|v| v.parse().ok());
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    let blocks: Vec<&str> = text
        .split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .collect();
    let [leaf, ca, ..] = blocks[..] else {
        return Err(io_err(
            "the edge's answer",
            "it does not hold a certificate and its CA",
        ));
    };
    let paths = PgCert {
        key: dir.join(format!("{hostname}.key")),
        cert: dir.join(format!("{hostname}.crt")),
        ca: dir.join(format!("{hostname}-ca.crt")),
        port,
        expires,
    };
    // Only the user may read them (libpq refuses a key others can read).
    write_private(&paths.key, key.serialize_pem().as_bytes())?;
    write_private(&paths.cert, leaf.as_bytes())?;
    write_private(&paths.ca, ca.as_bytes())?;
    Ok(paths)
}
