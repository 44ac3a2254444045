package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

var txtValue = regexp.MustCompile(`_broker-challenge\.\S+ TXT "([^"]+)"`)

// An organisation onboarded from the command line: created, a domain
// claimed and verified through DNS, another asserted, members added,
// re-roled and removed, everything audited as the admin API audits it.
func TestOrgs_OnboardedFromTheCLI(t *testing.T) {
	db := pgtest.New(t)
	store := db.Open(t)
	ctx := context.Background()
	txt := testenv.NewDNS(t)
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	appendFile(t, cfg, fmt.Sprintf("organizations: { dnsResolver: %q }\n", txt.Addr))
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN})
	cli := func(args ...string) (string, error) {
		var out testenv.SyncBuffer
		err := run(ctx, append([]string{"orgs"}, args...), &out, &out, env)
		return out.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("broker orgs %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	must("create", "--config", cfg, "--slug", "acme", "--name", "Acme Corp", "--require-sso", "--upstream-id", "org_1", "--upstream-id", "org_2")
	o, err := store.GetOrganization(ctx, "acme")
	if err != nil || o.Name != "Acme Corp" || !o.RequireSSO || !slices.Equal(o.UpstreamIDs, []string{"org_1", "org_2"}) {
		t.Fatalf("stored: %+v, %v", o, err)
	}
	if out, err := cli("create", "--config", cfg, "--slug", strings.Repeat("a", 300), "--name", "X"); err == nil || !strings.Contains(err.Error(), "slug") {
		t.Errorf("a slug of 300: %v %s", err, out)
	}
	if out := must("show", "--config", cfg, o.ID); !strings.Contains(out, "slug:         acme") || !strings.Contains(out, "org_1 org_2") {
		t.Errorf("show: %s", out)
	}
	if out := must("list", "--config", cfg); !strings.Contains(out, o.ID) || !strings.Contains(out, "Acme Corp") {
		t.Errorf("list: %s", out)
	}
	must("update", "--config", cfg, "--name", "Acme Inc", "--require-sso=false", "acme")
	if o, _ := store.GetOrganization(ctx, o.ID); o.Name != "Acme Inc" || o.RequireSSO || len(o.UpstreamIDs) != 2 {
		t.Errorf("after update: %+v", o)
	}

	out := must("domains", "add", "--config", cfg, "acme", "Acme.Example")
	m := txtValue.FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(m[1], admin.ChallengePrefix) {
		t.Fatalf("domains add printed no TXT record: %s", out)
	}
	if _, err := cli("domains", "verify", "--config", cfg, "acme", "acme.example"); err == nil || !strings.Contains(err.Error(), "no TXT record") {
		t.Errorf("verify without a record: %v", err)
	}
	txt.SetTXT("_broker-challenge.acme.example", "wrong")
	if _, err := cli("domains", "verify", "--config", cfg, "acme", "acme.example"); err == nil || !strings.Contains(err.Error(), `"wrong"`) || !strings.Contains(err.Error(), m[1]) {
		t.Errorf("verify with a wrong record: %v", err)
	}
	if ds, _ := store.ListVerifiedDomains(ctx); len(ds) != 0 {
		t.Errorf("verified without the record: %+v", ds)
	}
	txt.SetTXT("_broker-challenge.acme.example", m[1])
	if out := must("domains", "verify", "--config", cfg, "acme", "acme.example"); !strings.Contains(out, "verified (by dns)") {
		t.Errorf("verify: %s", out)
	}
	must("domains", "add", "--config", cfg, "acme", "acme.test")
	if _, err := cli("domains", "verify", "--config", cfg, "--assert", "acme", "acme.test"); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Errorf("assert without a reason: %v", err)
	}
	must("domains", "verify", "--config", cfg, "--assert", "--reason", "vendor-hosted DNS, ticket 7", "acme", "acme.test")
	if out := must("domains", "list", "--config", cfg, "acme"); !strings.Contains(out, "acme.example  by dns") || !strings.Contains(out, "acme.test     by admin") {
		t.Errorf("domains list: %s", out)
	}
	must("domains", "remove", "--config", cfg, "acme", "acme.test")

	res, err := store.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "otp", Subject: "ann@acme.example", Email: "ann@acme.example", EmailVerified: true, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ann := res.User.ID
	if out := must("members", "add", "--config", cfg, "acme", "ann@acme.example"); !strings.Contains(out, ann+" added, role member") {
		t.Errorf("members add: %s", out)
	}
	if out := must("members", "add", "--config", cfg, "--role", "admin", "acme", ann); !strings.Contains(out, "a member already, role member") {
		t.Errorf("members add again: %s", out)
	}
	must("members", "role", "--config", cfg, "acme", ann, "admin")
	if out := must("members", "list", "--config", cfg, "acme"); !strings.Contains(out, ann+"  admin") {
		t.Errorf("members list: %s", out)
	}
	if out := must("members", "remove", "--config", cfg, "acme", ann); !strings.Contains(out, "removed") {
		t.Errorf("members remove: %s", out)
	}
	if ms, _ := store.ListMembers(ctx, o.ID, "", 10); len(ms) != 0 {
		t.Errorf("members after remove: %+v", ms)
	}

	if _, err := cli("delete", "--config", cfg, "acme"); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("delete without --yes: %v", err)
	}
	must("delete", "--config", cfg, "--yes", "acme")
	if _, err := store.GetOrganization(ctx, o.ID); err == nil {
		t.Error("deleted organisation still stored")
	}

	events, _ := store.ListAudit(ctx, 100)
	var actions []string
	for _, ev := range events {
		if ev.Actor == admin.ActorCLI && strings.HasPrefix(ev.Target, "org:"+o.ID) {
			actions = append(actions, ev.Action)
		}
	}
	slices.Sort(actions)
	want := []string{"org.create", "org.delete", "org.domain.add", "org.domain.add", "org.domain.remove",
		"org.domain.verify", "org.domain.verify", "org.member.add", "org.member.remove", "org.member.role", "org.update"}
	if !slices.Equal(actions, want) {
		t.Errorf("audit: %v, want %v", actions, want)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
