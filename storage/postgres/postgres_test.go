package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres"
	"github.com/idbroker/broker/storage/postgres/pgtest"
	"github.com/idbroker/broker/storage/storagetest"
)

func TestStorage(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage { return pgtest.NewStore(t) })
}

func TestSchemaVersionIsNewestMigration(t *testing.T) {
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	newest := 0
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "%d_", &n); err == nil && n > newest {
			newest = n
		}
	}
	if newest != postgres.SchemaVersion {
		t.Fatalf("newest migration is %d, SchemaVersion %d", newest, postgres.SchemaVersion)
	}
}

func exec(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryInt(t *testing.T, dsn, sql string, args ...any) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestOpen_SchemaVersion(t *testing.T) {
	db := pgtest.New(t)
	ctx := t.Context()

	exec(t, db.DSN, `UPDATE schema_version SET version = $1`, postgres.SchemaVersion+1)
	s, err := postgres.Open(ctx, db.DSN)
	if err != nil {
		t.Fatalf("Open on a newer schema: %v; want it accepted (expand-then-contract)", err)
	}
	s.Close()

	exec(t, db.DSN, `UPDATE schema_version SET version = $1`, postgres.SchemaVersion-1)
	_, err = postgres.Open(ctx, db.DSN)
	if !errors.Is(err, postgres.ErrSchemaOutdated) || !strings.Contains(err.Error(), "broker migrate") {
		t.Fatalf("Open on an older schema: %v; want %v, naming `broker migrate`", err, postgres.ErrSchemaOutdated)
	}

	exec(t, db.DSN, `DROP TABLE schema_version`)
	_, err = postgres.Open(ctx, db.DSN)
	if !errors.Is(err, postgres.ErrSchemaOutdated) {
		t.Fatalf("Open on an unmigrated schema: %v; want %v", err, postgres.ErrSchemaOutdated)
	}
}

func TestMigrate_Idempotent(t *testing.T) {
	db := pgtest.New(t)
	for range 2 {
		if err := postgres.Migrate(t.Context(), db.DSN); err != nil {
			t.Fatalf("Migrate on a migrated schema: %v", err)
		}
	}
}

// A DSN that sizes the pool migrates as it opens: pool settings stay with
// the client.
func TestMigrate_DSNWithPoolSettings(t *testing.T) {
	db := pgtest.New(t)
	dsn, err := pgtest.WithParam(db.DSN, "pool_max_conns", "4")
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(t.Context(), dsn); err != nil {
		t.Fatalf("Migrate with pool_max_conns: %v", err)
	}
	db.OpenDSN(t, dsn)
}

// Two Stores with nothing shared in Go, on one database, finish each
// other's work.
func TestTwoStoresOneDatabase(t *testing.T) {
	db := pgtest.New(t)
	a, b := db.Open(t), db.Open(t)
	ctx := t.Context()
	now := time.Now()

	res, err := a.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "auth0", Subject: "s", Email: "x@example.com", EmailVerified: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "auth0", Subject: "s", Now: now})
	if err != nil || again.User.ID != res.User.ID || again.Created {
		t.Fatalf("resolution at b = %+v, %v; want user %s", again, err, res.User.ID)
	}

	if err := a.CreateAuthRequest(ctx, storage.AuthRequest{ID: "ar", ClientID: "web", ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateAuthCode(ctx, storage.AuthCode{CodeHash: []byte("code"), UserID: res.User.ID, ExpiresAt: now.Add(time.Minute)}, "ar"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RedeemAuthCode(ctx, []byte("code"), "g1", now); err != nil {
		t.Fatalf("redeem at a: %v", err)
	}
	if c, err := b.RedeemAuthCode(ctx, []byte("code"), "g2", now); !errors.Is(err, storage.ErrCodeRedeemed) || c.GrantID != "g1" {
		t.Fatalf("second redemption at b = %q, %v; want g1, %v", c.GrantID, err, storage.ErrCodeRedeemed)
	}
}

// One bad user at the end of a large import leaves no trace of the rest.
func TestImportUsers_BadUserRollsBackEverything(t *testing.T) {
	db := pgtest.New(t)
	s := db.Open(t)
	ctx := t.Context()
	if _, err := s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "auth0", Subject: "taken", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	users := generateUsers(20000)
	users[len(users)-1].Identities[0].Subject = "taken"
	_, err := s.ImportUsers(ctx, users, time.Now())
	if !errors.Is(err, storage.ErrAlreadyExists) || !strings.Contains(err.Error(), users[len(users)-1].ID) {
		t.Fatalf("ImportUsers = %v; want %v naming %s", err, storage.ErrAlreadyExists, users[len(users)-1].ID)
	}
	if n := queryInt(t, db.DSN, `SELECT count(*) FROM users`); n != 1 {
		t.Fatalf("%d users after a failed import; want the 1 there before", n)
	}
	if n := queryInt(t, db.DSN, `SELECT count(*) FROM identities`); n != 1 {
		t.Fatalf("%d identities after a failed import; want 1", n)
	}
}

func generateUsers(n int) []storage.ImportUser {
	users := make([]storage.ImportUser, n)
	for i := range users {
		users[i] = storage.ImportUser{
			ID:            fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i),
			Email:         fmt.Sprintf("user%d@example.com", i),
			EmailVerified: true,
			Name:          fmt.Sprintf("User %d", i),
			Identities:    []storage.ImportIdentity{{Connector: "auth0", Subject: fmt.Sprintf("auth0|%d", i)}},
		}
	}
	return users
}

func BenchmarkImportUsers100k(b *testing.B) {
	users := generateUsers(100000)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := pgtest.NewStore(b)
		b.StartTimer()
		res, err := s.ImportUsers(context.Background(), users, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if res.UsersCreated != len(users) {
			b.Fatalf("created %d users; want %d", res.UsersCreated, len(users))
		}
	}
	b.ReportMetric(float64(len(users)*b.N)/b.Elapsed().Seconds(), "users/s")
}

// The token-exchange hot path: a known identity, unchanged and resolved
// within storage.LastLoginGranularity, from many goroutines at once.
func BenchmarkResolveIdentityKnown(b *testing.B) {
	benchmarkResolveKnown(b, pgtest.NewStore(b))
}

// The first-time path of token exchange: an identity nobody holds, with a
// verified email nobody owns, from many goroutines at once. Each creates
// one user, committed durably; 16 at a time, as brokerload's workers.
func BenchmarkResolveIdentityNew(b *testing.B) {
	s := pgtest.NewStore(b)
	var n atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sub := fmt.Sprintf("new-%d", n.Add(1))
			if _, err := s.ResolveIdentity(context.Background(), storage.ResolveRequest{
				Connector: "auth0", Subject: sub, Email: sub + "@example.com", EmailVerified: true,
				LinkByEmail: true, Now: time.Now(),
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// What every token-accepting endpoint asks, from many goroutines at once.
func BenchmarkAccessTokenUser(b *testing.B) {
	s := pgtest.NewStore(b)
	now := time.Now()
	res, err := s.ResolveIdentity(context.Background(), storage.ResolveRequest{Connector: "auth0", Subject: "s", Now: now})
	if err != nil {
		b.Fatal(err)
	}
	ref := storage.AccessTokenRef{ID: "g.jti", GrantID: "g", UserID: res.User.ID, IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.AccessTokenUser(context.Background(), ref); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// A binary older than schema 6 knows nothing of browser_hash: it inserts
// without it and rewrites data (without the field) when it updates a
// request. The binding a schema-6 binary stored survives such an update,
// and a request the older binary created reads as unbound.
func TestAuthRequest_BindingSurvivesAnOlderBinary(t *testing.T) {
	db := pgtest.New(t)
	s := db.Open(t)
	ctx := t.Context()
	now := time.Now()
	bound := storage.AuthRequest{ID: "bound", ClientID: "web", CreatedAt: now, ExpiresAt: now.Add(time.Minute), BrowserHash: []byte("hash")}
	if err := s.CreateAuthRequest(ctx, bound); err != nil {
		t.Fatal(err)
	}
	// What an older binary's UpdateAuthRequest writes.
	exec(t, db.DSN, `UPDATE auth_requests SET data = jsonb_set(data - 'BrowserHash', '{LoginHint}', '"ada@example.com"') WHERE id = 'bound'`)
	got, err := s.GetAuthRequest(ctx, "bound")
	if err != nil || string(got.BrowserHash) != "hash" || got.LoginHint != "ada@example.com" {
		t.Fatalf("after an older binary's update: %+v, %v; want the binding kept", got, err)
	}
	// What an older binary's CreateAuthRequest writes.
	exec(t, db.DSN, `INSERT INTO auth_requests (id, expires_at, data) VALUES ('old', now() + interval '1 minute', '{"ID":"old","ClientID":"web"}')`)
	got, err = s.GetAuthRequest(ctx, "old")
	if err != nil || got.BrowserHash != nil {
		t.Fatalf("a request an older binary created: %+v, %v; want it unbound", got, err)
	}
}
