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
type Organizations interface {
	// CreateOrganization stores o; ErrAlreadyExists when its ID, its Slug
	// or one of its UpstreamIDs is taken.
	CreateOrganization(ctx context.Context, o Organization) error
	// GetOrganization finds an organisation by its ID or its slug.
	GetOrganization(ctx context.Context, idOrSlug string) (Organization, error)
	// ListOrganizations returns up to limit organisations whose ids sort
	// after after ("" for the first page), in id order.
	ListOrganizations(ctx context.Context, after string, limit int) ([]Organization, error)
	// UpdateOrganization replaces the organisation with what update
	// returns (its ID unchanged), atomically; ErrAlreadyExists when the
	// new slug or an upstream id is another organisation's.
	UpdateOrganization(ctx context.Context, id string, update func(Organization) (Organization, error)) (Organization, error)
	// DeleteOrganization removes the organisation, its domains and its
	// memberships, and detaches its connectors (OrgID ""), which an
	// administrator then deletes or moves.
	DeleteOrganization(ctx context.Context, id string) error

	// AddDomain records orgID's claim on a domain, unverified;
	// ErrAlreadyExists when that organisation already claims it. Other
	// organisations may claim the same domain until one verifies it.
	AddDomain(ctx context.Context, d Domain) error
	// ListDomains returns an organisation's claims, by domain.
	ListDomains(ctx context.Context, orgID string) ([]Domain, error)
	// VerifyDomain marks orgID's claim on domain verified, by how, at at;
	// ErrNotFound without such a claim, ErrAlreadyExists when another
	// organisation holds the domain verified. Atomic: of two organisations
	// verifying at once, one wins.
	VerifyDomain(ctx context.Context, orgID, domain, by string, at time.Time) (Domain, error)
	// DeleteDomain removes orgID's claim on domain.
	DeleteDomain(ctx context.Context, orgID, domain string) error
	// ListVerifiedDomains returns every verified claim, by domain.
	ListVerifiedDomains(ctx context.Context) ([]Domain, error)

	// EnsureMember makes m.UserID a member of m.OrgID with m.Role unless
	// already a member (whose role it leaves), and reports whether it made
	// one. Atomic: concurrent calls for one pair make one membership.
	// ErrNotFound when the organisation or the user does not exist.
	EnsureMember(ctx context.Context, m Membership) (Membership, bool, error)
	// SetMemberRole changes a member's role; ErrNotFound for a non-member.
	SetMemberRole(ctx context.Context, orgID, userID, role string) (Membership, error)
	// RemoveMember ends a membership and, with it, the user's sessions
	// and refresh families in the organisation's context (Org == orgID),
	// atomically; the families' access tokens are refused until
	// revokeUntil (as RevokeGrant). It returns the sessions it ended.
	// ErrNotFound for a non-member.
	RemoveMember(ctx context.Context, orgID, userID string, revokeUntil time.Time) ([]Session, error)
	// ListMembers returns up to limit members of an organisation whose
	// user ids sort after after, in user id order.
	ListMembers(ctx context.Context, orgID, after string, limit int) ([]Membership, error)
	// Memberships returns a user's memberships, by organisation id.
	Memberships(ctx context.Context, userID string) ([]Membership, error)

	// CreateConnector stores c; ErrAlreadyExists when its id is taken.
	CreateConnector(ctx context.Context, c StoredConnector) error
	GetConnector(ctx context.Context, id string) (StoredConnector, error)
	// ListConnectors returns every stored connector, by id.
	ListConnectors(ctx context.Context) ([]StoredConnector, error)
	// UpdateConnector replaces the connector with what update returns
	// (its ID and Type unchanged), atomically.
	UpdateConnector(ctx context.Context, id string, update func(StoredConnector) (StoredConnector, error)) (StoredConnector, error)
	DeleteConnector(ctx context.Context, id string) error

	// OrgsGeneration is a number that changes whenever an organisation, a
	// domain or a stored connector does (memberships aside), in any
	// replica: replicas poll it to know when to reload what they cache.
	OrgsGeneration(ctx context.Context) (int64, error)
}
