//! The pooler's protocol core: many clients over few server connections.
//!
//! The client's connection ends at the edge, which answers the startup
//! itself ([`greeting`]) once the client's identity has been decided; the
//! server connections are Warren's own logins ([`ServerLogin`]) as the
//! role the identity maps to. Between the two, bytes pass unchanged while
//! a [`Flow`] follows them to decide when a server connection may serve
//! another client (transaction mode: at rest between transactions, unless
//! a [`Pin`] keeps it) and what it needs when its client leaves
//! ([`Cleanup`]).
//!
//! Like the rest of the crate this does no IO and reads no clock; the
//! edge's `pg/pool/` drives it.

mod flow;
mod frame;
mod login;
mod pins;
mod statements;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

pub use flow::{Cleanup, Flow, FlowError, FromClient, MAX_INSPECTED};
pub use frame::{ClientFramer, Piece, MAX_EDITED};
pub use login::{Established, Login, LoginError, ServerLogin};
pub use pins::{statement_pins, Pin, Pins};
pub use statements::{
    server_name, Prepared, StatementCache, StatementText, Statements, CACHE_CAPACITY, NAME_PREFIX,
    PER_CLIENT, PREPARED_PER_SERVER,
};

use crate::message::{backend_key_data, ready_for_query, tag, Message};
use crate::startup::CancelKey;
use crate::TransactionStatus;

/// Startup parameters the pool handles itself rather than carrying to the
/// server connection: who and where, which the edge decides.
const HANDLED: [&str; 3] = ["user", "database", "replication"];

/// A startup parameter the pool cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StartupParamError {
    /// `replication` connections cannot be pooled.
    #[error("replication connections cannot go through Warren's pool; connect to the database directly for replication")]
    Replication,
    /// A name that is not a plain setting name.
    #[error("the startup parameter {0:?} is not a setting name Warren's pool can carry; set it with SET after connecting")]
    BadName(String),
    /// `options` with something other than `-c name=value`.
    #[error("the startup options {0:?} hold something other than -c name=value settings, which Warren's pool cannot carry; set them with SET after connecting")]
    Options(String),
}

/// The settings a client asked for in its startup (its parameters other
/// than [`HANDLED`] ones, and the `-c name=value` pairs of `options`), in
/// order; each server connection the client uses is given them first.
pub fn client_settings(
    params: &[(String, String)],
) -> Result<Vec<(String, String)>, StartupParamError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |name: &str, value: &str| -> Result<(), StartupParamError> {
        if !is_setting_name(name) {
            return Err(StartupParamError::BadName(name.to_owned()));
        }
        let name = name.to_ascii_lowercase();
        out.retain(|(n, _)| *n != name);
        out.push((name, value.to_owned()));
        Ok(())
    };
    for (name, value) in params {
        match name.as_str() {
            "replication" if !matches!(value.as_str(), "false" | "off" | "no" | "0") => {
                return Err(StartupParamError::Replication)
            }
            "options" => {
                for (n, v) in parse_options(value)? {
                    put(&n, &v)?;
                }
            }
            n if HANDLED.contains(&n) => {}
            n => put(n, value)?,
        }
    }
    Ok(out)
}

/// The `-c name=value` (or `--name=value`) pairs of a startup `options`
/// string; a backslash escapes the next character, as the server reads it.
fn parse_options(options: &str) -> Result<Vec<(String, String)>, StartupParamError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            c if c.is_ascii_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let bad = || StartupParamError::Options(options.to_owned());
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next().ok_or_else(bad)?
        } else if let Some(s) = w.strip_prefix("-c") {
            s.to_owned()
        } else if let Some(s) = w.strip_prefix("--") {
            s.to_owned()
        } else {
            return Err(bad());
        };
        let (n, v) = setting.split_once('=').ok_or_else(bad)?;
        out.push((n.replace('-', "_"), v.to_owned()));
    }
    Ok(out)
}

/// Whether `name` is a setting name (`work_mem`, `myext.flag`).
fn is_setting_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63 * 2 + 1
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && !name.starts_with('.')
}

/// One query that gives the session these settings (`set_config`, which
/// reads a value as the configuration file does, so a list such as
/// `search_path` keeps its elements); `None` when there is nothing to
/// set. Names and values are quoted as literals.
pub fn set_statements(settings: &[(String, String)]) -> Option<String> {
    if settings.is_empty() {
        return None;
    }
    let calls: Vec<String> = settings
        .iter()
        .map(|(name, value)| format!("set_config({}, {}, false)", literal(name), literal(value)))
        .collect();
    Some(format!("SELECT {}", calls.join(", ")))
}

/// The query that reads back what a client's statements made of its
/// session's settings: name and value of every setting set in the
/// session, and the role `SET ROLE` chose (which `pg_settings` does not
/// show reliably).
pub const READ_SETTINGS: &str = "SELECT name, setting FROM pg_catalog.pg_settings \
     WHERE source = 'session' AND name NOT IN ('role', 'session_authorization') \
     UNION ALL SELECT 'role', pg_catalog.current_setting('role') \
     WHERE pg_catalog.current_setting('role') <> 'none' ORDER BY 1";

/// What takes another client's settings off a server connection:
/// `RESET ALL` leaves the role (`SET ROLE`) alone, so it is reset first.
pub const RESET_SETTINGS: [&str; 2] = ["SET SESSION AUTHORIZATION DEFAULT", "RESET ALL"];

/// `s` as a string literal (standard_conforming_strings: quotes doubled).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The columns of a `DataRow` (`'D'`) body, `None` for NULL, as text.
pub fn data_row(body: &[u8]) -> Result<Vec<Option<String>>, crate::MessageError> {
    let bad = |reason| crate::MessageError::Malformed {
        what: "DataRow",
        reason,
    };
    let (count, mut rest) = body
        .split_first_chunk::<2>()
        .ok_or(bad("the column count is missing"))?;
    let mut out = Vec::with_capacity(usize::from(u16::from_be_bytes(*count)).min(64));
    for _ in 0..u16::from_be_bytes(*count) {
        let (len, after) = rest
            .split_first_chunk::<4>()
            .ok_or(bad("a column length is missing"))?;
        let len = i32::from_be_bytes(*len);
        rest = after;
        if len < 0 {
            out.push(None);
            continue;
        }
        let len = len as usize;
        if rest.len() < len {
            return Err(bad("a column is cut off"));
        }
        out.push(Some(String::from_utf8_lossy(&rest[..len]).into_owned()));
        rest = &rest[len..];
    }
    if !rest.is_empty() {
        return Err(bad("bytes follow its last column"));
    }
    Ok(out)
}

/// A simple `Query` message.
pub fn query(sql: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(sql.len() + 1);
    b.put_slice(sql.as_bytes());
    b.put_u8(0);
    Message::new(tag::QUERY, b.freeze()).encode()
}

/// What the edge says to a pooled client in place of the database's
/// login: `AuthenticationOk`, the server's parameters (with `params`
/// overriding), the cancel key Warren made for the client, and
/// `ReadyForQuery`.
pub fn greeting(params: &[(String, String)], pid: u32, key: &CancelKey) -> Bytes {
    let mut b = BytesMut::new();
    Message::new(tag::AUTHENTICATION, Bytes::from_static(&[0, 0, 0, 0])).encode_into(&mut b);
    for (name, value) in params {
        let mut body = BytesMut::with_capacity(name.len() + value.len() + 2);
        body.put_slice(name.as_bytes());
        body.put_u8(0);
        body.put_slice(value.as_bytes());
        body.put_u8(0);
        Message::new(tag::PARAMETER_STATUS, body.freeze()).encode_into(&mut b);
    }
    backend_key_data(pid, key).encode_into(&mut b);
    ready_for_query(TransactionStatus::Idle).encode_into(&mut b);
    b.freeze()
}

#[cfg(test)]
mod tests;
