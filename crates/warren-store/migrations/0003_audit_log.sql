-- The audit log: one row per access decision or finished connection,
-- hash-chained so that a changed or deleted row is detected.
-- hash = SHA-256(prev_hash || every field, length-prefixed); the first row
-- chains from audit_anchor (or 32 zero bytes), which retention moves
-- forward when it deletes old rows.

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY NOT NULL,
    time INTEGER NOT NULL,
    kind TEXT NOT NULL,
    identity TEXT NOT NULL,
    source TEXT NOT NULL,
    app TEXT NOT NULL,
    hostname TEXT NOT NULL,
    tunnel TEXT NOT NULL,
    destination TEXT NOT NULL,
    decision TEXT NOT NULL,
    rule TEXT NOT NULL,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    end_reason TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);

CREATE INDEX audit_log_time ON audit_log(time);

CREATE TABLE audit_anchor (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
);
