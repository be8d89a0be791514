//! `postgres://` origins: the connector speaks the start of the PostgreSQL
//! protocol itself, so the link to the database is TLS with the checks
//! `originRequest.sslmode` asks for, whatever the client asked for.
//!
//! On a stream for a postgres rule:
//! 1. GSSENCRequest is answered `N`; SSLRequest (and PG17 direct TLS) is
//!    answered `S` and the client's TLS is terminated with a certificate
//!    for the route's hostname issued by the edge's CA ([`CertCache`]), so
//!    `sslmode=verify-full` with the edge's CA as root works; a plaintext
//!    client works too (the tunnel is already encrypted),
//! 2. the StartupMessage is read (user, database, application_name are
//!    logged), or a CancelRequest is forwarded,
//! 3. the connector dials the database, sends SSLRequest, verifies the
//!    server's certificate, forwards the client's StartupMessage unchanged
//!    and splices. Authentication (SCRAM, ...) passes through untouched.
//! 4. the edge is told about the session (user, database,
//!    application_name, upstream TLS) for its audit log, and — when the
//!    application logs statements — every simple Query and extended Parse
//!    text is reported as it passes ([`copy_logging`]); other messages,
//!    however large, stream through without being buffered.
//!
//! Anything that goes wrong before the splice reaches the client as an
//! `ErrorResponse` with a sentence (psql prints it) and a log line; bad
//! input never takes more than this stream down.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use warren_pg::message::sqlstate;
use warren_pg::{error_response, FirstMessage, Severity, Startup};
use warren_transport::splice::{splice, QuicStream};

use crate::certs::CertCache;
use crate::ingress::SslMode;
use crate::origin::{Dialer, OriginStream, PgTls};

/// Encryption requests a client may send before its startup (GSSENC then
/// SSL is the most libpq sends).
const MAX_NEGOTIATIONS: usize = 2;

/// What serving one client connection to a postgres origin needs.
pub struct PgCtx<'a> {
    /// The route's hostname: the name of the certificate the client sees.
    pub host: &'a str,
    pub client: &'a str,
    pub dialer: &'a Dialer,
    pub certs: &'a CertCache,
    /// The tunnel connection, to ask the edge for a certificate.
    pub conn: &'a quinn::Connection,
    /// The edge's id for the session; empty: do not report.
    pub session: &'a str,
    /// Report every statement.
    pub statement_log: bool,
    /// The client's TLS ended at the edge (its native PostgreSQL
    /// listener): the stream is plaintext here, but libpq is on TLS.
    pub edge_tls: bool,
}

impl PgCtx<'_> {
    /// Serves one client connection over `tunnel` (the stream is already
    /// answered `Connected`).
    pub async fn serve(&self, mut tunnel: QuicStream) {
        let Some(pg) = &self.dialer.postgres else {
            return;
        };
        let (host, client) = (self.host, self.client);
        let mut negotiations = 0;
        loop {
            let first = match warren_pg::read_first(&mut tunnel, warren_pg::MAX_STARTUP_LEN).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::info!(%host, %client, error = %e, "bad PostgreSQL first message; closing");
                    return refuse(&mut tunnel, sqlstate::PROTOCOL_VIOLATION, &e.to_string()).await;
                }
            };
            match first.message {
                FirstMessage::SslRequest if negotiations < MAX_NEGOTIATIONS => {
                    negotiations += 1;
                    match self.tls_config().await {
                        Some(cfg) => {
                            if tunnel.write_all(&[warren_pg::SSL_ACCEPTED]).await.is_err() {
                                return;
                            }
                            return self.serve_tls(cfg, tunnel, pg).await;
                        }
                        None => {
                            if tunnel
                                .write_all(&[warren_pg::ENCRYPTION_REFUSED])
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                }
                FirstMessage::GssEncRequest if negotiations < MAX_NEGOTIATIONS => {
                    negotiations += 1;
                    if tunnel
                        .write_all(&[warren_pg::ENCRYPTION_REFUSED])
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                FirstMessage::GssEncRequest | FirstMessage::SslRequest => {
                    return refuse(
                        &mut tunnel,
                        sqlstate::PROTOCOL_VIOLATION,
                        "too many encryption requests before the startup message",
                    )
                    .await;
                }
                FirstMessage::DirectTls => {
                    // PostgreSQL 17 direct TLS: the ClientHello's first byte
                    // was read; replay it to the acceptor.
                    match self.tls_config().await {
                        Some(cfg) => {
                            let replay = warren_pg::Rewind::new(first.raw, tunnel);
                            return self.serve_tls(cfg, replay, pg).await;
                        }
                        None => {
                            tracing::info!(%host, %client, "direct-TLS PostgreSQL client but no certificate; closing");
                            return;
                        }
                    }
                }
                FirstMessage::Cancel(_) => {
                    return forward_cancel(self.dialer, pg, &first.raw).await
                }
                FirstMessage::Startup(s) => {
                    let client_tls = if self.edge_tls {
                        "TLS to the edge"
                    } else {
                        "none"
                    };
                    return self.session(tunnel, s, first.raw, pg, client_tls).await;
                }
            }
        }
    }

    /// A server config with a certificate for the route's hostname from the
    /// edge's CA; `None` (logged) when the edge will not issue one.
    async fn tls_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        match self
            .certs
            .server_config(self.host, self.conn, &[warren_pg::ALPN])
            .await
        {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                tracing::warn!(host = %self.host, "no certificate for the client's TLS, answering N: {e}");
                None
            }
        }
    }

    /// The client's TLS, then its startup (or cancel) inside it.
    async fn serve_tls<S>(&self, cfg: Arc<rustls::ServerConfig>, stream: S, pg: &PgTls)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (host, client) = (self.host, self.client);
        let accept = tokio_rustls::TlsAcceptor::from(cfg).accept(stream);
        let mut tls = match tokio::time::timeout(pg.tls_timeout, accept).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::info!(%host, %client, error = %e, "client TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(%host, %client, "client TLS handshake timed out");
                return;
            }
        };
        let client_tls = tls
            .get_ref()
            .1
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        match warren_pg::read_first(&mut tls, warren_pg::MAX_STARTUP_LEN).await {
            Ok(f) => match f.message {
                FirstMessage::Startup(s) => self.session(tls, s, f.raw, pg, &client_tls).await,
                FirstMessage::Cancel(_) => forward_cancel(self.dialer, pg, &f.raw).await,
                other => {
                    let m = format!(
                        "expected a startup message inside TLS, got {}",
                        other.name()
                    );
                    refuse(&mut tls, sqlstate::PROTOCOL_VIOLATION, &m).await
                }
            },
            Err(e) => {
                tracing::info!(%host, %client, error = %e, "bad PostgreSQL startup inside TLS; closing");
                refuse(&mut tls, sqlstate::PROTOCOL_VIOLATION, &e.to_string()).await
            }
        }
    }

    /// Dials the database for `startup`, relays authentication, splices.
    async fn session<S>(
        &self,
        mut client_stream: S,
        startup: Startup,
        raw: Bytes,
        pg: &PgTls,
        client_tls: &str,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (host, client) = (self.host, self.client);
        let target = self.dialer.target.to_string();
        let started = Instant::now();
        let db = match connect(self.dialer, pg, host).await {
            Ok(db) => db,
            Err(message) => {
                tracing::warn!(%host, %client, user = %startup.user(), database = %startup.database(), origin = %target, "PostgreSQL session refused: {message}");
                // The edge's audit entry says why (sent before the client
                // is answered, so it arrives while the session is open).
                if !self.session.is_empty() {
                    crate::report::send(
                        self.conn,
                        warren_proto::control::SessionReport {
                            session: self.session.to_owned(),
                            fields: vec![
                                ("pg_user".into(), startup.user().to_owned()),
                                ("pg_database".into(), startup.database().to_owned()),
                                ("upstream".into(), target.clone()),
                                ("error".into(), message.clone()),
                            ],
                            statements: Vec::new(),
                        },
                    )
                    .await;
                }
                return refuse(&mut client_stream, sqlstate::UNABLE_TO_CONNECT, &message).await;
            }
        };
        let fields = log_start(host, client, &target, &startup, pg, &db, client_tls);
        if !self.session.is_empty() {
            let (conn, session) = (self.conn.clone(), self.session.to_owned());
            tokio::spawn(async move {
                crate::report::send(
                    &conn,
                    warren_proto::control::SessionReport {
                        session,
                        fields,
                        statements: Vec::new(),
                    },
                )
                .await;
            });
        }
        let mut db = db;
        if db.write_all(&raw).await.is_err() {
            let m = format!("the database at {target} closed the connection during startup");
            return refuse(&mut client_stream, sqlstate::CONNECTION_FAILURE, &m).await;
        }
        let client_on_tls = client_tls != "none";
        if let Err(message) = relay_authentication(&mut client_stream, &mut db, client_on_tls).await
        {
            tracing::info!(%host, %client, user = %startup.user(), "PostgreSQL session ended during authentication: {message}");
            return;
        }
        let spliced = if self.statement_log && !self.session.is_empty() {
            let reporter =
                crate::report::Reporter::start(self.conn.clone(), self.session.to_owned());
            logged_splice(client_stream, db, reporter).await
        } else {
            splice(&mut client_stream, &mut db)
                .await
                .map(|t| (t.a_to_b, t.b_to_a))
        };
        let (up, down, reason) = match spliced {
            Ok((up, down)) => (up, down, "closed".to_owned()),
            Err(e) => (0, 0, e.to_string()),
        };
        tracing::info!(%host, %client, user = %startup.user(), database = %startup.database(), bytes_up = up, bytes_down = down, duration_ms = started.elapsed().as_millis() as u64, end = %reason, "PostgreSQL session ended");
    }
}

/// Authentication request types that the client answers (cleartext, MD5,
/// GSS, SSPI, SASL, SASL continue).
const AUTH_NEEDS_ANSWER: &[u32] = &[3, 5, 7, 9, 10, 11];
/// AuthenticationOk.
const AUTH_OK: u32 = 0;
/// AuthenticationSASL: the body lists mechanisms.
const AUTH_SASL: u32 = 10;
/// Most an authentication-phase message may be.
const AUTH_MESSAGE_MAX: usize = 64 * 1024;

/// Relays the authentication exchange message by message until the
/// database says AuthenticationOk (or ends the session), then leaves the
/// rest to the splice.
///
/// One change is made: `SCRAM-SHA-256-PLUS` is removed from the
/// mechanisms the database offers. Channel binding ties SCRAM to the TLS
/// session it runs in, and the client's TLS session (if any) is not the
/// database's; libpq refuses a `-PLUS` offer on a connection it sees as
/// plaintext. Plain SCRAM still proves the password end to end.
///
/// That removal has one consequence when the client reached the connector
/// over TLS: libpq then says it supports channel binding but the server
/// does not (gs2 flag `y`), which the database rejects as a downgrade. The
/// client cannot be answered for (SCRAM signs that flag), so the connector
/// stops there with a sentence that says what to change; libpq with
/// `sslmode=prefer` retries without TLS on its own and succeeds.
async fn relay_authentication<S>(
    tunnel: &mut S,
    db: &mut DbStream,
    client_on_tls: bool,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut from_db = warren_pg::MessageDecoder::new(AUTH_MESSAGE_MAX);
    let mut from_client = warren_pg::MessageDecoder::new(AUTH_MESSAGE_MAX);
    let mut db_buf = bytes::BytesMut::with_capacity(8192);
    let mut client_buf = bytes::BytesMut::with_capacity(1024);
    loop {
        let m = next_message(db, &mut from_db, &mut db_buf)
            .await
            .map_err(|e| format!("from the database: {e}"))?;
        let code = (m.tag == b'R' && m.body.len() >= 4)
            .then(|| u32::from_be_bytes([m.body[0], m.body[1], m.body[2], m.body[3]]));
        let stripped_plus = code == Some(AUTH_SASL) && offers_channel_binding(&m);
        let out = match code {
            Some(AUTH_SASL) => without_channel_binding(&m),
            _ => m.encode(),
        };
        tunnel
            .write_all(&out)
            .await
            .map_err(|e| format!("to the client: {e}"))?;
        match (m.tag, code) {
            (b'R', Some(AUTH_OK)) | (b'E', _) => break,
            (b'R', Some(c)) if AUTH_NEEDS_ANSWER.contains(&c) => {
                let answer = next_message(tunnel, &mut from_client, &mut client_buf)
                    .await
                    .map_err(|e| format!("from the client: {e}"))?;
                if stripped_plus && client_on_tls && gs2_flag(&answer) == Some(b'y') {
                    let m = CHANNEL_BINDING_SENTENCE;
                    refuse(tunnel, sqlstate::INVALID_AUTHORIZATION, m).await;
                    return Err(m.to_owned());
                }
                db.write_all(&answer.encode())
                    .await
                    .map_err(|e| format!("to the database: {e}"))?;
            }
            _ => {}
        }
    }
    // Whatever arrived after AuthenticationOk goes first.
    if !db_buf.is_empty() {
        tunnel
            .write_all(&db_buf)
            .await
            .map_err(|e| format!("to the client: {e}"))?;
    }
    if !client_buf.is_empty() {
        db.write_all(&client_buf)
            .await
            .map_err(|e| format!("to the database: {e}"))?;
    }
    Ok(())
}

/// What a TLS client that insists on channel binding is told.
const CHANNEL_BINDING_SENTENCE: &str = "the database uses SCRAM with channel binding, which cannot pass through Warren because Warren terminates your TLS; add channel_binding=disable to the connection string (the tunnel and the link to the database stay encrypted and verified), or connect with sslmode=prefer";

/// Whether an AuthenticationSASL message offers a `-PLUS` mechanism.
fn offers_channel_binding(m: &warren_pg::Message) -> bool {
    m.body
        .get(4..)
        .unwrap_or_default()
        .split(|b| *b == 0)
        .any(|name| name.ends_with(b"-PLUS"))
}

/// The gs2 channel-binding flag (`n`, `y` or `p`) of a SASLInitialResponse:
/// mechanism name, NUL, Int32 length, then the client-first-message.
fn gs2_flag(m: &warren_pg::Message) -> Option<u8> {
    if m.tag != b'p' {
        return None;
    }
    let nul = m.body.iter().position(|b| *b == 0)?;
    m.body.get(nul + 5).copied()
}

/// Reads until `decoder` yields one whole message.
async fn next_message<R: AsyncRead + Unpin>(
    r: &mut R,
    decoder: &mut warren_pg::MessageDecoder,
    buf: &mut bytes::BytesMut,
) -> Result<warren_pg::Message, String> {
    loop {
        if let Some(m) = decoder.decode(buf).map_err(|e| e.to_string())? {
            return Ok(m);
        }
        buf.reserve(4096);
        let n = r.read_buf(buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection closed".into());
        }
    }
}

/// An AuthenticationSASL message with `-PLUS` mechanisms removed.
fn without_channel_binding(m: &warren_pg::Message) -> Bytes {
    let mechanisms = m
        .body
        .get(4..)
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty() && !name.ends_with(b"-PLUS"));
    let mut body = m.body.slice(0..4).to_vec();
    for name in mechanisms {
        body.extend_from_slice(name);
        body.push(0);
    }
    body.push(0);
    warren_pg::Message {
        tag: m.tag,
        body: Bytes::from(body),
    }
    .encode()
}

/// Logs the start of a session; returns what the edge's audit log keeps
/// of it.
fn log_start(
    host: &str,
    client: &str,
    target: &str,
    startup: &Startup,
    pg: &PgTls,
    db: &DbStream,
    client_tls: &str,
) -> Vec<(String, String)> {
    let (tls_version, cipher) = match db {
        DbStream::Tls(t) => {
            let c = t.get_ref().1;
            (
                c.protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default(),
                c.negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite()))
                    .unwrap_or_default(),
            )
        }
        DbStream::Plain(_) => ("none".to_owned(), String::new()),
    };
    tracing::info!(
        %host,
        %client,
        origin = %target,
        user = %startup.user(),
        database = %startup.database(),
        application_name = %startup.application_name().unwrap_or(""),
        client_tls = %client_tls,
        sslmode = %pg.mode,
        tls = %tls_version,
        cipher = %cipher,
        "PostgreSQL session started"
    );
    let upstream = if cipher.is_empty() {
        tls_version
    } else {
        format!("{tls_version}/{cipher}")
    };
    vec![
        ("pg_user".into(), startup.user().to_owned()),
        ("pg_database".into(), startup.database().to_owned()),
        (
            "application_name".into(),
            startup.application_name().unwrap_or("").to_owned(),
        ),
        ("upstream".into(), target.to_owned()),
        ("upstream_tls".into(), upstream),
        ("sslmode".into(), pg.mode.to_string()),
        ("client_tls".into(), client_tls.to_owned()),
    ]
}

/// Longest Query or Parse message whose text is logged; longer ones pass
/// through unlogged (noted in the log).
const MAX_LOGGED: usize = 1024 * 1024;

/// The splice with statement logging: database → client is copied as is;
/// client → database goes message by message through [`copy_logging`].
async fn logged_splice<C>(
    client: C,
    db: DbStream,
    reporter: crate::report::Reporter,
) -> std::io::Result<(u64, u64)>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut db_r, mut db_w) = tokio::io::split(db);
    let up = async {
        let n = copy_logging(&mut client_r, &mut db_w, &reporter).await?;
        db_w.shutdown().await?;
        Ok::<_, std::io::Error>(n)
    };
    let down = async {
        let n = tokio::io::copy(&mut db_r, &mut client_w).await?;
        client_w.shutdown().await?;
        Ok::<_, std::io::Error>(n)
    };
    let (up, down) = tokio::join!(up, down);
    Ok((up?, down?))
}

/// Copies frontend messages from `from` to `to`, reporting the text of
/// each simple Query and extended Parse. Message bodies other than those
/// are streamed, never buffered whole. Returns the bytes copied.
async fn copy_logging<R, W>(
    from: &mut R,
    to: &mut W,
    reporter: &crate::report::Reporter,
) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut total = 0u64;
    let mut header = [0u8; 5];
    loop {
        // A clean end only between messages.
        match from.read(&mut header[..1]).await? {
            0 => return Ok(total),
            _ => from.read_exact(&mut header[1..]).await?,
        };
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let Some(body_len) = len.checked_sub(4) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a PostgreSQL message with a length below 4",
            ));
        };
        to.write_all(&header).await?;
        let tag = header[0];
        if matches!(tag, b'Q' | b'P') && body_len <= MAX_LOGGED {
            let mut body = vec![0u8; body_len];
            from.read_exact(&mut body).await?;
            to.write_all(&body).await?;
            let m = warren_pg::Message::new(tag, body);
            let text = if tag == b'Q' {
                warren_pg::message::parse_query(&m).map(|q| q.into_owned())
            } else {
                warren_pg::message::parse_parse(&m).map(|p| p.query.into_owned())
            };
            match text {
                Ok(sql) if !sql.is_empty() => reporter.statement(sql).await,
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "a statement could not be read for the log"),
            }
        } else {
            if matches!(tag, b'Q' | b'P') {
                tracing::warn!(
                    bytes = body_len,
                    "a statement too long for the statement log passed unlogged"
                );
            }
            let copied = tokio::io::copy(&mut (&mut *from).take(body_len as u64), to).await?;
            if copied != body_len as u64 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        total += 5 + body_len as u64;
    }
}

/// The connection to the database, after TLS if any.
enum DbStream {
    Plain(OriginStream),
    Tls(Box<tokio_rustls::client::TlsStream<OriginStream>>),
}

/// Dials the database and sets up TLS as `sslmode` says; the error is the
/// sentence the client is shown.
async fn connect(dialer: &Dialer, pg: &PgTls, host: &str) -> Result<DbStream, String> {
    let target = dialer.target.to_string();
    let mut raw = dialer
        .dial()
        .await
        .map_err(|e| format!("cannot reach the database for {host}: {e}"))?;
    let Some((config, name)) = &pg.config else {
        return Ok(DbStream::Plain(raw));
    };
    let answer = tokio::time::timeout(pg.tls_timeout, async {
        raw.write_all(&warren_pg::encode_ssl_request()).await?;
        raw.read_u8().await
    })
    .await
    .map_err(|_| format!("the database at {target} did not answer the TLS request in time"))?
    .map_err(|e| {
        format!("the database at {target} closed the connection when asked for TLS ({e})")
    })?;
    if answer != warren_pg::SSL_ACCEPTED {
        return Err(format!(
            "the database at {target} does not accept TLS, and originRequest.sslmode is {}; turn on ssl in its postgresql.conf, or set sslmode: disable for this rule",
            pg.mode
        ));
    }
    let server = name.to_str().into_owned();
    let tls = tokio::time::timeout(
        pg.tls_timeout,
        tokio_rustls::TlsConnector::from(config.clone()).connect(name.clone(), raw),
    )
    .await
    .map_err(|_| format!("the TLS handshake with the database at {target} timed out"))?
    .map_err(|e| match pg.mode {
        SslMode::VerifyFull | SslMode::VerifyCa if is_cert_error(&e) => {
            format!("server certificate for {server} is not trusted: {e}")
        }
        _ => format!("TLS with the database at {target} failed: {e}"),
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
async fn forward_cancel(dialer: &Dialer, pg: &PgTls, raw: &Bytes) {
    match connect(dialer, pg, "a cancel request").await {
        Ok(mut db) => {
            let _ = db.write_all(raw).await;
            let _ = db.shutdown().await;
            tracing::info!(origin = %dialer.target, "PostgreSQL cancel request forwarded");
        }
        Err(e) => tracing::warn!("PostgreSQL cancel request not forwarded: {e}"),
    }
}

/// Sends a FATAL ErrorResponse and closes the client's side.
async fn refuse<S: AsyncWrite + Unpin>(tunnel: &mut S, code: &str, message: &str) {
    let m = error_response(Severity::Fatal, code, message);
    let _ = tunnel.write_all(&m.encode()).await;
    let _ = tunnel.shutdown().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_binding_mechanisms_are_dropped() {
        let mut body = 10u32.to_be_bytes().to_vec();
        body.extend_from_slice(b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
        let m = warren_pg::Message {
            tag: b'R',
            body: Bytes::from(body),
        };
        let out = without_channel_binding(&m);
        let mut want = vec![b'R'];
        let mut wbody = 10u32.to_be_bytes().to_vec();
        wbody.extend_from_slice(b"SCRAM-SHA-256\0\0");
        want.extend_from_slice(&(wbody.len() as u32 + 4).to_be_bytes());
        want.extend_from_slice(&wbody);
        assert_eq!(&out[..], &want[..]);
        assert!(offers_channel_binding(&m));
        assert!(!offers_channel_binding(&warren_pg::Message {
            tag: b'R',
            body: out.slice(5..),
        }));
    }

    #[test]
    fn reads_the_gs2_flag() {
        let mut body = b"SCRAM-SHA-256\0".to_vec();
        body.extend_from_slice(&20u32.to_be_bytes());
        body.extend_from_slice(b"y,,n=,r=abc");
        let m = warren_pg::Message {
            tag: b'p',
            body: Bytes::from(body),
        };
        assert_eq!(gs2_flag(&m), Some(b'y'));
        let short = warren_pg::Message {
            tag: b'p',
            body: Bytes::from_static(b"SCRAM"),
        };
        assert_eq!(gs2_flag(&short), None);
    }
}
