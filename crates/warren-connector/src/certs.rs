//! Certificates the connector serves to clients whose TLS it terminates
//! (a PostgreSQL client's SSLRequest on a `postgres://` rule).
//!
//! The connector makes a key pair and a CSR for the hostname, sends the CSR
//! to the edge on a new stream of a tunnel connection (`CertRequest`), and
//! gets back a chain issued by the edge's CA (`CertIssued`); the private key
//! never leaves the connector. Chains are cached per hostname, in memory,
//! for a day.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use warren_proto::control::{CertRequest, ControlMessage};

/// How long the edge has to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a certificate is used before a fresh one is requested: well
/// inside the edge's leaf validity (`LEAF_DAYS`, far longer), so a chain in
/// the cache never expires and a rotated edge CA is picked up within a day.
const REUSE_FOR: Duration = Duration::from_secs(24 * 3600);
/// Most hostnames cached.
const MAX_CACHED: usize = 1024;

/// Why no certificate could be had for a hostname.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CertError {
    /// A key or CSR could not be made.
    #[error("cannot make a key and CSR for {host}: {reason}")]
    Csr { host: String, reason: String },
    /// The edge did not issue one.
    #[error(transparent)]
    Ask(#[from] crate::ask::AskError),
    /// The edge answered something other than a chain.
    #[error("unexpected answer to a certificate request: {0}")]
    UnexpectedAnswer(String),
    /// The issued chain cannot serve TLS.
    #[error("the issued certificate is unusable: {0}")]
    Unusable(rustls::Error),
}

/// TLS server configs by hostname.
#[derive(Default)]
pub(crate) struct CertCache {
    inner: Mutex<HashMap<String, (Arc<rustls::ServerConfig>, Instant)>>,
}

impl CertCache {
    /// A server config for `hostname`, from the cache or issued now by the
    /// edge through `conn`.
    pub(crate) async fn server_config(
        &self,
        hostname: &str,
        conn: &warren_transport::TunnelConnection,
        alpn: &[&[u8]],
    ) -> Result<Arc<rustls::ServerConfig>, CertError> {
        let host = hostname.to_ascii_lowercase();
        if let Some((cfg, renew_at)) = self.inner.lock().expect("cert cache").get(&host) {
            if Instant::now() < *renew_at {
                return Ok(cfg.clone());
            }
        }
        let cfg = Arc::new(issue(&host, conn, alpn).await?);
        let renew_at = Instant::now() + REUSE_FOR;
        let mut map = self.inner.lock().expect("cert cache");
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(host, (cfg.clone(), renew_at));
        Ok(cfg)
    }
}

async fn issue(
    host: &str,
    conn: &warren_transport::TunnelConnection,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, CertError> {
    let csr_err = |e: rcgen::Error| CertError::Csr {
        host: host.to_owned(),
        reason: e.to_string(),
    };
    let key = rcgen::KeyPair::generate().map_err(csr_err)?;
    let params = rcgen::CertificateParams::new(vec![host.to_owned()]).map_err(csr_err)?;
    let csr = params.serialize_request(&key).map_err(csr_err)?;
    let request = ControlMessage::CertRequest(CertRequest {
        hostname: host.to_owned(),
        csr: csr.der().to_vec(),
    });
    let answer = crate::ask::ask(conn, &request, "certificate request", REQUEST_TIMEOUT).await?;
    let chain = match answer {
        ControlMessage::CertIssued(c) if !c.chain.is_empty() => c.chain,
        other => return Err(CertError::UnexpectedAnswer(format!("{other:?}"))),
    };
    let chain: Vec<CertificateDer<'static>> = chain.into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut cfg = rustls::ServerConfig::builder_with_provider(warren_transport::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(CertError::Unusable)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(CertError::Unusable)?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}
