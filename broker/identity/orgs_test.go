package identity_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
	"github.com/idbroker/broker/upstream"
)

// directory is a fixed organisation directory.
type directory struct {
	domains, upstreams, connectors map[string]storage.Organization
}

func (d directory) ForDomain(v string) (storage.Organization, bool) {
	o, ok := d.domains[v]
	return o, ok
}
func (d directory) ForUpstream(v string) (storage.Organization, bool) {
	o, ok := d.upstreams[v]
	return o, ok
}
func (d directory) OrgOfConnector(v string) (storage.Organization, bool) {
	o, ok := d.connectors[v]
	return o, ok
}

func TestResolve_Organisations(t *testing.T) {
	ctx := context.Background()
	alpha := storage.Organization{ID: "a1a1a1a1-0000-4000-8000-000000000001", Slug: "alpha", UpstreamIDs: []string{"org_alpha"}}
	beta := storage.Organization{ID: "b2b2b2b2-0000-4000-8000-000000000002", Slug: "beta"}
	sso := storage.Organization{ID: "c3c3c3c3-0000-4000-8000-000000000003", Slug: "sso", RequireSSO: true}
	dir := directory{
		domains:    map[string]storage.Organization{"beta.example": beta, "sso.example": sso},
		upstreams:  map[string]storage.Organization{"org_alpha": alpha},
		connectors: map[string]storage.Organization{"sso-idp": sso},
	}
	store := memory.New()
	for _, o := range []storage.Organization{alpha, beta, sso} {
		if err := store.CreateOrganization(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	r := identity.New(store, now, slog.New(slog.DiscardHandler)).WithOrganizations(identity.Organizations{Directory: dir, Members: store})
	refusing := identity.New(store, now, slog.New(slog.DiscardHandler)).WithOrganizations(identity.Organizations{
		Directory: dir, Members: store, RefuseUnknownUpstream: true})

	// The owner of a beta address, by one-time code.
	owner, err := r.Resolve(ctx, otpConn, upstream.Identity{Subject: "pat@beta.example", Email: "pat@beta.example", EmailVerified: true}, identity.Options{})
	if err != nil || owner.Org.ID != "" {
		t.Fatalf("owner: %+v, %v", owner, err)
	}

	// Alpha's identity provider does not speak for beta's addresses.
	viaAlpha, err := r.Resolve(ctx, trusted, upstream.Identity{Subject: "auth0|pat", Email: "pat@beta.example", EmailVerified: true, Organization: "org_alpha"}, identity.Options{})
	if err != nil || viaAlpha.User.ID == owner.User.ID || viaAlpha.User.EmailVerified || viaAlpha.Org.ID != alpha.ID {
		t.Fatalf("via alpha: %+v, %v", viaAlpha, err)
	}
	ms, err := store.Memberships(ctx, viaAlpha.User.ID)
	if err != nil || len(ms) != 1 || ms[0].OrgID != alpha.ID || ms[0].Role != storage.OrgRoleMember {
		t.Errorf("memberships: %+v, %v", ms, err)
	}

	// An unmapped upstream organisation: none, or refused.
	if res, err := r.Resolve(ctx, trusted, upstream.Identity{Subject: "auth0|x", Organization: "org_nobody"}, identity.Options{}); err != nil || res.Org.ID != "" {
		t.Errorf("unmapped, ignored: %+v, %v", res, err)
	}
	if _, err := refusing.Resolve(ctx, trusted, upstream.Identity{Subject: "auth0|y", Organization: "org_nobody"}, identity.Options{}); !errors.Is(err, identity.ErrUnknownUpstreamOrg) {
		t.Errorf("unmapped, refused: %v", err)
	}

	// SSO: the organisation's own connector only.
	var refused *identity.SSORequiredError
	if _, err := r.Resolve(ctx, otpConn, upstream.Identity{Subject: "h@sso.example", Email: "h@sso.example", EmailVerified: true}, identity.Options{}); !errors.As(err, &refused) || refused.Org.ID != sso.ID {
		t.Errorf("one-time code for an SSO address: %v", err)
	}
	res, err := r.Resolve(ctx, connector{id: "sso-idp", trust: true}, upstream.Identity{Subject: "h", Email: "h@sso.example", EmailVerified: true}, identity.Options{})
	if err != nil || res.Org.ID != sso.ID {
		t.Errorf("the organisation's connector: %+v, %v", res, err)
	}
}
