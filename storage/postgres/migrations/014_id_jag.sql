-- The authorization servers a client may get identity assertion grants
-- (ID-JAGs) for through token exchange. Expand only: a binary of an
-- older schema neither reads nor writes the column, and NULL, no
-- audience, is what its clients may do.
ALTER TABLE clients ADD COLUMN id_jag_audiences text[];
