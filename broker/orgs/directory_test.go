package orgs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/broker/broker/orgs"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
)

// store is the part of storage.Organizations a Directory reads, held in
// memory, with a switch that makes every call fail as a store outage
// does.
type store struct {
	storage.Organizations // nil: a call the directory must not make panics

	mu         sync.Mutex
	down       bool
	generation int64
	orgs       []storage.Organization
	domains    []storage.Domain
	connectors []storage.StoredConnector
}

var errDown = errors.New("store down")

func (s *store) change(fn func(s *store)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
	s.generation++
}

func (s *store) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *store) OrgsGeneration(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return 0, errDown
	}
	return s.generation, nil
}

func (s *store) ListOrganizations(_ context.Context, after string, limit int) ([]storage.Organization, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errDown
	}
	var out []storage.Organization
	for _, o := range s.orgs {
		if o.ID > after && len(out) < limit {
			out = append(out, o)
		}
	}
	return out, nil
}

func (s *store) ListVerifiedDomains(context.Context) ([]storage.Domain, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errDown
	}
	var out []storage.Domain
	for _, d := range s.domains {
		if d.Verified {
			out = append(out, d)
		}
	}
	return out, nil
}

func (s *store) ListConnectors(context.Context) ([]storage.StoredConnector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errDown
	}
	return slices.Clone(s.connectors), nil
}

const (
	acmeID   = "00000000-0000-4000-8000-00000000000a"
	globexID = "00000000-0000-4000-8000-00000000000b"
)

func newStore() *store {
	return &store{
		orgs: []storage.Organization{
			{ID: acmeID, Slug: "acme", Name: "Acme", UpstreamIDs: []string{"org_acme"}},
			{ID: globexID, Slug: "globex", Name: "Globex"},
		},
		domains: []storage.Domain{
			{Domain: "acme.example", OrgID: acmeID, Verified: true},
			{Domain: "claimed.example", OrgID: globexID},
		},
		connectors: []storage.StoredConnector{
			{ID: "acme-entra", Type: "azuread", OrgID: acmeID},
			{ID: "acme-old", Type: "oidc", OrgID: acmeID, Disabled: true},
			{ID: "shared", Type: "auth0"},
		},
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestLookups(t *testing.T) {
	d := orgs.New(newStore(), quiet(), 0)
	if _, ok := d.Get("acme"); ok {
		t.Fatal("an organisation before Load")
	}
	if err := d.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"acme", acmeID} {
		if o, ok := d.Get(key); !ok || o.ID != acmeID {
			t.Errorf("Get(%q) = %v, %v", key, o.ID, ok)
		}
	}
	if o, ok := d.ForDomain("ACME.example"); !ok || o.Slug != "acme" {
		t.Errorf("ForDomain(acme.example) = %q, %v", o.Slug, ok)
	}
	if _, ok := d.ForDomain("claimed.example"); ok {
		t.Error("an unverified domain routes")
	}
	if o, ok := d.ForUpstream("org_acme"); !ok || o.ID != acmeID {
		t.Errorf("ForUpstream = %q, %v", o.ID, ok)
	}
	if got := d.Connectors(acmeID); !slices.Equal(got, []string{"acme-entra"}) {
		t.Errorf("Connectors = %q, want the enabled one alone", got)
	}
	if o, ok := d.OrgOfConnector("acme-old"); !ok || o.ID != acmeID {
		t.Errorf("OrgOfConnector(acme-old) = %q, %v", o.ID, ok)
	}
	if _, ok := d.OrgOfConnector("shared"); ok {
		t.Error("a connector of no organisation has one")
	}
}

// waitFor polls cond until it holds or a second has passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not seen within a second: %s", what)
		}
	}
}

func TestChangeSeenAfterPoll(t *testing.T) {
	s := newStore()
	d := orgs.New(s, quiet(), 10*time.Millisecond)
	var mu sync.Mutex
	var seen [][]storage.StoredConnector
	d.Subscribe(func(stored []storage.StoredConnector) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, stored)
	})
	if err := d.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go d.Run(ctx)

	s.change(func(s *store) {
		s.domains = append(s.domains, storage.Domain{Domain: "globex.example", OrgID: globexID, Verified: true})
		s.connectors = s.connectors[1:]
	})
	waitFor(t, "the new verified domain", func() bool { _, ok := d.ForDomain("globex.example"); return ok })
	if got := d.Connectors(acmeID); len(got) != 0 {
		t.Errorf("Connectors after the delete = %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || len(seen[1]) != 2 {
		t.Errorf("subscriber saw %d loads, the last with %d connectors; want 2 and 2", len(seen), len(seen[len(seen)-1]))
	}
}

func TestOutageKeepsLastView(t *testing.T) {
	s := newStore()
	d := orgs.New(s, quiet(), 10*time.Millisecond)
	if err := d.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go d.Run(ctx)

	s.change(func(s *store) { s.orgs = s.orgs[1:] })
	s.setDown(true)
	time.Sleep(50 * time.Millisecond)
	if _, ok := d.ForDomain("acme.example"); !ok {
		t.Fatal("the last view was dropped during the outage")
	}
	s.setDown(false)
	waitFor(t, "the change made before the outage", func() bool { _, ok := d.Get("acme"); return !ok })
}

func TestLoadFailsOnOutage(t *testing.T) {
	s := newStore()
	s.setDown(true)
	if err := orgs.New(s, quiet(), 0).Load(t.Context()); !errors.Is(err, errDown) {
		t.Fatalf("Load = %v, want the store's error", err)
	}
}

func TestLateSubscriberGetsCurrentView(t *testing.T) {
	d := orgs.New(newStore(), quiet(), 0)
	if err := d.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []storage.StoredConnector
	d.Subscribe(func(stored []storage.StoredConnector) { got = stored })
	if len(got) != 3 {
		t.Fatalf("late subscriber got %d connectors, want 3", len(got))
	}
}

// outage is a store that fails every call the directory makes while
// down.
type outage struct {
	storage.Organizations
	down atomic.Bool
}

func (o *outage) OrgsGeneration(ctx context.Context) (int64, error) {
	if o.down.Load() {
		return 0, errDown
	}
	return o.Organizations.OrgsGeneration(ctx)
}

func (o *outage) ListOrganizations(ctx context.Context, after string, limit int) ([]storage.Organization, error) {
	if o.down.Load() {
		return nil, errDown
	}
	return o.Organizations.ListOrganizations(ctx, after, limit)
}

func TestMemoryStore(t *testing.T) {
	ctx := t.Context()
	mem := memory.New()
	store := &outage{Organizations: mem}
	if err := mem.CreateOrganization(ctx, storage.Organization{ID: acmeID, Slug: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	d := orgs.New(store, quiet(), 10*time.Millisecond)
	if err := d.Load(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go d.Run(runCtx)

	// A domain routes once verified, after the next poll.
	if err := mem.AddDomain(ctx, storage.Domain{Domain: "acme.example", OrgID: acmeID, Challenge: "c", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.VerifyDomain(ctx, acmeID, "acme.example", "admin", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the verified domain", func() bool { _, ok := d.ForDomain("acme.example"); return ok })
	if err := mem.CreateConnector(ctx, storage.StoredConnector{ID: "acme-sso", Type: "oidc", OrgID: acmeID, Settings: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stored connector", func() bool { return slices.Equal(d.Connectors(acmeID), []string{"acme-sso"}) })

	// An outage keeps the last view; the change made during it is seen
	// once the store answers.
	store.down.Store(true)
	if err := mem.DeleteOrganization(ctx, acmeID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, ok := d.Get("acme"); !ok {
		t.Fatal("the last view was dropped during the outage")
	}
	store.down.Store(false)
	waitFor(t, "the deleted organisation gone", func() bool { _, ok := d.Get("acme"); return !ok })
	if _, ok := d.ForDomain("acme.example"); ok {
		t.Error("a deleted organisation's domain still routes")
	}
}
