package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/idbroker/broker/internal/testenv"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/storage/postgres/pgtest"
)

func envFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveInBackground runs `broker serve args...` until the test ends and
// waits until it answers at addr.
func serveInBackground(t *testing.T, addr string, env map[string]string, args ...string) (*testenv.SyncBuffer, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testenv.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), logs, logs, envFrom(env)) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return logs, done
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer: %s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServe_DevelopmentInstanceAndGracefulShutdown(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testenv.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, logs, logs, envFrom(map[string]string{"BROKER_ADDR": addr}))
	}()
	var disc *http.Response
	for range 200 {
		var err error
		if disc, err = http.Get("http://" + addr + "/.well-known/openid-configuration"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if disc == nil || disc.StatusCode != http.StatusOK {
		t.Fatalf("development instance did not serve discovery: %s", logs)
	}
	disc.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
	out := logs.String()
	for _, want := range []string{"ephemeral root secret", "development instance", "stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func writeConfig(t *testing.T, addr, dsn string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broker.yaml")
	cfg := fmt.Sprintf(`issuer: http://%s
http: { addr: %q }
storage: { type: postgres, dsn: "${DATABASE_URL}" }
connectors:
  - { id: otp, type: otp }
clients:
  - { id: web, public: true, redirectURIs: ["http://127.0.0.1:3000/cb"] }
`, addr, addr)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// emptySchemaDSN points at a schema that does not exist on the test
// server: a database nobody has migrated.
func emptySchemaDSN(t *testing.T) string {
	t.Helper()
	db := pgtest.New(t)
	dsn, err := pgtest.WithParam(db.AdminDSN, "search_path", pgtest.RandomName("broker_empty_"))
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

func TestServe_RefusesAnOutdatedSchema(t *testing.T) {
	dsn := emptySchemaDSN(t)
	addr := freeAddr(t)
	cfg := writeConfig(t, addr, dsn)
	env := envFrom(map[string]string{"DATABASE_URL": dsn, "BROKER_SECRET": secretForTest})
	var out testenv.SyncBuffer
	err := run(context.Background(), []string{"serve", "--config", cfg}, &out, &out, env)
	if err == nil || !strings.Contains(err.Error(), "broker migrate") {
		t.Fatalf("serve on an unmigrated database: %v", err)
	}
}

const secretForTest = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func TestServe_MigrateFlagAndPostgres(t *testing.T) {
	db := pgtest.New(t)
	addr := freeAddr(t)
	cfg := writeConfig(t, addr, db.DSN)
	serveInBackground(t, addr, map[string]string{"DATABASE_URL": db.DSN, "BROKER_SECRET": secretForTest}, "--config", cfg, "--migrate")
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz on postgres: %d", resp.StatusCode)
	}
}

func TestUsers_ImportIsIdempotentAllOrNothingAndNamesTheLine(t *testing.T) {
	db := pgtest.New(t)
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN})
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	os.WriteFile(good, []byte(`{"id":"7f1c1f6e-3b7a-4c57-9d0e-1a2b3c4d5e6f","email":"Ada@Example.com","email_verified":true,"name":"Ada","identities":[{"connector":"auth0","subject":"auth0|ada"}]}

{"id":"0b6a3d8e-1111-4222-8333-444455556666","email":"bob@example.com","name":"Bob"}
`), 0o600)
	var out testenv.SyncBuffer
	if err := run(context.Background(), []string{"users", "import", "--config", cfg, good}, &out, &out, env); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "2 users and 1 identities created") {
		t.Errorf("first import: %s", out.String())
	}
	out = testenv.SyncBuffer{}
	if err := run(context.Background(), []string{"users", "import", "--config", cfg, good}, &out, &out, env); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 users and 0 identities created") {
		t.Errorf("second import changed something: %s", out.String())
	}

	for name, tc := range map[string]struct{ content, want string }{
		"bad id": {`{"id":"11111111-1111-4111-8111-111111111111","email":"c@example.com"}
{"id":"nope","email":"d@example.com"}`, "line 2: id"},
		"unknown field": {`{"id":"11111111-1111-4111-8111-111111111111","emial":"c@example.com"}`, "line 1"},
		"taken email": {`{"id":"11111111-1111-4111-8111-111111111111","email":"c@example.com"}
{"id":"22222222-1111-4111-8111-111111111111","email":"ada@example.com","email_verified":true}`, "line 2: email"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".jsonl")
		os.WriteFile(path, []byte(tc.content), 0o600)
		err := run(context.Background(), []string{"users", "import", "--config", cfg, path}, &out, &out, env)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was imported") {
			t.Errorf("%s: %v, want it to name %q", name, err, tc.want)
		}
	}
	out = testenv.SyncBuffer{}
	if err := run(context.Background(), []string{"users", "show", "--config", cfg, "c@example.com"}, &out, &out, env); err == nil {
		t.Error("a user from a failed import exists")
	}
	if err := run(context.Background(), []string{"users", "show", "--config", cfg, "ADA@example.com"}, &out, &out, env); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"7f1c1f6e-3b7a-4c57-9d0e-1a2b3c4d5e6f", "auth0|ada", "email_verified: true"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("users show lacks %q: %s", want, out.String())
		}
	}
}

func TestAdminCommands_NeedPostgres(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mem.yaml")
	os.WriteFile(path, []byte("storage: { type: memory }\n"), 0o600)
	err := run(context.Background(), []string{"users", "show", "--config", path, "a@example.com"}, &bytes.Buffer{}, &bytes.Buffer{}, envFrom(nil))
	if err == nil || !strings.Contains(err.Error(), "postgres") {
		t.Fatalf("admin command on memory storage: %v", err)
	}
}
