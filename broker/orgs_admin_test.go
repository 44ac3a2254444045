package broker_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
)

// apiError is the admin API's error body.
type apiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func withDNS(addr string) envOption {
	return func(c *broker.Config, o *broker.Options) { c.Organizations.DNSResolver = addr }
}

// orgEnv is a broker with the admin API on, asking the given DNS server,
// and an admin token for it.
func orgEnv(t *testing.T, opts ...envOption) (*env, string) {
	e := newEnv(t, append([]envOption{withAdmin}, opts...)...)
	return e, e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
}

// auditActions returns the actions of the audit log on target.
func auditActions(t *testing.T, e *env, target string) []string {
	t.Helper()
	events, err := e.store.ListAudit(t.Context(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range events {
		if ev.Target == target {
			actions = append(actions, ev.Action)
		}
	}
	return actions
}

func TestOrgsAdmin_CRUDPagingAndAudit(t *testing.T) {
	e, tok := orgEnv(t)
	ctx := t.Context()

	var acme admin.OrgInfo
	resp := e.adminCall("POST", "/orgs", tok, map[string]any{"slug": "acme", "name": "Acme Corp", "require_sso": true, "upstream_ids": []string{"org_abc"}}, &acme)
	wantStatus(t, "create", resp, http.StatusCreated)
	if _, err := uuid.Parse(acme.ID); err != nil || acme.Slug != "acme" || !acme.RequireSSO || !slices.Equal(acme.UpstreamIDs, []string{"org_abc"}) {
		t.Fatalf("created: %+v", acme)
	}
	if o, err := e.store.GetOrganization(ctx, acme.ID); err != nil || o.Name != "Acme Corp" {
		t.Fatalf("stored: %+v, %v", o, err)
	}
	wantStatus(t, "same slug", e.adminCall("POST", "/orgs", tok, map[string]any{"slug": "acme", "name": "Other"}, nil), http.StatusConflict)
	wantStatus(t, "same upstream id", e.adminCall("POST", "/orgs", tok, map[string]any{"slug": "other", "name": "Other", "upstream_ids": []string{"org_abc"}}, nil), http.StatusConflict)

	for _, ref := range []string{acme.ID, "acme"} {
		var got admin.OrgInfo
		wantStatus(t, "show "+ref, e.adminCall("GET", "/orgs/"+ref, tok, nil, &got), http.StatusOK)
		if got.ID != acme.ID {
			t.Errorf("show %s: %+v", ref, got)
		}
	}
	wantStatus(t, "show unknown", e.adminCall("GET", "/orgs/nobody", tok, nil, nil), http.StatusNotFound)

	ids := []string{acme.ID}
	for i := range 3 {
		var o admin.OrgInfo
		wantStatus(t, "create more", e.adminCall("POST", "/orgs", tok, map[string]any{"slug": fmt.Sprintf("org-%d", i), "name": "Org"}, &o), http.StatusCreated)
		ids = append(ids, o.ID)
	}
	slices.Sort(ids)
	var listed []string
	for after, pages := "", 0; ; pages++ {
		var page struct {
			Orgs      []admin.OrgInfo
			NextAfter string `json:"next_after"`
		}
		wantStatus(t, "list", e.adminCall("GET", "/orgs?limit=3&after="+after, tok, nil, &page), http.StatusOK)
		for _, o := range page.Orgs {
			listed = append(listed, o.ID)
		}
		if page.NextAfter == "" || pages > 3 {
			break
		}
		after = page.NextAfter
	}
	if !slices.Equal(listed, ids) {
		t.Errorf("paged list %v, want %v", listed, ids)
	}

	var updated admin.OrgInfo
	wantStatus(t, "update", e.adminCall("PATCH", "/orgs/acme", tok, map[string]any{"name": "Acme Inc", "require_sso": false}, &updated), http.StatusOK)
	if updated.Name != "Acme Inc" || updated.RequireSSO || updated.Slug != "acme" || !slices.Equal(updated.UpstreamIDs, []string{"org_abc"}) {
		t.Errorf("updated: %+v", updated)
	}
	wantStatus(t, "rename to a taken slug", e.adminCall("PATCH", "/orgs/acme", tok, map[string]any{"slug": "org-0"}, nil), http.StatusConflict)

	wantStatus(t, "delete", e.adminCall("DELETE", "/orgs/"+acme.ID, tok, nil, nil), http.StatusNoContent)
	if _, err := e.store.GetOrganization(ctx, acme.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted organization: %v", err)
	}
	wantStatus(t, "delete again", e.adminCall("DELETE", "/orgs/"+acme.ID, tok, nil, nil), http.StatusNotFound)

	got := auditActions(t, e, "org:"+acme.ID)
	if want := []string{"org.create", "org.update", "org.delete"}; !slices.Equal(sortedCopy(got), sortedCopy(want)) {
		t.Errorf("audit on the organization: %v, want %v", got, want)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Every refusal names the field at fault and writes nothing.
func TestOrgsAdmin_RefusesBadInputNamingTheField(t *testing.T) {
	e, tok := orgEnv(t)
	ctx := t.Context()
	var acme admin.OrgInfo
	wantStatus(t, "create", e.adminCall("POST", "/orgs", tok, map[string]any{"slug": "acme", "name": "Acme"}, &acme), http.StatusCreated)
	wantStatus(t, "claim", e.adminCall("POST", "/orgs/acme/domains", tok, map[string]string{"domain": "acme.example"}, nil), http.StatusCreated)
	user := e.resolveUser("member@example.org")
	auditBefore := len(auditActions(t, e, "org:"+acme.ID)) // org.create

	long := func(n int) string { return strings.Repeat("a", n) }
	for _, c := range []struct {
		what, method, path string
		body               any
		field              string
	}{
		{"unknown field", "POST", "/orgs", map[string]any{"slug": "x", "name": "X", "colour": "red"}, "colour"},
		{"slug of 300", "POST", "/orgs", map[string]any{"slug": long(300), "name": "X"}, "slug"},
		{"slug of 64", "POST", "/orgs", map[string]any{"slug": long(64), "name": "X"}, "slug"},
		{"slug upper-case", "POST", "/orgs", map[string]any{"slug": "Acme2", "name": "X"}, "slug"},
		{"slug ending in -", "POST", "/orgs", map[string]any{"slug": "acme-", "name": "X"}, "slug"},
		// An organisation is found by id before slug: a slug that reads
		// as a UUID would name this one once the other is gone.
		{"a second JSON value after the object", "POST", "/orgs", []byte(`{"slug": "x", "name": "X"} {"slug": "y"}`), "body"},
		{"slug a UUID", "POST", "/orgs", map[string]any{"slug": "6a64ddc6-0504-4081-a49d-cbbd9ee5ed46", "name": "X"}, "slug"},
		{"slug a UUID without dashes", "POST", "/orgs", map[string]any{"slug": "6a64ddc605044081a49dcbbd9ee5ed46", "name": "X"}, "slug"},
		{"renamed to a UUID", "PATCH", "/orgs/acme", map[string]any{"slug": "6a64ddc6-0504-4081-a49d-cbbd9ee5ed46"}, "slug"},
		{"no slug", "POST", "/orgs", map[string]any{"name": "X"}, "slug"},
		{"no name", "POST", "/orgs", map[string]any{"slug": "x"}, "name"},
		{"blank name", "POST", "/orgs", map[string]any{"slug": "x", "name": "  "}, "name"},
		{"name of 201", "POST", "/orgs", map[string]any{"slug": "x", "name": long(201)}, "name"},
		{"empty upstream id", "POST", "/orgs", map[string]any{"slug": "x", "name": "X", "upstream_ids": []string{""}}, "upstream_ids"},
		{"long upstream id", "POST", "/orgs", map[string]any{"slug": "x", "name": "X", "upstream_ids": []string{long(201)}}, "upstream_ids"},
		{"upstream id twice", "POST", "/orgs", map[string]any{"slug": "x", "name": "X", "upstream_ids": []string{"a", "a"}}, "upstream_ids"},
		{"update: bad slug", "PATCH", "/orgs/acme", map[string]any{"slug": long(300)}, "slug"},
		{"update: empty name", "PATCH", "/orgs/acme", map[string]any{"name": ""}, "name"},
		{"update: unknown field", "PATCH", "/orgs/acme", map[string]any{"domains": []string{"a.example"}}, "domains"},
		{"list: bad limit", "GET", "/orgs?limit=x", nil, "limit"},
		{"list: bad after", "GET", "/orgs?after=zzz", nil, "after"},
		{"domain with a scheme", "POST", "/orgs/acme/domains", map[string]string{"domain": "https://b.example"}, "domain"},
		{"domain with a path", "POST", "/orgs/acme/domains", map[string]string{"domain": "b.example/x"}, "domain"},
		{"domain with a port", "POST", "/orgs/acme/domains", map[string]string{"domain": "b.example:443"}, "domain"},
		{"an address", "POST", "/orgs/acme/domains", map[string]string{"domain": "ann@b.example"}, "domain"},
		{"a wildcard", "POST", "/orgs/acme/domains", map[string]string{"domain": "*.b.example"}, "domain"},
		{"a trailing dot", "POST", "/orgs/acme/domains", map[string]string{"domain": "b.example."}, "domain"},
		{"an IPv4 address", "POST", "/orgs/acme/domains", map[string]string{"domain": "192.0.2.1"}, "domain"},
		{"an IPv6 address", "POST", "/orgs/acme/domains", map[string]string{"domain": "2001:db8::1"}, "domain"},
		{"one label", "POST", "/orgs/acme/domains", map[string]string{"domain": "localhost"}, "domain"},
		{"a space", "POST", "/orgs/acme/domains", map[string]string{"domain": "b example.com"}, "domain"},
		{"a label ending in -", "POST", "/orgs/acme/domains", map[string]string{"domain": "b-.example"}, "domain"},
		{"not ASCII", "POST", "/orgs/acme/domains", map[string]string{"domain": "bücher.example"}, "domain"},
		{"no domain", "POST", "/orgs/acme/domains", map[string]string{}, "domain"},
		{"domains: unknown field", "POST", "/orgs/acme/domains", map[string]any{"domain": "b.example", "verified": true}, "verified"},
		{"assert without reason", "POST", "/orgs/acme/domains/acme.example/verify", map[string]any{"assert": true}, "reason"},
		{"reason without assert", "POST", "/orgs/acme/domains/acme.example/verify", map[string]any{"reason": "trust me"}, "reason"},
		{"member: bad role", "POST", "/orgs/acme/members", map[string]string{"user_id": user, "role": "owner"}, "role"},
		{"member: no user", "POST", "/orgs/acme/members", map[string]string{"role": "member"}, "user_id"},
		{"member: unknown field", "POST", "/orgs/acme/members", map[string]string{"user_id": user, "team": "x"}, "team"},
		{"verify: unknown field", "POST", "/orgs/acme/domains/acme.example/verify", map[string]any{"method": "dns"}, "method"},
		{"role: unknown field", "PATCH", "/orgs/acme/members/" + user, map[string]string{"role": "admin", "why": "x"}, "why"},
		{"members: bad limit", "GET", "/orgs/acme/members?limit=0", nil, "limit"},
		{"members: bad after", "GET", "/orgs/acme/members?after=x", nil, "after"},
	} {
		var ae apiError
		resp := e.adminCall(c.method, c.path, tok, c.body, &ae)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(ae.Description, c.field) {
			t.Errorf("%s: %d %+v; want 400 naming %q", c.what, resp.StatusCode, ae, c.field)
		}
	}

	// A claim the organisation holds already is a conflict.
	wantStatus(t, "claim again", e.adminCall("POST", "/orgs/acme/domains", tok, map[string]string{"domain": "ACME.example"}, nil), http.StatusConflict)

	// Nothing was written.
	if os, _ := e.store.ListOrganizations(ctx, "", 100); len(os) != 1 || os[0].Name != "Acme" || os[0].Slug != "acme" {
		t.Errorf("organizations after refusals: %+v", os)
	}
	if ds, _ := e.store.ListDomains(ctx, acme.ID); len(ds) != 1 || ds[0].Verified {
		t.Errorf("domains after refusals: %+v", ds)
	}
	if ms, _ := e.store.ListMembers(ctx, acme.ID, "", 100); len(ms) != 0 {
		t.Errorf("members after refusals: %+v", ms)
	}
	if n := len(auditActions(t, e, "org:"+acme.ID)); n != auditBefore {
		t.Errorf("%d audit events on the organization after refusals, want %d", n, auditBefore)
	}
}

// resolveUser makes a user of email in the store and returns their id.
func (e *env) resolveUser(email string) string {
	e.t.Helper()
	res, err := e.store.ResolveIdentity(e.t.Context(), storage.ResolveRequest{Connector: "otp", Subject: email, Email: email, EmailVerified: true, Now: time.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.User.ID
}

func TestOrgsAdmin_DomainVerifiedByDNS(t *testing.T) {
	txt := testenv.NewDNS(t)
	e, tok := orgEnv(t, withDNS(txt.Addr))
	ctx := t.Context()
	var acme, other admin.OrgInfo
	wantStatus(t, "create", e.adminCall("POST", "/orgs", tok, map[string]any{"slug": "acme", "name": "Acme"}, &acme), http.StatusCreated)
	wantStatus(t, "create other", e.adminCall("POST", "/orgs", tok, map[string]any{"slug": "other", "name": "Other"}, &other), http.StatusCreated)

	var claim admin.DomainInfo
	wantStatus(t, "claim", e.adminCall("POST", "/orgs/acme/domains", tok, map[string]string{"domain": "Acme.Example"}, &claim), http.StatusCreated)
	if claim.Domain != "acme.example" || claim.Verified || claim.TXTRecord == nil ||
		claim.TXTRecord.Name != "_broker-challenge.acme.example" || !strings.HasPrefix(claim.TXTRecord.Value, admin.ChallengePrefix) ||
		len(claim.TXTRecord.Value) != len(admin.ChallengePrefix)+43 {
		t.Fatalf("claim: %+v %+v", claim, claim.TXTRecord)
	}
	var raw map[string]any
	e.adminCall("GET", "/orgs/acme/domains", tok, nil, &raw)
	if b, _ := json.Marshal(raw); !strings.Contains(string(b), `"txt_record":{"name":"_broker-challenge.acme.example","value":"`+claim.TXTRecord.Value+`"}`) {
		t.Errorf("domains list: %s", b)
	}
	verify := func(what string, status int, contains ...string) admin.DomainInfo {
		t.Helper()
		var body json.RawMessage
		resp := e.adminCall("POST", "/orgs/acme/domains/acme.example/verify", tok, map[string]any{}, &body)
		if resp.StatusCode != status {
			t.Fatalf("%s: status %d %s, want %d", what, resp.StatusCode, body, status)
		}
		for _, c := range contains {
			if !strings.Contains(string(body), c) {
				t.Errorf("%s: %s lacks %q", what, body, c)
			}
		}
		var d admin.DomainInfo
		json.Unmarshal(body, &d)
		return d
	}
	stillUnverified := func(what string) {
		t.Helper()
		if ds, _ := e.store.ListVerifiedDomains(ctx); len(ds) != 0 {
			t.Errorf("%s: verified domains %+v", what, ds)
		}
	}

	// No record at all: NXDOMAIN.
	verify("no record", http.StatusConflict, "no TXT record at _broker-challenge.acme.example", claim.TXTRecord.Value)
	stillUnverified("no record")
	// The name exists, with a wrong value.
	txt.SetTXT("_broker-challenge.acme.example", "broker-domain-verification=wrong")
	verify("wrong value", http.StatusConflict, "broker-domain-verification=wrong", claim.TXTRecord.Value)
	stillUnverified("wrong value")
	// The value inside another.
	txt.SetTXT("_broker-challenge.acme.example", claim.TXTRecord.Value+"x", "v=spf1 -all")
	verify("longer value", http.StatusConflict, "v=spf1 -all")
	stillUnverified("longer value")
	// An unverified domain stays so, whatever else is asked.
	var listed struct{ Domains []admin.DomainInfo }
	e.adminCall("GET", "/orgs/acme/domains", tok, nil, &listed)
	if len(listed.Domains) != 1 || listed.Domains[0].Verified {
		t.Errorf("domains: %+v", listed)
	}

	txt.SetTXT("_broker-challenge.acme.example", "v=spf1 -all", claim.TXTRecord.Value)
	got := verify("right record", http.StatusOK)
	if !got.Verified || got.VerifiedBy != "dns" || got.VerifiedAt == nil || got.TXTRecord != nil {
		t.Errorf("verified: %+v", got)
	}
	if ds, _ := e.store.ListVerifiedDomains(ctx); len(ds) != 1 || ds[0].OrgID != acme.ID || ds[0].VerifiedBy != "dns" {
		t.Errorf("verified domains: %+v", ds)
	}
	verify("again", http.StatusOK, `"verified":true`)

	// Another organisation can neither claim it nor hold it verified too.
	wantStatus(t, "other claims", e.adminCall("POST", "/orgs/other/domains", tok, map[string]string{"domain": "acme.example"}, nil), http.StatusConflict)
	wantStatus(t, "other verifies", e.adminCall("POST", "/orgs/other/domains/acme.example/verify", tok, map[string]any{}, nil), http.StatusNotFound)
	wantStatus(t, "other asserts", e.adminCall("POST", "/orgs/other/domains/acme.example/verify", tok, map[string]any{"assert": true, "reason": "ticket 12"}, nil), http.StatusNotFound)
	wantStatus(t, "verify unclaimed", e.adminCall("POST", "/orgs/other/domains/nobody.example/verify", tok, map[string]any{}, nil), http.StatusNotFound)

	// Asserted by an administrator, with the reason in the audit log.
	wantStatus(t, "claim more", e.adminCall("POST", "/orgs/other/domains", tok, map[string]string{"domain": "other.example"}, nil), http.StatusCreated)
	var asserted admin.DomainInfo
	wantStatus(t, "assert", e.adminCall("POST", "/orgs/other/domains/other.example/verify", tok, map[string]any{"assert": true, "reason": "ticket 12: DNS hosted by a vendor"}, &asserted), http.StatusOK)
	if !asserted.Verified || asserted.VerifiedBy != "admin" {
		t.Errorf("asserted: %+v", asserted)
	}
	events, _ := e.store.ListAudit(ctx, 100)
	if !slices.ContainsFunc(events, func(ev storage.AuditEvent) bool {
		return ev.Action == "org.domain.verify" && ev.Target == "org:"+other.ID+"/domain:other.example" && ev.Details["reason"] == "ticket 12: DNS hosted by a vendor" && ev.Details["by"] == "admin"
	}) {
		t.Errorf("no audit event of the assertion with its reason: %+v", events)
	}
	if got := auditActions(t, e, "org:"+acme.ID+"/domain:acme.example"); !slices.Equal(got, []string{"org.domain.add", "org.domain.verify"}) && !slices.Equal(got, []string{"org.domain.verify", "org.domain.add"}) {
		t.Errorf("audit of the DNS-verified domain: %v", got)
	}

	wantStatus(t, "remove", e.adminCall("DELETE", "/orgs/acme/domains/acme.example", tok, nil, nil), http.StatusNoContent)
	if ds, _ := e.store.ListDomains(ctx, acme.ID); len(ds) != 0 {
		t.Errorf("domains after remove: %+v", ds)
	}
	// Released, the other organisation claims it and verifies it by DNS,
	// with a challenge of its own.
	var otherClaim admin.DomainInfo
	wantStatus(t, "other claims now", e.adminCall("POST", "/orgs/other/domains", tok, map[string]string{"domain": "acme.example"}, &otherClaim), http.StatusCreated)
	if otherClaim.TXTRecord == nil || otherClaim.TXTRecord.Value == claim.TXTRecord.Value {
		t.Error("two claims got one challenge")
	}
	txt.SetTXT("_broker-challenge.acme.example", otherClaim.TXTRecord.Value)
	wantStatus(t, "other verifies now", e.adminCall("POST", "/orgs/other/domains/acme.example/verify", tok, map[string]any{}, nil), http.StatusOK)
	wantStatus(t, "remove again", e.adminCall("DELETE", "/orgs/acme/domains/acme.example", tok, nil, nil), http.StatusNotFound)
}

// A resolver that does not answer is a 503 that says so, and verifies
// nothing.
func TestOrgsAdmin_DomainVerificationResolverDown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // takes queries, never answers
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	e, tok := orgEnv(t, withDNS(pc.LocalAddr().String()))
	wantStatus(t, "create", e.adminCall("POST", "/orgs", tok, map[string]any{"slug": "acme", "name": "Acme"}, nil), http.StatusCreated)
	wantStatus(t, "claim", e.adminCall("POST", "/orgs/acme/domains", tok, map[string]string{"domain": "acme.example"}, nil), http.StatusCreated)
	var ae apiError
	resp := e.adminCall("POST", "/orgs/acme/domains/acme.example/verify", tok, map[string]any{}, &ae)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(ae.Description, "DNS lookup failed") {
		t.Errorf("resolver down: %d %+v", resp.StatusCode, ae)
	}
	if ds, _ := e.store.ListVerifiedDomains(t.Context()); len(ds) != 0 {
		t.Errorf("verified domains: %+v", ds)
	}
}

func TestOrgsAdmin_MembersAndRemovalEndsSessions(t *testing.T) {
	rcv, hearsLogouts := backendHearsLogouts(t)
	e, tok := orgEnv(t, hearsLogouts)
	ctx := t.Context()
	var acme admin.OrgInfo
	wantStatus(t, "create", e.adminCall("POST", "/orgs", tok, map[string]any{"slug": "acme", "name": "Acme"}, &acme), http.StatusCreated)
	ann, bob := e.resolveUser("ann@acme.example"), e.resolveUser("bob@acme.example")

	var m admin.MemberInfo
	wantStatus(t, "add", e.adminCall("POST", "/orgs/acme/members", tok, map[string]string{"user_id": ann}, &m), http.StatusCreated)
	if m.UserID != ann || m.OrgID != acme.ID || m.Role != storage.OrgRoleMember {
		t.Errorf("added: %+v", m)
	}
	wantStatus(t, "add again", e.adminCall("POST", "/orgs/acme/members", tok, map[string]string{"user_id": ann, "role": "admin"}, &m), http.StatusOK)
	if m.Role != storage.OrgRoleMember {
		t.Errorf("adding a member again changed them: %+v", m)
	}
	wantStatus(t, "add bob as admin", e.adminCall("POST", "/orgs/"+acme.ID+"/members", tok, map[string]string{"user_id": bob, "role": "admin"}, nil), http.StatusCreated)
	wantStatus(t, "add nobody", e.adminCall("POST", "/orgs/acme/members", tok, map[string]string{"user_id": uuid.NewString()}, nil), http.StatusNotFound)
	wantStatus(t, "add to no org", e.adminCall("POST", "/orgs/nope/members", tok, map[string]string{"user_id": ann}, nil), http.StatusNotFound)

	want := sortedCopy([]string{ann, bob})
	var page struct {
		Members   []admin.MemberInfo
		NextAfter string `json:"next_after"`
	}
	wantStatus(t, "list", e.adminCall("GET", "/orgs/acme/members?limit=1", tok, nil, &page), http.StatusOK)
	if len(page.Members) != 1 || page.Members[0].UserID != want[0] || page.NextAfter != want[0] {
		t.Fatalf("first page: %+v", page)
	}
	page.Members, page.NextAfter = nil, ""
	wantStatus(t, "list on", e.adminCall("GET", "/orgs/acme/members?limit=1&after="+want[0], tok, nil, &page), http.StatusOK)
	if len(page.Members) != 1 || page.Members[0].UserID != want[1] {
		t.Fatalf("second page: %+v", page)
	}

	wantStatus(t, "role", e.adminCall("PATCH", "/orgs/acme/members/"+ann, tok, map[string]string{"role": "admin"}, &m), http.StatusOK)
	if m.Role != storage.OrgRoleAdmin {
		t.Errorf("after role change: %+v", m)
	}
	wantStatus(t, "bad role", e.adminCall("PATCH", "/orgs/acme/members/"+ann, tok, map[string]string{"role": "root"}, nil), http.StatusBadRequest)

	// Ann has a session in the organisation's context and one outside it.
	now := time.Now()
	session := func(id, org string) storage.Session {
		s := storage.Session{ID: id, UserID: ann, AuthTime: now, AMR: []string{"fed"}, IDP: "acme-sso", Clients: []string{backendID},
			CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), IdleTTL: time.Hour, Org: org}
		if err := e.store.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	inOrg, outside := session("session-in-acme", acme.ID), session("session-outside", "")

	wantStatus(t, "remove", e.adminCall("DELETE", "/orgs/acme/members/"+ann, tok, nil, nil), http.StatusNoContent)
	if _, err := e.store.GetSession(ctx, inOrg.ID, time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the session in the organisation survived: %v", err)
	}
	if _, err := e.store.GetSession(ctx, outside.ID, time.Now()); err != nil {
		t.Errorf("the session outside the organisation ended: %v", err)
	}
	payload, _, err := e.broker.SigningKeys().Verify(rcv.waitForTokenNumber(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	var lt struct {
		Subject string `json:"sub"`
		SID     string `json:"sid"`
	}
	if err := json.Unmarshal(payload, &lt); err != nil || lt.Subject != ann || lt.SID != inOrg.ID {
		t.Errorf("logout token %s, want sub %s sid %s", payload, ann, inOrg.ID)
	}
	if ms, _ := e.store.ListMembers(ctx, acme.ID, "", 10); len(ms) != 1 || ms[0].UserID != bob {
		t.Errorf("members after removal: %+v", ms)
	}
	wantStatus(t, "remove again", e.adminCall("DELETE", "/orgs/acme/members/"+ann, tok, nil, nil), http.StatusNotFound)

	events, _ := e.store.ListAudit(ctx, 100)
	var actions []string
	for _, ev := range events {
		if ev.Target == "org:"+acme.ID+"/user:"+ann {
			actions = append(actions, ev.Action)
			if ev.Action == "org.member.remove" && ev.Details["sessions_ended"] != "1" {
				t.Errorf("removal event %+v", ev)
			}
		}
	}
	if w := []string{"org.member.add", "org.member.remove", "org.member.role"}; !slices.Equal(sortedCopy(actions), w) {
		t.Errorf("audit of the membership: %v, want %v", actions, w)
	}
}

func TestConfig_DNSResolverIsHostPort(t *testing.T) {
	for addr, ok := range map[string]bool{"": true, "127.0.0.1:53": true, "[::1]:5353": true, "dns.internal:53": true,
		"127.0.0.1": false, ":53": false, "127.0.0.1:0": false, "127.0.0.1:dns": false, "127.0.0.1:70000": false} {
		cfg := broker.DevelopmentConfig("http://127.0.0.1:8080", "127.0.0.1:8080")
		cfg.Organizations.DNSResolver = addr
		err := cfg.Validate()
		if ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "organizations.dnsResolver") {
			t.Errorf("dnsResolver %q: %v", addr, err)
		}
	}
}
