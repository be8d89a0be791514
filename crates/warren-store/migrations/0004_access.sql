-- Access control: public routes, applications with their policies, service
-- tokens, identity providers, user sessions, the keys the edge signs
-- identity tokens with, and a generation counter every edge process polls
-- to pick up changes made by any process.

-- A route is reachable without an access application only when it was
-- created public (`warren tunnel route dns T H --public`). Default deny.
ALTER TABLE routes ADD COLUMN public INTEGER NOT NULL DEFAULT 0;

-- `spec` is a warren_policy::Application as JSON (hostnames, path prefix,
-- session duration, ordered policies). `tag` is the audience of the
-- identity tokens the edge signs for the application.
CREATE TABLE access_apps (
    name TEXT PRIMARY KEY NOT NULL,
    tag TEXT UNIQUE NOT NULL,
    spec TEXT NOT NULL,
    statement_log INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- `id` is the client id sent in Warren-Access-Client-Id; only the SHA-256
-- of the secret is kept.
CREATE TABLE service_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT UNIQUE NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    rotated_at INTEGER,
    revoked_at INTEGER
);

-- OIDC identity providers. The client secret must be presented to the
-- provider, so it cannot be hashed; the database file is private (0600)
-- and the API never returns it.
CREATE TABLE identity_providers (
    name TEXT PRIMARY KEY NOT NULL,
    spec TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Sessions the edge issued (browser cookies and CLI tokens). The token
-- itself is a signed JWT the edge does not store; this row lets a session
-- be listed and revoked.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    identity TEXT NOT NULL,
    email TEXT NOT NULL,
    app TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE INDEX sessions_email ON sessions(email);
CREATE INDEX sessions_expires_at ON sessions(expires_at);

-- ECDSA P-256 keys (PKCS#8) for identity tokens; the newest signs, the
-- older ones stay published in the JWKS until they are pruned.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    pkcs8 BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE control_generation (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO control_generation (id, generation) VALUES (1, 0);

-- Every change an edge must act on bumps the generation, whichever process
-- made it.
CREATE TRIGGER gen_routes_i AFTER INSERT ON routes BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_routes_u AFTER UPDATE ON routes BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_routes_d AFTER DELETE ON routes BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_route_tunnels_i AFTER INSERT ON route_tunnels BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_route_tunnels_d AFTER DELETE ON route_tunnels BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_apps_i AFTER INSERT ON access_apps BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_apps_u AFTER UPDATE ON access_apps BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_apps_d AFTER DELETE ON access_apps BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_tokens_i AFTER INSERT ON service_tokens BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_tokens_u AFTER UPDATE ON service_tokens BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_tokens_d AFTER DELETE ON service_tokens BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_idps_i AFTER INSERT ON identity_providers BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_idps_u AFTER UPDATE ON identity_providers BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_idps_d AFTER DELETE ON identity_providers BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_sessions_u AFTER UPDATE OF revoked_at ON sessions BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_keys_i AFTER INSERT ON signing_keys BEGIN UPDATE control_generation SET generation = generation + 1; END;
CREATE TRIGGER gen_keys_d AFTER DELETE ON signing_keys BEGIN UPDATE control_generation SET generation = generation + 1; END;
