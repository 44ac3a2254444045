-- The broker's schema. Migrations are expand-then-contract: a migration
-- adds what a new binary needs and leaves what the previous binary uses, so
-- both run on the same schema during a rolling upgrade; a later migration
-- drops what nothing uses any more.
--
-- Times are NOT NULL throughout: the zero time.Time is stored as it is
-- (0001-01-01), which keeps zero and absent from being two things. Arrays
-- and bytea are nullable because a nil Go slice is encoded as NULL.

CREATE TABLE users (
	id             uuid PRIMARY KEY,
	email          text NOT NULL DEFAULT '',
	email_verified boolean NOT NULL DEFAULT false,
	name           text NOT NULL DEFAULT '',
	disabled       boolean NOT NULL DEFAULT false,
	created_at     timestamptz NOT NULL,
	updated_at     timestamptz NOT NULL
);
-- A verified address has one owner; unverified ones may repeat. This index,
-- not a lock, is what makes concurrent first logins with one verified
-- address yield one user.
CREATE UNIQUE INDEX users_verified_email ON users (email) WHERE email_verified;

CREATE TABLE identities (
	connector  text NOT NULL,
	subject    text NOT NULL,
	user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	email      text NOT NULL DEFAULT '',
	name       text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	last_login timestamptz NOT NULL,
	PRIMARY KEY (connector, subject)
);
CREATE INDEX identities_user_id ON identities (user_id);

-- Auth requests and codes live minutes; their many fields are kept as the
-- JSON of the storage type, beside the columns queries need.
CREATE TABLE auth_requests (
	id             text PRIMARY KEY,
	upstream_state text UNIQUE, -- NULL when there is none
	expires_at     timestamptz NOT NULL,
	data           jsonb NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE otp_challenges (
	auth_request_id text PRIMARY KEY REFERENCES auth_requests (id) ON DELETE CASCADE,
	email           text NOT NULL,
	code_hash       bytea NOT NULL,
	attempts        integer NOT NULL DEFAULT 0,
	created_at      timestamptz NOT NULL,
	expires_at      timestamptz NOT NULL
);
CREATE INDEX otp_challenges_expires_at ON otp_challenges (expires_at);

CREATE TABLE auth_codes (
	code_hash  bytea PRIMARY KEY,
	grant_id   text, -- NULL until redeemed
	expires_at timestamptz NOT NULL,
	data       jsonb NOT NULL
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE refresh_families (
	id                     text PRIMARY KEY,
	client_id              text NOT NULL,
	user_id                text NOT NULL,
	scopes                 text[],
	audience               text[],
	auth_time              timestamptz NOT NULL,
	amr                    text[],
	idp                    text NOT NULL,
	org                    text NOT NULL,
	session_id             text NOT NULL,
	upstream_refresh_token bytea,
	upstream_checked_at    timestamptz NOT NULL,
	created_at             timestamptz NOT NULL,
	last_used_at           timestamptz NOT NULL,
	expires_at             timestamptz NOT NULL,
	idle_timeout_us        bigint NOT NULL,
	idle_deadline          timestamptz, -- last_used_at + idle timeout; NULL without one
	revoked                boolean NOT NULL DEFAULT false
);
CREATE INDEX refresh_families_user_id ON refresh_families (user_id);
CREATE INDEX refresh_families_session_id ON refresh_families (session_id) WHERE session_id <> '';
CREATE INDEX refresh_families_expires_at ON refresh_families (expires_at);
CREATE INDEX refresh_families_idle_deadline ON refresh_families (idle_deadline);

CREATE TABLE refresh_tokens (
	token_hash     bytea PRIMARY KEY,
	family_id      text NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
	successor_hash bytea, -- NULL while the token is the family's current one
	rotated_at     timestamptz
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);

CREATE TABLE access_tokens (
	id         text PRIMARY KEY,
	grant_id   text NOT NULL,
	client_id  text NOT NULL,
	user_id    text NOT NULL,
	audience   text[],
	scopes     text[],
	issued_at  timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	revoked    boolean NOT NULL DEFAULT false
);
CREATE INDEX access_tokens_grant_id ON access_tokens (grant_id) WHERE grant_id <> '';
CREATE INDEX access_tokens_user_id ON access_tokens (user_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE sessions (
	id            text PRIMARY KEY,
	user_id       text NOT NULL,
	auth_time     timestamptz NOT NULL,
	amr           text[],
	idp           text NOT NULL,
	clients       text[],
	created_at    timestamptz NOT NULL,
	last_seen_at  timestamptz NOT NULL,
	expires_at    timestamptz NOT NULL,
	idle_ttl_us   bigint NOT NULL,
	idle_deadline timestamptz -- last_seen_at + idle TTL; NULL without one
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_idle_deadline ON sessions (idle_deadline);

CREATE TABLE clients (
	id                        text PRIMARY KEY,
	name                      text NOT NULL,
	public                    boolean NOT NULL,
	secret_hashes             jsonb,
	redirect_uris             text[],
	post_logout_redirect_uris text[],
	grant_types               text[],
	audiences                 text[],
	scopes                    text[],
	allowed_origins           text[],
	jwks_url                  text NOT NULL,
	jwks                      bytea,
	backchannel_logout_uri    text NOT NULL,
	service_user_id           text NOT NULL,
	created_at                timestamptz NOT NULL,
	updated_at                timestamptz NOT NULL
);

CREATE TABLE signing_keys (
	id          text PRIMARY KEY,
	algorithm   text NOT NULL,
	use         text NOT NULL,
	public_jwk  bytea, -- bytea, not jsonb: the bytes are kept exactly
	private_key bytea,
	created_at  timestamptz NOT NULL,
	publish_at  timestamptz NOT NULL,
	sign_from   timestamptz NOT NULL,
	sign_until  timestamptz NOT NULL,
	remove_at   timestamptz NOT NULL
);

CREATE TABLE rate_limits (
	key        text PRIMARY KEY,
	count      integer NOT NULL,
	window_end timestamptz NOT NULL
);
CREATE INDEX rate_limits_window_end ON rate_limits (window_end);

CREATE TABLE used_jtis (
	jti        text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);

CREATE TABLE audit_log (
	id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time    timestamptz NOT NULL,
	actor   text NOT NULL,
	action  text NOT NULL,
	target  text NOT NULL,
	details jsonb
);
