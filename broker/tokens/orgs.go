package tokens

import (
	"slices"

	"github.com/idbroker/broker/storage"
)

// ScopeOrganization asks for the organisation a login chose in the
// tokens: org_id (the broker organisation's UUID) and org_slug. An
// organization parameter at /authorize asks for it too.
const ScopeOrganization = "organization"

// Orgs finds organisations by id: broker/orgs's cached Directory.
type Orgs interface {
	Get(idOrSlug string) (storage.Organization, bool)
}

// orgClaims are the org_id and org_slug of a grant in organisation orgID
// with scopes: none without ScopeOrganization, nor for an organisation
// deleted since the login (its id would name nothing a service can look
// up). The slug is read when the token is issued, so a renamed
// organisation's next token says the new one; the id never changes.
func (t *Issuer) orgClaims(orgID string, scopes []string) (id, slug string) {
	if orgID == "" || t.orgs == nil || !slices.Contains(scopes, ScopeOrganization) {
		return "", ""
	}
	org, ok := t.orgs.Get(orgID)
	if !ok || org.ID != orgID {
		return "", ""
	}
	return org.ID, org.Slug
}
