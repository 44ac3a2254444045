package authflow

// Consent (docs/design.md, "Consent"). A third-party client (registered
// through /register, identified by a metadata document, or stored with
// ThirdParty) gets no code until the signed-in person has allowed it,
// for the resources and every scope it asks for. The decision is
// remembered per user, client and resource; a request for more asks
// again. First-party clients never ask.
//
// The check sits in front of the code, at /authorize/callback, which
// every login reaches (a form, an upstream's callback, single sign-on),
// so no path skips it. The consent page is a step of the auth request
// like the login form: bound to the browser that started it (binding.go)
// and its form CSRF-protected, with a purpose of its own, so no login
// form's token submits it.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/web"
)

// Paths of the consent page and the connected apps page.
const (
	ConsentPath = "/consent"
	AppsPath    = "/account/apps"
)

// Consent decisions, as the metric counts them.
const (
	consentAllow      = "allow"
	consentDeny       = "deny"
	consentRemembered = "remembered" // a remembered consent covered the request
	consentRevoke     = "revoke"     // taken back on the connected apps page
)

// consentPurpose is what a consent form's CSRF token is made for: the
// auth request, apart from its login forms' tokens.
func consentPurpose(authRequestID string) string { return "consent:" + authRequestID }

// consentResources are the resources ar's consent is kept under: each
// value of its audience, with "" for the client's own (what a request
// that names no resource gets), each once.
func consentResources(client *clients.Client, audience []string) []string {
	own, _ := client.AudienceFor(nil)
	var out []string
	for _, a := range audience {
		if slices.Contains(own, a) {
			a = ""
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}

// consentNeeded returns ar's client and whether the person must be asked
// before it gets a code: a third-party client without remembered
// consents covering every resource and scope of ar, whose request says
// prompt=consent, or that is public and redirects where any program on
// the person's machine could listen. remembered are the scopes allowed
// before for those resources, which the page lists with the new ones.
func (f *Flow) consentNeeded(ctx context.Context, ar storage.AuthRequest) (client *clients.Client, needed bool, remembered []string, err error) {
	client, err = f.clients.Get(ctx, ar.ClientID)
	if err != nil {
		return nil, false, nil, err
	}
	if !client.ThirdParty() {
		return client, false, nil, nil
	}
	// RFC 8252 section 8.6: a public client's identity cannot be assured
	// by a loopback (any port, any program) or private-use scheme
	// redirect, so its earlier approval is not honoured by itself: a
	// program that starts a login under its client id, on a port of its
	// own and with its own PKCE, would get the person's code without a
	// page. An https redirect reaches only its owner.
	needed = slices.Contains(ar.Prompt, oidc.PromptConsent) || client.Public() && !ownedRedirect(ar.RedirectURI)
	for _, res := range consentResources(client, ar.Audience) {
		c, err := f.store.GetConsent(ctx, ar.UserID, client.GetID(), res)
		if errors.Is(err, storage.ErrNotFound) {
			needed = true
			continue
		}
		if err != nil {
			return nil, false, nil, err
		}
		remembered = append(remembered, c.Scopes...)
		if !c.Covers(ar.Scopes) {
			needed = true
		}
	}
	return client, needed, remembered, nil
}

// askConsent is /authorize/callback's check before it issues a code. It
// returns the client and reports whether the code may be issued; if not,
// it has answered: the consent page, consent_required for prompt=none
// (which shows no page), or a refusal.
func (f *Flow) askConsent(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest) (*clients.Client, bool) {
	client, needed, _, err := f.consentNeeded(r.Context(), ar)
	if !f.consentClientFound(w, r, err) {
		return nil, false
	}
	if !client.ThirdParty() {
		return client, true
	}
	if !needed {
		f.metrics.ConsentDecisions.WithLabelValues(consentRemembered).Inc()
		return client, true
	}
	if slices.Contains(ar.Prompt, oidc.PromptNone) {
		// OpenID Connect Core section 3.1.2.6.
		http.Redirect(w, r, clientRedirect(ar.RedirectURI, url.Values{
			"error":             {"consent_required"},
			"error_description": {"the user has not allowed this application"},
			"state":             {ar.State},
			"iss":               {f.issuer},
		}), http.StatusSeeOther)
		return nil, false
	}
	http.Redirect(w, r, ConsentPath+"?id="+url.QueryEscape(ar.ID), http.StatusSeeOther)
	return nil, false
}

// consentClientFound answers for a failure to find the client of a
// login being finished and reports whether there was none.
func (f *Flow) consentClientFound(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, clients.ErrUnknownClient):
		f.errorPages.Render(w, r, http.StatusBadRequest, "Application no longer registered",
			"The application you were signing in to is no longer registered here. Nothing was shared with it.")
	default:
		f.failures.StorePage(w, r, "consent", err)
	}
	return false
}

// consentPage shows the consent page (GET) and takes the decision
// (POST): allow remembers it and issues the code; deny sends the client
// access_denied and ends the auth request.
func (f *Flow) consentPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		ar, ok := f.liveAuthRequest(w, r, r.URL.Query().Get("id"))
		if !ok || !f.loginFinished(w, r, ar) {
			return
		}
		client, needed, remembered, err := f.consentNeeded(ctx, ar)
		if !f.consentClientFound(w, r, err) {
			return
		}
		if !needed {
			http.Redirect(w, r, CallbackPath+"?id="+url.QueryEscape(ar.ID), http.StatusSeeOther)
			return
		}
		f.renderConsent(w, r, ar, client, remembered)
		return
	}
	ar, ok := f.boundForm(w, r, consentPurpose)
	if !ok || !f.loginFinished(w, r, ar) {
		return
	}
	client, _, _, err := f.consentNeeded(ctx, ar)
	if !f.consentClientFound(w, r, err) {
		return
	}
	switch r.PostFormValue("decision") {
	case consentAllow:
		if client.ThirdParty() {
			now := f.now()
			for _, res := range consentResources(client, ar.Audience) {
				_, err := f.store.GrantConsent(ctx, storage.Consent{UserID: ar.UserID, ClientID: client.GetID(), Resource: res, Scopes: ar.Scopes, GrantedAt: now})
				if err != nil {
					f.failures.StorePage(w, r, "grant consent", err)
					return
				}
			}
			f.metrics.ConsentDecisions.WithLabelValues(consentAllow).Inc()
			f.log.InfoContext(ctx, "consent", "decision", consentAllow, "client_id", client.GetID(), "user_id", ar.UserID,
				"audience", ar.Audience, "scopes", ar.Scopes)
		}
		f.issueCode(w, r, ar, client)
	case consentDeny:
		err := f.store.DeleteAuthRequest(ctx, ar.ID)
		if errors.Is(err, storage.ErrNotFound) {
			f.errorPages.Render(w, r, http.StatusBadRequest, "Sign-in already used", "This sign-in was already completed. Go back to the application and start again.")
			return
		}
		if err != nil {
			f.failures.StorePage(w, r, "delete auth request", err)
			return
		}
		f.metrics.ConsentDecisions.WithLabelValues(consentDeny).Inc()
		f.log.InfoContext(ctx, "consent", "decision", consentDeny, "client_id", client.GetID(), "user_id", ar.UserID)
		http.Redirect(w, r, clientRedirect(ar.RedirectURI, url.Values{
			"error":             {string(oidc.AccessDenied)},
			"error_description": {"the user denied the request"},
			"state":             {ar.State},
			"iss":               {f.issuer},
		}), http.StatusSeeOther)
	default:
		f.errorPages.Render(w, r, http.StatusBadRequest, "Form not readable", "The form could not be read. Go back and try again.")
	}
}

// loginFinished reports whether ar's person has signed in and is still
// signed in; if not, it has shown the page that says so. A consent page
// left open in a shared browser after its person signed out in another
// tab must not let whoever comes next allow a client for them.
func (f *Flow) loginFinished(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest) bool {
	if !ar.Done {
		f.errorPages.Render(w, r, http.StatusBadRequest, "Sign-in not finished", "This sign-in has not been completed. Go back to the application and start again.")
		return false
	}
	if ar.SessionID == "" {
		return true
	}
	_, err := f.store.GetSession(r.Context(), ar.SessionID, f.now())
	if errors.Is(err, storage.ErrNotFound) {
		f.signedOutSince(w, r)
		return false
	}
	if err != nil {
		f.failures.StorePage(w, r, "get session", err)
		return false
	}
	return true
}

func (f *Flow) renderConsent(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, client *clients.Client, remembered []string) {
	ctx := r.Context()
	var email string
	user, err := f.store.GetUser(ctx, ar.UserID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		f.failures.StorePage(w, r, "get user", err)
		return
	}
	email = user.Email
	var resources []string
	for _, res := range consentResources(client, ar.Audience) {
		if res != "" {
			resources = append(resources, res)
		}
	}
	scopes := slices.Clone(ar.Scopes)
	for _, s := range remembered {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	page := web.ConsentPage{
		Branding:      f.branding,
		AuthRequestID: ar.ID,
		CSRF:          f.csrfToken(w, r, consentPurpose(ar.ID)),
		Client: web.ConsentClient{
			ID:             client.GetID(),
			Name:           client.Name(),
			DocumentHost:   client.DocumentHost(),
			Unverified:     client.DocumentHost() != "" && !client.Verified(),
			SelfRegistered: client.Registered(),
			RedirectHost:   redirectHost(ar.RedirectURI),
		},
		UserEmail: email,
		Resources: resources,
		Scopes:    scopes,
	}
	if err := f.pages.RenderIn(w, http.StatusOK, web.RequestLanguage(r, ar.UILocales), page); err != nil {
		f.log.ErrorContext(ctx, "render consent page", "err", err)
	}
}

// redirectHost is the host (with its port) of a redirect URI, which the
// consent page shows; the URI was checked against the client's at
// /authorize, so it parses.
func redirectHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// ownedRedirect reports whether only the client's owner can receive a
// redirect to uri: an https URL, not a loopback address or a private-use
// scheme any installed program may claim.
func ownedRedirect(uri string) bool {
	u, err := url.Parse(uri)
	return err == nil && u.Scheme == "https"
}
