-- What users consented to for third-party clients. A new table: binaries
-- of schema 11 never read it (and have no third-party clients to ask
-- consent for). The client is not a foreign key: a client of the
-- configuration file or one identified by a metadata document is never
-- stored, and DeleteClient deletes a stored client's consents itself.
CREATE TABLE consents (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text NOT NULL,
    resource   text NOT NULL, -- '' for the client's own audience
    scopes     text[] NOT NULL DEFAULT '{}',
    granted_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id, resource)
);
CREATE INDEX consents_client_id ON consents (client_id);
