package authflow

// The authorization and end-session endpoints are the broker's own
// handlers: the library's would answer what they refuse in JSON, which a
// person cannot read and no client hears, and would redirect an error to
// a client without iss (RFC 9207). They decode the request with the
// library's decoder and run the library's exported checks in the order
// its own handler does, so a refusal is the same error, answered here.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/tokens"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Words of the pages that refuse a request at either endpoint.
const (
	authorizeRefusedTitle   = "This sign-in link is not valid"
	authorizeRefusedMessage = "The application that sent you here made a request the sign-in service cannot accept"
	endSessionRefusedTitle  = "Sign-out request not valid"
	endSessionRefusedMsg    = "The application that sent you here made a sign-out request the sign-in service cannot accept"
)

// serveAuthorize is the authorization endpoint (RFC 6749 section 3.1).
// What it refuses before the redirect URI is known to be the client's is
// a page; after, an error redirect to the client with state and iss.
func (f *Flow) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		f.refuseAuthorization(w, r, oidc.ErrInvalidRequest().WithDescription("error parsing form"))
		return
	}
	if code, description := authorizeParamsRefusal(r.Form); code != "" {
		f.refuseParams(w, r, code, description)
		return
	}
	req := new(oidc.AuthRequest)
	if err := f.decoder.Decode(req, r.Form); err != nil {
		f.refuseAuthorization(w, r, oidc.ErrInvalidRequest().WithDescription("error decoding form"))
		return
	}
	redirect, err := f.authorize(r.Context(), &op.Request[oidc.AuthRequest]{Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form, Data: req})
	if err != nil {
		f.refuseAuthorization(w, r, err)
		return
	}
	writeRedirect(w, r, redirect)
}

// authorize verifies the request's client and redirect URI, then
// validates and serves the rest (Authorize). Once the redirect URI is the
// client's, a refusal goes back to it, unless it is a StatusError, whose
// author asked for its status to be answered here (an outage).
func (f *Flow) authorize(ctx context.Context, r *op.Request[oidc.AuthRequest]) (*op.Redirect, error) {
	cr, err := f.VerifyAuthRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	req := cr.Data
	if req.RedirectURI == "" {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("auth request is missing redirect_uri")
	}
	if err := op.ValidateAuthReqRedirectURI(cr.Client, req.RedirectURI, req.ResponseType); err != nil {
		return nil, err
	}
	redirect, err := f.authorizeValid(ctx, cr)
	if err == nil {
		return redirect, nil
	}
	if errors.As(err, new(op.StatusError)) {
		return nil, err
	}
	redirect, err = op.TryErrorRedirect(ctx, req, err, f.encoder, nil)
	if err != nil {
		return nil, err
	}
	redirect.URL = withIssuer(redirect.URL, f.issuer)
	return redirect, nil
}

// authorizeValid applies the library's checks of prompt, scope,
// response_type and code_challenge_method, then Authorize.
func (f *Flow) authorizeValid(ctx context.Context, cr *op.ClientRequest[oidc.AuthRequest]) (_ *op.Redirect, err error) {
	req := cr.Data
	if req.MaxAge, err = op.ValidateAuthReqPrompt(req.Prompt, req.MaxAge); err != nil {
		return nil, err
	}
	// organization asks for the organisation in the tokens, as the
	// organization scope does, which the client must be allowed.
	if cr.Form.Get("organization") != "" && !slices.Contains(req.Scopes, tokens.ScopeOrganization) {
		req.Scopes = append(req.Scopes, tokens.ScopeOrganization)
	}
	if client, ok := cr.Client.(*clients.Client); ok && client.ThirdParty() {
		named, err := f.targets.ScopesNamed(ctx, cr.Form["resource"])
		if err != nil {
			return nil, f.failures.Store(ctx, "look up resource scopes", err)
		}
		cr.Client = client.WithResourceScopes(named)
	}
	if req.Scopes, err = op.ValidateAuthReqScopes(cr.Client, req.Scopes); err != nil {
		return nil, err
	}
	if err := op.ValidateAuthReqResponseType(cr.Client, req.ResponseType); err != nil {
		return nil, err
	}
	if err := op.ValidateAuthReqCodeChallengeMethod(req.CodeChallenge, req.CodeChallengeMethod); err != nil {
		return nil, err
	}
	return f.Authorize(ctx, cr)
}

// refuseAuthorization shows a person the authorization request that
// cannot go back to its client.
func (f *Flow) refuseAuthorization(w http.ResponseWriter, r *http.Request, err error) {
	f.errorPages.Refuse(w, r, err, authorizeRefusedTitle, authorizeRefusedMessage)
}

// withIssuer adds iss (RFC 9207) to an error redirect to a client.
func withIssuer(dest, issuer string) string {
	u, err := url.Parse(dest)
	if err != nil {
		return dest
	}
	q := u.Query()
	if q.Has("iss") {
		return dest
	}
	q.Set("iss", issuer)
	u.RawQuery = q.Encode()
	return u.String()
}

// serveEndSession is the end-session endpoint (OpenID Connect
// RP-Initiated Logout 1.0, EndSession). A refusal is a page: no
// post-logout redirect URI is trusted until it is.
func (f *Flow) serveEndSession(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		f.errorPages.Refuse(w, r, oidc.ErrInvalidRequest().WithDescription("error parsing form"), endSessionRefusedTitle, endSessionRefusedMsg)
		return
	}
	req := new(oidc.EndSessionRequest)
	if err := f.decoder.Decode(req, r.Form); err != nil {
		f.errorPages.Refuse(w, r, oidc.ErrInvalidRequest().WithDescription("error decoding form"), endSessionRefusedTitle, endSessionRefusedMsg)
		return
	}
	redirect, err := f.EndSession(r.Context(), &op.Request[oidc.EndSessionRequest]{Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form, Data: req})
	if err != nil {
		f.errorPages.Refuse(w, r, err, endSessionRefusedTitle, endSessionRefusedMsg)
		return
	}
	writeRedirect(w, r, redirect)
}

// writeRedirect sends the browser on with 302 Found and the redirect's
// headers (its cookies).
func writeRedirect(w http.ResponseWriter, r *http.Request, redirect *op.Redirect) {
	for k, v := range redirect.Header {
		w.Header()[k] = append(w.Header()[k], v...)
	}
	http.Redirect(w, r, redirect.URL, http.StatusFound)
}
