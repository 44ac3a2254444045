package testenv

import (
	"net/http"
	"testing"
)

// AzureAD is a fake Entra ID v2.0 authority with two tenants.
type AzureAD struct {
	*core
	URL          string // the authority, like https://login.microsoftonline.com
	ClientID     string
	ClientSecret string
	TenantA      string
	TenantB      string
}

// NewAzureAD starts a fake Entra ID authority, stopped when the test ends.
// Under /{tenant}/ it serves discovery, keys, authorize and token for
// TenantA, TenantB, and the multi-tenant "organizations" and "common",
// whose discovery publishes the issuer template
// URL/{tenantid}/v2.0 literally, as Entra does. A token's tenant is its
// user's TenantID (TenantA when empty). Like Entra, it never sends
// email_verified; User.EmailDomainVerified sends xms_edov.
func NewAzureAD(t testing.TB, opts ...Option) *AzureAD {
	t.Helper()
	o := newOptions("azure-client", "azure-secret", opts)
	f := &AzureAD{
		core:         newCore(t, o),
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		TenantA:      "aaaaaaaa-0000-4000-8000-00000000000a",
		TenantB:      "bbbbbbbb-0000-4000-8000-00000000000b",
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", f.tenantOnly(f.serveJWKS))
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", f.tenantOnly(f.authorize))
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.tenantOnly(f.token))
	f.URL = f.start(mux)
	return f
}

// Issuer is the v2.0 issuer of a tenant.
func (f *AzureAD) Issuer(tenant string) string {
	return f.URL + "/" + tenant + "/v2.0"
}

func (f *AzureAD) known(tenant string) bool {
	switch tenant {
	case f.TenantA, f.TenantB, "organizations", "common":
		return true
	}
	return false
}

func (f *AzureAD) tenantOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !f.known(r.PathValue("tenant")) {
			oauthError(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant not found.")
			return
		}
		h(w, r)
	}
}

func (f *AzureAD) discovery(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !f.known(tenant) {
		oauthError(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant not found.")
		return
	}
	issuer := f.Issuer(tenant)
	if tenant == "organizations" || tenant == "common" {
		issuer = f.Issuer("{tenantid}")
	}
	base := f.URL + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"code", "id_token", "code id_token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": f.opts.algs,
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
	})
}

// IDToken mints a v2.0 ID token for u, issued to the fake's client.
func (f *AzureAD) IDToken(u User, opts ...TokenOption) string {
	f.t.Helper()
	return f.mint(f.claims(u, f.ClientID, ""), opts...)
}

// AccessToken mints a v2.0 access token for u for an API (aud audience).
func (f *AzureAD) AccessToken(u User, audience string, opts ...TokenOption) string {
	f.t.Helper()
	c := f.claims(u, audience, "")
	c["azp"] = f.ClientID
	c["scp"] = "access_as_user"
	return f.mint(c, opts...)
}

// V1Issuer is the issuer of a tenant's v1.0 access tokens. Entra's is
// https://sts.windows.net/{tid}/; the fake's is under its own URL, so a
// connector names it with v1Authority: URL.
func (f *AzureAD) V1Issuer(tenant string) string {
	return f.URL + "/" + tenant + "/"
}

// AccessTokenV1 mints a v1.0 access token for u for an API (aud
// audience), as Entra issues for an API whose manifest keeps
// accessTokenAcceptedVersion at 1 (or null): iss is the tenant's v1
// issuer, ver 1.0, appid instead of azp, and upn instead of
// preferred_username. It is signed with the same keys as v2.0 tokens.
func (f *AzureAD) AccessTokenV1(u User, audience string, opts ...TokenOption) string {
	f.t.Helper()
	c := f.claims(u, audience, "")
	c["iss"] = f.V1Issuer(c["tid"].(string))
	c["ver"] = "1.0"
	c["appid"] = f.ClientID
	c["scp"] = "access_as_user"
	if u.PreferredUsername != "" {
		delete(c, "preferred_username")
		c["upn"] = u.PreferredUsername
	}
	return f.mint(c, opts...)
}

func (f *AzureAD) claims(u User, aud, nonce string) map[string]any {
	tid := u.TenantID
	if tid == "" {
		tid = f.TenantA
	}
	c := baseClaims(f.Issuer(tid), u.Sub, aud)
	c["ver"] = "2.0"
	c["tid"] = tid
	c["oid"] = u.ObjectID
	c["name"] = u.Name
	if u.Email != "" {
		c["email"] = u.Email
	}
	if u.PreferredUsername != "" {
		c["preferred_username"] = u.PreferredUsername
	}
	if u.EmailDomainVerified {
		c["xms_edov"] = true
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return c
}

func (f *AzureAD) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if !f.clientAuthenticated(r) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	var g grant
	var ok bool
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g, ok = f.redeemCode(r.PostForm.Get("code"), r.PostForm.Get("code_verifier"), r.PostForm.Get("redirect_uri"))
	case "refresh_token":
		// Entra rotates refresh tokens but lets the old ones live on.
		g, ok = f.redeemRefresh(r.PostForm.Get("refresh_token"), false)
		g.nonce = ""
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", r.PostForm.Get("grant_type"))
		return
	}
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "AADSTS70000: The provided grant is invalid or malformed.")
		return
	}
	idToken, err := f.keyring().sign(f.claims(g.user, f.ClientID, g.nonce), f.takeSpoil()...)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	resp := map[string]any{
		"token_type":   "Bearer",
		"expires_in":   int(TokenLifetime.Seconds()),
		"scope":        g.scope,
		"id_token":     idToken,
		"access_token": randomString(24),
	}
	if hasScope(g.scope, "offline_access") {
		resp["refresh_token"] = f.issueRefresh(g)
	}
	writeJSON(w, http.StatusOK, resp)
}
