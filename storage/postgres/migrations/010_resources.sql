-- Resources registered at run time (RFC 8707). A new table: binaries of
-- schema 9 never read it.
CREATE TABLE resources (
    id               text PRIMARY KEY,
    scopes           text[] NOT NULL DEFAULT '{}',
    access_token_ttl bigint NOT NULL DEFAULT 0, -- nanoseconds; 0 for the broker's
    third_party      boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
