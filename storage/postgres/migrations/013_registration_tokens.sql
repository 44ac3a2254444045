-- Dynamic client registration (RFC 7591): the initial access tokens an
-- administrator hands out, kept as SHA-256 hashes, and an index for the
-- sweep of registered clients left unused. Expand only: a new table that
-- older binaries never read, and an index they do not need.
CREATE TABLE registration_tokens (
    id         text PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    note       text NOT NULL DEFAULT '',
    max_uses   integer NOT NULL DEFAULT 0, -- 0: any number until it expires
    uses       integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX clients_registered_last_use ON clients (GREATEST(created_at, last_used_at))
    WHERE registration_token_hash IS NOT NULL;
