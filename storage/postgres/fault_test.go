package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// killer terminates, from a connection of its own, every backend of the
// server whose application_name is app.
type killer struct {
	conn *pgx.Conn
	app  string
}

func newKiller(t *testing.T, db *pgtest.Schema, app string) *killer {
	conn, err := pgx.Connect(t.Context(), db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &killer{conn: conn, app: app}
}

func (k *killer) kill(ctx context.Context) (int, error) {
	var n int
	err := k.conn.QueryRow(ctx, `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND pid <> pg_backend_pid()`, k.app).Scan(&n)
	return n, err
}

// openKillable opens a Store whose connections the returned killer can
// terminate.
func openKillable(t *testing.T) (*pgtest.Schema, *killer, storage.Storage) {
	db := pgtest.New(t)
	app := pgtest.RandomName("broker_fault_")
	dsn, err := pgtest.WithParam(db.DSN, "application_name", app)
	if err != nil {
		t.Fatal(err)
	}
	return db, newKiller(t, db, app), db.OpenDSN(t, dsn)
}

// recovered waits, briefly, for the store to answer again after its
// connections were killed: a pool may hand out one dead connection before
// it notices.
func recovered(t *testing.T, s storage.Storage) {
	t.Helper()
	var err error
	for range 5 {
		if err = s.Ping(t.Context()); err == nil {
			return
		}
	}
	t.Fatalf("store did not recover: %v", err)
}

// A transaction whose connection dies half-way leaves nothing behind.
func TestFault_KilledInsideTransaction(t *testing.T) {
	_, k, s := openKillable(t)
	ctx := t.Context()
	_, err := s.UpdateSigningKeys(ctx, func(ks []storage.SigningKey) ([]storage.SigningKey, error) {
		if n, err := k.kill(ctx); err != nil || n == 0 {
			t.Errorf("killed %d backends: %v", n, err)
		}
		return append(ks, storage.SigningKey{ID: "k1", Algorithm: "ES256", Use: "access_token"}), nil
	})
	if err == nil {
		t.Fatal("UpdateSigningKeys succeeded on a killed connection")
	}
	recovered(t, s)
	keys, err := s.ListSigningKeys(ctx)
	if err != nil || len(keys) != 0 {
		t.Fatalf("keys after the failed update: %+v, %v; want none", keys, err)
	}
	if _, err := s.UpdateSigningKeys(ctx, func(ks []storage.SigningKey) ([]storage.SigningKey, error) {
		return append(ks, storage.SigningKey{ID: "k1", Algorithm: "ES256", Use: "access_token"}), nil
	}); err != nil {
		t.Fatalf("UpdateSigningKeys after recovery: %v", err)
	}
}

// Connections killed again and again under a load of first logins and an
// import: every failure is an error, not a panic; no user is left without
// its identity; the import is all or nothing; the store works afterwards.
func TestFault_KilledUnderLoad(t *testing.T) {
	db, k, s := openKillable(t)
	ctx := t.Context()

	stop := make(chan struct{})
	var kills atomic.Int64
	var killerDone sync.WaitGroup
	killerDone.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			n, err := k.kill(ctx)
			if err != nil {
				t.Errorf("kill: %v", err)
				return
			}
			kills.Add(int64(n))
		}
	})

	const workers, perWorker = 8, 40
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				_, err := s.ResolveIdentity(ctx, storage.ResolveRequest{
					Connector: "auth0", Subject: fmt.Sprintf("w%d-%d", w, i),
					Email: fmt.Sprintf("w%d-%d@example.com", w, i), EmailVerified: true, LinkByEmail: true, Now: time.Now(),
				})
				if err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	users := generateUsers(30000)
	var importErr error
	wg.Go(func() { _, importErr = s.ImportUsers(ctx, users, time.Now()) })
	wg.Wait()
	close(stop)
	killerDone.Wait()

	t.Logf("%d backends killed; %d resolutions succeeded, %d failed; import: %v", kills.Load(), ok.Load(), failed.Load(), importErr)
	if kills.Load() == 0 || failed.Load() == 0 {
		t.Fatalf("the test killed %d backends and failed %d calls: it proved nothing", kills.Load(), failed.Load())
	}
	recovered(t, s)

	if n := queryInt(t, db.DSN, `SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id)`); n != 0 {
		t.Fatalf("%d users without an identity: a resolution was half written", n)
	}
	imported := queryInt(t, db.DSN, `SELECT count(*) FROM users WHERE email LIKE 'user%@example.com'`)
	if want := map[bool]int{true: len(users), false: 0}[importErr == nil]; imported != want {
		t.Fatalf("%d imported users after import error %v; want %d", imported, importErr, want)
	}

	// Afterwards, everything works, including the calls that failed.
	for w := range workers {
		for i := range perWorker {
			if _, err := s.ResolveIdentity(ctx, storage.ResolveRequest{
				Connector: "auth0", Subject: fmt.Sprintf("w%d-%d", w, i),
				Email: fmt.Sprintf("w%d-%d@example.com", w, i), EmailVerified: true, LinkByEmail: true, Now: time.Now(),
			}); err != nil {
				t.Fatalf("resolution after recovery: %v", err)
			}
		}
	}
	if n := queryInt(t, db.DSN, `SELECT count(*) FROM identities WHERE subject LIKE 'w%'`); n != workers*perWorker {
		t.Fatalf("%d identities; want %d", n, workers*perWorker)
	}
	if _, err := s.ImportUsers(ctx, users, time.Now()); err != nil {
		t.Fatalf("import after recovery: %v", err)
	}
}

// A server that ended every session while the pools held them idle (a
// restart, a failover) costs no request: the first statement to meet a dead
// connection drops every pooled one, and an operation that is safe to run
// again (a resolution, a transaction that never began) runs again on a new
// connection.
func TestFault_SessionsEndedWhileIdleCostNoRequest(t *testing.T) {
	_, k, s := openKillable(t)
	ctx := t.Context()
	resolve := func(subject, name string) error {
		_, err := s.ResolveIdentity(ctx, storage.ResolveRequest{
			Connector: "auth0", Subject: subject, Email: subject + "@example.com", Name: name,
			EmailVerified: true, LinkByEmail: true, Now: time.Now(),
		})
		return err
	}
	// Several connections in each pool: new identities go through the
	// durable pool, known ones are read through the hot pool.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if err := resolve(fmt.Sprintf("warm-%d", i), "Warm"); err != nil {
				t.Errorf("warm-up: %v", err)
			}
		})
	}
	wg.Wait()
	if n, err := k.kill(ctx); err != nil || n == 0 {
		t.Fatalf("killed %d backends: %v", n, err)
	}
	time.Sleep(50 * time.Millisecond) // the backends exit

	errs := make(chan error, 32)
	for i := range 16 {
		wg.Go(func() { errs <- resolve(fmt.Sprintf("new-%d", i), "New") })
		wg.Go(func() { errs <- resolve(fmt.Sprintf("warm-%d", i), "Renamed") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("resolution after the server ended its sessions: %v", err)
		}
	}
	if _, err := s.ImportUsers(ctx, generateUsers(10), time.Now()); err != nil {
		t.Errorf("import after the server ended its sessions: %v", err)
	}

	// A readiness check after a restart says ready at once.
	if n, err := k.kill(ctx); err != nil || n == 0 {
		t.Fatalf("killed %d backends: %v", n, err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Ping(ctx); err != nil {
		t.Errorf("ping after the server ended its sessions: %v", err)
	}
}
