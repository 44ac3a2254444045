package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/idbroker/broker/broker"
	upoidc "github.com/idbroker/broker/upstream/oidc"
)

// The development instance's extras: a confidential client that may
// exchange tokens, and a local upstream whose tokens it trusts, so token
// exchange can be tried with curl alone. None of this exists with
// --config.
const (
	devServiceID       = "dev-service"
	devServiceSecret   = "dev-service-secret" // development only: printed in the README
	devServiceAudience = "https://api.example.com"

	devUpstreamID     = "dev-upstream"
	devUpstreamPath   = "/dev/upstream"
	devUpstreamClient = "dev-upstream-client"
	devUpstreamSecret = "dev-upstream-secret"
)

// withDevExtras adds the dev-service client and the dev-upstream
// connector to a development configuration. The upstream's issuer is on
// the broker's own listener (listenBase, http://host:port), which the
// broker reaches as any upstream: by discovery.
func withDevExtras(cfg broker.Config, listenBase string) broker.Config {
	cfg.Clients = append(cfg.Clients, broker.ClientConfig{
		ID:         devServiceID,
		Name:       "Development service",
		Secret:     devServiceSecret,
		GrantTypes: []string{broker.GrantTokenExchange, broker.GrantClientCredentials},
		Audiences:  []string{devServiceAudience},
	})
	cfg.Connectors = append(cfg.Connectors, broker.ConnectorConfig{
		ID:              devUpstreamID,
		Type:            "oidc",
		Name:            "Development upstream",
		RecheckInterval: time.Hour,
		Config: &upoidc.Config{
			Issuer:            listenBase + devUpstreamPath,
			ClientID:          devUpstreamClient,
			ClientSecret:      devUpstreamSecret,
			TrustEmail:        true,
			ExchangeAudiences: []string{devUpstreamClient},
		},
	})
	return cfg
}

// devUpstream is a development-only OpenID Connect provider on the
// broker's listener under /dev/upstream: discovery, a JWKS, a login form
// that asks only for an email, and a token endpoint that also mints an ID
// token for any email it is given (POST /dev/upstream/token with
// email=...). Its key lives in memory. Anyone who reaches the listener can
// sign in as anyone through it: it is mounted only for the development
// instance, which listens on 127.0.0.1 unless told otherwise.
type devUpstream struct {
	issuer   string // listenBase + devUpstreamPath
	callback string // the broker's callback for the connector
	key      *ecdsa.PrivateKey
	kid      string
	signer   jose.Signer
	now      func() time.Time

	mu      sync.Mutex
	codes   map[string]devGrant // one use each
	refresh map[string]devGrant
}

type devGrant struct {
	email, nonce string
	expires      time.Time
}

func newDevUpstream(issuer, brokerIssuer string) (*devUpstream, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kid := randomHex(8)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &devUpstream{
		issuer: issuer, callback: brokerIssuer + "/callback/" + devUpstreamID,
		key: key, kid: kid, signer: signer, now: time.Now,
		codes: map[string]devGrant{}, refresh: map[string]devGrant{},
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// mount serves the upstream's paths and hands every other request to next.
func (d *devUpstream) mount(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+devUpstreamPath+"/.well-known/openid-configuration", d.discovery)
	mux.HandleFunc("GET "+devUpstreamPath+"/jwks", d.jwks)
	mux.HandleFunc("GET "+devUpstreamPath+"/authorize", d.authorizeForm)
	mux.HandleFunc("POST "+devUpstreamPath+"/authorize", d.authorize)
	mux.HandleFunc("POST "+devUpstreamPath+"/token", d.token)
	mux.HandleFunc(devUpstreamPath+"/", http.NotFound)
	mux.Handle("/", next)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (d *devUpstream) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                d.issuer,
		"authorization_endpoint":                d.issuer + "/authorize",
		"token_endpoint":                        d.issuer + "/token",
		"jwks_uri":                              d.issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      []string{"openid", "email", "profile", "offline_access"},
	})
}

func (d *devUpstream) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &d.key.PublicKey, KeyID: d.kid, Algorithm: "ES256", Use: "sig"},
	}})
}

var devLoginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Development upstream</title></head>
<body><main>
<h1>Development upstream</h1>
<p>A development-only identity provider: it signs in whoever you say.</p>
<form method="post">
<label for="email">Email</label> <input id="email" name="email" type="email" required value="{{.LoginHint}}" autofocus>
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="nonce" value="{{.Nonce}}">
<button type="submit">Sign in</button>
</form>
</main></body></html>
`))

// authorizeForm asks for the email to sign in as. Only the broker's
// callback for this connector is a redirect target.
func (d *devUpstream) authorizeForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != devUpstreamClient || q.Get("redirect_uri") != d.callback || q.Get("response_type") != "code" {
		http.Error(w, "development upstream: unknown client_id, redirect_uri or response_type", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	devLoginPage.Execute(w, map[string]string{
		"LoginHint": q.Get("login_hint"), "RedirectURI": q.Get("redirect_uri"), "State": q.Get("state"), "Nonce": q.Get("nonce"),
	})
}

func (d *devUpstream) authorize(w http.ResponseWriter, r *http.Request) {
	email, ok := devEmail(r.PostFormValue("email"))
	if !ok || r.PostFormValue("redirect_uri") != d.callback {
		http.Error(w, "development upstream: an email address and the broker's callback are needed", http.StatusBadRequest)
		return
	}
	code := randomHex(16)
	d.mu.Lock()
	d.codes[code] = devGrant{email: email, nonce: r.PostFormValue("nonce"), expires: d.now().Add(time.Minute)}
	d.mu.Unlock()
	to := d.callback + "?" + url.Values{"code": {code}, "state": {r.PostFormValue("state")}}.Encode()
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func devEmail(s string) (string, bool) {
	a, err := mail.ParseAddress(strings.TrimSpace(s))
	if err != nil || a.Name != "" {
		return "", false
	}
	return strings.ToLower(a.Address), true
}

// token redeems a code or a refresh token of the broker's (which
// authenticates as the connector's client), or, with email=... and no
// grant_type, mints tokens for that email for anyone who asks.
func (d *devUpstream) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	var g devGrant
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "":
		email, ok := devEmail(r.PostForm.Get("email"))
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request",
				"error_description": "give email=<address> to mint its tokens"})
			return
		}
		g = devGrant{email: email}
	case "authorization_code", "refresh_token":
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if id != devUpstreamClient || subtle.ConstantTimeCompare([]byte(secret), []byte(devUpstreamSecret)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
			return
		}
		table, key := d.codes, r.PostForm.Get("code")
		if grant == "refresh_token" {
			table, key = d.refresh, r.PostForm.Get("refresh_token")
		}
		d.mu.Lock()
		g, ok = table[key]
		if grant == "authorization_code" {
			delete(table, key)
		}
		d.mu.Unlock()
		if !ok || (grant == "authorization_code" && d.now().After(g.expires)) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	idToken, err := d.mint(g)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	resp := map[string]any{"id_token": idToken, "access_token": idToken, "token_type": "Bearer", "expires_in": 3600}
	if r.PostForm.Get("grant_type") != "" {
		rt := randomHex(16)
		d.mu.Lock()
		d.refresh[rt] = devGrant{email: g.email}
		d.mu.Unlock()
		resp["refresh_token"] = rt
	}
	writeJSON(w, http.StatusOK, resp)
}

// mint signs an ID token for g's email: sub is derived from the email
// (stable across restarts), the email is verified, aud is the connector's
// client, which its exchangeAudiences name.
func (d *devUpstream) mint(g devGrant) (string, error) {
	now := d.now()
	sum := sha256.Sum256([]byte(g.email))
	claims := map[string]any{
		"iss": d.issuer, "sub": "dev|" + hex.EncodeToString(sum[:8]), "aud": devUpstreamClient,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"email": g.email, "email_verified": true, "name": strings.SplitN(g.email, "@", 2)[0],
	}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	return jwt.Signed(d.signer).Claims(claims).Serialize()
}

// devListenBase is the base URL the broker reaches its own listener at.
func devListenBase(addr string) string {
	return fmt.Sprintf("http://%s", displayHost(addr))
}
