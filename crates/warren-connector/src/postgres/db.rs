//! The link to the database: dial, `SSLRequest`, TLS with the checks
//! `originRequest.sslmode` asks for. Failures are [`DbError`]s whose text
//! is the sentence the client is shown.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ingress::SslMode;
use crate::origin::{Dialer, OriginError, OriginStream, PgTls};

/// Why the database could not be reached as the rule asks.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// The database could not be dialled.
    #[error("cannot reach the database for {host}: {source}")]
    Dial { host: String, source: OriginError },
    /// No answer to the SSLRequest in time.
    #[error("the database at {target} did not answer the TLS request in time")]
    TlsRequestTimeout { target: String },
    /// The connection ended when TLS was asked for.
    #[error("the database at {target} closed the connection when asked for TLS ({source})")]
    TlsRequestClosed {
        target: String,
        source: std::io::Error,
    },
    /// The database does not do TLS, and the rule wants it.
    #[error("the database at {target} does not accept TLS, and originRequest.sslmode is {mode}; turn on ssl in its postgresql.conf, or set sslmode: disable for this rule")]
    TlsRefused { target: String, mode: SslMode },
    /// The TLS handshake took too long.
    #[error("the TLS handshake with the database at {target} timed out")]
    HandshakeTimeout { target: String },
    /// The database's certificate failed verification.
    #[error("server certificate for {server} is not trusted: {source}")]
    Untrusted {
        server: String,
        source: std::io::Error,
    },
    /// The TLS handshake failed otherwise.
    #[error("TLS with the database at {target} failed: {source}")]
    Tls {
        target: String,
        source: std::io::Error,
    },
}

/// The connection to the database, after TLS if any.
pub(crate) enum DbStream {
    Plain(OriginStream),
    Tls(Box<tokio_rustls::client::TlsStream<OriginStream>>),
}

/// Dials the database and sets up TLS as `sslmode` says.
pub(crate) async fn connect(dialer: &Dialer, pg: &PgTls, host: &str) -> Result<DbStream, DbError> {
    let target = dialer.target.to_string();
    let mut raw = dialer.dial().await.map_err(|source| DbError::Dial {
        host: host.to_owned(),
        source,
    })?;
    let Some((config, name)) = &pg.config else {
        return Ok(DbStream::Plain(raw));
    };
    let answer = tokio::time::timeout(pg.tls_timeout, async {
        raw.write_all(&warren_pg::encode_ssl_request()).await?;
        raw.read_u8().await
    })
    .await
    .map_err(|_| DbError::TlsRequestTimeout {
        target: target.clone(),
    })?
    .map_err(|source| DbError::TlsRequestClosed {
        target: target.clone(),
        source,
    })?;
    if answer != warren_pg::SSL_ACCEPTED {
        return Err(DbError::TlsRefused {
            target,
            mode: pg.mode,
        });
    }
    let server = name.to_str().into_owned();
    let tls = tokio::time::timeout(
        pg.tls_timeout,
        tokio_rustls::TlsConnector::from(config.clone()).connect(name.clone(), raw),
    )
    .await
    .map_err(|_| DbError::HandshakeTimeout {
        target: target.clone(),
    })?
    .map_err(|source| match pg.mode {
        SslMode::VerifyFull | SslMode::VerifyCa if is_cert_error(&source) => {
            DbError::Untrusted { server, source }
        }
        _ => DbError::Tls { target, source },
    })?;
    Ok(DbStream::Tls(Box::new(tls)))
}

fn is_cert_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| {
            matches!(
                r,
                rustls::Error::InvalidCertificate(_) | rustls::Error::General(_)
            )
        })
}

/// Sends a CancelRequest to the database the same way a session connects
/// (TLS if the sslmode says so), then closes.
pub(crate) async fn forward_cancel(dialer: &Dialer, pg: &PgTls, raw: &Bytes) {
    match connect(dialer, pg, "a cancel request").await {
        Ok(mut db) => {
            let _ = db.write_all(raw).await;
            let _ = db.shutdown().await;
            tracing::info!(origin = %dialer.target, "PostgreSQL cancel request forwarded");
        }
        Err(e) => tracing::warn!("PostgreSQL cancel request not forwarded: {e}"),
    }
}

impl AsyncRead for DbStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            DbStream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            DbStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for DbStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            DbStream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            DbStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            DbStream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            DbStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            DbStream::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            DbStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
