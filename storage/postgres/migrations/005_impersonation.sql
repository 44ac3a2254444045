-- Refresh families and sessions keep who impersonated the user at login
-- (an upstream's impersonation, as the tokens' act claim names them); ''
-- for the user's own login. Auth requests and codes carry it in their
-- JSON. Expand only: the previous binary neither reads nor writes these
-- columns, and its inserts get the default.
ALTER TABLE refresh_families ADD COLUMN impersonator text NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN impersonator text NOT NULL DEFAULT '';
