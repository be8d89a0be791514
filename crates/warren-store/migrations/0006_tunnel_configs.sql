-- Remote-managed tunnels: a tunnel's ingress config (cloudflared's
-- config.yml shape, as YAML text) stored at the edge and pushed to its
-- connectors. `version` grows with every change, so a connector can tell a
-- newer config from one it already runs.

CREATE TABLE tunnel_configs (
    tunnel_id TEXT PRIMARY KEY REFERENCES tunnels(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    yaml TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
