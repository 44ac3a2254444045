package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/idbroker/broker/storage"
)

// Organisations in the identity step (docs/design.md rule 1 and rule 5,
// per organisation): which organisation a login lands in, whether the
// organisation's SSO rule lets the address sign in this way, whether the
// email may link, and the just-in-time membership.

// Directory is what the rules read of organisations: broker/orgs's
// cached Directory, so the hot path reads no storage for it.
type Directory interface {
	// ForDomain is the organisation that holds domain verified.
	ForDomain(domain string) (storage.Organization, bool)
	// ForUpstream is the organisation that names an upstream org id.
	ForUpstream(upstreamOrgID string) (storage.Organization, bool)
	// OrgOfConnector is the organisation whose connector connectorID is.
	OrgOfConnector(connectorID string) (storage.Organization, bool)
}

// Members makes members; storage.Organizations does.
type Members interface {
	EnsureMember(ctx context.Context, m storage.Membership) (storage.Membership, bool, error)
}

// Organizations are the organisation rules a Resolver applies. The zero
// value (no Directory) applies none: no identity lands in an organisation.
type Organizations struct {
	Directory Directory
	Members   Members
	// RefuseUnknownUpstream refuses an identity whose upstream names an
	// organisation no broker organisation maps (ErrUnknownUpstreamOrg);
	// otherwise it lands in no organisation.
	RefuseUnknownUpstream bool
}

// ErrUnknownUpstreamOrg is an identity whose upstream organisation maps
// to no broker organisation, under RefuseUnknownUpstream.
var ErrUnknownUpstreamOrg = errors.New("identity: the upstream organisation is not a known organisation")

// SSORequiredError refuses an address of a domain that Org holds
// verified and requires SSO for, signing in other than through Org's own
// login.
type SSORequiredError struct {
	Org storage.Organization
}

func (e *SSORequiredError) Error() string {
	return fmt.Sprintf("identity: organisation %s requires its own sign-in for this address", e.Org.Slug)
}

// WithOrganizations returns a Resolver like r that applies o.
func (r *Resolver) WithOrganizations(o Organizations) *Resolver {
	c := *r
	c.orgs = o
	return &c
}

// emailDomain is the domain of a normalised address, "" for none.
func emailDomain(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return ""
	}
	return email[at+1:]
}

// OrgOfLogin is the organisation an identity through connectorID that
// names upstreamOrg (its upstream's organisation, "" for none) lands in:
// the connector's own organisation, else the one mapped from upstreamOrg
// (a shared connector, one Auth0 tenant serving many customers). An
// upstream organisation nothing maps is no organisation, or
// ErrUnknownUpstreamOrg under RefuseUnknownUpstream; an organisation's
// own connector's identities are that organisation's, whatever upstream
// organisation they name. The zero Organization is none.
func (r *Resolver) OrgOfLogin(connectorID, upstreamOrg string) (storage.Organization, error) {
	d := r.orgs.Directory
	if d == nil {
		return storage.Organization{}, nil
	}
	if org, ok := d.OrgOfConnector(connectorID); ok {
		return org, nil
	}
	if upstreamOrg == "" {
		return storage.Organization{}, nil
	}
	if org, ok := d.ForUpstream(upstreamOrg); ok {
		return org, nil
	}
	if r.orgs.RefuseUnknownUpstream {
		return storage.Organization{}, fmt.Errorf("%w: connector %q names %q", ErrUnknownUpstreamOrg, connectorID, upstreamOrg)
	}
	return storage.Organization{}, nil
}

// SSORequired reports the organisation that refuses email signing in to
// login (the organisation the login lands in; zero for none): one that
// holds the email's domain verified, requires SSO, and is not login's.
// A one-time code lands in no organisation, so it is always refused for
// such an address.
func (r *Resolver) SSORequired(email string, login storage.Organization) (storage.Organization, bool) {
	d := r.orgs.Directory
	if d == nil || email == "" {
		return storage.Organization{}, false
	}
	org, ok := d.ForDomain(emailDomain(strings.ToLower(email)))
	if !ok || !org.RequireSSO || org.ID == login.ID {
		return storage.Organization{}, false
	}
	return org, true
}

// foreignDomain reports whether email's domain is held verified by an
// organisation other than login: an identity landing in login (an
// organisation's connector, or its mapped upstream) must not link to a
// user by that address, since login's identity provider does not speak
// for another organisation's addresses.
func (r *Resolver) foreignDomain(email string, login storage.Organization) bool {
	d := r.orgs.Directory
	if d == nil || login.ID == "" || email == "" {
		return false
	}
	org, ok := d.ForDomain(emailDomain(strings.ToLower(email)))
	return ok && org.ID != login.ID
}

// ensureMember makes user a member of org, just in time. An organisation
// deleted since the Directory was loaded lands the login in none.
func (r *Resolver) ensureMember(ctx context.Context, org storage.Organization, userID string) (storage.Organization, error) {
	if org.ID == "" || r.orgs.Members == nil {
		return org, nil
	}
	_, made, err := r.orgs.Members.EnsureMember(ctx, storage.Membership{
		OrgID: org.ID, UserID: userID, Role: storage.OrgRoleMember, CreatedAt: r.now(),
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Organization{}, nil
	}
	if err != nil {
		return storage.Organization{}, fmt.Errorf("ensure member: %w", err)
	}
	if made {
		r.log.InfoContext(ctx, "member added", "org_id", org.ID, "user_id", userID, "by", "login")
	}
	return org, nil
}
