package main

import (
	"context"
	"encoding/json"
	"github.com/idbroker/broker/internal/testenv"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// replica is a broker over the test schema, served over HTTP.
type replica struct{ url string }

func startReplica(t *testing.T, db *pgtest.Schema, cfgPath string, env func(string) (string, bool)) replica {
	t.Helper()
	cfg, err := broker.LoadConfig(cfgPath, env)
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := broker.RootSecretFromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(context.Background(), cfg, broker.Options{Storage: db.Open(t), Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.Handler())
	t.Cleanup(srv.Close)
	return replica{url: srv.URL}
}

// clientCredentials asks the replica for a token and returns the status
// and the error code, if any.
func (r replica) clientCredentials(t *testing.T, id, secret string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.url+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error
}

var secretLine = regexp.MustCompile(`client_secret: (\S+)`)

func TestClients_CreatedByTheCLIWorkAtOnceOnEveryReplica(t *testing.T) {
	db := pgtest.New(t)
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN, "BROKER_SECRET": secretForTest})
	a, b := startReplica(t, db, cfg, env), startReplica(t, db, cfg, env)
	cli := func(args ...string) string {
		t.Helper()
		var out testenv.SyncBuffer
		if err := run(context.Background(), args, &out, &out, env); err != nil {
			t.Fatalf("broker %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	secretIn := func(out string) string {
		t.Helper()
		m := secretLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no secret printed: %s", out)
		}
		return m[1]
	}

	out := cli("clients", "create", "--config", cfg, "--grant", "client_credentials", "--audience", "https://api.example.com", "--scope", "read", "svc")
	first := secretIn(out)
	for _, r := range []replica{a, b} {
		if status, code := r.clientCredentials(t, "svc", first); status != http.StatusOK {
			t.Fatalf("new client on a running replica: %d %s", status, code)
		}
	}
	if out := cli("clients", "show", "--config", cfg, "svc"); strings.Contains(out, first) || !strings.Contains(out, "service_user_id:") {
		t.Errorf("clients show: %s", out)
	}
	if out := cli("clients", "list", "--config", cfg); !strings.Contains(out, "svc") {
		t.Errorf("clients list: %s", out)
	}

	// Rotation with a grace period: both secrets work, on both replicas.
	second := secretIn(cli("clients", "rotate-secret", "--config", cfg, "--grace", "24h", "svc"))
	for _, r := range []replica{a, b} {
		for _, s := range []string{first, second} {
			if status, code := r.clientCredentials(t, "svc", s); status != http.StatusOK {
				t.Errorf("during the grace period: %d %s", status, code)
			}
		}
	}
	// Rotation without one: only the newest works.
	third := secretIn(cli("clients", "rotate-secret", "--config", cfg, "svc"))
	for _, s := range []string{first, second} {
		if status, _ := b.clientCredentials(t, "svc", s); status != http.StatusUnauthorized {
			t.Errorf("a secret rotated out without grace: %d", status)
		}
	}
	if status, code := a.clientCredentials(t, "svc", third); status != http.StatusOK {
		t.Errorf("newest secret: %d %s", status, code)
	}

	cli("clients", "update", "--config", cfg, "--scope", "read", "--scope", "write", "svc")
	if out := cli("clients", "show", "--config", cfg, "svc"); !strings.Contains(out, "read write") {
		t.Errorf("after update: %s", out)
	}
	// A config client's id cannot be taken in storage.
	var sink testenv.SyncBuffer
	if err := run(context.Background(), []string{"clients", "create", "--config", cfg, "web"}, &sink, &sink, env); err == nil {
		t.Error("created a stored client with a config client's id")
	}

	// Disabling the service user stops the client.
	svcUser := regexp.MustCompile(`service_user_id:\s+(\S+)`).FindStringSubmatch(cli("clients", "show", "--config", cfg, "svc"))[1]
	cli("users", "disable", "--config", cfg, svcUser)
	if status, code := a.clientCredentials(t, "svc", third); code != "invalid_grant" {
		t.Errorf("client of a disabled service user: %d %s", status, code)
	}
	if err := run(context.Background(), []string{"users", "delete", "--config", cfg, svcUser}, &sink, &sink, env); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("users delete without --yes: %v", err)
	}
	cli("users", "delete", "--config", cfg, "--yes", svcUser)
	if out := cli("users", "list", "--config", cfg); strings.Contains(out, svcUser) {
		t.Errorf("deleted user listed: %s", out)
	}

	cli("clients", "delete", "--config", cfg, "svc")
	if status, _ := b.clientCredentials(t, "svc", third); status != http.StatusUnauthorized {
		t.Errorf("deleted client: %d", status)
	}

	store := db.Open(t)
	events, err := store.ListAudit(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		if e.Actor != admin.ActorCLI {
			t.Errorf("audit actor %q, want cli", e.Actor)
		}
		actions = append(actions, e.Action)
	}
	// ListAudit gives the newest first.
	want := "client.delete user.delete user.disable client.update client.rotate-secret client.rotate-secret client.create"
	if got := strings.Join(actions, " "); !containsInOrder(got, want) {
		t.Errorf("audit actions %q, want %q", got, want)
	}
}

// containsInOrder reports whether the words of want appear in got in order.
func containsInOrder(got, want string) bool {
	g := strings.Fields(got)
	for _, w := range strings.Fields(want) {
		i := 0
		for i < len(g) && g[i] != w {
			i++
		}
		if i == len(g) {
			return false
		}
		g = g[i+1:]
	}
	return true
}

func TestServe_RefusesAClientInBothConfigAndStorage(t *testing.T) {
	db := pgtest.New(t)
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN, "BROKER_SECRET": secretForTest})
	c, err := broker.LoadConfig(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	store := db.Open(t)
	if _, _, err := broker.NewAdmin(broker.Config{}, store, nil).CreateClient(context.Background(), "test", admin.ClientSpec{ID: "web", Public: true}); err != nil {
		t.Fatal(err)
	}
	secret, _, _ := broker.RootSecretFromEnv(env)
	_, err = broker.New(context.Background(), c, broker.Options{Storage: store, Secret: secret})
	if err == nil || !strings.Contains(err.Error(), `"web"`) {
		t.Fatalf("broker.New with client web in config and storage: %v", err)
	}
}

func TestClients_CLISetsEveryFieldOfTheClientModel(t *testing.T) {
	db := pgtest.New(t)
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN, "BROKER_SECRET": secretForTest})
	cli := cliWith(cfg, env)
	out, err := cli("clients", "create", "--grant", "token-exchange", "--audience", "https://api.example.com",
		"--actor", "client:agent", "--backchannel-logout-uri", "https://agent.example.com/bc", "--id-token-alg", "RS256",
		"--id-jag-audience", "https://chat.example.com", "agent")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	for _, want := range []string{"actors: client:agent", "backchannel_logout_uri: https://agent.example.com/bc", "id_token_signed_response_alg: RS256",
		"id_jag_audiences: https://chat.example.com"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("create printed no %q:\n%s", want, out)
		}
	}
	if out, err := cli("clients", "update", "--actor", "client:other", "agent"); err != nil || !strings.Contains(out, "client:other") || strings.Contains(out, "client:agent") {
		t.Errorf("update --actor replaces the list: %v\n%s", err, out)
	}
	if out, err := cli("clients", "update", "--id-jag-audience", "https://wiki.example.com", "agent"); err != nil ||
		!strings.Contains(out, "https://wiki.example.com") || strings.Contains(out, "https://chat.example.com") {
		t.Errorf("update --id-jag-audience replaces the list: %v\n%s", err, out)
	}
	// The broker signs ID tokens with RS256, ES256 and EdDSA alone.
	if out, err := cli("clients", "update", "--id-token-alg", "PS256", "agent"); err == nil || !strings.Contains(err.Error(), "id_token_signed_response_alg") {
		t.Errorf("an algorithm the broker does not sign with: %v\n%s", err, out)
	}
}
