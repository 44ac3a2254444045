package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/idbroker/broker/storage"
)

// SCAFFOLD: replaced by the real implementation before this lands on main.
var errOrgsPending = errors.New("postgres: organizations: not implemented in this scaffold")

func (s *Store) CreateOrganization(ctx context.Context, o storage.Organization) error {
	return errOrgsPending
}
func (s *Store) GetOrganization(ctx context.Context, idOrSlug string) (storage.Organization, error) {
	return storage.Organization{}, errOrgsPending
}
func (s *Store) ListOrganizations(ctx context.Context, after string, limit int) ([]storage.Organization, error) {
	return nil, errOrgsPending
}
func (s *Store) UpdateOrganization(ctx context.Context, id string, update func(storage.Organization) (storage.Organization, error)) (storage.Organization, error) {
	return storage.Organization{}, errOrgsPending
}
func (s *Store) DeleteOrganization(ctx context.Context, id string) error { return errOrgsPending }
func (s *Store) AddDomain(ctx context.Context, d storage.Domain) error   { return errOrgsPending }
func (s *Store) ListDomains(ctx context.Context, orgID string) ([]storage.Domain, error) {
	return nil, errOrgsPending
}
func (s *Store) VerifyDomain(ctx context.Context, orgID, domain, by string, at time.Time) (storage.Domain, error) {
	return storage.Domain{}, errOrgsPending
}
func (s *Store) DeleteDomain(ctx context.Context, orgID, domain string) error { return errOrgsPending }
func (s *Store) ListVerifiedDomains(ctx context.Context) ([]storage.Domain, error) {
	return nil, errOrgsPending
}
func (s *Store) EnsureMember(ctx context.Context, m storage.Membership) (storage.Membership, bool, error) {
	return storage.Membership{}, false, errOrgsPending
}
func (s *Store) SetMemberRole(ctx context.Context, orgID, userID, role string) (storage.Membership, error) {
	return storage.Membership{}, errOrgsPending
}
func (s *Store) RemoveMember(ctx context.Context, orgID, userID string, revokeUntil time.Time) ([]storage.Session, error) {
	return nil, errOrgsPending
}
func (s *Store) ListMembers(ctx context.Context, orgID, after string, limit int) ([]storage.Membership, error) {
	return nil, errOrgsPending
}
func (s *Store) Memberships(ctx context.Context, userID string) ([]storage.Membership, error) {
	return nil, errOrgsPending
}
func (s *Store) CreateConnector(ctx context.Context, c storage.StoredConnector) error {
	return errOrgsPending
}
func (s *Store) GetConnector(ctx context.Context, id string) (storage.StoredConnector, error) {
	return storage.StoredConnector{}, errOrgsPending
}
func (s *Store) ListConnectors(ctx context.Context) ([]storage.StoredConnector, error) {
	return nil, errOrgsPending
}
func (s *Store) UpdateConnector(ctx context.Context, id string, update func(storage.StoredConnector) (storage.StoredConnector, error)) (storage.StoredConnector, error) {
	return storage.StoredConnector{}, errOrgsPending
}
func (s *Store) DeleteConnector(ctx context.Context, id string) error { return errOrgsPending }
func (s *Store) OrgsGeneration(ctx context.Context) (int64, error)    { return 0, errOrgsPending }
