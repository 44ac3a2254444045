package authflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/web"
)

// upstreamRedirect records a fresh state, nonce and PKCE verifier on the
// auth request and returns the upstream URL to send the browser to.
func (f *Flow) upstreamRedirect(ctx context.Context, ar storage.AuthRequest, conn upstream.CallbackConnector, loginHint string) (string, error) {
	state, nonce, verifier := keys.RandomID(), keys.RandomID(), keys.RandomID()
	_, err := f.store.UpdateAuthRequest(ctx, ar.ID, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.ConnectorID = conn.ID()
		a.UpstreamState, a.UpstreamNonce, a.UpstreamVerifier = state, nonce, verifier
		return a, nil
	})
	if err != nil {
		return "", fmt.Errorf("update auth request: %w", err)
	}
	ctx, cancel := f.upstreams.Context(ctx, conn.ID())
	defer cancel()
	return conn.LoginURL(ctx, upstream.LoginState{
		CallbackURL:  f.upstreams.CallbackURL(conn.ID()),
		State:        state,
		Nonce:        nonce,
		CodeVerifier: verifier,
		LoginHint:    loginHint,
	})
}

// startUpstream sends the browser to conn for the auth request.
func (f *Flow) startUpstream(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, conn upstream.CallbackConnector, loginHint string) {
	dest, err := f.upstreamRedirect(r.Context(), ar, conn, loginHint)
	if err != nil {
		f.upstreamFailurePage(w, r, conn.ID(), err)
		return
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// renderConnector is home realm discovery's interstitial: it names the
// connector email's domain signs in with, and its button posts to
// loginConnector. Nothing is stored until the person continues.
func (f *Flow) renderConnector(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, conn upstream.CallbackConnector, email string) {
	page := web.ConnectorPage{
		Branding:      f.branding,
		AuthRequestID: ar.ID,
		CSRF:          f.csrfToken(w, r, ar.ID),
		Email:         email,
		Connector:     web.Connector{ID: conn.ID(), Name: f.upstreams.Name(conn.ID())},
	}
	if err := f.pages.RenderIn(w, http.StatusOK, web.RequestLanguage(r, ar.UILocales), page); err != nil {
		f.log.ErrorContext(r.Context(), "render connector page", "err", err)
	}
}

// loginConnector starts a login with the connector a button named (on the
// login page, or on the interstitial, which also posts the email: it is
// passed on as the login hint when its domain belongs to that connector).
func (f *Flow) loginConnector(w http.ResponseWriter, r *http.Request) {
	ar, ok := f.formAuthRequest(w, r)
	if !ok {
		return
	}
	conn, ok := f.upstreams.Get(r.PostFormValue("connector")).(upstream.CallbackConnector)
	if !ok {
		f.renderLogin(w, r, ar, http.StatusBadRequest, "", "That sign-in option is not available.")
		return
	}
	hint := ""
	if email, err := upstream.NormalizeEmail(r.PostFormValue("email")); err == nil {
		if c := f.upstreams.ForEmail(email); c != nil && c.ID() == conn.ID() {
			hint = email
		}
		if org, ok := f.orgOfEmail(email); ok && f.isOrgConnector(org, conn.ID()) {
			hint = email
		}
	}
	f.startUpstream(w, r, ar, conn, hint)
}

// upstreamCallback finishes an upstream login: the connector verifies
// what came back (state, code, signature, issuer, audience, expiry,
// nonce) and only then is the identity resolved. Any failure shows a page
// and writes nothing.
func (f *Flow) upstreamCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("connector")
	conn, ok := f.upstreams.Get(id).(upstream.CallbackConnector)
	if !ok {
		f.errorPages.Render(w, r, http.StatusNotFound, "Unknown sign-in provider", "This address does not belong to a configured sign-in provider.")
		return
	}
	state := r.URL.Query().Get("state")
	if state == "" {
		f.errorPages.Render(w, r, http.StatusBadRequest, "Sign-in could not be completed", "The identity provider's answer was incomplete. Go back to the application and choose sign in again.")
		return
	}
	ar, err := f.store.GetAuthRequestByUpstreamState(ctx, state)
	if err == nil && (!f.now().Before(ar.ExpiresAt) || ar.ConnectorID != id || ar.Done) {
		err = storage.ErrNotFound
	}
	if errors.Is(err, storage.ErrNotFound) {
		f.log.InfoContext(ctx, "login failed", "connector", id, "outcome", "unknown or used upstream state")
		f.errorPages.Render(w, r, http.StatusBadRequest, "This sign-in has expired",
			"The identity provider sent you back for a sign-in that has expired or was already used. Go back to the application and choose sign in again.")
		return
	}
	if err != nil {
		f.failures.StorePage(w, r, "get auth request by upstream state", err)
		return
	}
	// The state came back through the browser, so anyone who had it could
	// send it from another; before the upstream code is redeemed, the
	// browser must be the one that started the login.
	if !f.boundToBrowser(w, r, ar) {
		return
	}
	upstreamCtx, cancel := f.upstreams.Context(ctx, id)
	identity, err := conn.HandleCallback(upstreamCtx, upstream.LoginState{
		CallbackURL:  f.upstreams.CallbackURL(id),
		State:        ar.UpstreamState,
		Nonce:        ar.UpstreamNonce,
		CodeVerifier: ar.UpstreamVerifier,
	}, r)
	cancel()
	if err != nil {
		f.upstreamFailurePage(w, r, id, err)
		return
	}
	var sealed []byte
	if identity.RefreshToken != "" {
		if sealed, err = f.sealer.Seal([]byte(identity.RefreshToken)); err != nil {
			f.upstreamFailurePage(w, r, id, err)
			return
		}
	}
	f.completeLogin(w, r, ar, conn, identity, loginDetails{amr: "fed", upstreamRefresh: sealed,
		impersonation: identity.Impersonation})
}

// upstreamFailurePage explains an upstream failure without details an
// attacker could use; the log has them.
func (f *Flow) upstreamFailurePage(w http.ResponseWriter, r *http.Request, connector string, err error) {
	outcome := "upstream invalid"
	switch {
	case errors.Is(err, upstream.ErrDenied):
		outcome = "upstream denied"
	case errors.Is(err, upstream.ErrUnavailable):
		outcome = "upstream unavailable"
	}
	f.metrics.Logins.WithLabelValues(connector, outcome).Inc()
	f.log.InfoContext(r.Context(), "login", "connector", connector, "outcome", outcome, "err", err)
	switch {
	case errors.Is(err, upstream.ErrDenied):
		f.errorPages.Render(w, r, http.StatusForbidden, "Sign-in was not completed",
			"Your identity provider did not sign you in (it was cancelled or refused). Go back to the application to try again.")
	case errors.Is(err, upstream.ErrUnavailable):
		// 503, like every other outage: nothing is wrong with the
		// request, and it will work once the upstream answers again.
		f.errorPages.Render(w, r, http.StatusServiceUnavailable, "Identity provider unavailable",
			"Your identity provider could not be reached or did not answer in time. Nothing was changed. Please try again in a moment.")
	default:
		f.errorPages.Render(w, r, http.StatusBadRequest, "Sign-in could not be verified",
			"The answer from your identity provider could not be verified, so you were not signed in. Go back to the application and try again.")
	}
}
