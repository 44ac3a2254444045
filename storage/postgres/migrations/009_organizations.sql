-- Organisations (issue 21): enterprise customers with their own identity
-- providers, email domains and members, and the connectors created at run
-- time. Expand only: a schema-8 binary neither reads nor writes these
-- tables.

CREATE TABLE organizations (
	id          uuid PRIMARY KEY,
	slug        text NOT NULL UNIQUE,
	name        text NOT NULL,
	require_sso boolean NOT NULL,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);

-- An upstream organisation (Auth0 org_id, Entra tid, WorkOS organization)
-- maps to one broker organisation: the primary key says so. position keeps
-- the order the administrator gave.
CREATE TABLE organization_upstream_ids (
	upstream_id text PRIMARY KEY,
	org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	position    integer NOT NULL
);
CREATE INDEX organization_upstream_ids_org_id ON organization_upstream_ids (org_id);

CREATE TABLE organization_domains (
	org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	domain      text NOT NULL,
	challenge   text NOT NULL,
	verified    boolean NOT NULL,
	verified_by text NOT NULL,
	verified_at timestamptz NOT NULL,
	created_at  timestamptz NOT NULL,
	PRIMARY KEY (org_id, domain)
);
-- Several organisations may claim a domain; one at most holds it verified.
-- This index, not a lock, decides between two verifying at once.
CREATE UNIQUE INDEX organization_domains_verified ON organization_domains (domain) WHERE verified;

CREATE TABLE organization_members (
	org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role       text NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (org_id, user_id)
);
CREATE INDEX organization_members_user_id ON organization_members (user_id);

-- Settings are sealed under the root secret before they get here.
-- Deleting an organisation detaches its connectors, which an
-- administrator then deletes or moves.
CREATE TABLE stored_connectors (
	id                  text PRIMARY KEY,
	type                text NOT NULL,
	name                text NOT NULL,
	org_id              uuid REFERENCES organizations (id) ON DELETE SET NULL,
	settings            bytea,
	timeout_us          bigint NOT NULL,
	recheck_interval_us bigint NOT NULL,
	disabled            boolean NOT NULL,
	created_at          timestamptz NOT NULL,
	updated_at          timestamptz NOT NULL
);
CREATE INDEX stored_connectors_org_id ON stored_connectors (org_id);

-- One row, bumped in the transaction of every change to organisations,
-- domains and stored connectors: replicas poll it to know when to reload
-- what they cache.
CREATE TABLE orgs_generation (
	one        boolean PRIMARY KEY DEFAULT true CHECK (one),
	generation bigint NOT NULL
);
INSERT INTO orgs_generation (generation) VALUES (0);
