package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Names shared by the generated broker configuration and the upstream, so
// the two always agree.
const (
	// upstreamAudience is the aud of the upstream's access tokens: the
	// connector's exchangeAudiences.
	upstreamAudience = "https://upstream.brokerload.test/api"
	// userDomain is the email domain of every simulated user.
	userDomain = "brokerload.test"
	// upstreamTokenTTL is how long an upstream access token lives; longer
	// than the longest run, so pre-signed tokens never expire mid-run.
	upstreamTokenTTL = 2 * time.Hour
	// codeTTL is how long an upstream authorization code can be redeemed.
	codeTTL = time.Minute
)

// upstreamConfig configures the tool's upstream.
type upstreamConfig struct {
	Addr         string // loopback listen address
	ClientID     string // the broker's client id at the upstream
	ClientSecret string
	Alg          jose.SignatureAlgorithm // signs ID and access tokens
	KeysPath     string                  // see upstreamKeys
	Logger       *slog.Logger
}

// upstream is a minimal OpenID Connect provider that approves every login
// at once. It serves discovery, a JWKS, /authorize (the user is the
// login_hint) and /token (authorization_code with PKCE S256 and
// client_secret_basic), and signs access tokens for token exchange. It
// keeps nothing but unredeemed codes.
type upstream struct {
	issuer       string
	clientID     string
	clientSecret string
	signer       jose.Signer

	discovery []byte
	jwks      []byte
	ln        net.Listener
	srv       *http.Server

	mu    sync.Mutex
	codes map[string]upstreamCode
	swept time.Time
}

type upstreamCode struct {
	sub         string
	nonce       string
	challenge   string
	redirectURI string
	expires     time.Time
}

// startUpstream listens on cfg.Addr and serves until close.
func startUpstream(cfg upstreamConfig) (*upstream, error) {
	if err := checkLoopbackAddr(cfg.Addr); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	keys, err := upstreamKeys(cfg.KeysPath)
	if err != nil {
		return nil, err
	}
	key, ok := keys[cfg.Alg]
	if !ok {
		return nil, fmt.Errorf("upstream: algorithm %q is not one of RS256, ES256, EdDSA", cfg.Alg)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: cfg.Alg, Key: key},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("upstream signer: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("upstream: listen: %w", err)
	}
	u := &upstream{
		issuer:       "http://" + ln.Addr().String(),
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		signer:       signer,
		ln:           ln,
		codes:        map[string]upstreamCode{},
	}
	var set jose.JSONWebKeySet
	var algs []string
	for _, alg := range upstreamAlgs {
		k := keys[alg]
		set.Keys = append(set.Keys, k.Public())
		algs = append(algs, string(alg))
	}
	if u.jwks, err = json.Marshal(set); err != nil {
		ln.Close()
		return nil, fmt.Errorf("upstream jwks: %w", err)
	}
	u.discovery, err = json.Marshal(map[string]any{
		"issuer":                                u.issuer,
		"authorization_endpoint":                u.issuer + "/authorize",
		"token_endpoint":                        u.issuer + "/token",
		"jwks_uri":                              u.issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": algs,
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("upstream discovery: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", u.serveBytes(u.discovery))
	mux.HandleFunc("GET /jwks", u.serveBytes(u.jwks))
	mux.HandleFunc("GET /authorize", u.authorize)
	mux.HandleFunc("POST /token", u.token)
	u.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	if cfg.Logger != nil {
		u.srv.ErrorLog = slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)
	}
	go u.srv.Serve(ln)
	return u, nil
}

// close stops the upstream at once.
func (u *upstream) close() error { return u.srv.Close() }

func (u *upstream) serveBytes(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(body)
	}
}

// user is one simulated person at the upstream.
type user struct {
	sub   string
	email string
}

// userFor returns the user whose email is email: the local part is the
// subject.
func userFor(email string) (user, bool) {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain != userDomain {
		return user{}, false
	}
	return user{sub: local, email: email}, true
}

// poolUser is the i-th user of the pool of existing users.
func poolUser(i int) user {
	sub := fmt.Sprintf("user-%07d", i)
	return user{sub: sub, email: sub + "@" + userDomain}
}

// upstreamClaims are the claims of the upstream's tokens.
type upstreamClaims struct {
	Issuer        string `json:"iss"`
	Subject       string `json:"sub"`
	Audience      string `json:"aud"`
	Expiry        int64  `json:"exp"`
	IssuedAt      int64  `json:"iat"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
	Nonce         string `json:"nonce,omitempty"`
	Scope         string `json:"scope,omitempty"`
}

// accessToken signs an access token for usr, for the audience the broker
// accepts in token exchange. It is safe for concurrent use.
func (u *upstream) accessToken(usr user) (string, error) {
	now := time.Now()
	return u.sign(upstreamClaims{
		Issuer: u.issuer, Subject: usr.sub, Audience: upstreamAudience,
		Expiry: now.Add(upstreamTokenTTL).Unix(), IssuedAt: now.Unix(),
		Email: usr.email, EmailVerified: true, Name: usr.sub, Scope: "openid email profile",
	})
}

func (u *upstream) sign(c upstreamClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("upstream token: %w", err)
	}
	jws, err := u.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("upstream token: %w", err)
	}
	return jws.CompactSerialize()
}

// authorize approves at once: it issues a code for the login_hint's user
// and sends the browser back to the broker.
func (u *upstream) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirectURI := q.Get("redirect_uri")
	if _, err := checkLoopbackURL(redirectURI); err != nil || q.Get("client_id") != u.clientID {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	fail := func(code, desc string) {
		http.Redirect(w, r, withQuery(redirectURI, url.Values{"error": {code}, "error_description": {desc}, "state": {q.Get("state")}}), http.StatusFound)
	}
	usr, ok := userFor(q.Get("login_hint"))
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "response_type must be code")
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "PKCE with S256 is required")
	case q.Get("state") == "" || q.Get("nonce") == "":
		fail("invalid_request", "state and nonce are required")
	case !ok:
		fail("login_required", "login_hint must be an address at "+userDomain)
	default:
		code := randomToken()
		u.putCode(code, upstreamCode{
			sub: usr.sub, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
			redirectURI: redirectURI, expires: time.Now().Add(codeTTL),
		})
		http.Redirect(w, r, withQuery(redirectURI, url.Values{"code": {code}, "state": {q.Get("state")}}), http.StatusFound)
	}
}

func (u *upstream) putCode(code string, c upstreamCode) {
	u.mu.Lock()
	defer u.mu.Unlock()
	// Codes the broker never redeemed (it failed mid-login) are swept
	// now and then, so a long failing run cannot grow the map forever.
	if now := time.Now(); now.Sub(u.swept) > codeTTL {
		for k, v := range u.codes {
			if now.After(v.expires) {
				delete(u.codes, k)
			}
		}
		u.swept = now
	}
	u.codes[code] = c
}

func (u *upstream) takeCode(code string) (upstreamCode, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	c, ok := u.codes[code]
	delete(u.codes, code)
	return c, ok && time.Now().Before(c.expires)
}

// token redeems a code for an ID token carrying the login's nonce.
func (u *upstream) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if !ok || id != u.clientID || subtle.ConstantTimeCompare([]byte(secret), []byte(u.clientSecret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="brokerload"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if r.PostFormValue("grant_type") != "authorization_code" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code")
		return
	}
	c, ok := u.takeCode(r.PostFormValue("code"))
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
		return
	}
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match")
		return
	}
	if r.PostFormValue("redirect_uri") != c.redirectURI {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match")
		return
	}
	now := time.Now()
	idToken, err := u.sign(upstreamClaims{
		Issuer: u.issuer, Subject: c.sub, Audience: u.clientID,
		Expiry: now.Add(5 * time.Minute).Unix(), IssuedAt: now.Unix(),
		Email: c.sub + "@" + userDomain, EmailVerified: true, Name: c.sub, Nonce: c.nonce,
	})
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	// No refresh token: the broker would keep it and re-check the user
	// here on refresh, which is not what the refresh scenario measures.
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": randomToken(),
		"token_type":   "Bearer",
		"expires_in":   300,
		"id_token":     idToken,
	})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// withQuery adds params to a URL's query.
func withQuery(raw string, params url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// randomToken returns 256 random bits, base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
