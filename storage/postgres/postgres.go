package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/idbroker/broker/storage"
)

// SchemaVersion is the schema version this binary needs: the number of the
// newest migration it embeds.
const SchemaVersion = 15

// versionTable is tern's version table. It is left unqualified so that it
// lives in the first schema of the connection's search_path, as every
// other table does.
const versionTable = "schema_version"

//go:embed migrations/*.sql
var migrations embed.FS

// ErrSchemaOutdated is returned by Open when the database schema is older
// than SchemaVersion (or absent).
var ErrSchemaOutdated = errors.New("postgres: database schema is older than this binary needs; run `broker migrate`")

// defaultOpTimeout bounds every operation but ImportUsers, so a stalled
// database fails a request rather than holding it forever.
const defaultOpTimeout = 10 * time.Second

// Store is a storage.Storage on a Postgres connection pool. It is safe for
// concurrent use, and several Stores (in one process or many) may share one
// database.
//
// Writes are durable (each commit waits for its WAL flush) except those of
// records whose loss in a crash fails closed: auth requests,
// authorization-code issuance, one-time-code challenges, sessions and
// rate-limit counters (a login in progress must start again, a window
// restarts). Those go through a second, smaller pool, hot, whose
// connections set synchronous_commit=off, which takes an fsync per commit
// off the login path. Users, identities, clients, signing keys, the audit
// log, used jtis and every revocation stay durable.
//
// The hot paths' reads (an access token's user, a refresh token's grant)
// go through hot too. A known identity the cache does not hold is read
// through the durable pool, by the statement that creates a first-time
// user when there is none (resolveOneStatement). Those are CPU work inside
// Postgres, and running more of them at once than the database has cores
// for only queues them there; a durable commit mostly waits for its WAL
// flush, and more of them at once share a flush. So the durable pool is
// the larger.
//
// A known identity's resolution is answered from memory while the Store
// hears every change to users and identities (identitycache.go,
// listen.go); the listening session and its heartbeats run until Close.
type Store struct {
	pool       db // durable writes, and reads off the hot paths
	hot        db // synchronous_commit=off; see above
	opTimeout  time.Duration
	identities *identityCache
	stopListen context.CancelFunc
	listening  chan struct{} // closed when the listener has stopped
}

// An Option changes how Open opens a Store.
type Option func(*options)

type options struct {
	listenDSN string
}

// ListenDSN has the session that hears changes to users and identities
// connect with dsn rather than the Store's own, so that a test can cut
// that session alone (through a proxy) and see every resolution read.
func ListenDSN(dsn string) Option {
	return func(o *options) { o.listenDSN = dsn }
}

var _ storage.Storage = (*Store)(nil)

// Open connects to the database at dsn (a URL or key=value string as pgx
// accepts, including pool_* settings) and checks that its schema is at
// least SchemaVersion; if not, the error wraps ErrSchemaOutdated.
//
// The durable pool has pool_max_conns connections, by default twice
// pgxpool's default (the number of CPUs, at least 4), and the hot pool
// half that, at least 4 (see Store). On two cores shared with Postgres
// (issue 9), reading known identities through 4 connections rather than
// 20 took exchanges from p99 10.7 ms to under 9 ms, and committing new
// users through 8 rather than 4 took first-time exchanges from about
// 1,500/s to 1,800/s. Replicas × pools must fit the server's
// max_connections.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	listenCfg := cfg.ConnConfig
	if o.listenDSN != "" {
		lcfg, err := pgxpool.ParseConfig(o.listenDSN)
		if err != nil {
			return nil, fmt.Errorf("postgres: parse listen dsn: %w", err)
		}
		listenCfg = lcfg.ConnConfig
	}
	if !hasPoolMaxConns(dsn) {
		cfg.MaxConns *= 2
	}
	// Recycle connections that sat idle, and notice dead ones between
	// requests rather than on them.
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 30 * time.Second
	hcfg := cfg.Copy()
	hcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	hcfg.MaxConns = max(4, cfg.MaxConns/2)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	hot, err := pgxpool.NewWithConfig(ctx, hcfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	opened := time.Now()
	s := &Store{pool: db{pool}, hot: db{hot}, opTimeout: defaultOpTimeout,
		identities: newIdentityCache(identityCacheEntries, func() time.Duration { return time.Since(opened) }),
		listening:  make(chan struct{})}
	if err := s.checkSchema(ctx); err != nil {
		pool.Close()
		hot.Close()
		return nil, err
	}
	l := newListener(listenCfg.Copy(), s.identities, func(ctx context.Context, payload string) error {
		_, err := s.hot.Exec(ctx, `SELECT pg_notify('`+identitiesChannel+`', $1)`, payload)
		return err
	})
	var listenCtx context.Context
	listenCtx, s.stopListen = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(s.listening)
		l.run(listenCtx)
	}()
	return s, nil
}

func (s *Store) checkSchema(ctx context.Context) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var v int32
	err := s.pool.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&v)
	if isCode(err, "42P01") { // undefined_table: never migrated
		return fmt.Errorf("%w (no schema found)", ErrSchemaOutdated)
	}
	if err != nil {
		return fmt.Errorf("postgres: read schema version: %w", err)
	}
	if v < SchemaVersion {
		return fmt.Errorf("%w (schema version %d, need %d)", ErrSchemaOutdated, v, SchemaVersion)
	}
	return nil
}

// Migrate applies the embedded migrations the database at dsn lacks. It is
// safe to run from several replicas at once: tern takes an advisory lock.
func Migrate(ctx context.Context, dsn string) error {
	// Parsed as Open parses it, so a DSN that sets the pool (pool_max_conns)
	// works here too, where pgx alone would send those settings to the server.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return fmt.Errorf("postgres: migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if err := m.LoadMigrations(dir); err != nil {
		return fmt.Errorf("postgres: migrate: load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// Ping implements storage.Storage.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	for _, p := range []db{s.pool, s.hot} {
		err := p.Ping(ctx)
		if p.dropIfEnded(err) {
			err = p.Ping(ctx) // on a new connection
		}
		if err != nil {
			return fmt.Errorf("postgres: ping: %w", err)
		}
	}
	return nil
}

// Close implements storage.Storage. It waits for connections in use to be
// returned.
func (s *Store) Close() error {
	s.stopListen()
	<-s.listening
	s.pool.Close()
	s.hot.Close()
	return nil
}

// timeout bounds one operation. The caller's deadline wins when sooner.
func (s *Store) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opTimeout)
}

// inTx runs fn in a transaction and commits it if fn returns nil. An error
// from fn is returned as it is (fn gives it context); a failure to begin or
// commit is wrapped with what.
func (s *Store) inTx(ctx context.Context, what string, fn func(pgx.Tx) error) error {
	return inTxOn(ctx, s.pool, what, fn)
}

// inHotTx is inTx for records whose loss in a crash fails closed (see
// Store).
func (s *Store) inHotTx(ctx context.Context, what string, fn func(pgx.Tx) error) error {
	return inTxOn(ctx, s.hot, what, fn)
}

// inTxOn runs fn in a transaction on pool. A begin that met a session the
// server had ended runs once more, on a new connection (db.failed dropped
// the old ones): nothing ran. A transaction that fails later is not run
// again here, since whether fn may run twice is the caller's to say.
func inTxOn(ctx context.Context, pool db, what string, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if sessionEnded(err) {
		tx, err = pool.Begin(ctx)
	}
	if err != nil {
		return fmt.Errorf("postgres: %s: begin: %w", what, err)
	}
	// Rollback after Commit does nothing; it must run even if ctx is done.
	defer tx.Rollback(context.WithoutCancel(ctx))
	// fn's statements reported refused text already (textTx).
	if err := fn(tx); err != nil {
		pool.dropIfEnded(err)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		pool.dropIfEnded(err)
		return fmt.Errorf("postgres: %s: commit: %w", what, err)
	}
	return nil
}

// sessionEnded reports whether err says the connection it came from is
// gone: the server ended the session (a shutdown, a crash, or
// pg_terminate_backend, as a failover does) or the socket closed under it.
// A refused connection or a timeout is not: the pooled sessions may be
// fine.
func sessionEnded(err error) bool {
	if err == nil {
		return false
	}
	if isCode(err, "57P01") || isCode(err, "57P02") {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// isCode reports whether err is a Postgres error with the given SQLSTATE.
func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// isUniqueViolation reports whether err is a unique_violation.
func isUniqueViolation(err error) bool { return isCode(err, "23505") }

// isRetryable reports whether a transaction failed only because another
// ran at the same time, so that running it again may succeed.
func isRetryable(err error) bool {
	return isUniqueViolation(err) || isCode(err, "40001") || isCode(err, "40P01")
}

// notFound maps pgx.ErrNoRows to storage.ErrNotFound and wraps any other
// error with what was being done.
func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// utc returns t in UTC: pgx gives times in the local zone, and callers
// compare and print them as the broker wrote them.
func utc(ts ...*time.Time) {
	for _, t := range ts {
		*t = t.UTC()
	}
}

// idleDeadline is when a thing last used at last dies of idleness, or nil
// (SQL NULL) when it has no idle lifetime.
func idleDeadline(last time.Time, idle time.Duration) *time.Time {
	if idle <= 0 {
		return nil
	}
	d := last.Add(idle)
	return &d
}

// hasPoolMaxConns reports whether dsn sizes the pool itself; pgxpool's
// parsed configuration does not say whether the size was given.
func hasPoolMaxConns(dsn string) bool { return strings.Contains(dsn, "pool_max_conns") }
