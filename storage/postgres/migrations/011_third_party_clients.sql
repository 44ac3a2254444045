-- Third-party clients (registered through /register, RFC 7591, or not run
-- by the platform) ask their users' consent and may only ask for resources
-- that accept them. Expand only: a schema-10 binary neither reads nor
-- writes these columns, and the defaults describe its clients (first
-- party, not registered, no use recorded).
ALTER TABLE clients ADD COLUMN third_party boolean NOT NULL DEFAULT false;
ALTER TABLE clients ADD COLUMN registration_token_hash bytea;
ALTER TABLE clients ADD COLUMN last_used_at timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00';
