-- Wrong one-time-code guesses are pooled per attempt key (one email address
-- asked for from one client address), so that a resend or a new auth
-- request buys no more guesses within a code's lifetime. Expand only: a
-- schema-3 binary writes challenges without a key, which are not pooled,
-- and never reads the pools.
ALTER TABLE otp_challenges ADD COLUMN attempt_key text NOT NULL DEFAULT '';

CREATE TABLE otp_attempt_pools (
	key        text PRIMARY KEY,
	attempts   integer NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX otp_attempt_pools_expires_at ON otp_attempt_pools (expires_at);
