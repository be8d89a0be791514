-- Warren control plane, first schema: tunnels, hostname routes, admin API tokens.
-- Timestamps are integer unix seconds; ids are text UUIDs; secrets are stored
-- only as SHA-256 hashes.

CREATE TABLE tunnels (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT UNIQUE NOT NULL,
    secret_hash BLOB NOT NULL,
    secret_generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE routes (
    hostname TEXT PRIMARY KEY NOT NULL,
    tunnel_id TEXT NOT NULL REFERENCES tunnels(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);

CREATE INDEX routes_tunnel_id ON routes(tunnel_id);

CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
