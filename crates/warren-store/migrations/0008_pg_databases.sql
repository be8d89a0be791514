-- Pooled PostgreSQL databases (`warren db`): a database behind a route's
-- hostname that the edge pools connections to, with its pool and result
-- cache settings, and the credentials the edge logs in to it with.
--
-- `pool_mode` (transaction | session) and `auth_mode` (identity |
-- passthrough) are kept as text; the edge parses them.

CREATE TABLE pg_databases (
    name TEXT PRIMARY KEY NOT NULL,
    hostname TEXT UNIQUE NOT NULL,
    database TEXT NOT NULL,
    pool_mode TEXT NOT NULL,
    auth_mode TEXT NOT NULL,
    pool_size INTEGER NOT NULL,
    min_idle INTEGER NOT NULL,
    idle_timeout_secs INTEGER NOT NULL,
    max_lifetime_secs INTEGER NOT NULL,
    checkout_timeout_ms INTEGER NOT NULL,
    cache INTEGER NOT NULL,
    cache_max_age_secs INTEGER NOT NULL,
    cache_swr_secs INTEGER NOT NULL,
    cache_max_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- A role's password, sealed by the edge (ChaCha20-Poly1305 with the key in
-- <data-dir>/pg-credentials.key, the database and role bound in as
-- associated data): the store never sees the password.
CREATE TABLE pg_credentials (
    database TEXT NOT NULL REFERENCES pg_databases(name) ON DELETE CASCADE,
    role TEXT NOT NULL,
    nonce BLOB NOT NULL,
    sealed BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (database, role)
);

-- A running edge reloads its databases when the generation moves.
CREATE TRIGGER gen_pg_databases_i AFTER INSERT ON pg_databases BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_pg_databases_u AFTER UPDATE ON pg_databases BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_pg_databases_d AFTER DELETE ON pg_databases BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_pg_credentials_i AFTER INSERT ON pg_credentials BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_pg_credentials_u AFTER UPDATE ON pg_credentials BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_pg_credentials_d AFTER DELETE ON pg_credentials BEGIN UPDATE control_generation SET generation = generation + 1; END;
