package testenv

import (
	"net/http"
	"strings"
	"testing"
)

// Auth0 is a fake Auth0 tenant.
type Auth0 struct {
	*core
	URL          string // the server, without a trailing slash
	Issuer       string // URL + "/", as Auth0 writes it
	ClientID     string
	ClientSecret string
}

// NewAuth0 starts a fake Auth0 tenant, stopped when the test ends. It
// serves discovery, a JWKS, /authorize, /oauth/token (authorization_code
// with PKCE, refresh_token) and /userinfo. Access tokens are JWTs only
// when an audience was requested, and opaque otherwise, as in Auth0.
func NewAuth0(t testing.TB, opts ...Option) *Auth0 {
	t.Helper()
	o := newOptions("auth0-client", "auth0-secret", opts)
	f := &Auth0{core: newCore(t, o), ClientID: o.clientID, ClientSecret: o.clientSecret}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /.well-known/jwks.json", f.serveJWKS)
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("POST /oauth/token", f.token)
	mux.HandleFunc("GET /userinfo", f.userinfo)
	f.URL = f.start(mux)
	f.Issuer = f.URL + "/"
	return f
}

func (f *Auth0) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                f.Issuer,
		"authorization_endpoint":                f.URL + "/authorize",
		"token_endpoint":                        f.URL + "/oauth/token",
		"userinfo_endpoint":                     f.URL + "/userinfo",
		"jwks_uri":                              f.URL + "/.well-known/jwks.json",
		"end_session_endpoint":                  f.URL + "/oidc/logout",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": f.opts.algs,
		"code_challenge_methods_supported":      []string{"S256", "plain"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
	})
}

// IDToken mints an ID token for u, issued to the fake's client.
func (f *Auth0) IDToken(u User, opts ...TokenOption) string {
	f.t.Helper()
	return f.mint(f.idClaims(u, ""), opts...)
}

func (f *Auth0) idClaims(u User, nonce string) map[string]any {
	c := baseClaims(f.Issuer, u.Sub, f.ClientID)
	c["email"] = u.Email
	c["email_verified"] = u.EmailVerified
	c["name"] = u.Name
	if u.OrgID != "" {
		c["org_id"] = u.OrgID
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return c
}

// AccessToken mints an access token for u for the API audience. Like
// Auth0's, its aud is an array that also names the tenant's /userinfo,
// it carries no email, and /userinfo answers for it with u's.
func (f *Auth0) AccessToken(u User, audience string, opts ...TokenOption) string {
	f.t.Helper()
	at := f.mint(f.accessClaims(u, audience, "openid profile email"), opts...)
	f.rememberAccessToken(at, u)
	return at
}

func (f *Auth0) accessClaims(u User, audience, scope string) map[string]any {
	c := baseClaims(f.Issuer, u.Sub, []string{audience, f.Issuer + "userinfo"})
	c["azp"] = f.ClientID
	c["scope"] = scope
	if u.OrgID != "" {
		c["org_id"] = u.OrgID
	}
	return c
}

func (f *Auth0) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if !f.clientAuthenticated(r) {
		oauthError(w, http.StatusUnauthorized, "access_denied", "Unauthorized")
		return
	}
	var g grant
	var refreshToken string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		var ok bool
		g, ok = f.redeemCode(r.PostForm.Get("code"), r.PostForm.Get("code_verifier"), r.PostForm.Get("redirect_uri"))
		if !ok {
			oauthError(w, http.StatusForbidden, "invalid_grant", "Invalid authorization code")
			return
		}
		if hasScope(g.scope, "offline_access") {
			refreshToken = f.issueRefresh(g)
		}
	case "refresh_token":
		var ok bool
		// Auth0 refresh tokens are reusable unless rotation is turned on.
		g, ok = f.redeemRefresh(r.PostForm.Get("refresh_token"), false)
		if !ok {
			oauthError(w, http.StatusForbidden, "invalid_grant", "Unknown or invalid refresh token.")
			return
		}
		g.nonce = ""
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", r.PostForm.Get("grant_type"))
		return
	}
	idToken, err := f.keyring().sign(f.idClaims(g.user, g.nonce), f.takeSpoil()...)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	// Auth0 issues a JWT access token only for a requested API audience.
	accessToken := randomString(24)
	if g.audience != "" {
		accessToken, err = f.keyring().sign(f.accessClaims(g.user, g.audience, g.scope))
		if err != nil {
			oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
			return
		}
	}
	f.rememberAccessToken(accessToken, g.user)
	resp := map[string]any{
		"token_type":   "Bearer",
		"expires_in":   int(TokenLifetime.Seconds()),
		"scope":        g.scope,
		"id_token":     idToken,
		"access_token": accessToken,
	}
	if refreshToken != "" {
		resp["refresh_token"] = refreshToken
	}
	writeJSON(w, http.StatusOK, resp)
}

func (f *Auth0) userinfo(w http.ResponseWriter, r *http.Request) {
	u, ok := f.userForAccessToken(r)
	if !ok {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	claims := f.idClaims(u, "")
	for _, k := range []string{"iss", "aud", "iat", "exp"} {
		delete(claims, k)
	}
	writeJSON(w, http.StatusOK, claims)
}

func hasScope(scope, want string) bool {
	for s := range strings.FieldsSeq(scope) {
		if s == want {
			return true
		}
	}
	return false
}

// IdentityAssertion mints an identity assertion grant (ID-JAG) for u,
// for the authorization server audience and its client clientID: typ
// oauth-id-jag+jwt, a fresh jti, resource and scope as an enterprise
// identity provider would issue them.
func (f *Auth0) IdentityAssertion(u User, audience, clientID string, opts ...TokenOption) string {
	f.t.Helper()
	c := baseClaims(f.Issuer, u.Sub, audience)
	c["client_id"] = clientID
	c["jti"] = randomString(16)
	c["resource"] = "https://chat.example.com/mcp"
	c["scope"] = "chat.read"
	c["email"] = u.Email
	c["email_verified"] = u.EmailVerified
	return f.mint(c, append([]TokenOption{WithType("oauth-id-jag+jwt")}, opts...)...)
}
