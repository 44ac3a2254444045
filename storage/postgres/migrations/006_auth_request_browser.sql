-- An auth request is bound to the browser that started it: a hash of that
-- browser's binding cookie. A column of its own rather than a field of
-- data, because a schema-3 binary rewrites data (without the field) when
-- it updates a request, and leaves a column it does not know alone. Expand
-- only: schema-3 binaries insert NULL here, and schema-4 binaries refuse
-- every step of such a request, so a login in flight across the upgrade
-- starts again.
ALTER TABLE auth_requests ADD COLUMN browser_hash bytea;
