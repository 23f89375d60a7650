-- Sign-in throttling (issue 12): failures per account and per client address, in the database
-- so that several server processes over one database throttle alike (server/src/access/ratelimit.rs).
-- The key is `account:` + SHA-256 of the login (never the login itself) or `address:` + the
-- client address.
CREATE TABLE sign_in_throttle (
    key      TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    last_at  INTEGER NOT NULL                        -- epoch milliseconds of the last reserved attempt
) STRICT;
CREATE INDEX sign_in_throttle_by_age ON sign_in_throttle (last_at);
