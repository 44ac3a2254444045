-- Stored clients hold every setting a client of the configuration file
-- has: one client model. Expand only: a schema-7 binary neither reads nor
-- writes these columns, and the defaults are what its clients meant (the
-- broker's ID-token algorithm, no actors, no introspection of others'
-- tokens).
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg text NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN actors text[];
ALTER TABLE clients ADD COLUMN introspector boolean NOT NULL DEFAULT false;
