package broker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/idbroker/broker/broker"
	"golang.org/x/oauth2"
)

// TestInterop_RelyingPartyDefaults signs in with a one-time code, as a
// user no upstream named, and checks what two widely used relying
// parties need with their default settings. oauth2-proxy verifies a
// bearer token with go-oidc's verifier, which takes its algorithms from
// discovery's id_token_signing_alg_values_supported: the broker's access
// tokens (ES256) must verify there. Dex's oidc connector refuses a user
// without a name claim unless told another claim: an OTP user's name is
// their email.
func TestInterop_RelyingPartyDefaults(t *testing.T) {
	e := newEnv(t)
	tr := e.redeem(e.login(e.browser(), "Ada.Lovelace@Example.com", authRequest{scope: "openid email profile"}))
	if tr.AccessToken == "" || tr.IDToken == "" {
		t.Fatalf("login: %+v", tr)
	}
	ctx := gooidc.ClientContext(context.Background(), e.httpClient())
	provider, err := gooidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}

	aud := unverifiedAudience(t, tr.AccessToken)
	if _, err := provider.Verifier(&gooidc.Config{ClientID: aud}).Verify(ctx, tr.AccessToken); err != nil {
		t.Errorf("go-oidc with discovery's algorithms refuses the access token: %v", err)
	}

	idToken, err := provider.Verifier(&gooidc.Config{ClientID: broker.DevClientID}).Verify(ctx, tr.IDToken)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		Name, Email string
	}
	if err := idToken.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Name != "ada.lovelace@example.com" || claims.Email != "ada.lovelace@example.com" {
		t.Errorf("ID token name %q, email %q: want the email as the name of a user no upstream named", claims.Name, claims.Email)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tr.AccessToken, TokenType: "Bearer"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := info.Claims(&claims); err != nil || claims.Name != "ada.lovelace@example.com" {
		t.Errorf("userinfo name %q (%v): want the email", claims.Name, err)
	}
}

// TestInterop_DiscoveryListsEveryIDTokenAlgorithm: a client may ask for
// its ID tokens in any algorithm the broker signs with, so discovery
// lists them all.
func TestInterop_DiscoveryListsEveryIDTokenAlgorithm(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	e.getJSON("/.well-known/openid-configuration", "", &doc)
	slices.Sort(doc.Algs)
	if strings.Join(doc.Algs, " ") != "ES256 EdDSA RS256" {
		t.Errorf("id_token_signing_alg_values_supported %q, want RS256 ES256 EdDSA", doc.Algs)
	}
}

func unverifiedAudience(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Aud []string `json:"aud"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || len(c.Aud) == 0 {
		t.Fatalf("access token aud: %s (%v)", payload, err)
	}
	return c.Aud[0]
}
