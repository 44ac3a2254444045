package admin

// Administration of organisations: the organisations themselves, the
// email domains they claim (verified by a DNS TXT record or asserted by an
// administrator) and their members. Like clients and users, every change
// is recorded in the audit log.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/storage"
)

// ErrDomainUnverified wraps why a DNS verification found no proof of
// control: no TXT record, or none holding the challenge. The claim is
// unchanged; publishing the record and verifying again is the way on.
var ErrDomainUnverified = errors.New("domain not verified")

// ErrDNSLookup wraps a DNS lookup that got no answer (a timeout, a server
// failure): it says nothing about the domain, so the claim is unchanged.
var ErrDNSLookup = errors.New("DNS lookup failed")

// ChallengePrefix begins every domain challenge, so that a TXT record
// says what it is for to whoever reads the zone.
const ChallengePrefix = "broker-domain-verification="

// ChallengeLabel is the label under a domain where its TXT record is
// looked up.
const ChallengeLabel = "_broker-challenge"

// MaxOrgPage bounds a page of ListOrganizations and ListMembers.
const MaxOrgPage = 1000

// dnsTimeout bounds one verification's DNS lookup: an administrator is
// waiting, and a resolver that has not answered by then will not.
const dnsTimeout = 5 * time.Second

// Limits on what an organisation's settings may hold.
const (
	maxOrgName    = 200
	maxUpstreamID = 200
)

var slugPattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// OrgSpec is a new organisation's settings.
type OrgSpec struct {
	Slug        string   `json:"slug"`
	Name        string   `json:"name"`
	RequireSSO  bool     `json:"require_sso"`
	UpstreamIDs []string `json:"upstream_ids"`
}

// OrgUpdate changes the settings of an organisation that are not nil.
type OrgUpdate struct {
	Slug        *string   `json:"slug"`
	Name        *string   `json:"name"`
	RequireSSO  *bool     `json:"require_sso"`
	UpstreamIDs *[]string `json:"upstream_ids"`
}

// OrgInfo is an organisation as administrators see it.
type OrgInfo struct {
	ID          string    `json:"id"`
	Slug        string    `json:"slug"`
	Name        string    `json:"name"`
	RequireSSO  bool      `json:"require_sso"`
	UpstreamIDs []string  `json:"upstream_ids"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func orgInfo(o storage.Organization) OrgInfo {
	ids := o.UpstreamIDs
	if ids == nil {
		ids = []string{} // JSON [] rather than null: always a list
	}
	return OrgInfo{ID: o.ID, Slug: o.Slug, Name: o.Name, RequireSSO: o.RequireSSO, UpstreamIDs: ids, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

// TXTRecord is the record that proves control of a domain.
type TXTRecord struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// DomainInfo is an organisation's claim on a domain; while unverified, it
// says which TXT record verifies it.
type DomainInfo struct {
	Domain     string     `json:"domain"`
	OrgID      string     `json:"org_id"`
	Verified   bool       `json:"verified"`
	VerifiedBy string     `json:"verified_by,omitempty"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	TXTRecord  *TXTRecord `json:"txt_record,omitempty"`
}

func domainInfo(d storage.Domain) DomainInfo {
	info := DomainInfo{Domain: d.Domain, OrgID: d.OrgID, Verified: d.Verified, VerifiedBy: d.VerifiedBy, CreatedAt: d.CreatedAt}
	if d.Verified {
		t := d.VerifiedAt
		info.VerifiedAt = &t
	} else {
		info.TXTRecord = &TXTRecord{Name: challengeName(d.Domain), Value: d.Challenge}
	}
	return info
}

// MemberInfo is a membership.
type MemberInfo struct {
	OrgID     string    `json:"org_id"`
	UserID    string    `json:"user_id"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

func memberInfo(m storage.Membership) MemberInfo {
	return MemberInfo{OrgID: m.OrgID, UserID: m.UserID, Role: m.Role, CreatedAt: m.CreatedAt}
}

// checkOrg checks the settings of an organisation about to be stored,
// naming the field at fault.
func checkOrg(o storage.Organization) error {
	if !slugPattern.MatchString(o.Slug) {
		return invalidAdmin("slug: %q must be 1 to 63 characters of a-z, 0-9 and -, neither first nor last a -", truncate(o.Slug))
	}
	// An organisation is found by its id before its slug: a slug that
	// reads as a UUID, another organisation's id even, would name this
	// one wherever an id is taken, once that organisation is gone.
	if _, err := uuid.Parse(o.Slug); err == nil {
		return invalidAdmin("slug: %q reads as an organisation id (a UUID); choose a name", o.Slug)
	}
	switch {
	case strings.TrimSpace(o.Name) == "":
		return invalidAdmin("name: required")
	case utf8.RuneCountInString(o.Name) > maxOrgName:
		return invalidAdmin("name: longer than %d characters", maxOrgName)
	case !edge.ValidName(o.Name):
		return invalidAdmin("name: not UTF-8 text, or holds a control character")
	}
	seen := map[string]bool{}
	for _, id := range o.UpstreamIDs {
		switch {
		case strings.TrimSpace(id) == "":
			return invalidAdmin("upstream_ids: an empty id")
		case len(id) > maxUpstreamID:
			return invalidAdmin("upstream_ids: %q is longer than %d bytes", truncate(id), maxUpstreamID)
		case !edge.ValidName(id):
			return invalidAdmin("upstream_ids: an id that is not UTF-8 text, or holds a control character")
		case seen[id]:
			return invalidAdmin("upstream_ids: %q is listed twice", id)
		}
		seen[id] = true
	}
	return nil
}

// truncate shortens what an error quotes back.
func truncate(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:80] + "..."
}

// apply sets on o the fields u gives and returns their JSON names.
func (u OrgUpdate) apply(o *storage.Organization) []string {
	var changed []string
	if u.Slug != nil {
		o.Slug = *u.Slug
		changed = append(changed, "slug")
	}
	if u.Name != nil {
		o.Name = *u.Name
		changed = append(changed, "name")
	}
	if u.RequireSSO != nil {
		o.RequireSSO = *u.RequireSSO
		changed = append(changed, "require_sso")
	}
	if u.UpstreamIDs != nil {
		o.UpstreamIDs = slices.Clone(*u.UpstreamIDs)
		changed = append(changed, "upstream_ids")
	}
	return changed
}

func orgTarget(id string) string { return "org:" + id }

// CreateOrganization stores a new organisation under a generated UUID.
func (a *Admin) CreateOrganization(ctx context.Context, actor string, spec OrgSpec) (OrgInfo, error) {
	now := a.now()
	o := storage.Organization{ID: uuid.NewString(), Slug: spec.Slug, Name: spec.Name, RequireSSO: spec.RequireSSO,
		UpstreamIDs: slices.Clone(spec.UpstreamIDs), CreatedAt: now, UpdatedAt: now}
	if err := checkOrg(o); err != nil {
		return OrgInfo{}, err
	}
	err := a.store.CreateOrganization(ctx, o)
	if errors.Is(err, storage.ErrAlreadyExists) {
		return OrgInfo{}, fmt.Errorf("create organization %q: its slug or one of its upstream ids is another organization's: %w", o.Slug, err)
	}
	if err != nil {
		return OrgInfo{}, fmt.Errorf("create organization %q: %w", o.Slug, err)
	}
	return orgInfo(o), a.audit(ctx, actor, "org.create", orgTarget(o.ID), map[string]string{"slug": o.Slug})
}

// GetOrganization finds an organisation by id or slug.
func (a *Admin) GetOrganization(ctx context.Context, ref string) (OrgInfo, error) {
	o, err := a.org(ctx, ref)
	return orgInfo(o), err
}

func (a *Admin) org(ctx context.Context, ref string) (storage.Organization, error) {
	if ref == "" || !edge.ValidName(ref) {
		return storage.Organization{}, invalidAdmin("organization: an id or a slug is required")
	}
	o, err := a.store.GetOrganization(ctx, ref)
	if err != nil {
		return storage.Organization{}, fmt.Errorf("organization %q: %w", truncate(ref), err)
	}
	return o, nil
}

// ListOrganizations returns up to limit organisations (at most
// MaxOrgPage) whose ids sort after after, in id order.
func (a *Admin) ListOrganizations(ctx context.Context, after string, limit int) ([]OrgInfo, error) {
	after, err := pageAfter(after, "an organization id")
	if err != nil {
		return nil, err
	}
	os, err := a.store.ListOrganizations(ctx, after, pageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	out := make([]OrgInfo, len(os))
	for i, o := range os {
		out[i] = orgInfo(o)
	}
	return out, nil
}

// pageAfter checks a page's start, a UUID or "".
func pageAfter(after, what string) (string, error) {
	if after == "" {
		return "", nil
	}
	id, err := uuid.Parse(after)
	if err != nil {
		return "", invalidAdmin("after: %q is not %s", truncate(after), what)
	}
	return id.String(), nil
}

func pageLimit(limit int) int {
	if limit <= 0 || limit > MaxOrgPage {
		return MaxOrgPage
	}
	return limit
}

// UpdateOrganization changes an organisation's settings; the result is
// checked as a new organisation's would be.
func (a *Admin) UpdateOrganization(ctx context.Context, actor, ref string, u OrgUpdate) (OrgInfo, error) {
	was, err := a.org(ctx, ref)
	if err != nil {
		return OrgInfo{}, err
	}
	var changed []string
	o, err := a.store.UpdateOrganization(ctx, was.ID, func(o storage.Organization) (storage.Organization, error) {
		changed = u.apply(&o)
		o.UpdatedAt = a.now()
		return o, checkOrg(o)
	})
	if err != nil {
		return OrgInfo{}, fmt.Errorf("update organization %s: %w", was.ID, err)
	}
	return orgInfo(o), a.audit(ctx, actor, "org.update", orgTarget(o.ID), map[string]string{"fields": strings.Join(changed, ",")})
}

// DeleteOrganization removes an organisation with its domains and
// memberships; its connectors stay, detached.
func (a *Admin) DeleteOrganization(ctx context.Context, actor, ref string) error {
	o, err := a.org(ctx, ref)
	if err != nil {
		return err
	}
	if err := a.store.DeleteOrganization(ctx, o.ID); err != nil {
		return fmt.Errorf("delete organization %s: %w", o.ID, err)
	}
	return a.audit(ctx, actor, "org.delete", orgTarget(o.ID), map[string]string{"slug": o.Slug})
}

// NormalizeDomain returns an email domain as claims store it: lower-case
// ASCII, a host name of at least two labels. It refuses what an
// administrator may paste by mistake (a URL, an address, a port, a
// wildcard, a trailing dot, an IP address) rather than guess. An
// internationalised domain is given in its ASCII (xn--) form.
func NormalizeDomain(s string) (string, error) {
	d := strings.ToLower(strings.TrimSpace(s))
	bad := func(why string) (string, error) {
		return "", invalidAdmin("domain: %q %s", truncate(s), why)
	}
	switch {
	case d == "":
		return bad("is empty")
	case strings.Contains(d, "://"):
		return bad("is a URL; give the domain alone")
	case strings.Contains(d, "@"):
		return bad("holds an @; give the domain of the addresses alone")
	case strings.ContainsAny(d, "/?#"):
		return bad("holds a path; give the domain alone")
	case strings.Contains(d, "*"):
		return bad("is a wildcard; claim each domain")
	case strings.HasSuffix(d, "."):
		return bad("ends in a dot; give it without")
	case net.ParseIP(strings.Trim(d, "[]")) != nil:
		return bad("is an IP address")
	case strings.Contains(d, ":"):
		return bad("holds a port")
	case len(d) > 253:
		return bad("is longer than 253 characters")
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return bad("is not a domain of at least two labels (example.com)")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return bad("has an empty label or one longer than 63 characters")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return bad("has a label that begins or ends with -")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				if c >= utf8.RuneSelf {
					return bad("is not ASCII; give its xn-- form")
				}
				return bad("is not a host name (letters, digits and - only)")
			}
		}
	}
	// A top-level domain is never all digits: that is an address.
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return bad("is not a host name")
	}
	return d, nil
}

// challengeName is where the TXT record of domain is looked up.
func challengeName(domain string) string { return ChallengeLabel + "." + domain }

func newChallenge() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return ChallengePrefix + base64.RawURLEncoding.EncodeToString(b)
}

func domainTarget(orgID, domain string) string { return "org:" + orgID + "/domain:" + domain }

// AddDomain records an organisation's claim on a domain, unverified,
// with the challenge its TXT record must hold.
func (a *Admin) AddDomain(ctx context.Context, actor, ref, domain string) (DomainInfo, error) {
	domain, err := NormalizeDomain(domain)
	if err != nil {
		return DomainInfo{}, err
	}
	o, err := a.org(ctx, ref)
	if err != nil {
		return DomainInfo{}, err
	}
	d := storage.Domain{Domain: domain, OrgID: o.ID, Challenge: newChallenge(), CreatedAt: a.now()}
	if err := a.store.AddDomain(ctx, d); errors.Is(err, storage.ErrAlreadyExists) {
		// The organisation claims it already, or another holds it
		// verified: say which.
		why := "another organization holds it verified"
		if ds, lerr := a.store.ListDomains(ctx, o.ID); lerr == nil && slices.ContainsFunc(ds, func(c storage.Domain) bool { return c.Domain == domain }) {
			why = "this organization claims it already"
		}
		return DomainInfo{}, fmt.Errorf("domain %s: %s: %w", domain, why, err)
	} else if err != nil {
		return DomainInfo{}, fmt.Errorf("organization %s claims domain %s: %w", o.ID, domain, err)
	}
	return domainInfo(d), a.audit(ctx, actor, "org.domain.add", domainTarget(o.ID, domain), nil)
}

// ListDomains returns an organisation's claims.
func (a *Admin) ListDomains(ctx context.Context, ref string) ([]DomainInfo, error) {
	o, err := a.org(ctx, ref)
	if err != nil {
		return nil, err
	}
	ds, err := a.store.ListDomains(ctx, o.ID)
	if err != nil {
		return nil, fmt.Errorf("domains of organization %s: %w", o.ID, err)
	}
	out := make([]DomainInfo, len(ds))
	for i, d := range ds {
		out[i] = domainInfo(d)
	}
	return out, nil
}

// claim returns an organisation's claim on domain.
func (a *Admin) claim(ctx context.Context, ref, domain string) (storage.Organization, storage.Domain, error) {
	domain, err := NormalizeDomain(domain)
	if err != nil {
		return storage.Organization{}, storage.Domain{}, err
	}
	o, err := a.org(ctx, ref)
	if err != nil {
		return storage.Organization{}, storage.Domain{}, err
	}
	ds, err := a.store.ListDomains(ctx, o.ID)
	if err != nil {
		return o, storage.Domain{}, fmt.Errorf("domains of organization %s: %w", o.ID, err)
	}
	i := slices.IndexFunc(ds, func(d storage.Domain) bool { return d.Domain == domain })
	if i < 0 {
		return o, storage.Domain{}, fmt.Errorf("organization %s claims no domain %s: %w", o.ID, domain, storage.ErrNotFound)
	}
	return o, ds[i], nil
}

// VerifyDomain verifies an organisation's claim on a domain by DNS: a TXT
// record at _broker-challenge.<domain> must hold the claim's challenge
// exactly. Otherwise the error, wrapping ErrDomainUnverified, says what
// was found and what is expected. A claim already verified is returned
// as it is.
func (a *Admin) VerifyDomain(ctx context.Context, actor, ref, domain string) (DomainInfo, error) {
	o, d, err := a.claim(ctx, ref, domain)
	if err != nil || d.Verified {
		return domainInfo(d), err
	}
	name := challengeName(d.Domain)
	lookup, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	// The trailing dot makes the name absolute: no search domain of the
	// resolver's configuration is tried after it.
	values, err := a.resolver.LookupTXT(lookup, name+".")
	if dnsErr := (*net.DNSError)(nil); errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return DomainInfo{}, fmt.Errorf("%w: no TXT record at %s; publish one with the value %q", ErrDomainUnverified, name, d.Challenge)
	}
	if err != nil {
		return DomainInfo{}, fmt.Errorf("%w: TXT records at %s: %w", ErrDNSLookup, name, err)
	}
	if !slices.Contains(values, d.Challenge) {
		found := values
		if len(found) > 5 {
			found = found[:5]
		}
		for i, v := range found {
			found[i] = truncate(v)
		}
		return DomainInfo{}, fmt.Errorf("%w: the TXT records at %s hold %q, none the expected %q", ErrDomainUnverified, name, found, d.Challenge)
	}
	return a.verified(ctx, actor, o, d.Domain, "dns", map[string]string{"by": "dns"})
}

// AssertDomain marks an organisation's claim on a domain verified on an
// administrator's word, which reason explains in the audit log.
func (a *Admin) AssertDomain(ctx context.Context, actor, ref, domain, reason string) (DomainInfo, error) {
	switch {
	case strings.TrimSpace(reason) == "":
		return DomainInfo{}, invalidAdmin("reason: required to assert a domain verified")
	case len(reason) > 1000 || !edge.ValidName(reason):
		return DomainInfo{}, invalidAdmin("reason: at most 1000 bytes of text without control characters")
	}
	o, d, err := a.claim(ctx, ref, domain)
	if err != nil {
		return DomainInfo{}, err
	}
	return a.verified(ctx, actor, o, d.Domain, "admin", map[string]string{"by": "admin", "reason": reason})
}

func (a *Admin) verified(ctx context.Context, actor string, o storage.Organization, domain, by string, details map[string]string) (DomainInfo, error) {
	d, err := a.store.VerifyDomain(ctx, o.ID, domain, by, a.now())
	if errors.Is(err, storage.ErrAlreadyExists) {
		return DomainInfo{}, fmt.Errorf("domain %s is verified for another organization: %w", domain, err)
	}
	if err != nil {
		return DomainInfo{}, fmt.Errorf("verify domain %s of organization %s: %w", domain, o.ID, err)
	}
	return domainInfo(d), a.audit(ctx, actor, "org.domain.verify", domainTarget(o.ID, domain), details)
}

// RemoveDomain removes an organisation's claim on a domain, verified or
// not.
func (a *Admin) RemoveDomain(ctx context.Context, actor, ref, domain string) error {
	o, d, err := a.claim(ctx, ref, domain)
	if err != nil {
		return err
	}
	if err := a.store.DeleteDomain(ctx, o.ID, d.Domain); err != nil {
		return fmt.Errorf("remove domain %s of organization %s: %w", d.Domain, o.ID, err)
	}
	return a.audit(ctx, actor, "org.domain.remove", domainTarget(o.ID, d.Domain), map[string]string{"verified": fmt.Sprint(d.Verified)})
}

func checkRole(role string) error {
	if role != storage.OrgRoleMember && role != storage.OrgRoleAdmin {
		return invalidAdmin("role: %q is not %s or %s", truncate(role), storage.OrgRoleMember, storage.OrgRoleAdmin)
	}
	return nil
}

func memberTarget(orgID, userID string) string { return "org:" + orgID + "/user:" + userID }

// AddMember makes a user (by id or verified email) a member of an
// organisation with role (member when ""). A user who is a member already
// stays as they are, and created is false.
func (a *Admin) AddMember(ctx context.Context, actor, ref, userRef, role string) (m MemberInfo, created bool, err error) {
	if role == "" {
		role = storage.OrgRoleMember
	}
	if err := checkRole(role); err != nil {
		return MemberInfo{}, false, err
	}
	if userRef == "" {
		return MemberInfo{}, false, invalidAdmin("user_id: required")
	}
	o, err := a.org(ctx, ref)
	if err != nil {
		return MemberInfo{}, false, err
	}
	u, err := a.FindUser(ctx, userRef)
	if err != nil {
		return MemberInfo{}, false, err
	}
	got, created, err := a.store.EnsureMember(ctx, storage.Membership{OrgID: o.ID, UserID: u.ID, Role: role, CreatedAt: a.now()})
	if err != nil {
		return MemberInfo{}, false, fmt.Errorf("add user %s to organization %s: %w", u.ID, o.ID, err)
	}
	if !created {
		return memberInfo(got), false, nil
	}
	return memberInfo(got), true, a.audit(ctx, actor, "org.member.add", memberTarget(o.ID, u.ID), map[string]string{"role": got.Role})
}

// ListMembers returns up to limit members (at most MaxOrgPage) of an
// organisation whose user ids sort after after.
func (a *Admin) ListMembers(ctx context.Context, ref, after string, limit int) ([]MemberInfo, error) {
	after, err := pageAfter(after, "a user id")
	if err != nil {
		return nil, err
	}
	o, err := a.org(ctx, ref)
	if err != nil {
		return nil, err
	}
	ms, err := a.store.ListMembers(ctx, o.ID, after, pageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("members of organization %s: %w", o.ID, err)
	}
	out := make([]MemberInfo, len(ms))
	for i, m := range ms {
		out[i] = memberInfo(m)
	}
	return out, nil
}

// SetMemberRole changes a member's role.
func (a *Admin) SetMemberRole(ctx context.Context, actor, ref, userRef, role string) (MemberInfo, error) {
	if err := checkRole(role); err != nil {
		return MemberInfo{}, err
	}
	o, u, err := a.orgUser(ctx, ref, userRef)
	if err != nil {
		return MemberInfo{}, err
	}
	m, err := a.store.SetMemberRole(ctx, o.ID, u.ID, role)
	if err != nil {
		return MemberInfo{}, fmt.Errorf("user %s in organization %s: %w", u.ID, o.ID, err)
	}
	return memberInfo(m), a.audit(ctx, actor, "org.member.role", memberTarget(o.ID, u.ID), map[string]string{"role": role})
}

func (a *Admin) orgUser(ctx context.Context, ref, userRef string) (storage.Organization, UserInfo, error) {
	o, err := a.org(ctx, ref)
	if err != nil {
		return o, UserInfo{}, err
	}
	u, err := a.FindUser(ctx, userRef)
	return o, u, err
}

// RemoveMember ends a user's membership of an organisation and, with it,
// their sessions and refresh families in its context; the families'
// access tokens are refused for as long as one may live (the access-token
// lifetime and the clock skew allowed). The ended sessions' clients are
// told, as for a disabled user. It returns how many sessions ended.
func (a *Admin) RemoveMember(ctx context.Context, actor, ref, userRef string) (int, error) {
	o, u, err := a.orgUser(ctx, ref, userRef)
	if err != nil {
		return 0, err
	}
	sessions, err := a.store.RemoveMember(ctx, o.ID, u.ID, a.now().Add(a.tokenLifetime))
	if err != nil {
		return 0, fmt.Errorf("remove user %s from organization %s: %w", u.ID, o.ID, err)
	}
	for _, s := range sessions {
		a.endedSession(ctx, s)
	}
	return len(sessions), a.audit(ctx, actor, "org.member.remove", memberTarget(o.ID, u.ID), map[string]string{"sessions_ended": fmt.Sprint(len(sessions))})
}

// OrgConnectors returns the connectors stored for an organisation.
func (a *Admin) OrgConnectors(ctx context.Context, ref string) ([]ConnectorInfo, error) {
	o, err := a.org(ctx, ref)
	if err != nil {
		return nil, err
	}
	all, err := a.store.ListConnectors(ctx)
	if err != nil {
		return nil, fmt.Errorf("connectors of organization %s: %w", o.ID, err)
	}
	out := []ConnectorInfo{}
	for _, c := range all {
		if c.OrgID != o.ID {
			continue
		}
		info, err := a.connectorInfo(c)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// CreateOrgConnector creates a connector of an organisation: spec, whose
// org_id may only name that organisation.
func (a *Admin) CreateOrgConnector(ctx context.Context, actor, ref string, spec ConnectorSpec) (ConnectorInfo, error) {
	o, err := a.org(ctx, ref)
	if err != nil {
		return ConnectorInfo{}, err
	}
	if spec.OrgID != "" && spec.OrgID != o.ID {
		return ConnectorInfo{}, invalidAdmin("org_id: %q is not the organization of the path", truncate(spec.OrgID))
	}
	spec.OrgID = o.ID
	return a.CreateConnector(ctx, actor, spec)
}
