package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/broker/resource"
)

// issuer is an authorization server of the test's own, publishing the
// keys it is given, for what a real broker never signs.
type issuer struct {
	url     string
	keys    []jose.JSONWebKey // published
	fetches atomic.Int64      // of the key set
	// discoveryIssuer is the issuer discovery names; default url.
	discoveryIssuer string
}

func newIssuer(t *testing.T, keys ...jose.JSONWebKey) *issuer {
	t.Helper()
	is := &issuer{keys: keys}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			name := is.discoveryIssuer
			if name == "" {
				name = is.url
			}
			json.NewEncoder(w).Encode(map[string]string{"issuer": name, "jwks_uri": is.url + "/jwks"})
		case "/jwks":
			is.fetches.Add(1)
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	is.url = srv.URL
	return is
}

// claims are valid access token claims of is for apiAudience.
func (is *issuer) claims() map[string]any {
	now := time.Now()
	return map[string]any{"iss": is.url, "sub": "7f1c1f6e-3b7a-4c57-9d0e-1a2b3c4d5e6f", "aud": []string{apiAudience},
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": "g.1", "client_id": "c", "scope": "a b"}
}

func with(claims map[string]any, key string, value any) map[string]any {
	if value == nil {
		delete(claims, key)
	} else {
		claims[key] = value
	}
	return claims
}

func TestVerify_SignatureAndClaimRules(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	is := newIssuer(t,
		jose.JSONWebKey{Key: ec.Public(), KeyID: "ec", Algorithm: "ES256", Use: "sig"},
		jose.JSONWebKey{Key: ec384.Public(), KeyID: "ec384"}, // no alg: its curve decides
		jose.JSONWebKey{Key: rs.Public(), KeyID: "rs", Algorithm: "RS256"},
		jose.JSONWebKey{Key: weak.Public(), KeyID: "weak", Algorithm: "RS256"},
		jose.JSONWebKey{Key: ed.Public(), KeyID: "ed"},
		jose.JSONWebKey{Key: ec.Public(), KeyID: "enc", Algorithm: "ES256", Use: "enc"},
	)
	key := func(alg jose.SignatureAlgorithm, priv any, kid string) jose.SigningKey {
		return jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: kid}}
	}
	v, err := resource.NewVerifier(context.Background(), resource.Config{Issuer: is.url, Audience: apiAudience})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		key    jose.SigningKey
		typ    string
		claims map[string]any
		err    string // "" accepts
	}{
		{name: "ES256", key: key(jose.ES256, ec, "ec"), typ: "at+jwt"},
		{name: "typ application/at+jwt", key: key(jose.ES256, ec, "ec"), typ: "application/at+jwt"},
		{name: "typ in capitals", key: key(jose.ES256, ec, "ec"), typ: "AT+JWT"},
		{name: "RS256", key: key(jose.RS256, rs, "rs"), typ: "at+jwt"},
		{name: "key without alg, its curve's", key: key(jose.ES384, ec384, "ec384"), typ: "at+jwt"},
		{name: "key without alg, EdDSA", key: key(jose.EdDSA, ed, "ed"), typ: "at+jwt"},

		{name: "typ JWT", key: key(jose.ES256, ec, "ec"), typ: "JWT", err: "not at+jwt"},
		{name: "no typ", key: key(jose.ES256, ec, "ec"), err: "not at+jwt"},
		{name: "alg other than the key's", key: key(jose.PS256, rs, "rs"), typ: "at+jwt", err: `no key "rs" for algorithm "PS256"`},
		{name: "RSA key under 2048 bits", key: key(jose.RS256, weak, "weak"), typ: "at+jwt", err: `no key "weak"`},
		{name: "encryption key", key: key(jose.ES256, ec, "enc"), typ: "at+jwt", err: `no key "enc"`},
		{name: "no kid", key: key(jose.ES256, ec, ""), typ: "at+jwt", err: "no kid"},
		{name: "other issuer", key: key(jose.ES256, ec, "ec"), typ: "at+jwt", claims: with(is.claims(), "iss", "https://evil.example"), err: `issuer "https://evil.example"`},
		{name: "aud a string of another", key: key(jose.ES256, ec, "ec"), typ: "at+jwt", claims: with(is.claims(), "aud", "https://x.example"), err: "does not contain"},
		{name: "no exp", key: key(jose.ES256, ec, "ec"), typ: "at+jwt", claims: with(is.claims(), "exp", nil), err: "lacks exp"},
		{name: "no client_id", key: key(jose.ES256, ec, "ec"), typ: "at+jwt", claims: with(is.claims(), "client_id", nil), err: "or client_id"},
		{name: "not yet valid", key: key(jose.ES256, ec, "ec"), typ: "at+jwt", claims: with(is.claims(), "nbf", time.Now().Add(2*time.Minute).Unix()), err: "nbf"},
		{name: "issued in the future", key: key(jose.ES256, ec, "ec"), typ: "at+jwt", claims: with(is.claims(), "iat", time.Now().Add(2*time.Minute).Unix()), err: "iat"},
		{name: "sub not a UUID", key: key(jose.ES256, ec, "ec"), typ: "at+jwt", claims: with(is.claims(), "sub", "auth0|123"), err: `sub "auth0|123" is not a UUID`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := tc.claims
			if claims == nil {
				claims = is.claims()
			}
			tok, err := v.Verify(context.Background(), sign(t, tc.key, tc.typ, claims))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err == "" && (tok.Subject != claims["sub"] || !tok.HasScopes("a", "b") || tok.HasScopes("c")):
				t.Fatalf("token %+v", tok)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// TestVerify_ConcurrentRequestsShareOneFetch: the first requests of a
// busy service wait for one fetch of the key set, not one each.
func TestVerify_ConcurrentRequestsShareOneFetch(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is := newIssuer(t, jose.JSONWebKey{Key: ec.Public(), KeyID: "ec", Algorithm: "ES256"})
	v, err := resource.NewVerifier(context.Background(), resource.Config{Issuer: is.url, Audience: apiAudience})
	if err != nil {
		t.Fatal(err)
	}
	raw := sign(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: ec, KeyID: "ec"}}, "at+jwt", is.claims())
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), raw); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := is.fetches.Load(); n != 1 {
		t.Errorf("%d fetches of the key set, want 1", n)
	}
}

func TestNewVerifier_DiscoveryMustNameTheIssuer(t *testing.T) {
	is := newIssuer(t)
	is.discoveryIssuer = "https://evil.example"
	_, err := resource.NewVerifier(context.Background(), resource.Config{Issuer: is.url, Audience: apiAudience})
	if err == nil || !strings.Contains(err.Error(), `discovery names issuer "https://evil.example"`) {
		t.Fatalf("error %v", err)
	}
	// An explicit key set URL skips discovery.
	if _, err := resource.NewVerifier(context.Background(), resource.Config{Issuer: is.url, Audience: apiAudience, JWKSURL: is.url + "/jwks"}); err != nil {
		t.Fatal(err)
	}
}

func TestVerify_UnreachableKeySetIsUnavailable(t *testing.T) {
	is := newIssuer(t)
	v, err := resource.NewVerifier(context.Background(), resource.Config{Issuer: is.url, Audience: apiAudience, JWKSURL: is.url + "/missing"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), forge(t, "k", is.claims()))
	if !errors.Is(err, resource.ErrKeysUnavailable) {
		t.Fatalf("error %v, want ErrKeysUnavailable", err)
	}
}

func TestMetadataURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.example.com":         "https://api.example.com/.well-known/oauth-protected-resource",
		"https://api.example.com/":        "https://api.example.com/.well-known/oauth-protected-resource",
		"https://api.example.com/v1/bill": "https://api.example.com/.well-known/oauth-protected-resource/v1/bill",
	} {
		if got, err := resource.MetadataURL(in); err != nil || got != want {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"api.example.com", "https://api.example.com?x=1", "urn:x"} {
		if _, err := resource.MetadataURL(bad); err == nil {
			t.Errorf("MetadataURL(%q) succeeded", bad)
		}
	}
}

// TestMetadata_ResourceWithPath serves an MCP server's metadata: its
// identifier is its endpoint, with a path, so the metadata lives at the
// path-inserted well-known URL (RFC 9728 section 3.1), names that
// identifier exactly (a client compares them, section 3.3), and the
// challenge of a request without a token points there with the scope to
// ask for.
func TestMetadata_ResourceWithPath(t *testing.T) {
	const endpoint = "https://mcp.example.com/mcp"
	is := newIssuer(t)
	v, err := resource.NewVerifier(context.Background(), resource.Config{Issuer: is.url, Audience: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	metadataURL, err := resource.MetadataURL(endpoint)
	if err != nil || metadataURL != "https://mcp.example.com/.well-known/oauth-protected-resource/mcp" {
		t.Fatalf("MetadataURL = %q, %v", metadataURL, err)
	}
	metadata, err := resource.NewMetadataHandler(resource.Metadata{Resource: endpoint, AuthorizationServers: []string{is.url}, ScopesSupported: []string{"tools"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/.well-known/oauth-protected-resource/mcp", metadata)
	mux.Handle("/mcp", (&resource.Middleware{Verifier: v, Scopes: []string{"tools"}, ResourceMetadata: metadataURL}).Wrap(http.NotFoundHandler()))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, endpoint, nil))
	want := `Bearer realm="` + endpoint + `", scope="tools", resource_metadata="` + metadataURL + `"`
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != want {
		t.Errorf("no token: %d %q\nwant 401 %q", rec.Code, rec.Header().Get("WWW-Authenticate"), want)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, metadataURL, nil))
	var m struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
		BearerMethods        []string `json:"bearer_methods_supported"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("metadata: %d %v", rec.Code, err)
	}
	if m.Resource != endpoint || len(m.AuthorizationServers) != 1 || m.AuthorizationServers[0] != is.url ||
		strings.Join(m.ScopesSupported, " ") != "tools" || strings.Join(m.BearerMethods, " ") != "header" {
		t.Errorf("metadata %+v", m)
	}
}
