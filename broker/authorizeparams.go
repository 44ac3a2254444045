package broker

// Checks on the parameters of an authorization request that the library
// would get wrong: it decodes a repeated parameter as one of its values,
// ignores request_uri, and calls a response_type it does not support
// unauthorized_client. They run before the library reads the request.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// authorizeParams are the authorization request parameters the broker or
// the library reads, each of which may be sent once. resource is not
// among them: RFC 8707 section 2 lets it repeat. Parameters nobody reads
// are ignored, repeated or not (RFC 6749 section 3.1).
var authorizeParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"response_mode", "display", "prompt", "max_age", "ui_locales", "id_token_hint",
	"login_hint", "acr_values", "code_challenge", "code_challenge_method",
	"request", "request_uri", "idp",
}

// checkAuthorizeParams refuses an authorization request that repeats a
// parameter (RFC 6749 section 3.1: "Request and response parameters MUST
// NOT be included more than once"), that sends a request_uri (OpenID
// Connect Core section 6.2), or whose response_type is not code (RFC
// 6749 section 4.1.2.1). The client hears of it at its redirect URI when
// client_id and redirect_uri were each sent once and the URI is
// registered for the client; otherwise no redirect can be trusted, and
// the refusal goes to htmlErrors, which renders it as a page.
func (b *Broker) checkAuthorizeParams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			next.ServeHTTP(w, r) // the library refuses a form it cannot read
			return
		}
		code, description := authorizeParamsRefusal(r.Form)
		if code == "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		b.log.InfoContext(ctx, "authorization request refused", "client_id", r.Form.Get("client_id"), "error", code, "reason", description)
		client, err := b.clients.Get(ctx, r.Form.Get("client_id"))
		switch {
		case err != nil && !errors.Is(err, clients.ErrUnknownClient):
			b.failures.WriteStore(ctx, w, "get client", err)
			return
		case err != nil, len(r.Form["client_id"]) != 1, len(r.Form["redirect_uri"]) != 1,
			!client.RedirectURIAllowed(r.Form.Get("redirect_uri")):
			answer.OAuthError(w, http.StatusBadRequest, code, description)
			return
		}
		params := url.Values{"error": {code}, "error_description": {description}, "iss": {b.issuer}}
		if state := r.Form["state"]; len(state) == 1 {
			params["state"] = state
		}
		http.Redirect(w, r, authorizeErrorURL(r.Form, params), http.StatusFound)
	})
}

// authorizeParamsRefusal returns the error code and description for a
// request checkAuthorizeParams refuses, or "" for one it lets through.
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
