package authflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/web"
)

// Organisations in the browser's login: home realm discovery by an
// organisation's verified domain, the organization parameter, the SSO
// rule before a one-time code is sent, and the organisation a finished
// login chose.

// Orgs is what the flow reads of organisations: broker/orgs's cached
// Directory, so no page reads storage for it.
type Orgs interface {
	// ForDomain is the organisation that holds domain verified.
	ForDomain(domain string) (storage.Organization, bool)
	// Get finds an organisation by id or slug.
	Get(idOrSlug string) (storage.Organization, bool)
	// Connectors are the organisation's enabled connectors.
	Connectors(orgID string) []string
}

// orgByParam finds the organisation an organization parameter names, by
// slug or id.
func (f *Flow) orgByParam(v string) (storage.Organization, bool) {
	if f.orgs == nil {
		return storage.Organization{}, false
	}
	return f.orgs.Get(v)
}

// orgOfEmail is the organisation that holds the address's domain
// verified; an unverified claim never routes.
func (f *Flow) orgOfEmail(email string) (storage.Organization, bool) {
	if f.orgs == nil {
		return storage.Organization{}, false
	}
	return f.orgs.ForDomain(email[strings.LastIndexByte(email, '@')+1:])
}

// orgConnectors are the organisation's connectors a browser can be sent
// to, in the organisation's order: those the connector set has opened
// (a connector deleted or not yet loaded is left out).
func (f *Flow) orgConnectors(orgID string) []upstream.CallbackConnector {
	if f.orgs == nil || orgID == "" {
		return nil
	}
	var out []upstream.CallbackConnector
	for _, id := range f.orgs.Connectors(orgID) {
		if c, ok := f.upstreams.Get(id).(upstream.CallbackConnector); ok {
			out = append(out, c)
		}
	}
	return out
}

// buttons are the login page's buttons for conns.
func (f *Flow) buttons(conns []upstream.CallbackConnector) []web.Connector {
	out := make([]web.Connector, 0, len(conns))
	for _, c := range conns {
		out = append(out, web.Connector{ID: c.ID(), Name: f.upstreams.Name(c.ID())})
	}
	return out
}

// isOrgConnector reports whether connector is one of the organisation's.
func (f *Flow) isOrgConnector(org storage.Organization, connector string) bool {
	for _, c := range f.orgConnectors(org.ID) {
		if c.ID() == connector {
			return true
		}
	}
	return false
}

// refuseSSO answers a login refused by org's SSO rule (path: otp or
// connector): the login page, 403, saying to use the company login, with
// the organisation's buttons. Nothing is sent and nothing is written.
func (f *Flow) refuseSSO(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, org storage.Organization, email, path string) {
	f.metrics.SSOEnforced.WithLabelValues(path).Inc()
	f.log.InfoContext(r.Context(), "login refused", "client_id", ar.ClientID, "reason", "organisation requires its own sign-in",
		"org_id", org.ID, "path", path, "email", redactEmail(email))
	page := web.LoginPage{
		Branding:      f.branding,
		AuthRequestID: ar.ID,
		CSRF:          f.csrfToken(w, r, ar.ID),
		Email:         email,
		Error:         "Your organisation requires you to sign in with its company login.",
		Connectors:    f.buttons(f.orgConnectors(org.ID)),
	}
	if err := f.pages.RenderIn(w, http.StatusForbidden, web.RequestLanguage(r, ar.UILocales), page); err != nil {
		f.log.ErrorContext(r.Context(), "render login page", "err", err)
	}
}

// errNotMember is a login into an organisation the user is not a member of.
var errNotMember = errors.New("not a member of the organisation the login asked for")

// loginOrg is the organisation a finished login is in: the one the
// identity landed in (its connector's, or its upstream's mapped), else
// the one the login asked for (organization=, kept in ar.Org until the
// login is done) when the user is already a member. Asking for an
// organisation never makes anyone a member: a login that lands in
// another one, or in none while the user is not a member, is
// errNotMember.
func (f *Flow) loginOrg(ctx context.Context, ar storage.AuthRequest, res identity.Resolution) (string, error) {
	chosen := ar.Org
	switch {
	case chosen == "":
		return res.Org.ID, nil
	case res.Org.ID == chosen:
		return chosen, nil
	case res.Org.ID != "":
		return "", fmt.Errorf("%w: the login landed in %s", errNotMember, res.Org.ID)
	}
	ms, err := f.store.Memberships(ctx, res.User.ID)
	if err != nil {
		return "", fmt.Errorf("memberships: %w", err)
	}
	for _, m := range ms {
		if m.OrgID == chosen {
			return chosen, nil
		}
	}
	return "", errNotMember
}
