-- Each replica keeps the users of the identities it has resolved in
-- memory (storage/postgres/identitycache.go) and drops a user's entries
-- when told here, on the channel broker_identities, that a row they came
-- from changed: a disable, a delete, an admin change, a refreshed email,
-- a link, an unlink. Triggers rather than the store's own writes, so that
-- every writer (another replica, the CLI, a future write path, an
-- operator's SQL) tells. An identity's insert is not told: no replica
-- holds an entry for an identity that did not exist. Expand only: a
-- schema-14 binary reads nothing here, and the notices only go to
-- sessions that LISTEN.
CREATE FUNCTION broker_identity_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_TABLE_NAME = 'users' THEN
		PERFORM pg_notify('broker_identities', OLD.id::text);
		RETURN NULL;
	END IF;
	PERFORM pg_notify('broker_identities', OLD.user_id::text);
	IF TG_OP = 'UPDATE' AND NEW.user_id <> OLD.user_id THEN
		PERFORM pg_notify('broker_identities', NEW.user_id::text);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER users_changed AFTER UPDATE OR DELETE ON users
	FOR EACH ROW EXECUTE FUNCTION broker_identity_changed();
CREATE TRIGGER identities_changed AFTER UPDATE OR DELETE ON identities
	FOR EACH ROW EXECUTE FUNCTION broker_identity_changed();
