package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/idbroker/broker/storage"
)

// domainKey names one organisation's claim on a domain.
type domainKey struct{ orgID, domain string }

// memberKey names one membership.
type memberKey struct{ orgID, userID string }

// orgIndexes are Store's organisations, domains, members and stored
// connectors, with the indexes that keep slugs, upstream ids and verified
// domains unique; mu guards them all.
type orgIndexes struct {
	orgs            map[string]storage.Organization // by canonical id
	orgSlugs        map[string]string               // slug → org id
	orgUpstreams    map[string]string               // upstream id → org id
	domains         map[domainKey]storage.Domain
	verifiedDomains map[string]string // domain → id of the org holding it verified
	members         map[memberKey]storage.Membership
	connectors      map[string]storage.StoredConnector
	orgsGeneration  int64
}

func newOrgIndexes() orgIndexes {
	return orgIndexes{
		orgs:            make(map[string]storage.Organization),
		orgSlugs:        make(map[string]string),
		orgUpstreams:    make(map[string]string),
		domains:         make(map[domainKey]storage.Domain),
		verifiedDomains: make(map[string]string),
		members:         make(map[memberKey]storage.Membership),
		connectors:      make(map[string]storage.StoredConnector),
	}
}

// canonicalOrgID returns the canonical form of an organisation id, and
// false when it is not a UUID: as in Postgres, whose column is a uuid, no
// organisation has such an id.
func canonicalOrgID(id string) (string, bool) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// orgTaken says which of o's unique fields another organisation than o
// holds, or "" when none. The caller holds mu.
func (s *Store) orgTaken(o storage.Organization) string {
	if id, ok := s.orgSlugs[o.Slug]; ok && id != o.ID {
		return "slug " + o.Slug
	}
	for _, up := range o.UpstreamIDs {
		if id, ok := s.orgUpstreams[up]; ok && id != o.ID {
			return "upstream id " + up
		}
	}
	return ""
}

// indexOrg adds o to the slug and upstream indexes; unindexOrg takes it
// out. The caller holds mu.
func (s *Store) indexOrg(o storage.Organization) {
	s.orgSlugs[o.Slug] = o.ID
	for _, up := range o.UpstreamIDs {
		s.orgUpstreams[up] = o.ID
	}
}

func (s *Store) unindexOrg(o storage.Organization) {
	delete(s.orgSlugs, o.Slug)
	for _, up := range o.UpstreamIDs {
		delete(s.orgUpstreams, up)
	}
}

// CreateOrganization implements storage.Organizations.
func (s *Store) CreateOrganization(ctx context.Context, o storage.Organization) error {
	id, ok := canonicalOrgID(o.ID)
	if !ok {
		return fmt.Errorf("memory: create organization: id %q is not a UUID", o.ID)
	}
	o = cloneOrganization(o)
	o.ID = id
	if dup := duplicate(o.UpstreamIDs); dup != "" {
		return fmt.Errorf("memory: create organization: upstream id %q twice: %w", dup, storage.ErrAlreadyExists)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.orgs[id]; ok {
		return fmt.Errorf("memory: create organization %s: %w", id, storage.ErrAlreadyExists)
	}
	if taken := s.orgTaken(o); taken != "" {
		return fmt.Errorf("memory: create organization %s: %s: %w", id, taken, storage.ErrAlreadyExists)
	}
	s.orgs[id] = o
	s.indexOrg(o)
	s.orgsGeneration++
	return nil
}

// duplicate returns a value that appears twice in vs, or "".
func duplicate(vs []string) string {
	seen := make(map[string]bool, len(vs))
	for _, v := range vs {
		if seen[v] {
			return v
		}
		seen[v] = true
	}
	return ""
}

// GetOrganization implements storage.Organizations. An id is looked up
// before a slug, so a slug spelled like another organisation's id never
// hides it.
func (s *Store) GetOrganization(ctx context.Context, idOrSlug string) (storage.Organization, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := canonicalOrgID(idOrSlug); ok {
		if o, ok := s.orgs[id]; ok {
			return cloneOrganization(o), nil
		}
	}
	if id, ok := s.orgSlugs[idOrSlug]; ok {
		return cloneOrganization(s.orgs[id]), nil
	}
	return storage.Organization{}, storage.ErrNotFound
}

// ListOrganizations implements storage.Organizations.
func (s *Store) ListOrganizations(ctx context.Context, after string, limit int) ([]storage.Organization, error) {
	if limit <= 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.Organization
	for id, o := range s.orgs {
		if id > after {
			out = append(out, cloneOrganization(o))
		}
	}
	slices.SortFunc(out, func(a, b storage.Organization) int { return cmp.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// UpdateOrganization implements storage.Organizations. Updates are
// serialized by updateMu, and update runs without mu held, so it may read
// the store. An error from update is returned as it is.
func (s *Store) UpdateOrganization(ctx context.Context, id string, update func(storage.Organization) (storage.Organization, error)) (storage.Organization, error) {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()

	cid, ok := canonicalOrgID(id)
	if !ok {
		return storage.Organization{}, storage.ErrNotFound
	}
	// By id alone: GetOrganization would take a slug spelled like cid.
	s.mu.Lock()
	o, ok := s.orgs[cid]
	s.mu.Unlock()
	if !ok {
		return storage.Organization{}, storage.ErrNotFound
	}
	o, err := update(cloneOrganization(o))
	if err != nil {
		return storage.Organization{}, err
	}
	o = cloneOrganization(o)
	o.ID = cid
	if dup := duplicate(o.UpstreamIDs); dup != "" {
		return storage.Organization{}, fmt.Errorf("memory: update organization %s: upstream id %q twice: %w", cid, dup, storage.ErrAlreadyExists)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// DeleteOrganization does not take updateMu; do not revive what it removed.
	old, ok := s.orgs[cid]
	if !ok {
		return storage.Organization{}, storage.ErrNotFound
	}
	if taken := s.orgTaken(o); taken != "" {
		return storage.Organization{}, fmt.Errorf("memory: update organization %s: %s: %w", cid, taken, storage.ErrAlreadyExists)
	}
	s.unindexOrg(old)
	s.indexOrg(o)
	s.orgs[cid] = o
	s.orgsGeneration++
	return cloneOrganization(o), nil
}

// DeleteOrganization implements storage.Organizations under one hold of
// the lock.
func (s *Store) DeleteOrganization(ctx context.Context, id string) error {
	cid, ok := canonicalOrgID(id)
	if !ok {
		return storage.ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orgs[cid]
	if !ok {
		return storage.ErrNotFound
	}
	s.unindexOrg(o)
	delete(s.orgs, cid)
	for k, d := range s.domains {
		if k.orgID == cid {
			if d.Verified && s.verifiedDomains[d.Domain] == cid {
				delete(s.verifiedDomains, d.Domain)
			}
			delete(s.domains, k)
		}
	}
	for k := range s.members {
		if k.orgID == cid {
			delete(s.members, k)
		}
	}
	for id, c := range s.connectors {
		if c.OrgID == cid {
			c.OrgID = ""
			s.connectors[id] = c
		}
	}
	s.orgsGeneration++
	return nil
}

// AddDomain implements storage.Organizations. The claim is stored
// unverified whatever d says. ErrNotFound when the organisation does not
// exist.
func (s *Store) AddDomain(ctx context.Context, d storage.Domain) error {
	cid, ok := canonicalOrgID(d.OrgID)
	if !ok {
		return fmt.Errorf("memory: add domain %q: organization: %w", d.Domain, storage.ErrNotFound)
	}
	d.OrgID = cid
	d.Verified, d.VerifiedBy, d.VerifiedAt = false, "", time.Time{}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.orgs[cid]; !ok {
		return fmt.Errorf("memory: add domain %q: organization: %w", d.Domain, storage.ErrNotFound)
	}
	k := domainKey{cid, d.Domain}
	if _, ok := s.domains[k]; ok {
		return fmt.Errorf("memory: add domain %q: %w", d.Domain, storage.ErrAlreadyExists)
	}
	if holder, ok := s.verifiedDomains[d.Domain]; ok && holder != cid {
		return fmt.Errorf("memory: add domain %q: verified by another organization: %w", d.Domain, storage.ErrAlreadyExists)
	}
	s.domains[k] = d
	s.orgsGeneration++
	return nil
}

// ListDomains implements storage.Organizations.
func (s *Store) ListDomains(ctx context.Context, orgID string) ([]storage.Domain, error) {
	cid, ok := canonicalOrgID(orgID)
	if !ok {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.Domain
	for k, d := range s.domains {
		if k.orgID == cid {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b storage.Domain) int { return cmp.Compare(a.Domain, b.Domain) })
	return out, nil
}

// VerifyDomain implements storage.Organizations. Verifying a claim already
// verified records by and at anew.
func (s *Store) VerifyDomain(ctx context.Context, orgID, domain, by string, at time.Time) (storage.Domain, error) {
	cid, ok := canonicalOrgID(orgID)
	if !ok {
		return storage.Domain{}, storage.ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := domainKey{cid, domain}
	d, ok := s.domains[k]
	if !ok {
		return storage.Domain{}, storage.ErrNotFound
	}
	if holder, ok := s.verifiedDomains[domain]; ok && holder != cid {
		return storage.Domain{}, fmt.Errorf("memory: verify domain %q: verified by another organization: %w", domain, storage.ErrAlreadyExists)
	}
	d.Verified, d.VerifiedBy, d.VerifiedAt = true, by, at
	s.domains[k] = d
	s.verifiedDomains[domain] = cid
	s.orgsGeneration++
	return d, nil
}

// DeleteDomain implements storage.Organizations; ErrNotFound without the
// claim.
func (s *Store) DeleteDomain(ctx context.Context, orgID, domain string) error {
	cid, ok := canonicalOrgID(orgID)
	if !ok {
		return storage.ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := domainKey{cid, domain}
	d, ok := s.domains[k]
	if !ok {
		return storage.ErrNotFound
	}
	if d.Verified && s.verifiedDomains[domain] == cid {
		delete(s.verifiedDomains, domain)
	}
	delete(s.domains, k)
	s.orgsGeneration++
	return nil
}

// ListVerifiedDomains implements storage.Organizations.
func (s *Store) ListVerifiedDomains(ctx context.Context) ([]storage.Domain, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.Domain, 0, len(s.verifiedDomains))
	for domain, cid := range s.verifiedDomains {
		out = append(out, s.domains[domainKey{cid, domain}])
	}
	slices.SortFunc(out, func(a, b storage.Domain) int { return cmp.Compare(a.Domain, b.Domain) })
	return out, nil
}

// EnsureMember implements storage.Organizations under one hold of the lock.
func (s *Store) EnsureMember(ctx context.Context, m storage.Membership) (storage.Membership, bool, error) {
	cid, ok := canonicalOrgID(m.OrgID)
	if !ok {
		return storage.Membership{}, false, fmt.Errorf("memory: ensure member: organization: %w", storage.ErrNotFound)
	}
	m.OrgID, m.UserID = cid, canonicalID(m.UserID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.orgs[cid]; !ok {
		return storage.Membership{}, false, fmt.Errorf("memory: ensure member: organization: %w", storage.ErrNotFound)
	}
	if _, ok := s.users[m.UserID]; !ok {
		return storage.Membership{}, false, fmt.Errorf("memory: ensure member: user: %w", storage.ErrNotFound)
	}
	k := memberKey{cid, m.UserID}
	if cur, ok := s.members[k]; ok {
		return cur, false, nil
	}
	s.members[k] = m
	return m, true, nil
}

// SetMemberRole implements storage.Organizations.
func (s *Store) SetMemberRole(ctx context.Context, orgID, userID, role string) (storage.Membership, error) {
	cid, ok := canonicalOrgID(orgID)
	if !ok {
		return storage.Membership{}, storage.ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := memberKey{cid, canonicalID(userID)}
	m, ok := s.members[k]
	if !ok {
		return storage.Membership{}, storage.ErrNotFound
	}
	m.Role = role
	s.members[k] = m
	return m, nil
}

// RemoveMember implements storage.Organizations under one hold of the
// lock. It ends each of the user's sessions in the organisation's context
// as EndSession does, and revokes as RevokeGrant does each of the user's
// refresh families in that context or under one of those sessions.
func (s *Store) RemoveMember(ctx context.Context, orgID, userID string, revokeUntil time.Time) ([]storage.Session, error) {
	cid, ok := canonicalOrgID(orgID)
	if !ok {
		return nil, storage.ErrNotFound
	}
	userID = canonicalID(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := memberKey{cid, userID}
	if _, ok := s.members[k]; !ok {
		return nil, storage.ErrNotFound
	}
	delete(s.members, k)
	var ended []storage.Session
	endedIDs := make(map[string]bool)
	for id, sess := range s.sessions {
		if sess.UserID == userID && sess.Org == cid {
			delete(s.sessions, id)
			ended = append(ended, cloneSession(sess))
			endedIDs[id] = true
		}
	}
	for id, f := range s.families {
		if f.UserID == userID && (f.Org == cid || endedIDs[f.SessionID]) {
			s.revokeFamily(id)
			s.revokedGrants[id] = later(s.revokedGrants[id], revokeUntil)
		}
	}
	slices.SortFunc(ended, func(a, b storage.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return ended, nil
}

// ListMembers implements storage.Organizations. An organisation that does
// not exist has no members.
func (s *Store) ListMembers(ctx context.Context, orgID, after string, limit int) ([]storage.Membership, error) {
	cid, ok := canonicalOrgID(orgID)
	if !ok || limit <= 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.Membership
	for k, m := range s.members {
		if k.orgID == cid && k.userID > after {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b storage.Membership) int { return cmp.Compare(a.UserID, b.UserID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Memberships implements storage.Organizations.
func (s *Store) Memberships(ctx context.Context, userID string) ([]storage.Membership, error) {
	userID = canonicalID(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.Membership
	for k, m := range s.members {
		if k.userID == userID {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b storage.Membership) int { return cmp.Compare(a.OrgID, b.OrgID) })
	return out, nil
}

// connectorOrg checks c's organisation, which must exist if named, and
// returns c with its id in canonical form. The caller holds mu.
func (s *Store) connectorOrg(c storage.StoredConnector) (storage.StoredConnector, error) {
	if c.OrgID == "" {
		return c, nil
	}
	cid, ok := canonicalOrgID(c.OrgID)
	if !ok {
		return c, fmt.Errorf("organization %q: %w", c.OrgID, storage.ErrNotFound)
	}
	if _, ok := s.orgs[cid]; !ok {
		return c, fmt.Errorf("organization %s: %w", cid, storage.ErrNotFound)
	}
	c.OrgID = cid
	return c, nil
}

// CreateConnector implements storage.Organizations.
func (s *Store) CreateConnector(ctx context.Context, c storage.StoredConnector) error {
	if c.ID == "" {
		return errors.New("memory: create connector: empty id")
	}
	c = cloneStoredConnector(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.connectors[c.ID]; ok {
		return fmt.Errorf("memory: create connector %q: %w", c.ID, storage.ErrAlreadyExists)
	}
	c, err := s.connectorOrg(c)
	if err != nil {
		return fmt.Errorf("memory: create connector %q: %w", c.ID, err)
	}
	s.connectors[c.ID] = c
	s.orgsGeneration++
	return nil
}

// GetConnector implements storage.Organizations.
func (s *Store) GetConnector(ctx context.Context, id string) (storage.StoredConnector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.connectors[id]
	if !ok {
		return storage.StoredConnector{}, storage.ErrNotFound
	}
	return cloneStoredConnector(c), nil
}

// ListConnectors implements storage.Organizations.
func (s *Store) ListConnectors(ctx context.Context) ([]storage.StoredConnector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.StoredConnector, 0, len(s.connectors))
	for _, c := range s.connectors {
		out = append(out, cloneStoredConnector(c))
	}
	slices.SortFunc(out, func(a, b storage.StoredConnector) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// UpdateConnector implements storage.Organizations. Updates are serialized
// by updateMu, and update runs without mu held, so it may read the store.
// An error from update is returned as it is.
func (s *Store) UpdateConnector(ctx context.Context, id string, update func(storage.StoredConnector) (storage.StoredConnector, error)) (storage.StoredConnector, error) {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()

	old, err := s.GetConnector(ctx, id)
	if err != nil {
		return storage.StoredConnector{}, err
	}
	c, err := update(old)
	if err != nil {
		return storage.StoredConnector{}, err
	}
	c = cloneStoredConnector(c)
	c.ID, c.Type = id, old.Type

	s.mu.Lock()
	defer s.mu.Unlock()
	// DeleteConnector does not take updateMu; do not revive what it removed.
	if _, ok := s.connectors[id]; !ok {
		return storage.StoredConnector{}, storage.ErrNotFound
	}
	if c, err = s.connectorOrg(c); err != nil {
		return storage.StoredConnector{}, fmt.Errorf("memory: update connector %q: %w", id, err)
	}
	s.connectors[id] = c
	s.orgsGeneration++
	return cloneStoredConnector(c), nil
}

// DeleteConnector implements storage.Organizations.
func (s *Store) DeleteConnector(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.connectors[id]; !ok {
		return storage.ErrNotFound
	}
	delete(s.connectors, id)
	s.orgsGeneration++
	return nil
}

// OrgsGeneration implements storage.Organizations. One process holds the
// whole store, so a counter under mu is enough.
func (s *Store) OrgsGeneration(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orgsGeneration, nil
}
