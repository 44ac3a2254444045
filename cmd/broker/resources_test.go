package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

func TestResources_ManagedByTheCLIGovernTokensOnARunningReplica(t *testing.T) {
	db := pgtest.New(t)
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	// A resource of the configuration file, read-only to the CLI.
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("resources:\n  - { id: \"https://configured.example.com/mcp\", scopes: [a] }\n")
	f.Close()
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN, "BROKER_SECRET": secretForTest})
	cli := func(args ...string) (string, error) {
		t.Helper()
		var out testenv.SyncBuffer
		err := run(context.Background(), args, &out, &out, env)
		return out.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("broker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	const mcp = "https://mcp.example.com/mcp"
	r := startReplica(t, db, cfg, env)

	out := must("resources", "create", "--config", cfg, "--scope", "tools:read", "--scope", "tools:call", "--access-token-ttl", "3m", mcp)
	if !strings.Contains(out, "tools:read tools:call") || !strings.Contains(out, "3m0s") || !strings.Contains(out, "source:") {
		t.Errorf("create: %s", out)
	}
	if out := must("resources", "list", "--config", cfg); !strings.Contains(out, mcp) || !strings.Contains(out, "https://configured.example.com/mcp") || !strings.Contains(out, "config") {
		t.Errorf("list: %s", out)
	}
	must("resources", "update", "--config", cfg, "--scope", "tools:read", "--third-party", mcp)
	if out := must("resources", "show", "--config", cfg, mcp); !regexp.MustCompile(`third_party:\s+true`).MatchString(out) {
		t.Errorf("show after update: %s", out)
	}

	// The running replica issues tokens for it at once.
	secret := secretLine.FindStringSubmatch(must("clients", "create", "--config", cfg, "--grant", "client_credentials", "--scope", "tools:read", "--scope", "other", "svc"))[1]
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {mcp}}
	req, _ := http.NewRequest(http.MethodPost, r.url+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("client_credentials for %s: %d %s", mcp, resp.StatusCode, body.Error)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(body.AccessToken, ".")[1])
	var claims struct {
		Aud   []string `json:"aud"`
		Scope string   `json:"scope"`
	}
	json.Unmarshal(payload, &claims)
	if len(claims.Aud) != 1 || claims.Aud[0] != mcp || claims.Scope != "tools:read" || body.ExpiresIn != 180 {
		t.Errorf("token for %s: aud %v scope %q expires_in %d", mcp, claims.Aud, claims.Scope, body.ExpiresIn)
	}

	// Refusals name the field and store nothing.
	for _, bad := range [][]string{
		{"resources", "create", "--config", cfg, "http://plain.example.com/mcp"},
		{"resources", "create", "--config", cfg, "https://frag.example.com/mcp#x"},
		{"resources", "create", "--config", cfg, "--access-token-ttl", "2h", "https://long.example.com/mcp"},
	} {
		if out, err := cli(bad...); err == nil {
			t.Errorf("broker %s succeeded: %s", strings.Join(bad, " "), out)
		}
	}
	if _, err := cli("resources", "delete", "--config", cfg, "https://configured.example.com/mcp"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("deleting a configured resource: %v", err)
	}
	must("resources", "delete", "--config", cfg, mcp)
	if out := must("resources", "list", "--config", cfg); strings.Contains(out, mcp) || strings.Contains(out, "plain.example.com") || strings.Contains(out, "long.example.com") {
		t.Errorf("list after delete and refusals: %s", out)
	}
}
