// Package postgres is the production implementation of storage.Storage, on
// PostgreSQL through pgx. Any number of broker replicas may share one
// database and nothing else: every operation that must be atomic is one
// transaction (or one statement) made safe by unique constraints, row locks
// and ON CONFLICT, never by a lock in this process. The one thing a Store
// keeps in memory, the users of known identities, it keeps only while
// Postgres tells it of every change to them (LISTEN/NOTIFY on the channel
// migration 015's triggers notify, proved by the Store's own heartbeats);
// otherwise it reads.
//
// The package owns the schema: its migrations are embedded and applied by
// Migrate (the broker's "migrate" command). They are expand-then-contract,
// so Open accepts a schema newer than SchemaVersion and refuses only an
// older one. Times are kept to the microsecond, as Postgres keeps them.
//
// Tests of other packages get an isolated, migrated schema from the
// pgtest subpackage.
//
// The package imports no other package of the project but storage.
package postgres
