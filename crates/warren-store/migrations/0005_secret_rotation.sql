-- Secret rotation with a grace window: the secret a rotation replaced stays
-- valid for registrations until `previous_valid_until` (Unix seconds), so
-- running connectors can re-dial with the token they have while operators
-- roll the new one out. Both NULL: only the current secret is valid.

ALTER TABLE tunnels ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE tunnels ADD COLUMN previous_valid_until INTEGER;
