package authflow

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/edge"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Checks on the parameters of an authorization request that run before
// it is decoded.

// authorizeParams are the authorization request parameters the broker or
// the library reads, each of which may be sent once. resource is not
// among them: RFC 8707 section 2 lets it repeat. Parameters nobody reads
// are ignored, repeated or not (RFC 6749 section 3.1).
var authorizeParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"response_mode", "display", "prompt", "max_age", "ui_locales", "id_token_hint",
	"login_hint", "acr_values", "code_challenge", "code_challenge_method",
	"request", "request_uri", "idp", "organization",
}

// refuseParams answers an authorization request that repeats a
// parameter (RFC 6749 section 3.1: "Request and response parameters MUST
// NOT be included more than once"), that sends a request_uri (OpenID
// Connect Core section 6.2), or whose response_type is not code (RFC
// 6749 section 4.1.2.1), all of which the library would get wrong: it
// decodes a repeated parameter as one of its values, ignores request_uri,
// and calls a response_type it does not support unauthorized_client. The
// client hears of it at its redirect URI when client_id and redirect_uri
// were each sent once and the URI is registered for the client;
// otherwise no redirect can be trusted, and the person sees a page.
func (f *Flow) refuseParams(w http.ResponseWriter, r *http.Request, code, description string) {
	ctx := r.Context()
	f.log.InfoContext(ctx, "authorization request refused", "client_id", r.Form.Get("client_id"), "error", code, "reason", description)
	client, err := f.clients.Get(ctx, r.Form.Get("client_id"))
	switch {
	case err != nil && !errors.Is(err, clients.ErrUnknownClient):
		f.refuseAuthorization(w, r, f.failures.Store(ctx, "get client", err))
		return
	case err != nil, len(r.Form["client_id"]) != 1, len(r.Form["redirect_uri"]) != 1,
		!client.RedirectURIAllowed(r.Form.Get("redirect_uri")):
		// A page shows the description; the code is for a client.
		f.refuseAuthorization(w, r, oidc.ErrInvalidRequest().WithDescription("%s", description))
		return
	}
	params := url.Values{"error": {code}, "error_description": {description}, "iss": {f.issuer}}
	if state := r.Form["state"]; len(state) == 1 {
		params["state"] = state
	}
	http.Redirect(w, r, authorizeErrorURL(r.Form, params), http.StatusFound)
}

// authorizeParamsRefusal returns the error code and description for a
// request refuseParams refuses, or "" for one it lets through.
func authorizeParamsRefusal(form url.Values) (code, description string) {
	for _, p := range authorizeParams {
		if len(form[p]) > 1 {
			return string(oidc.InvalidRequest), fmt.Sprintf("parameter %s is included more than once", p)
		}
	}
	// A parameter "sent without a value MUST be treated as if [it were]
	// omitted" (RFC 6749 section 3.1), so Get, not Has. A missing
	// response_type is the library's invalid_request.
	if form.Get("request_uri") != "" {
		return "request_uri_not_supported", "request_uri is not supported; send the request's parameters themselves"
	}
	if rt := form.Get("response_type"); rt != "" && rt != string(oidc.ResponseTypeCode) {
		return "unsupported_response_type", "response_type must be code (the authorization code flow with PKCE)"
	}
	return "", ""
}

// authorizeErrorURL adds params to the request's redirect URI where its
// client will look for them: in the fragment for a response type that
// returns a token (OAuth 2.0 Multiple Response Type Encoding Practices
// section 5, RFC 6749 section 4.2.2.1) unless response_mode says
// otherwise, else in the query.
func authorizeErrorURL(form, params url.Values) string {
	redirectURI := form.Get("redirect_uri")
	fragment := slices.ContainsFunc(strings.Fields(form.Get("response_type")), func(t string) bool {
		return t == "token" || t == "id_token"
	})
	switch oidc.ResponseMode(form.Get("response_mode")) {
	case oidc.ResponseModeQuery:
		fragment = false
	case oidc.ResponseModeFragment:
		fragment = true
	}
	if !fragment {
		return clientRedirect(redirectURI, params)
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		// Registered and matched already, so it parses; fail closed anyway.
		return "/"
	}
	u.Fragment = ""
	return u.String() + "#" + params.Encode()
}

// checkAuthorizeParams refuses an authorization request any of whose
// parameters is not valid text. Authorize calls it once the redirect URI
// is known to be the client's, so the refusal is an error redirect (RFC
// 6749 section 4.1.2.1).
func checkAuthorizeParams(form url.Values) error {
	if name, bad := edge.BadParam(form); bad {
		return oidc.ErrInvalidRequest().WithDescription("%s", answer.InvalidTextReason(name))
	}
	return nil
}
