package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/resource"
)

// forge signs claims with a fresh P-256 key the broker never published,
// under kid.
func forge(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sign(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}}, "at+jwt", claims)
}

func sign(t *testing.T, key jose.SigningKey, typ string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsigned is claims under alg "none" with the given kid.
func unsigned(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "at+jwt", "kid": kid}) + "." + enc(claims) + "."
}

// TestMiddleware_BrokerTokens runs tokens a real broker issued, and
// forgeries of them, through a resource server.
func TestMiddleware_BrokerTokens(t *testing.T) {
	b := newTestBroker(t)
	read := b.machineToken(machineID, apiAudience, "invoices.read")
	both := b.machineToken(machineID, apiAudience, "invoices.read invoices.write")
	other := b.machineToken(machineID, otherAudience, "invoices.read")
	access, id := b.login("ada@example.com")
	delegated := b.delegate(access)
	claims, kid := jwtPart(t, read, 1), jwtPart(t, read, 0)["kid"].(string)

	hs256 := func() string {
		// The public key's JSON as an HMAC secret: the classic
		// algorithm-confusion forgery.
		secret, _ := json.Marshal(jwtPart(t, read, 0))
		return sign(t, jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: secret, KeyID: kid}}, "at+jwt", claims)
	}

	for _, tc := range []struct {
		name      string
		path      string
		auth      []string
		audience  string        // the resource server's, when not apiAudience
		later     time.Duration // how far the resource server's clock is ahead
		status    int
		challenge string
		cause     string // in the resource server's log
		check     func(t *testing.T, tok resource.Token)
	}{
		{name: "machine token", path: "/invoices", auth: []string{"Bearer " + read}, status: 200,
			check: func(t *testing.T, tok resource.Token) {
				if tok.ClientID != machineID || len(tok.Scopes) != 1 || tok.Scopes[0] != "invoices.read" || tok.Actor != nil {
					t.Errorf("token %+v", tok)
				}
			}},
		{name: "user token", path: "/invoices", auth: []string{"Bearer " + access}, status: 200,
			check: func(t *testing.T, tok resource.Token) {
				if _, err := uuid.Parse(tok.Subject); err != nil || tok.ClientID != backendID || !tok.HasScopes("openid", "email") ||
					len(tok.Audience) != 1 || tok.Audience[0] != apiAudience || time.Until(tok.Expiry) < 10*time.Minute || tok.ID == "" {
					t.Errorf("token %+v", tok)
				}
			}},
		{name: "delegated token names its actor", path: "/invoices", auth: []string{"Bearer " + delegated}, status: 200,
			check: func(t *testing.T, tok resource.Token) {
				if tok.Actor == nil || tok.Actor.ClientID != backendID || tok.Actor.Subject == tok.Subject || uuid.Validate(tok.Actor.Subject) != nil {
					t.Errorf("token %+v, actor %+v", tok, tok.Actor)
				}
			}},
		{name: "scheme case-insensitive", path: "/invoices", auth: []string{"bearer " + read}, status: 200},
		{name: "scope present", path: "/invoices/write", auth: []string{"Bearer " + both}, status: 200},
		{name: "expired within the skew", path: "/invoices", auth: []string{"Bearer " + read}, later: 15*time.Minute + 30*time.Second, status: 200},

		{name: "no token", path: "/invoices", status: 401, challenge: bareChallenge},
		{name: "other scheme", path: "/invoices", auth: []string{"Basic YTpi"}, status: 401, challenge: bareChallenge},
		// Where a scope is required, every challenge names it: an MCP
		// client asks for what the challenge names.
		{name: "no token, scope required", path: "/invoices/write", status: 401, challenge: bareScopedChallenge},
		{name: "other audience, scope required", path: "/invoices/write", auth: []string{"Bearer " + other}, status: 401,
			challenge: invalidScopedChallenge, cause: "does not contain"},
		// An ID token of a client the resource server takes for its
		// audience: only its typ tells it from an access token. (On
		// /invoices/write, whose realm is not that audience.)
		{name: "id token", path: "/invoices/write", auth: []string{"Bearer " + id}, audience: backendID, status: 401, challenge: invalidScopedChallenge,
			cause: `typ \"JWT\" is not at+jwt`},
		{name: "other audience", path: "/invoices", auth: []string{"Bearer " + other}, status: 401, challenge: invalidChallenge,
			cause: "does not contain"},
		{name: "expired", path: "/invoices", auth: []string{"Bearer " + read}, later: 16*time.Minute + 30*time.Second, status: 401, challenge: expiredChallenge,
			cause: "token expired"},
		{name: "key not in the set", path: "/invoices", auth: []string{"Bearer " + forge(t, "not-a-broker-kid", claims)}, status: 401, challenge: invalidChallenge,
			cause: `no key \"not-a-broker-kid\"`},
		{name: "foreign key under a published kid", path: "/invoices", auth: []string{"Bearer " + forge(t, kid, claims)}, status: 401, challenge: invalidChallenge,
			cause: "signature by key"},
		{name: "alg none", path: "/invoices", auth: []string{"Bearer " + unsigned(t, kid, claims)}, status: 401, challenge: invalidChallenge,
			cause: "malformed token"},
		{name: "HS256 keyed with the public key", path: "/invoices", auth: []string{"Bearer " + hs256()}, status: 401, challenge: invalidChallenge,
			cause: "malformed token"},
		{name: "garbage", path: "/invoices", auth: []string{"Bearer abc.def.ghi"}, status: 401, challenge: invalidChallenge,
			cause: "malformed token"},
		{name: "missing scope", path: "/invoices/write", auth: []string{"Bearer " + read}, status: 403, challenge: scopeChallenge,
			cause: "lack one of"},
		{name: "two tokens", path: "/invoices", auth: []string{"Bearer " + read, "Bearer " + both}, status: 400,
			challenge: invalidRequestChallenge("the request carries more than one Authorization header")},
		{name: "token in the query too", path: "/invoices?access_token=" + both, auth: []string{"Bearer " + read}, status: 400,
			challenge: invalidRequestChallenge("the access token is accepted only in the Authorization header")},
		{name: "empty bearer", path: "/invoices", auth: []string{"Bearer "}, status: 400,
			challenge: invalidRequestChallenge("the Authorization header does not hold one bearer token")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testenv.NewClock()
			clock.Advance(tc.later)
			audience := apiAudience
			if tc.audience != "" {
				audience = tc.audience
			}
			a := newAPI(t, resource.Config{Issuer: b.issuer, Audience: audience, Clock: clock.Now})
			got := a.call(t, tc.path, tc.auth...)
			if got.status != tc.status || got.challenge != tc.challenge {
				t.Fatalf("got %d %q (%s)\nwant %d %q", got.status, got.challenge, got.body, tc.status, tc.challenge)
			}
			if log := a.log.String(); !strings.Contains(log, tc.cause) {
				t.Errorf("log %q lacks the cause %q", log, tc.cause)
			}
			if tc.check != nil {
				tc.check(t, got.token)
			}
		})
	}
}

// TestVerifier_KeyRotation follows the broker's keys: a token signed
// before a rotation verifies after it, a token of the new key is
// accepted once the key set is fetched again (a fetch an unknown kid
// triggers at most every MinRefreshInterval), and a token of a key the
// broker removed is refused once the cached set is refreshed.
func TestVerifier_KeyRotation(t *testing.T) {
	ctx := context.Background()
	b := newTestBroker(t)
	clock := testenv.NewClock()
	a := newAPI(t, resource.Config{Issuer: b.issuer, Audience: apiAudience, Clock: clock.Now,
		RefreshInterval: 5 * time.Minute, MinRefreshInterval: 30 * time.Second})
	expect := func(step, token string, status int, fetches int64) {
		t.Helper()
		if got := a.call(t, "/invoices", "Bearer "+token); got.status != status {
			t.Fatalf("%s: status %d (%s), want %d", step, got.status, got.challenge, status)
		}
		if got := a.jwksHits.Load(); got != fetches {
			t.Fatalf("%s: %d key set fetches, want %d", step, got, fetches)
		}
	}

	old := b.machineToken(machineID, apiAudience, "invoices.read")
	expect("before rotation", old, 200, 1)

	if err := b.broker.SigningKeys().Rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	rotated := b.machineToken(machineID, apiAudience, "invoices.read")
	oldKID, newKID := jwtPart(t, old, 0)["kid"], jwtPart(t, rotated, 0)["kid"]
	if oldKID == newKID {
		t.Fatalf("rotation kept kid %v", oldKID)
	}
	expect("new key, fetched too recently", rotated, 401, 1)
	expect("forged kids do not fetch either", forge(t, "made-up", jwtPart(t, old, 1)), 401, 1)
	clock.Advance(31 * time.Second)
	expect("new key, fetched on its unknown kid", rotated, 200, 2)
	expect("old key after rotation", old, 200, 2)

	if err := b.broker.SigningKeys().Revoke(ctx, oldKID.(string)); err != nil {
		t.Fatal(err)
	}
	expect("old key removed, cached set", old, 200, 2)
	clock.Advance(5 * time.Minute)
	expect("old key removed, set refreshed", old, 401, 3)
	expect("new key after refresh", rotated, 200, 3)
}

// TestMetadata_ServesRFC9728 reads the API's protected resource metadata
// where a client would look for it.
func TestMetadata_ServesRFC9728(t *testing.T) {
	b := newTestBroker(t)
	a := newAPI(t, resource.Config{Issuer: b.issuer, Audience: apiAudience})
	resp, err := http.Get(a.url + "/.well-known/oauth-protected-resource")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("metadata: %v, content type %q", err, resp.Header.Get("Content-Type"))
	}
	want := map[string]any{
		"resource":                 apiAudience,
		"authorization_servers":    []any{b.issuer},
		"scopes_supported":         []any{"invoices.read", "invoices.write"},
		"bearer_methods_supported": []any{"header"},
		"resource_name":            "Invoices",
	}
	if g, w := mustJSON(t, m), mustJSON(t, want); g != w {
		t.Errorf("metadata\n got %s\nwant %s", g, w)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("metadata Access-Control-Allow-Origin %q, want *: browser MCP clients read it across origins", got)
	}
	preflight, _ := http.NewRequest(http.MethodOptions, a.url+"/.well-known/oauth-protected-resource", nil)
	preflight.Header.Set("Origin", "https://inspector.example")
	preflight.Header.Set("Access-Control-Request-Method", "GET")
	preflight.Header.Set("Access-Control-Request-Headers", "mcp-protocol-version")
	pre, err := http.DefaultClient.Do(preflight)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.EqualFold(pre.Header.Get("Access-Control-Allow-Headers"), "mcp-protocol-version") {
		t.Errorf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	post, err := http.Post(a.url+"/.well-known/oauth-protected-resource", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST metadata: %d", post.StatusCode)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
