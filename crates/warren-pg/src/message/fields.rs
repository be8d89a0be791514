//! `ErrorResponse` and `NoticeResponse`: their [`Severity`] and
//! [`ErrorFields`], built by Warren or read from a server.

use bytes::{BufMut, BytesMut};

use super::{expect_end, malformed, tag, take_cstr, Message, MessageError};

/// Severity of an `ErrorResponse` or `NoticeResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Ends the current command.
    Error,
    /// Ends the session: what Warren sends when it refuses one.
    Fatal,
    /// Ends every session: the server restarts.
    Panic,
    /// A warning.
    Warning,
    /// A notice.
    Notice,
    /// A debugging message.
    Debug,
    /// Information the client asked for.
    Info,
    /// A message for the server's log.
    Log,
}

impl Severity {
    /// The non-localized name, as in the `V` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
            Self::Panic => "PANIC",
            Self::Warning => "WARNING",
            Self::Notice => "NOTICE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Log => "LOG",
        }
    }
}

/// The fields of an `ErrorResponse` or `NoticeResponse`: one-byte codes
/// (`S` severity, `V` non-localized severity, `C` SQLSTATE, `M` message,
/// `D` detail, `H` hint, ...) with text, in order. Built by Warren with
/// [`ErrorFields::new`] or read from a server with [`parse_fields`];
/// the default has no fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields {
    fields: Vec<(u8, String)>,
}

/// NUL cannot travel inside a field; values may come from a client (a host
/// or user name), so it is dropped rather than trusted.
fn field_text(s: &str) -> String {
    s.replace('\0', "")
}

impl ErrorFields {
    /// Severity (as `S` and `V`), SQLSTATE (`C`, see [`sqlstate`](super::sqlstate)) and the
    /// primary message (`M`: one sentence, lower case, no final period).
    pub fn new(severity: Severity, sqlstate: &str, message: &str) -> Self {
        Self {
            fields: vec![
                (b'S', severity.as_str().to_owned()),
                (b'V', severity.as_str().to_owned()),
                (b'C', field_text(sqlstate)),
                (b'M', field_text(message)),
            ],
        }
    }

    /// Adds a detail (`D`).
    pub fn detail(mut self, detail: &str) -> Self {
        self.fields.push((b'D', field_text(detail)));
        self
    }

    /// Adds a hint (`H`): what the user can do about it.
    pub fn hint(mut self, hint: &str) -> Self {
        self.fields.push((b'H', field_text(hint)));
        self
    }

    /// Every field, in order.
    pub fn fields(&self) -> &[(u8, String)] {
        &self.fields
    }

    /// A field's text by code; the first when a code repeats.
    pub fn get(&self, code: u8) -> Option<&str> {
        self.fields
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_str())
    }

    /// The non-localized severity (`V`), or the localized one (`S`) from a
    /// server older than 9.6.
    pub fn severity(&self) -> Option<&str> {
        self.get(b'V').or_else(|| self.get(b'S'))
    }

    /// The SQLSTATE (`C`).
    pub fn sqlstate(&self) -> Option<&str> {
        self.get(b'C')
    }

    /// The primary message (`M`).
    pub fn message(&self) -> Option<&str> {
        self.get(b'M')
    }

    /// The detail (`D`).
    pub fn detail_text(&self) -> Option<&str> {
        self.get(b'D')
    }

    /// The hint (`H`).
    pub fn hint_text(&self) -> Option<&str> {
        self.get(b'H')
    }

    fn to_message(&self, tag: u8) -> Message {
        let len = self.fields.iter().map(|(_, v)| v.len() + 2).sum::<usize>() + 1;
        let mut b = BytesMut::with_capacity(len);
        for (code, value) in &self.fields {
            b.put_u8(*code);
            b.put_slice(value.as_bytes());
            b.put_u8(0);
        }
        b.put_u8(0);
        Message::new(tag, b.freeze())
    }

    /// As an `ErrorResponse` (`'E'`).
    pub fn to_error(&self) -> Message {
        self.to_message(tag::ERROR_RESPONSE)
    }

    /// As a `NoticeResponse` (`'N'`).
    pub fn to_notice(&self) -> Message {
        self.to_message(tag::NOTICE_RESPONSE)
    }
}

/// An `ErrorResponse` with severity, SQLSTATE and message; use
/// [`ErrorFields`] to add a detail or hint.
pub fn error_response(severity: Severity, sqlstate: &str, message: &str) -> Message {
    ErrorFields::new(severity, sqlstate, message).to_error()
}

/// Reads the fields of an `ErrorResponse` or `NoticeResponse`.
pub fn parse_fields(m: &Message) -> Result<ErrorFields, MessageError> {
    let what = match m.tag {
        tag::ERROR_RESPONSE => "ErrorResponse",
        tag::NOTICE_RESPONSE => "NoticeResponse",
        got => {
            return Err(MessageError::WrongTag {
                expected: tag::ERROR_RESPONSE,
                got,
            })
        }
    };
    fields_of(&m.body, what)
}

/// The fields of an `ErrorResponse` or `NoticeResponse` (`what`), from its
/// body.
pub(crate) fn fields_of(body: &[u8], what: &'static str) -> Result<ErrorFields, MessageError> {
    let mut fields = Vec::new();
    let mut rest = body;
    loop {
        let Some((&code, after)) = rest.split_first() else {
            return Err(malformed(what, "the field list lacks its final NUL"));
        };
        rest = after;
        if code == 0 {
            expect_end(rest, what)?;
            return Ok(ErrorFields { fields });
        }
        let value = take_cstr(&mut rest, what)?;
        fields.push((code, String::from_utf8_lossy(value).into_owned()));
    }
}
