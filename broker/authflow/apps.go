package authflow

import (
	"errors"
	"net/http"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/web"
)

// The connected apps page lists the third-party clients the person
// signed in (in this browser's session) allowed, and takes that leave
// back. The session cookie is the only thing that says who they are: no
// session, no data. The revoke form's CSRF token is made for the
// session, so a form rendered for one session does nothing in another.

// appsPurpose is what the revoke form's CSRF token is made for.
func appsPurpose(sessionID string) string { return "apps:" + sessionID }

// appsRevoked is the notice after a revocation.
const appsRevoked = "Access revoked. The application has been signed out."

// appsPage shows the connected apps (GET) and revokes one (POST).
func (f *Flow) appsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			f.errorPages.Render(w, r, http.StatusBadRequest, "Form not readable", "The form could not be read. Go back and try again.")
			return
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		f.errorPages.Render(w, r, http.StatusMethodNotAllowed, "Not allowed", "This address only accepts the sign-in form.")
		return
	}
	s, ok, err := f.browserSession(ctx, r.Header)
	if err != nil {
		f.failures.StorePage(w, r, "get session", err)
		return
	}
	if r.Method == http.MethodPost {
		f.revokeApp(w, r, s, ok)
		return
	}
	if !ok {
		f.renderApps(w, r, web.AppsPage{Branding: f.branding})
		return
	}
	page, err := f.appsOf(r, s)
	if err != nil {
		f.failures.StorePage(w, r, "list consents", err)
		return
	}
	page.CSRF = f.csrfToken(w, r, appsPurpose(s.ID))
	if r.URL.Query().Get("revoked") == "1" {
		page.Notice = appsRevoked
	}
	f.renderApps(w, r, page)
}

// revokeApp takes back what session s's user (signedIn: there is one)
// allowed the client the form names, with its refresh families.
func (f *Flow) revokeApp(w http.ResponseWriter, r *http.Request, s storage.Session, signedIn bool) {
	ctx := r.Context()
	if !signedIn || !f.csrfValid(r, appsPurpose(s.ID)) {
		f.log.InfoContext(ctx, "connected apps form refused", "reason", "no session, or csrf token missing or wrong")
		f.errorPages.Render(w, r, http.StatusForbidden, "Form expired",
			"This form could not be verified, perhaps because it was opened in another browser or cookies are blocked. Nothing was changed. Reload the page and try again.")
		return
	}
	clientID := r.PostFormValue("client_id")
	now := f.now()
	_, err := f.store.RevokeConsent(ctx, s.UserID, clientID, now.Add(f.cfg.AccessTokenTTL))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Revoked already (another tab, an administrator): nothing to do.
	case err != nil:
		f.failures.StorePage(w, r, "revoke consent", err)
		return
	default:
		f.metrics.ConsentDecisions.WithLabelValues(consentRevoke).Inc()
		f.log.InfoContext(ctx, "consent", "decision", consentRevoke, "client_id", clientID, "user_id", s.UserID)
		err := f.store.AppendAudit(ctx, storage.AuditEvent{
			Time: now, Actor: "user:" + s.UserID, Action: "consent.revoked", Target: "user:" + s.UserID,
			Details: map[string]string{"client_id": clientID, "by": "connected apps"},
		})
		if err != nil {
			// The revocation stands; only its record is missing.
			f.log.ErrorContext(ctx, "audit consent revocation", "err", err)
		}
	}
	// Post/redirect/get: reloading the page revokes nothing again.
	http.Redirect(w, r, AppsPath+"?revoked=1", http.StatusSeeOther)
}

// appsOf is the connected apps page of session s's user, without its
// CSRF token: their consents by client, each named as the client names
// itself (a client since deleted by its id alone).
func (f *Flow) appsOf(r *http.Request, s storage.Session) (web.AppsPage, error) {
	ctx := r.Context()
	consents, err := f.store.ListConsents(ctx, s.UserID)
	if err != nil {
		return web.AppsPage{}, err
	}
	page := web.AppsPage{Branding: f.branding, SignedIn: true}
	for _, c := range consents {
		if n := len(page.Apps); n == 0 || page.Apps[n-1].ClientID != c.ClientID {
			app := web.App{ClientID: c.ClientID}
			client, err := f.clients.Get(ctx, c.ClientID)
			switch {
			case err == nil:
				app.Name = client.Name()
			case !errors.Is(err, clients.ErrUnknownClient):
				return web.AppsPage{}, err
			}
			page.Apps = append(page.Apps, app)
		}
		app := &page.Apps[len(page.Apps)-1]
		app.Grants = append(app.Grants, web.AppGrant{Resource: c.Resource, Scopes: c.Scopes, GrantedAt: c.GrantedAt.UTC().Format("2006-01-02")})
	}
	return page, nil
}

func (f *Flow) renderApps(w http.ResponseWriter, r *http.Request, page web.AppsPage) {
	if err := f.pages.RenderIn(w, http.StatusOK, web.RequestLanguage(r, nil), page); err != nil {
		f.log.ErrorContext(r.Context(), "render connected apps page", "err", err)
	}
}
