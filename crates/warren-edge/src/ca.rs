//! The edge's local certificate authority and the certificates it issues.
//!
//! On first start the edge creates `ca.pem` and `ca-key.pem` (mode 0600)
//! in its data directory. The HTTPS listener then presents, for each SNI
//! name it is allowed to serve, a leaf issued by this CA on first use and
//! cached ([`SniResolver`]); the tunnel listener presents a leaf for
//! [`warren_proto::EDGE_SERVER_NAME`]. Connectors trust the CA through the
//! pin in their token; people pass `ca.pem` to curl or `access tcp`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::{Duration as TimeDuration, OffsetDateTime};

use crate::routes::{RouteTable, ServedNames};

/// Leaf certificates live this long; the resolver reissues before expiry.
const LEAF_DAYS: i64 = 90;
/// At most this many per-name certificates are cached.
const CACHE_MAX: usize = 10_000;

/// Why the CA could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot read or write the CA files in {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
    #[error("the CA files in {dir} are unusable ({reason}); restore them from a backup, or move ca.pem and ca-key.pem away to create a new CA (connectors will then need new tokens)")]
    Corrupt { dir: String, reason: String },
    #[error("issuing a certificate failed: {0}")]
    Issue(String),
}

/// The local CA.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl Ca {
    /// Loads `ca.pem`/`ca-key.pem` from `dir`, creating them if both are
    /// missing.
    pub fn load_or_create(dir: &Path) -> Result<Ca, CaError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        let io = |source| CaError::Io {
            dir: dir.display().to_string(),
            source,
        };
        let corrupt = |reason: String| CaError::Corrupt {
            dir: dir.display().to_string(),
            reason,
        };
        if !cert_path.exists() && !key_path.exists() {
            let key = KeyPair::generate().map_err(|e| CaError::Issue(e.to_string()))?;
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "Warren edge CA");
            dn.push(DnType::OrganizationName, "Warren");
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let now = OffsetDateTime::now_utc();
            params.not_before = now - TimeDuration::hours(1);
            params.not_after = now + TimeDuration::days(3650);
            let cert = params
                .self_signed(&key)
                .map_err(|e| CaError::Issue(e.to_string()))?;
            write_private(&key_path, key.serialize_pem().as_bytes()).map_err(io)?;
            std::fs::write(&cert_path, cert.pem()).map_err(io)?;
        }
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io)?;
        let key_pem = std::fs::read_to_string(&key_path).map_err(io)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| corrupt(format!("ca-key.pem: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| corrupt(format!("ca.pem: {e}")))?;
        use rustls::pki_types::pem::PemObject;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| corrupt(format!("ca.pem: {e}")))?;
        Ok(Ca {
            issuer,
            cert_der,
            cert_pem,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The pin put in tunnel tokens.
    pub fn pin(&self) -> String {
        warren_proto::token::ca_pin(&self.cert_der)
    }

    /// Signs a connector's CSR as a server certificate for `hostname`
    /// only: the CSR's key is kept, its names, usages and validity are
    /// replaced. The chain is `[leaf, ca]`, DER.
    pub fn sign_csr(&self, csr_der: &[u8], hostname: &str) -> Result<Vec<Vec<u8>>, CaError> {
        let der = rustls::pki_types::CertificateSigningRequestDer::from(csr_der.to_vec());
        let mut csr = rcgen::CertificateSigningRequestParams::from_der(&der)
            .map_err(|e| CaError::Issue(format!("the CSR cannot be read: {e}")))?;
        let name: rcgen::string::Ia5String = hostname
            .to_owned()
            .try_into()
            .map_err(|e: rcgen::Error| CaError::Issue(format!("{hostname}: {e}")))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, hostname);
        let p = &mut csr.params;
        p.distinguished_name = dn;
        p.subject_alt_names = vec![SanType::DnsName(name)];
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        p.not_before = now - TimeDuration::hours(1);
        p.not_after = now + TimeDuration::days(LEAF_DAYS);
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        Ok(vec![cert.der().to_vec(), self.cert_der.to_vec()])
    }

    /// Signs a client certificate for a CSR: the subject is `common_name`,
    /// the identity travels as SAN URIs (`uris`), and it is valid until
    /// `not_after` (unix seconds). The chain is `[leaf, ca]`.
    pub fn sign_client_csr(
        &self,
        csr_der: &[u8],
        common_name: &str,
        uris: &[String],
        not_after: i64,
    ) -> Result<Vec<Vec<u8>>, CaError> {
        let der = rustls::pki_types::CertificateSigningRequestDer::from(csr_der.to_vec());
        let mut csr = rcgen::CertificateSigningRequestParams::from_der(&der)
            .map_err(|e| CaError::Issue(format!("the CSR cannot be read: {e}")))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        let p = &mut csr.params;
        p.distinguished_name = dn;
        p.subject_alt_names = uris
            .iter()
            .map(|u| {
                u.clone()
                    .try_into()
                    .map(SanType::URI)
                    .map_err(|e: rcgen::Error| CaError::Issue(format!("{u}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        p.not_before = now - TimeDuration::minutes(5);
        p.not_after = OffsetDateTime::from_unix_timestamp(not_after)
            .map_err(|e| CaError::Issue(format!("expiry {not_after}: {e}")))?;
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        Ok(vec![cert.der().to_vec(), self.cert_der.to_vec()])
    }

    /// Issues a server certificate for `names` (DNS names or IP
    /// addresses); the chain is `[leaf, ca]`.
    pub fn issue(
        &self,
        names: &[String],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CaError> {
        let key = KeyPair::generate().map_err(|e| CaError::Issue(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = dn;
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|e: rcgen::Error| CaError::Issue(format!("{n}: {e}"))),
            })
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - TimeDuration::hours(1);
        params.not_after = now + TimeDuration::days(LEAF_DAYS);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![cert.der().clone(), self.cert_der.clone()], key_der))
    }

    /// Issues a certificate ready for rustls.
    pub fn certified_key(&self, names: &[String]) -> Result<Arc<CertifiedKey>, CaError> {
        let (chain, key) = self.issue(names)?;
        let signing = warren_transport::tls::provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        Ok(Arc::new(CertifiedKey::new(chain, signing)))
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

/// Chooses the HTTPS certificate by SNI: issued from the CA on first use
/// for names under the edge's domain, routed hostnames and `localhost`
/// names, cached; no certificate (a handshake alert) for anything else, so
/// the edge never mints certificates for names it does not serve.
pub struct SniResolver {
    ca: Arc<Ca>,
    names: ServedNames,
    cache: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// For clients that send no SNI (an IP address in the URL).
    default: Arc<CertifiedKey>,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniResolver")
            .field("names", &self.names)
            .finish()
    }
}

impl SniResolver {
    pub fn new(ca: Arc<Ca>, domain: Option<String>, routes: RouteTable) -> Result<Self, CaError> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if let Some(d) = &domain {
            names.insert(0, d.clone());
        }
        let default = ca.certified_key(&names)?;
        Ok(Self {
            ca,
            names: ServedNames::new(domain, routes),
            cache: Mutex::new(HashMap::new()),
            default,
        })
    }

    /// Whether the edge serves this name.
    pub fn allowed(&self, name: &str) -> bool {
        self.names.serves(name)
    }

    fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.to_ascii_lowercase();
        if !self.allowed(&name) {
            tracing::debug!(sni = %name, "no certificate for a name this edge does not serve");
            return None;
        }
        let mut cache = self.cache.lock().expect("cert cache lock");
        if let Some(c) = cache.get(&name) {
            return Some(c.clone());
        }
        match self.ca.certified_key(std::slice::from_ref(&name)) {
            Ok(c) => {
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
                cache.insert(name, c.clone());
                Some(c)
            }
            Err(e) => {
                tracing::error!(sni = %name, error = %e, "issuing a certificate failed");
                None
            }
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            Some(name) => self.get(name),
            None => Some(self.default.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reloads_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let a = Ca::load_or_create(dir.path()).unwrap();
        let b = Ca::load_or_create(dir.path()).unwrap();
        assert_eq!(a.pin(), b.pin());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn issued_leaf_verifies_against_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        let (chain, _) = ca.issue(&["app.example.com".into()]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            warren_transport::tls::provider(),
        )
        .build()
        .unwrap();
        use rustls::client::danger::ServerCertVerifier;
        let name = rustls::pki_types::ServerName::try_from("app.example.com").unwrap();
        verifier
            .verify_server_cert(
                &chain[0],
                &[],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .unwrap();
        let other = rustls::pki_types::ServerName::try_from("evil.example.org").unwrap();
        assert!(verifier
            .verify_server_cert(
                &chain[0],
                &[],
                &other,
                &[],
                rustls::pki_types::UnixTime::now()
            )
            .is_err());
    }

    #[test]
    fn resolver_serves_only_its_names() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Arc::new(Ca::load_or_create(dir.path()).unwrap());
        let r = SniResolver::new(ca, Some("example.com".into()), RouteTable::new()).unwrap();
        assert!(r.allowed("example.com"));
        assert!(r.allowed("app.example.com"));
        assert!(r.allowed("hello.localhost"));
        assert!(!r.allowed("badexample.com"));
        assert!(!r.allowed("example.org"));
        assert!(r.get("APP.example.com").is_some());
        assert!(r.get("evil.org").is_none());
    }
}
