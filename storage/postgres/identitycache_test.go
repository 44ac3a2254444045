package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// A store that cannot hear changes (its listening session never
// connects) still sees, on its next resolution, a user another store
// disabled, enabled or deleted: it reads every time.
func TestResolveIdentity_DeafStoreReadsEveryTime(t *testing.T) {
	db := pgtest.New(t)
	writer := db.Open(t)
	deaf := openDeaf(t, db)
	ctx := context.Background()
	req := storage.ResolveRequest{Connector: "auth0", Subject: "deaf", Now: time.Now()}
	res, err := deaf.ResolveIdentity(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := deaf.ResolveIdentity(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := writer.SetUserDisabled(ctx, res.User.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := deaf.ResolveIdentity(ctx, req); err != storage.ErrUserDisabled {
		t.Fatalf("disabled user resolved: %v", err)
	}
	if err := writer.DeleteUser(ctx, res.User.ID); err != nil {
		t.Fatal(err)
	}
	again, err := deaf.ResolveIdentity(ctx, req)
	if err != nil || again.User.ID == res.User.ID || !again.Created {
		t.Fatalf("deleted user resolved: %+v, %v", again, err)
	}
}

// A store that hears changes sees them too, from its next resolution
// after the change's notice arrives: the notice comes within milliseconds.
func TestResolveIdentity_ListeningStoreHearsADisable(t *testing.T) {
	db := pgtest.New(t)
	writer, reader := db.Open(t), db.Open(t)
	ctx := context.Background()
	req := storage.ResolveRequest{Connector: "auth0", Subject: "heard", Now: time.Now()}
	res, err := reader.ResolveIdentity(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.SetUserAdmin(ctx, res.User.ID, true); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		got, err := reader.ResolveIdentity(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got.User.Admin {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the admin role was not heard within a second")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openDeaf opens a store on db whose listening session cannot connect.
func openDeaf(t testing.TB, db *pgtest.Schema) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), db.DSN, postgres.ListenDSN("postgres://nobody@127.0.0.1:1/none?connect_timeout=1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkResolveIdentityKnown's path on a store that cannot hear
// changes: one read per resolution, what the cache saves.
func BenchmarkResolveIdentityKnownDeaf(b *testing.B) {
	benchmarkResolveKnown(b, openDeaf(b, pgtest.New(b)))
}

// benchmarkResolveKnown resolves one known identity, unchanged and within
// storage.LastLoginGranularity, from many goroutines at once.
func benchmarkResolveKnown(b *testing.B, s *postgres.Store) {
	req := storage.ResolveRequest{Connector: "auth0", Subject: "s", Email: "x@example.com", EmailVerified: true, Name: "X", Now: time.Now()}
	if _, err := s.ResolveIdentity(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.ResolveIdentity(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
