-- A user may hold the admin role: admin rights belong to a person (or a
-- machine client's configuration), never to the client a person signed
-- in through. Expand only: the previous binary neither reads nor writes
-- the column, and its inserts get the default, no role.
ALTER TABLE users ADD COLUMN admin boolean NOT NULL DEFAULT false;
