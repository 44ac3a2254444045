package main

import (
	"context"
	"strings"
	"testing"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

func TestConnectors_CLIManagesStoredConnectors(t *testing.T) {
	db := pgtest.New(t)
	auth0 := testenv.NewAuth0(t)
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN, "BROKER_SECRET": secretForTest})
	cli := cliWith(cfg, env)
	settings := `{"issuer": "` + auth0.Issuer + `", "clientID": "` + auth0.ClientID + `", "clientSecret": "` + auth0.ClientSecret + `"}`
	out, err := cli("connectors", "create", "--type", "auth0", "--name", "Acme", "--settings", settings, "acme")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	if !strings.Contains(out, `"source": "storage"`) || !strings.Contains(out, `"clientSecret": "(set)"`) || strings.Contains(out, auth0.ClientSecret) {
		t.Errorf("create printed:\n%s", out)
	}
	// Settings without the secret keep it.
	if out, err := cli("connectors", "update", "--settings", `{"issuer": "`+auth0.Issuer+`", "clientID": "`+auth0.ClientID+`", "trustEmail": true}`, "acme"); err != nil || !strings.Contains(out, `"trustEmail": true`) {
		t.Errorf("update: %v\n%s", err, out)
	}
	if out, err := cli("connectors", "test", "acme"); err != nil {
		t.Errorf("test: %v\n%s", err, out)
	}
	if out, err := cli("connectors", "disable", "acme"); err != nil || !strings.Contains(out, `"disabled": true`) {
		t.Errorf("disable: %v\n%s", err, out)
	}
	if _, err := cli("connectors", "create", "--type", "auth0", "--settings", `{"issuer": "http://127.0.0.1:1/", "clientID": "c", "clientSecret": "s"}`, "down"); err == nil || !strings.Contains(err.Error(), "settings.issuer") {
		t.Errorf("create of an unreachable upstream: %v", err)
	}
	if out, err := cli("connectors", "delete", "acme"); err != nil {
		t.Errorf("delete: %v\n%s", err, out)
	}
	if _, err := cli("connectors", "show", "acme"); err == nil {
		t.Error("show after delete succeeded")
	}
}

// cliWith runs `broker <command> <subcommand> --config cfg args...` with
// env, and returns what it printed.
func cliWith(cfg string, env func(string) (string, bool)) func(args ...string) (string, error) {
	return func(args ...string) (string, error) {
		var out testenv.SyncBuffer
		err := run(context.Background(), append(args[:2:2], append([]string{"--config", cfg}, args[2:]...)...), &out, &out, env)
		return out.String(), err
	}
}
