-- A hostname can be served by several tunnels: a load balancer over tunnels.
-- `routes.steering` is 'single' for a plain route (its tunnel is
-- `routes.tunnel_id`), or 'failover' / 'weighted' for a pool whose members
-- are in `route_tunnels`; then `routes.tunnel_id` is the member with the
-- lowest priority number (the store keeps it so when tunnels are deleted).

ALTER TABLE routes ADD COLUMN steering TEXT NOT NULL DEFAULT 'single';

CREATE TABLE route_tunnels (
    hostname TEXT NOT NULL REFERENCES routes(hostname) ON DELETE CASCADE,
    tunnel_id TEXT NOT NULL REFERENCES tunnels(id) ON DELETE CASCADE,
    -- 1 is tried first by 'failover'.
    priority INTEGER NOT NULL,
    -- Share of new streams under 'weighted'.
    weight INTEGER NOT NULL,
    PRIMARY KEY (hostname, tunnel_id)
);

CREATE INDEX route_tunnels_tunnel_id ON route_tunnels(tunnel_id);
