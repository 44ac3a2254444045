-- Access tokens are no longer recorded as they are issued (an insert per
-- token exchange); what revokes them is kept instead: a jti, a grant, or
-- every token of a user up to a moment. Expand only: schema-2 binaries go
-- on writing and reading access_tokens during a rolling upgrade, and
-- schema-3 binaries keep marking its rows revoked for them. A later
-- contract migration drops access_tokens once no schema-2 binary runs.

-- Revoked jtis, kept until the token expires.
CREATE TABLE revoked_access_tokens (
	id         text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

-- Revoked grants, kept until no access token of the grant can be live. A
-- revoked refresh family revokes the grant of its id as well, for as long
-- as the family is kept.
CREATE TABLE revoked_grants (
	id         text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_grants_expires_at ON revoked_grants (expires_at);

-- Every access token issued to the user in or before the second of this
-- moment is revoked; NULL when that never happened.
ALTER TABLE users ADD COLUMN tokens_revoked_at timestamptz;
