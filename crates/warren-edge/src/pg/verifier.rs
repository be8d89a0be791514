//! Client certificates at the native PostgreSQL listener: optional (so a
//! client without one gets an ErrorResponse rather than a failed
//! handshake), from the edge's CA, and accepted past their expiry (so the
//! refusal can say the certificate expired).

use std::sync::Arc;
use std::time::Duration;

use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;

/// Why the verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// The CA certificate is not usable as a trust anchor.
    #[error("the CA certificate cannot be a trust anchor: {0}")]
    Anchor(rustls::Error),
    /// rustls refused the verifier.
    #[error(transparent)]
    Build(#[from] rustls::server::VerifierBuilderError),
}

/// A client-certificate verifier that accepts connections without a
/// certificate (so the refusal can be an `ErrorResponse`) and certificates
/// that chain to the edge's CA but have expired (checked, and refused with
/// a sentence, after the handshake).
#[derive(Debug)]
pub(crate) struct OptionalClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl OptionalClientCert {
    /// Trusts client certificates the edge's CA (`ca`) signed.
    pub(crate) fn new(
        ca: &rustls::pki_types::CertificateDer<'static>,
    ) -> Result<Self, VerifierError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).map_err(VerifierError::Anchor)?;
        let inner = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            warren_transport::tls::provider(),
        )
        .allow_unauthenticated()
        .build()?;
        Ok(OptionalClientCert { inner })
    }
}

impl ClientCertVerifier for OptionalClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        now: rustls::pki_types::UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. },
            )) => {
                // Only if it is otherwise valid: verify at its last second.
                let not_after = x509_parser::parse_x509_certificate(end_entity)
                    .map(|(_, c)| c.validity().not_after.timestamp())
                    .map_err(|_| {
                        rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
                    })?;
                let then = rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
                    u64::try_from(not_after - 1).unwrap_or(0),
                ));
                self.inner
                    .verify_client_cert(end_entity, intermediates, then)
            }
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
