//! Which statements leave state on a server connection that outlives their
//! transaction, so a client in transaction mode must keep its connection
//! ([`Pin`]).
//!
//! The scan is lexical and errs on the side of pinning: comments and
//! quoted text (`'…'`, `E'…'`, `"…"`, `$tag$…$tag$`) are skipped, the
//! text is split into statements at top-level semicolons, and each
//! statement is judged by its leading keywords and by the session-level
//! functions it names anywhere. A word that only looks like a trigger
//! (a column called `temp`) pins too: a pinned client is served
//! correctly, only with less sharing. What it cannot see is state set
//! inside a function body or a `DO` block; the reset on release
//! (`DISCARD ALL`) is the backstop for a connection that was pinned, and
//! nothing else changes a session without one of these words.

use std::fmt;

/// Why a client keeps its server connection past its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Pin {
    /// The pool runs in session mode.
    SessionMode = 1 << 0,
    /// SQL `PREPARE`.
    SqlPrepare = 1 << 2,
    /// A session-level `SET` (not `SET LOCAL`), `RESET` or `DISCARD`: the
    /// session's settings may have changed. [`Flow`](super::Flow) does not
    /// pin on it; it has the driver read the settings back.
    Set = 1 << 3,
    /// `set_config(…)`: like [`Pin::Set`].
    SetConfig = 1 << 4,
    /// `LISTEN`.
    Listen = 1 << 5,
    /// A session-level advisory lock.
    AdvisoryLock = 1 << 6,
    /// A temporary table, view or sequence.
    TempObject = 1 << 7,
    /// A cursor declared `WITH HOLD`.
    HoldCursor = 1 << 8,
    /// `LOAD` of a shared library.
    Load = 1 << 9,
    /// A statement too long to look at.
    Uninspected = 1 << 10,
}

impl Pin {
    const ALL: [Pin; 10] = [
        Pin::SessionMode,
        Pin::SqlPrepare,
        Pin::Set,
        Pin::SetConfig,
        Pin::Listen,
        Pin::AdvisoryLock,
        Pin::TempObject,
        Pin::HoldCursor,
        Pin::Load,
        Pin::Uninspected,
    ];

    /// A short phrase for the audit entry and the pool view.
    pub fn as_str(self) -> &'static str {
        match self {
            Pin::SessionMode => "session mode",
            Pin::SqlPrepare => "SQL PREPARE",
            Pin::Set => "session SET",
            Pin::SetConfig => "set_config",
            Pin::Listen => "LISTEN",
            Pin::AdvisoryLock => "session advisory lock",
            Pin::TempObject => "temporary object",
            Pin::HoldCursor => "WITH HOLD cursor",
            Pin::Load => "LOAD",
            Pin::Uninspected => "statement too long to inspect",
        }
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Pin`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Pins(u16);

impl Pins {
    /// No pin.
    pub const NONE: Pins = Pins(0);

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether `pin` is in the set.
    pub fn contains(self, pin: Pin) -> bool {
        self.0 & pin as u16 != 0
    }

    /// Adds `pin`.
    pub fn insert(&mut self, pin: Pin) {
        self.0 |= pin as u16;
    }

    /// Takes `pin` out.
    pub fn remove(&mut self, pin: Pin) {
        self.0 &= !(pin as u16);
    }

    /// Adds every pin of `other`.
    pub fn extend(&mut self, other: Pins) {
        self.0 |= other.0;
    }

    /// The pins of `self` not in `before`.
    pub fn since(self, before: Pins) -> Pins {
        Pins(self.0 & !before.0)
    }

    /// The pins, in a fixed order.
    pub fn iter(self) -> impl Iterator<Item = Pin> {
        Pin::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl From<Pin> for Pins {
    fn from(p: Pin) -> Self {
        Pins(p as u16)
    }
}

impl fmt::Display for Pins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(p.as_str())?;
        }
        Ok(())
    }
}

/// Functions that change the session whatever statement calls them.
const SESSION_FUNCTIONS: [(&str, Pin); 5] = [
    ("pg_advisory_lock", Pin::AdvisoryLock),
    ("pg_advisory_lock_shared", Pin::AdvisoryLock),
    ("pg_try_advisory_lock", Pin::AdvisoryLock),
    ("pg_try_advisory_lock_shared", Pin::AdvisoryLock),
    ("set_config", Pin::SetConfig),
];

/// The pins the statements of `sql` need.
pub fn statement_pins(sql: &str) -> Pins {
    let mut pins = Pins::NONE;
    for statement in statements(sql) {
        pins.extend(judge(&statement));
    }
    pins
}

/// Whether `sql` drops every prepared statement of the session
/// (`DEALLOCATE [PREPARE] ALL`, `DISCARD ALL`).
pub(crate) fn drops_all_prepared(sql: &str) -> bool {
    statements(sql).iter().any(|w| {
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        matches!(
            w[..],
            ["deallocate", "all", ..]
                | ["deallocate", "prepare", "all", ..]
                | ["discard", "all", ..]
        )
    })
}

/// One statement's words, lower-cased, outside quotes and comments.
fn judge(words: &[String]) -> Pins {
    let mut pins = Pins::NONE;
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match word(0) {
        "set" => match word(1) {
            "local" | "transaction" | "constraints" => {}
            "session" if word(2) == "characteristics" => {}
            _ => pins.insert(Pin::Set),
        },
        "reset" | "discard" => pins.insert(Pin::Set),
        "listen" => pins.insert(Pin::Listen),
        "prepare" => pins.insert(Pin::SqlPrepare),
        "load" => pins.insert(Pin::Load),
        _ => {}
    }
    for (i, w) in words.iter().enumerate() {
        match w.as_str() {
            "temp" | "temporary" | "pg_temp" => pins.insert(Pin::TempObject),
            "hold" if i > 0 && word(i - 1) == "with" => pins.insert(Pin::HoldCursor),
            _ => {}
        }
        if let Some((_, pin)) = SESSION_FUNCTIONS.iter().find(|(f, _)| f == w) {
            pins.insert(*pin);
        }
    }
    pins
}

/// Splits `sql` into statements of words (identifiers and keywords,
/// lower-cased; a quoted identifier keeps its case and is one word).
fn statements(sql: &str) -> Vec<Vec<String>> {
    let b = sql.as_bytes();
    let mut out = vec![Vec::new()];
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b';' => {
                out.push(Vec::new());
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // Block comments nest.
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'\'' => i = skip_string(b, i, false),
            b'e' | b'E' if b.get(i + 1) == Some(&b'\'') && !word_before(b, i) => {
                i = skip_string(b, i + 1, true)
            }
            b'"' => {
                let start = i + 1;
                i = start;
                while i < b.len() {
                    if b[i] == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                let ident = String::from_utf8_lossy(&b[start..i.min(b.len())]).into_owned();
                out.last_mut().expect("one statement").push(ident);
                i += 1;
            }
            b'$' if !word_before(b, i) => match dollar_tag(b, i) {
                Some(tag_len) => {
                    let tag = &b[i..i + tag_len];
                    i += tag_len;
                    match find(&b[i..], tag) {
                        Some(end) => i += end + tag_len,
                        None => i = b.len(),
                    }
                }
                None => i += 1,
            },
            c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                let start = i;
                while i < b.len()
                    && (b[i] == b'_'
                        || b[i] == b'$'
                        || b[i].is_ascii_alphanumeric()
                        || b[i] >= 0x80)
                {
                    i += 1;
                }
                let w = String::from_utf8_lossy(&b[start..i]).to_lowercase();
                out.last_mut().expect("one statement").push(w);
            }
            _ => i += 1,
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Whether the byte before `i` continues a word (so `$` or `e'` there is
/// not the start of a dollar quote or an escape string).
fn word_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1] == b'_' || b[i - 1].is_ascii_alphanumeric() || b[i - 1] >= 0x80)
}

/// Past the end of the string whose opening quote is at `i`.
fn skip_string(b: &[u8], mut i: usize, escapes: bool) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The length of a dollar-quote tag (`$$` or `$name$`) starting at `i`.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() && (b[j] == b'_' || b[j].is_ascii_alphanumeric() || b[j] >= 0x80) {
        if j == i + 1 && b[j].is_ascii_digit() {
            return None; // `$1` is a parameter
        }
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1 - i)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(sql: &str) -> Vec<Pin> {
        statement_pins(sql).iter().collect()
    }

    #[test]
    fn plain_statements_need_no_pin() {
        for sql in [
            "SELECT 1",
            "select * from t where a = $1",
            "BEGIN; UPDATE t SET a = 1; COMMIT",
            "SET LOCAL search_path = x",
            "set transaction isolation level serializable",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "SET CONSTRAINTS ALL DEFERRED",
            "SELECT pg_advisory_xact_lock(1)",
            "SELECT 'set_config(''a'', ''b'', false)', 'LISTEN x', 'temp'",
            "SELECT $$ SET search_path = x $$",
            "SELECT $body$ listen x; $body$",
            "-- SET role x\nSELECT 1",
            "/* set role x; /* nested */ listen y */ SELECT 1",
            "UNLISTEN *",
            "DECLARE c CURSOR FOR SELECT 1",
            "SELECT E'it\\'s; SET role x'",
            "",
            ";;",
        ] {
            assert_eq!(pins(sql), vec![], "{sql}");
        }
    }

    #[test]
    fn session_state_pins() {
        let cases: &[(&str, &[Pin])] = &[
            ("SET search_path = x", &[Pin::Set]),
            ("set role analyst", &[Pin::Set]),
            ("SET SESSION AUTHORIZATION bob", &[Pin::Set]),
            ("SET SESSION statement_timeout = 5", &[Pin::Set]),
            ("RESET ALL", &[Pin::Set]),
            ("reset search_path", &[Pin::Set]),
            ("DISCARD ALL", &[Pin::Set]),
            ("SELECT 1; SET TimeZone = 'UTC'", &[Pin::Set]),
            (
                "SELECT set_config('search_path', 'x', false)",
                &[Pin::SetConfig],
            ),
            ("LISTEN jobs", &[Pin::Listen]),
            ("PREPARE q AS SELECT 1", &[Pin::SqlPrepare]),
            ("SELECT pg_advisory_lock(42)", &[Pin::AdvisoryLock]),
            ("select PG_TRY_ADVISORY_LOCK(1, 2)", &[Pin::AdvisoryLock]),
            ("CREATE TEMP TABLE t (a int)", &[Pin::TempObject]),
            ("create temporary sequence s", &[Pin::TempObject]),
            ("SELECT 1 INTO TEMP t", &[Pin::TempObject]),
            ("CREATE TABLE pg_temp.t (a int)", &[Pin::TempObject]),
            (
                "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
                &[Pin::HoldCursor],
            ),
            ("LOAD 'auto_explain'", &[Pin::Load]),
            (
                "/* warren */ BEGIN; SET role x; LISTEN y; COMMIT",
                &[Pin::Set, Pin::Listen],
            ),
            ("SELECT 'a''b'; SET x = 1", &[Pin::Set]),
            ("SELECT $1; SET x = 1", &[Pin::Set]),
        ];
        for (sql, want) in cases {
            assert_eq!(pins(sql), want.to_vec(), "{sql}");
        }
    }

    #[test]
    fn unterminated_quotes_and_comments_end_the_scan() {
        assert_eq!(pins("SELECT 'open; SET role x"), vec![]);
        assert_eq!(pins("SET x = 1; /* open"), vec![Pin::Set]);
        assert_eq!(pins("SELECT $q$ open"), vec![]);
        assert_eq!(pins("SELECT \"open"), vec![]);
        // Arbitrary bytes never panic.
        for s in ["$", "$$", "e'", "E'\\", "\"\"\"", "/*/", "-", "'''"] {
            let _ = statement_pins(s);
        }
    }

    #[test]
    fn dropping_every_prepared_statement() {
        assert!(drops_all_prepared("DEALLOCATE ALL"));
        assert!(drops_all_prepared("select 1; deallocate prepare all"));
        assert!(drops_all_prepared("DISCARD ALL"));
        assert!(!drops_all_prepared("DEALLOCATE q"));
        assert!(!drops_all_prepared("DISCARD PLANS"));
        assert!(!drops_all_prepared("SELECT 'DEALLOCATE ALL'"));
    }

    #[test]
    fn pin_sets() {
        let mut p = Pins::NONE;
        assert!(p.is_empty());
        p.insert(Pin::Listen);
        let before = p;
        p.insert(Pin::Set);
        assert_eq!(p.since(before).iter().collect::<Vec<_>>(), vec![Pin::Set]);
        assert_eq!(p.to_string(), "session SET, LISTEN");
    }
}
