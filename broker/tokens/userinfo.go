package tokens

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/idbroker/broker/broker/answer"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// The UserInfo endpoint, OpenID Connect Core section 5.3. It is an OAuth
// 2.0 protected resource, so its refusals are RFC 6750's: a
// WWW-Authenticate challenge saying what was wrong. The broker writes the
// whole answer itself; the library's handler has no way to add the
// challenge.

// bearerRealm names the broker in every Bearer challenge it sends.
const bearerRealm = "broker"

// errTwoTokens is a request that sent its access token more than once.
var errTwoTokens = errors.New("send the access token once, in one way")

// ServeUserinfo returns claims about the user of a broker access token, as its
// scopes allow. A token not issued for OpenID Connect (one without the
// openid scope: a machine client's, or one narrowed by token exchange)
// is refused with insufficient_scope: section 5.3 releases claims about
// "the authenticated End-User", and such a token authenticated nobody to
// this client. No answer is cached (RFC 6750 section 5.3): each is about
// a person, or about a credential.
func (t *Issuer) ServeUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		// Section 5.3.1: "using either HTTP GET or HTTP POST".
		w.Header().Set("Allow", "GET, POST")
		answer.OAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "this endpoint answers only GET and POST")
		return
	}
	raw, err := bearerToken(r)
	if err != nil {
		bearerChallenge(w, http.StatusBadRequest, "invalid_request", err.Error(), "")
		return
	}
	if raw == "" {
		// RFC 6750 section 3.1: "If the request lacks any authentication
		// information ... the resource server SHOULD NOT include an error
		// code or other error information."
		bearerChallenge(w, http.StatusUnauthorized, "", "", "")
		return
	}
	claims, user, err := t.VerifyAccessToken(ctx, raw)
	if errors.Is(err, ErrInactive) {
		t.log.InfoContext(ctx, "userinfo refused", "reason", err.Error())
		bearerChallenge(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked", "")
		return
	}
	if err != nil {
		t.failures.WriteStore(ctx, w, "check access token", err)
		return
	}
	scopes := strings.Fields(claims.Scope)
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		t.log.InfoContext(ctx, "userinfo refused", "client_id", claims.ClientID, "reason", "no openid scope")
		bearerChallenge(w, http.StatusForbidden, "insufficient_scope", "the access token was not issued for OpenID Connect", oidc.ScopeOpenID)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// The organisation is the token's, as issued: the login chose it, and
	// the user's memberships now cannot say which.
	json.NewEncoder(w).Encode(struct {
		Subject string `json:"sub"`
		Org     string `json:"org_id,omitempty"`
		OrgSlug string `json:"org_slug,omitempty"`
		UserClaims
	}{user.ID, claims.Org, claims.OrgSlug, claimsForScopes(user, scopes)})
}

// bearerToken returns the access token a request carries in its
// Authorization header (RFC 6750 section 2.1) or its access_token
// parameter (sections 2.2 and 2.3), or "" for none. Section 2: "Clients
// MUST NOT use more than one method to transmit the token in each
// request"; a request that does, or repeats the parameter, is refused
// rather than served from a token picked at random.
func bearerToken(r *http.Request) (string, error) {
	if err := r.ParseForm(); err != nil {
		return "", errors.New("the request could not be read")
	}
	var header string
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		header = strings.TrimSpace(token)
	}
	param := r.Form["access_token"]
	switch {
	case len(param) > 1, len(param) == 1 && header != "":
		return "", errTwoTokens
	case len(param) == 1:
		return param[0], nil
	}
	return header, nil
}

// bearerChallenge answers a refused request with status and the
// WWW-Authenticate challenge of RFC 6750 section 3, and repeats the error
// as a JSON body (section 5.2 of RFC 6749's shape) for clients that read
// bodies. code "" is a request without a token: a bare challenge, no
// body. description and scope are the broker's own text, never the
// client's, so they need no quoting beyond the quotes around them.
func bearerChallenge(w http.ResponseWriter, status int, code, description, scope string) {
	challenge := `Bearer realm="` + bearerRealm + `"`
	if code != "" {
		challenge += `, error="` + code + `", error_description="` + description + `"`
	}
	if scope != "" {
		challenge += `, scope="` + scope + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	if code == "" {
		w.WriteHeader(status)
		return
	}
	answer.OAuthError(w, status, code, description)
}
