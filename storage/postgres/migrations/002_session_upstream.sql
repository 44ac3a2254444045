-- Sessions keep the first login's organisation and (encrypted) upstream
-- refresh token, for the tokens single sign-on issues. Expand only: the
-- previous binary neither reads nor writes these columns, and its inserts
-- get the defaults.
ALTER TABLE sessions
	ADD COLUMN org text NOT NULL DEFAULT '',
	ADD COLUMN upstream_refresh_token bytea;
