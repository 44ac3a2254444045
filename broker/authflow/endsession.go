package authflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/tokens"
	"github.com/idbroker/broker/web"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// EndSession handles RP-initiated logout. It ends the browser's session
// (logout), then redirects only to a post_logout_redirect_uri registered
// for the client (named by client_id or by the audience of
// id_token_hint), passing state back; without one it shows the
// signed-out page. An invalid request (an unregistered URI: refused with
// a page, never followed) ends nothing.
//
// Only an id_token_hint of the session's user ends the session at once.
// Without one, anyone could sign a person out with a link or an image, so
// the browser is sent to a page that asks first (OpenID Connect
// RP-Initiated Logout 1.0 sections 2 and 6).
func (f *Flow) EndSession(ctx context.Context, r *op.Request[oidc.EndSessionRequest]) (*op.Redirect, error) {
	req := r.Data
	clientID, hintSubject := req.ClientID, ""
	if req.IdTokenHint != "" {
		c, err := f.verifyIDTokenHint(req.IdTokenHint)
		if err != nil {
			return nil, oidc.ErrInvalidRequest().WithDescription("id_token_hint is not a token this service issued")
		}
		if clientID != "" && clientID != c.Audience[0] {
			return nil, oidc.ErrInvalidRequest().WithDescription("client_id does not match id_token_hint")
		}
		clientID, hintSubject = c.Audience[0], c.Subject
	}
	dest, refusal, err := f.logoutDestination(ctx, clientID, req.PostLogoutRedirectURI, req.State)
	if err != nil {
		return nil, f.failures.Store(ctx, "get client", err)
	}
	if refusal != "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("%s", refusal)
	}
	s, ok, err := f.browserSession(ctx, r.Header)
	if err != nil {
		return nil, f.failures.Store(ctx, "get session", err)
	}
	if ok && (hintSubject == "" || hintSubject != s.UserID) {
		// Only what was checked goes on: the client is the hint's when
		// there is one, and the URI is registered for it.
		q := url.Values{}
		if req.PostLogoutRedirectURI != "" {
			q.Set("client_id", clientID)
			q.Set("post_logout_redirect_uri", req.PostLogoutRedirectURI)
			q.Set("state", req.State)
		}
		if len(req.UILocales) > 0 {
			q.Set("ui_locales", strings.Join(localeStrings(req.UILocales), " "))
		}
		confirm := LogoutConfirmPath
		if len(q) > 0 {
			confirm += "?" + q.Encode()
		}
		return op.NewRedirect(confirm), nil
	}
	return f.logout(ctx, r.Header, dest)
}

// logoutDestination checks where a logout request asks to go afterwards:
// "" (the signed-out page) without a post_logout_redirect_uri, else that
// URI with state when it is registered for clientID. refusal says why a
// request is invalid; err is a storage failure.
func (f *Flow) logoutDestination(ctx context.Context, clientID, redirectURI, state string) (dest, refusal string, err error) {
	if redirectURI == "" {
		return "", "", nil
	}
	if clientID == "" {
		return "", "post_logout_redirect_uri needs client_id or id_token_hint", nil
	}
	client, err := f.clients.Get(ctx, clientID)
	if errors.Is(err, clients.ErrUnknownClient) {
		return "", fmt.Sprintf("the application %q is not registered", clientID), nil
	}
	if err != nil {
		return "", "", err
	}
	if !slices.Contains(client.PostLogoutRedirectURIs(), redirectURI) {
		f.log.InfoContext(ctx, "logout redirect refused", "client_id", clientID, "reason", "post_logout_redirect_uri not registered")
		return "", "post_logout_redirect_uri is not registered for this application", nil
	}
	return clientRedirect(redirectURI, url.Values{"state": {state}}), "", nil
}

// logoutCSRFPurpose binds a confirmation form to the session it ends: a
// token from a page shown for an earlier session ends nothing.
func logoutCSRFPurpose(sessionID string) string { return "logout " + sessionID }

// confirmLogout shows the logout confirmation (GET) and, on its form's
// POST with a valid CSRF token, ends the session and continues as
// EndSession would. The parameters are checked again either way: they
// come from the browser. Without a live session there is nothing to ask
// about or protect, so both go straight on.
func (f *Flow) confirmLogout(w http.ResponseWriter, r *http.Request) {
	var form url.Values
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		form = r.URL.Query()
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			f.errorPages.Render(w, r, http.StatusBadRequest, "Form not readable", "The form could not be read. Go back and try again.")
			return
		}
		form = r.PostForm
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		f.errorPages.Render(w, r, http.StatusMethodNotAllowed, "Not allowed", "This address only accepts the sign-in form.")
		return
	}
	ctx := r.Context()
	clientID, redirectURI, state := form.Get("client_id"), form.Get("post_logout_redirect_uri"), form.Get("state")
	dest, refusal, err := f.logoutDestination(ctx, clientID, redirectURI, state)
	if err != nil {
		f.failures.StorePage(w, r, "get client", err)
		return
	}
	if refusal != "" {
		f.log.InfoContext(ctx, "browser request refused", "path", r.URL.Path, "status", http.StatusBadRequest, "reason", refusal)
		f.errorPages.Render(w, r, http.StatusBadRequest, "Sign-out request not valid",
			"The application that sent you here made a sign-out request the sign-in service cannot accept ("+refusal+"). Go back to the application and start again.")
		return
	}
	s, ok, err := f.browserSession(ctx, r.Header)
	if err != nil {
		f.failures.StorePage(w, r, "get session", err)
		return
	}
	if ok && r.Method != http.MethodPost {
		page := web.LogoutPage{
			Branding:              f.branding,
			Action:                LogoutConfirmPath,
			CSRF:                  f.csrfToken(w, r, logoutCSRFPurpose(s.ID)),
			ClientID:              clientID,
			PostLogoutRedirectURI: redirectURI,
			State:                 state,
		}
		if err := f.pages.RenderIn(w, http.StatusOK, web.RequestLanguage(r, nil), page); err != nil {
			f.log.ErrorContext(ctx, "render logout page", "err", err)
		}
		return
	}
	if ok && !f.csrfValid(r, logoutCSRFPurpose(s.ID)) {
		f.log.InfoContext(ctx, "logout form refused", "reason", "csrf token missing or wrong")
		f.errorPages.Render(w, r, http.StatusForbidden, "Form expired",
			"This sign-out form could not be verified, perhaps because it was opened in another browser or cookies are blocked. You are still signed in. Go back to the application and choose sign out again.")
		return
	}
	red, err := f.logout(ctx, r.Header, dest)
	if err != nil {
		// logout has logged and counted the storage failure.
		f.errorPages.Render(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
			"The sign-in service cannot complete your request right now. Nothing was changed. Please try again in a moment.")
		return
	}
	for k, v := range red.Header {
		w.Header()[k] = append(w.Header()[k], v...)
	}
	http.Redirect(w, r, red.URL, http.StatusSeeOther)
}

// verifyIDTokenHint verifies an ID token the broker issued, for logout and
// for /authorize. Only an ID token (typ JWT) is a hint: an access token
// (at+jwt) or a logout token (logout+jwt) is not.
func (f *Flow) verifyIDTokenHint(raw string) (tokens.IDClaims, error) {
	payload, header, err := f.keys.Verify(raw)
	if err != nil {
		return tokens.IDClaims{}, err
	}
	if typ, _ := header.ExtraHeaders["typ"].(string); typ != "JWT" {
		return tokens.IDClaims{}, fmt.Errorf("a token of type %q is not an id_token_hint", typ)
	}
	var c tokens.IDClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return tokens.IDClaims{}, fmt.Errorf("id_token_hint claims: %w", err)
	}
	if c.Issuer != f.issuer || len(c.Audience) != 1 {
		return tokens.IDClaims{}, errors.New("id_token_hint has the wrong issuer or audience")
	}
	return c, nil
}

// signedOut is the page a logout without a client destination ends on.
func (f *Flow) signedOut(w http.ResponseWriter, r *http.Request) {
	page := web.SignedOutPage{Branding: f.branding, UpstreamLogoutURL: f.upstreamLogoutURL(r.Context(), r.URL.Query().Get("idp"))}
	if err := f.pages.RenderIn(w, http.StatusOK, web.RequestLanguage(r, nil), page); err != nil {
		f.log.ErrorContext(r.Context(), "render signed-out page", "err", err)
	}
}
