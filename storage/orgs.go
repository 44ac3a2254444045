package storage

import (
	"context"
	"time"
)

// Organization is an enterprise customer of the platform: it brings its
// own identity providers (connectors whose OrgID is its ID), email
// domains and members.
type Organization struct {
	ID string // a UUID; the org_id claim
	// Slug is unique, 1 to 63 characters of a-z, 0-9 and "-", neither
	// first nor last a "-": the org_slug claim and the organization
	// parameter of /authorize.
	Slug string
	Name string
	// RequireSSO makes an address of one of the organisation's verified
	// domains sign in through the organisation's own connectors only:
	// never with a one-time code, another organisation's connector, or by
	// token exchange of another connector's token.
	RequireSSO bool
	// UpstreamIDs are the upstream organisations this organisation is
	// (an Auth0 org_id, an Entra tenant id, a WorkOS organization id): a
	// login or exchange through any connector that names one of them lands
	// in this organisation. Each is unique across organisations.
	UpstreamIDs []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Domain is an organisation's claim on an email domain. Only a verified
// claim routes logins or enforces SSO; one organisation at most holds a
// domain verified.
type Domain struct {
	Domain string // lower-case ASCII (IDNA), no trailing dot
	OrgID  string
	// Challenge is the value of the TXT record at
	// _broker-challenge.<domain> that proves control of the domain.
	Challenge string
	Verified  bool
	// VerifiedBy says how the claim was verified: "dns", or "admin"
	// (asserted, with the reason in the audit log).
	VerifiedBy string
	VerifiedAt time.Time
	CreatedAt  time.Time
}

// Organisation roles of a member.
const (
	OrgRoleMember = "member"
	OrgRoleAdmin  = "admin"
)

// Membership says a user belongs to an organisation.
type Membership struct {
	OrgID     string
	UserID    string
	Role      string // OrgRoleMember or OrgRoleAdmin
	CreatedAt time.Time
}

// StoredConnector is a connector created at run time, beside those of the
// configuration file (whose ids it may not take).
type StoredConnector struct {
	ID   string
	Type string // a registry type: oidc, auth0, azuread, workos, ...
	Name string
	// OrgID is the organisation whose identity provider it is, or "".
	OrgID string
	// Settings is the type's Config as JSON, sealed under the root secret
	// (it holds client secrets and API keys): storage never sees it in the
	// clear.
	Settings        []byte
	Timeout         time.Duration
	RecheckInterval time.Duration
	Disabled        bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Organizations holds organisations, their domains and members, and the
// connectors created at run time.
//
// An organisation id that is not a UUID names no organisation: a lookup,
// change or delete by one gives ErrNotFound. Ids are compared as UUIDs,
// and returned in canonical (lower-case) form.
type Organizations interface {
	// CreateOrganization stores o; ErrAlreadyExists when its ID, its Slug
	// or one of its UpstreamIDs is taken (or o names one twice). An ID
	// that is not a UUID is an error.
	CreateOrganization(ctx context.Context, o Organization) error
	// GetOrganization finds an organisation by its ID or its slug; an ID
	// wins over a slug spelled like it.
	GetOrganization(ctx context.Context, idOrSlug string) (Organization, error)
	// ListOrganizations returns up to limit organisations whose ids sort
	// after after ("" for the first page), in id order; none for a limit
	// of 0 or less.
	ListOrganizations(ctx context.Context, after string, limit int) ([]Organization, error)
	// UpdateOrganization replaces the organisation with what update
	// returns (its ID unchanged), atomically; ErrAlreadyExists when the
	// new slug or an upstream id is another organisation's. An error from
	// update is returned as it is. update runs while the organisation is
	// held: it may read the store but not change this organisation.
	UpdateOrganization(ctx context.Context, id string, update func(Organization) (Organization, error)) (Organization, error)
	// DeleteOrganization removes the organisation, its domains and its
	// memberships, and detaches its connectors (OrgID ""), which an
	// administrator then deletes or moves.
	DeleteOrganization(ctx context.Context, id string) error

	// AddDomain records d.OrgID's claim on d.Domain, unverified whatever d
	// says; ErrAlreadyExists when that organisation already claims it,
	// ErrNotFound when the organisation does not exist. Other
	// organisations may claim the same domain until one verifies it; from
	// then on their AddDomain gives ErrAlreadyExists (claims made before
	// stay, and cannot be verified).
	AddDomain(ctx context.Context, d Domain) error
	// ListDomains returns an organisation's claims, by domain (none for an
	// organisation that does not exist).
	ListDomains(ctx context.Context, orgID string) ([]Domain, error)
	// VerifyDomain marks orgID's claim on domain verified, by how, at at;
	// ErrNotFound without such a claim, ErrAlreadyExists when another
	// organisation holds the domain verified. Atomic: of two organisations
	// verifying at once, one wins. Verifying a verified claim again
	// records by and at anew.
	VerifyDomain(ctx context.Context, orgID, domain, by string, at time.Time) (Domain, error)
	// DeleteDomain removes orgID's claim on domain, verified or not, which
	// frees the domain for another organisation to verify; ErrNotFound
	// without such a claim.
	DeleteDomain(ctx context.Context, orgID, domain string) error
	// ListVerifiedDomains returns every verified claim, by domain.
	ListVerifiedDomains(ctx context.Context) ([]Domain, error)

	// EnsureMember makes m.UserID a member of m.OrgID with m.Role unless
	// already a member (whose role and CreatedAt it leaves), and returns
	// the membership as stored and whether it made it. Atomic: concurrent
	// calls for one pair make one membership, and one of them reports
	// making it. ErrNotFound when the organisation or the user does not
	// exist. A user's memberships go when the user is deleted.
	EnsureMember(ctx context.Context, m Membership) (Membership, bool, error)
	// SetMemberRole changes a member's role; ErrNotFound for a non-member.
	SetMemberRole(ctx context.Context, orgID, userID, role string) (Membership, error)
	// RemoveMember ends a membership and, with it, the user's sessions
	// and refresh families in the organisation's context (Org == orgID),
	// atomically: each session as EndSession ends it, each family, and
	// each family issued under one of those sessions, as RevokeGrant
	// revokes it, so the access tokens of their grants are refused until
	// revokeUntil (give it the access-token lifetime from now). Other
	// organisations' sessions and families, and those without an
	// organisation, are left. It returns the sessions it ended, oldest
	// first. ErrNotFound for a non-member.
	RemoveMember(ctx context.Context, orgID, userID string, revokeUntil time.Time) ([]Session, error)
	// ListMembers returns up to limit members of an organisation whose
	// user ids sort after after, in user id order; none for an
	// organisation that does not exist or a limit of 0 or less.
	ListMembers(ctx context.Context, orgID, after string, limit int) ([]Membership, error)
	// Memberships returns a user's memberships, by organisation id.
	Memberships(ctx context.Context, userID string) ([]Membership, error)

	// CreateConnector stores c; ErrAlreadyExists when its id is taken,
	// ErrNotFound when c.OrgID names an organisation that does not exist.
	// Durations are kept to the microsecond.
	CreateConnector(ctx context.Context, c StoredConnector) error
	// GetConnector returns a stored connector or ErrNotFound.
	GetConnector(ctx context.Context, id string) (StoredConnector, error)
	// ListConnectors returns every stored connector, by id.
	ListConnectors(ctx context.Context) ([]StoredConnector, error)
	// UpdateConnector replaces the connector with what update returns
	// (its ID and Type unchanged), atomically; ErrNotFound when the new
	// OrgID names an organisation that does not exist. An error from
	// update is returned as it is; update may read the store but not
	// change this connector.
	UpdateConnector(ctx context.Context, id string, update func(StoredConnector) (StoredConnector, error)) (StoredConnector, error)
	// DeleteConnector removes a stored connector; ErrNotFound without one.
	DeleteConnector(ctx context.Context, id string) error

	// OrgsGeneration is a number that changes whenever an organisation, a
	// domain or a stored connector does (memberships aside), in any
	// replica: replicas poll it to know when to reload what they cache.
	// A change that fails leaves it. Compare it for equality only.
	OrgsGeneration(ctx context.Context) (int64, error)
}
