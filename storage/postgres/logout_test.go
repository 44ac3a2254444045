package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// A logout, or a user's disabling, revocation or deletion, that runs
// while a family of theirs is being created, its transaction begun and
// its rows written but not committed, must not miss the family. Here the
// creation is held mid-statement, after it has read its session and
// user, by another connection's uncommitted row under the token hash the
// creation inserts last; the ending runs meanwhile, and the creation then
// commits. The conformance suite's held rounds cover the other order,
// the creation beginning after the ending committed.
func TestEndingDuringFamilyCreation(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(ctx context.Context, s *postgres.Store, userID, sid string, now time.Time) error
	}{
		{"EndSession", func(ctx context.Context, s *postgres.Store, userID, sid string, now time.Time) error {
			_, err := s.EndSession(ctx, sid)
			return err
		}},
		{"DisableUser", func(ctx context.Context, s *postgres.Store, userID, sid string, now time.Time) error {
			if err := s.SetUserDisabled(ctx, userID, true); err != nil {
				return err
			}
			return s.RevokeUserTokens(ctx, userID, now)
		}},
		{"DeleteUser", func(ctx context.Context, s *postgres.Store, userID, sid string, now time.Time) error {
			return s.DeleteUser(ctx, userID)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := pgtest.New(t)
			s := db.Open(t)
			ctx := t.Context()
			now := time.Now().UTC().Truncate(time.Second)
			res, err := s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "otp", Subject: "sam@example.com", Now: now})
			if err != nil {
				t.Fatal(err)
			}
			uid := res.User.ID
			if err := s.CreateSession(ctx, storage.Session{ID: "sess", UserID: uid, AuthTime: now, CreatedAt: now,
				ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			blocker := benchFamily("blocker", now)
			blocker.UserID = uid
			if err := s.CreateRefreshFamily(ctx, blocker, randomHash()); err != nil {
				t.Fatal(err)
			}

			token := randomHash()
			locker, err := pgx.Connect(ctx, db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer locker.Close(context.Background())
			lock, err := locker.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Rollback(context.Background())
			if _, err := lock.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, family_id) VALUES ($1, 'blocker')`, token); err != nil {
				t.Fatal(err)
			}

			fam := benchFamily("fam", now)
			fam.UserID, fam.SessionID = uid, "sess"
			created := make(chan error, 1)
			go func() { created <- s.CreateRefreshFamily(ctx, fam, token) }()
			waitForBlocked(t, locker)
			endDuringHeldCreation(t, s, lock, created, token, now, c.name, func() error {
				return c.end(ctx, s, uid, "sess", now)
			})
		})
	}
}

// waitForBlocked waits until a backend waits for conn's transaction.
func waitForBlocked(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for range 200 {
		var waiting int
		if err := conn.QueryRow(t.Context(), `
			SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid))`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("nothing waits for the blocking transaction")
}
