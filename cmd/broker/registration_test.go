package main

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

var registrationTokenLine = regexp.MustCompile(`(?m)^token: (\S+)`)
var registrationTokenID = regexp.MustCompile(`(?m)^id: (\S+)`)

// register posts a minimal public client's metadata to the replica's
// /register with the initial access token and returns the status.
func (r replica) register(t *testing.T, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.url+"/register",
		strings.NewReader(`{"redirect_uris":["http://127.0.0.1:7777/cb"],"token_endpoint_auth_method":"none"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRegistrationTokens_CreatedListedAndRevokedByTheCLI(t *testing.T) {
	db := pgtest.New(t)
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("registration: { policy: token }\n")
	f.Close()
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN, "BROKER_SECRET": secretForTest})
	must := func(args ...string) string {
		t.Helper()
		var out testenv.SyncBuffer
		if err := run(context.Background(), args, &out, &out, env); err != nil {
			t.Fatalf("broker %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	r := startReplica(t, db, cfg, env)

	out := must("registration-tokens", "create", "--config", cfg, "--note", "for the IDE team", "--max-uses", "2", "--expires-in", "24h")
	token, id := registrationTokenLine.FindStringSubmatch(out), registrationTokenID.FindStringSubmatch(out)
	if token == nil || id == nil {
		t.Fatalf("create printed no token or id:\n%s", out)
	}
	if got := r.register(t, token[1]); got != http.StatusCreated {
		t.Fatalf("registration with the CLI's token: status %d, want 201", got)
	}
	out = must("registration-tokens", "list", "--config", cfg)
	if !strings.Contains(out, id[1]) || !strings.Contains(out, "for the IDE team") || !regexp.MustCompile(id[1]+`.*\s1\s+2\s`).MatchString(out) {
		t.Errorf("list does not show the token with one use of two:\n%s", out)
	}
	if strings.Contains(out, token[1]) {
		t.Errorf("list shows the token itself:\n%s", out)
	}
	if out := must("clients", "list", "--config", cfg); !regexp.MustCompile(`reg-\S+.*true\s+true`).MatchString(out) {
		t.Errorf("clients list does not show the registered client as third-party and registered:\n%s", out)
	}

	must("registration-tokens", "revoke", "--config", cfg, id[1])
	if got := r.register(t, token[1]); got != http.StatusUnauthorized {
		t.Fatalf("registration with a revoked token: status %d, want 401", got)
	}
}
