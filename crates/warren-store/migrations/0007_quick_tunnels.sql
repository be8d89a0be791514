-- Quick tunnels (`warren tunnel --url ...` against an edge started with
-- --quick-tunnels): made without an admin token, removed by the edge once
-- disconnected for a while. Only these may be removed that way.

ALTER TABLE tunnels ADD COLUMN quick INTEGER NOT NULL DEFAULT 0;
