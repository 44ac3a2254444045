package testenv

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// WorkOS is a fake WorkOS User Management (AuthKit) API.
type WorkOS struct {
	*core
	URL      string // the API base URL, like https://api.workos.com
	ClientID string
	APIKey   string
	// AccessTokenIssuer is the iss of access tokens:
	// URL/user_management/ClientID.
	AccessTokenIssuer string
}

// NewWorkOS starts a fake WorkOS API, stopped when the test ends. It
// serves /user_management/authorize, POST /user_management/authenticate
// (authorization_code with PKCE, and refresh_token; refresh tokens are
// single-use, as WorkOS's are) and the JWKS at /sso/jwks/{client_id}.
// User.Sub is the WorkOS user id; Name is split into first and last name.
// A user with an Impersonator is signed in as WorkOS impersonation does:
// the answer names the impersonator ({email, reason}), the access token
// carries act {sub: <impersonator email>}, and refreshes say so again.
func NewWorkOS(t testing.TB, opts ...Option) *WorkOS {
	t.Helper()
	o := newOptions("client_fake", "sk_test_fake", opts)
	f := &WorkOS{core: newCore(t, o), ClientID: o.clientID, APIKey: o.clientSecret}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /user_management/authorize", f.authorize)
	mux.HandleFunc("POST /user_management/authenticate", f.authenticate)
	mux.HandleFunc("GET /sso/jwks/{client}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("client") != f.ClientID {
			http.NotFound(w, r)
			return
		}
		f.serveJWKS(w, r)
	})
	f.URL = f.start(mux)
	f.AccessTokenIssuer = f.URL + "/user_management/" + f.ClientID
	return f
}

// AccessToken mints a WorkOS access token for u.
func (f *WorkOS) AccessToken(u User, opts ...TokenOption) string {
	f.t.Helper()
	return f.mint(f.accessClaims(u), opts...)
}

func (f *WorkOS) accessClaims(u User) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": f.AccessTokenIssuer,
		"sub": u.Sub,
		"sid": "session_" + randomString(8),
		"jti": randomString(12),
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
	}
	if u.OrgID != "" {
		c["org_id"] = u.OrgID
	}
	if u.Impersonator != "" {
		c["act"] = map[string]any{"sub": u.Impersonator}
	}
	return c
}

func (f *WorkOS) authenticate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		GrantType    string `json:"grant_type"`
		Code         string `json:"code"`
		CodeVerifier string `json:"code_verifier"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if req.ClientID != f.ClientID || subtle.ConstantTimeCompare([]byte(req.ClientSecret), []byte(f.APIKey)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Invalid client secret.")
		return
	}
	var g grant
	var ok bool
	switch req.GrantType {
	case "authorization_code":
		g, ok = f.redeemCode(req.Code, req.CodeVerifier, "")
	case "refresh_token":
		g, ok = f.redeemRefresh(req.RefreshToken, true)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", req.GrantType)
		return
	}
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "The code or refresh token is invalid, expired or used.")
		return
	}
	at, err := f.keyring().sign(f.accessClaims(g.user))
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	first, last, _ := strings.Cut(g.user.Name, " ")
	resp := map[string]any{
		"user": map[string]any{
			"object":         "user",
			"id":             g.user.Sub,
			"email":          g.user.Email,
			"email_verified": g.user.EmailVerified,
			"first_name":     first,
			"last_name":      last,
		},
		"access_token":          at,
		"refresh_token":         f.issueRefresh(g),
		"authentication_method": "Password",
	}
	if g.user.OrgID != "" {
		resp["organization_id"] = g.user.OrgID
	}
	if g.user.Impersonator != "" {
		resp["authentication_method"] = "Impersonation"
		resp["impersonator"] = map[string]any{"email": g.user.Impersonator, "reason": g.user.ImpersonationReason}
	}
	writeJSON(w, http.StatusOK, resp)
}
