package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// A replay that revokes a grant while the winner's family is being
// created, its transaction begun and not yet committed, must not miss the
// family. Here the creation is held mid-transaction by a lock on
// refresh_tokens taken from another connection, as a slow disk or a busy
// table would hold it, and the revocation runs meanwhile.
func TestRevokeGrantDuringFamilyCreation(t *testing.T) {
	db := pgtest.New(t)
	s := db.Open(t)
	ctx := t.Context()
	createBenchUser(t, s)
	locker, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(context.Background())
	lock, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `LOCK TABLE refresh_tokens IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	token := randomHash()
	created := make(chan error, 1)
	go func() { created <- s.CreateRefreshFamily(ctx, benchFamily("fam", now), token) }()
	waitForLockWaits(t, locker, 1)
	endDuringHeldCreation(t, s, lock, created, token, now, "RevokeGrant", func() error {
		return s.RevokeGrant(ctx, "fam", now.Add(time.Hour))
	})
}

// endDuringHeldCreation runs end while a family's creation, reported on
// created, is held behind lock; lets end finish or start waiting for the
// creation; lets the creation go on; and fails the test unless, both
// done, the family's token is refused.
func endDuringHeldCreation(t *testing.T, s *postgres.Store, lock pgx.Tx, created <-chan error, token []byte, now time.Time, what string, end func() error) {
	t.Helper()
	ended := make(chan error, 1)
	go func() { ended <- end() }()
	select {
	case err := <-ended:
		ended <- err
	case <-time.After(300 * time.Millisecond):
	}
	if err := lock.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-created; err != nil && !errors.Is(err, storage.ErrRevoked) {
		t.Fatalf("CreateRefreshFamily: %v", err)
	}
	if err := <-ended; err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	_, err := s.RotateRefreshToken(t.Context(), storage.RotateRequest{TokenHash: token, SuccessorHash: randomHash(), Now: now})
	if !errors.Is(err, storage.ErrRevoked) && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("rotate the family's token after %s: %v; want %v or %v", what, err, storage.ErrRevoked, storage.ErrNotFound)
	}
}

// waitForLockWaits waits until n backends wait for a lock on a table of
// conn's schema.
func waitForLockWaits(t *testing.T, conn *pgx.Conn, n int) {
	t.Helper()
	for range 200 {
		var waiting int
		if err := conn.QueryRow(t.Context(), `
			SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE NOT l.granted AND c.relnamespace = current_schema()::regnamespace`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %d backends waiting for a lock", n)
}

// benchUserID is the user of benchFamily's families, whom
// createBenchUser creates: a family is only created for a user who is
// there.
const benchUserID = "4f9e6c1a-8d2b-4c7e-9a3f-0b1c2d3e4f50"

func createBenchUser(t testing.TB, s storage.Storage) {
	t.Helper()
	if _, err := s.ResolveIdentity(context.Background(), storage.ResolveRequest{
		Connector: "otp", Subject: "bench@example.com", UserID: benchUserID, Now: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
}

func benchFamily(id string, now time.Time) storage.RefreshFamily {
	return storage.RefreshFamily{
		ID: id, ClientID: "web", UserID: benchUserID,
		Scopes: []string{"openid", "offline_access"}, AuthTime: now, AMR: []string{"otp"}, IDP: "otp",
		UpstreamCheckedAt: now, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: now.Add(720 * time.Hour), IdleTimeout: 24 * time.Hour,
	}
}

func randomHash() []byte {
	h := make([]byte, 32)
	rand.Read(h)
	return h
}

// The code path's write: a code with offline_access starts a family,
// from many goroutines at once.
func BenchmarkCreateRefreshFamily(b *testing.B) {
	s := pgtest.NewStore(b)
	createBenchUser(b, s)
	now := time.Now()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("fam-%d", n.Add(1))
			if err := s.CreateRefreshFamily(context.Background(), benchFamily(id, now), randomHash()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// The refresh path's write: each goroutine rotates its own family's
// current token, as clients refreshing at once do.
func BenchmarkRotateRefreshToken(b *testing.B) {
	s := pgtest.NewStore(b)
	createBenchUser(b, s)
	now := time.Now()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("fam-%d", n.Add(1))
		current := randomHash()
		if err := s.CreateRefreshFamily(context.Background(), benchFamily(id, now), current); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			next := randomHash()
			if _, err := s.RotateRefreshToken(context.Background(), storage.RotateRequest{
				TokenHash: current, SuccessorHash: next, RetryWindow: 2 * time.Second, Now: now,
			}); err != nil {
				b.Error(err)
				return
			}
			current = next
		}
	})
}
