// Package pgtest gives tests a Postgres schema of their own, migrated and
// dropped when the test ends, on the server named by the environment
// variable BROKER_TEST_DATABASE_URL. Several Stores opened on one Schema
// share its data and nothing else, as broker replicas do, so tests of the
// broker can run "replicas" against one database:
//
//	db := pgtest.New(t)
//	a, b := db.Open(t), db.Open(t) // two independent pools, one schema
//
// Without BROKER_TEST_DATABASE_URL the test is skipped, except where CI=true:
// there it fails, so that a CI run cannot pass by testing nothing.
package pgtest

import (
	"net"
	"strconv"

	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/jackc/pgx/v5/pgconn"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage/postgres"
)

// EnvDSN names the environment variable holding the test server's DSN.
const EnvDSN = "BROKER_TEST_DATABASE_URL"

// Schema is an isolated, migrated schema on the test server.
type Schema struct {
	// Name is the schema's name, broker_test_ and random hex.
	Name string
	// DSN connects with the schema as the search path; give it to
	// postgres.Open (or the broker's configuration) as it is.
	DSN string
	// AdminDSN connects to the same server without the search path, for
	// tests that need to act on the server behind the store's back.
	AdminDSN string
}

// New creates a schema, migrates it, and drops it when t ends.
func New(t testing.TB) *Schema {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: %s is not set, and CI=true: Postgres tests must run in CI", EnvDSN)
		}
		t.Skipf("pgtest: %s is not set; skipping Postgres test", EnvDSN)
	}
	// Not t.Context: the schema is dropped in a cleanup, after it is done.
	ctx := context.Background()
	name := RandomName("broker_test_")
	admin(t, base, "CREATE SCHEMA "+name)
	t.Cleanup(func() { admin(t, base, "DROP SCHEMA "+name+" CASCADE") })

	dsn, err := WithParam(base, "search_path", name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := postgres.Migrate(ctx, dsn); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return &Schema{Name: name, DSN: dsn, AdminDSN: base}
}

// Open opens a new Store, with its own connection pool, on the schema and
// closes it when t ends.
func (s *Schema) Open(t testing.TB) *postgres.Store {
	t.Helper()
	return s.OpenDSN(t, s.DSN)
}

// OpenDSN is Open with a DSN derived from s.DSN (say, by WithParam).
func (s *Schema) OpenDSN(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// NewStore opens a Store on a schema of its own: New(t).Open(t).
func NewStore(t testing.TB) *postgres.Store {
	t.Helper()
	return New(t).Open(t)
}

// WithParam returns dsn with a connection parameter set, in URL or
// key=value form as dsn is. Parameters pgx does not know, such as
// search_path or application_name, are sent to the server as run-time
// settings.
func WithParam(dsn, key, value string) (string, error) {
	if !strings.Contains(dsn, "://") {
		return dsn + " " + key + "=" + value, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// RandomName returns a short random name for test objects.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func admin(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvDSN, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// Addr returns the host:port of the server the schema is on.
func (s *Schema) Addr(t testing.TB) string {
	t.Helper()
	cfg, err := pgconn.ParseConfig(s.DSN)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// DSNVia returns the schema's DSN connecting through addr (host:port)
// instead, for a test that puts a proxy it can cut between a store and
// the server.
func (s *Schema) DSNVia(t testing.TB, addr string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	dsn, err := WithParam(s.DSN, "host", host)
	if err == nil {
		dsn, err = WithParam(dsn, "port", port)
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}
