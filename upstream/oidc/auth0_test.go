package oidc_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/oidc"
)

const api = "https://api.example.com"

func newAuth0(t *testing.T, f *testenv.Auth0, change ...func(*oidc.Auth0Config)) *oidc.Connector {
	t.Helper()
	cfg := oidc.Auth0Config{
		ID:           "auth0",
		Issuer:       strings.TrimSuffix(f.Issuer, "/"), // NewAuth0 adds it back
		ClientID:     f.ClientID,
		ClientSecret: f.ClientSecret,
		Audience:     api,
		TrustEmail:   true,
		HTTPClient:   &http.Client{Timeout: 2 * time.Second},
	}
	for _, ch := range change {
		ch(&cfg)
	}
	c, err := oidc.NewAuth0(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuth0_IssuerWithoutTrailingSlashStillLogsIn(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newAuth0(t, f)
	f.SetNextUser(alice)

	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != alice.Sub || !id.EmailVerified || !c.TrustEmail() {
		t.Errorf("identity = %+v", id)
	}
	if got := c.Issuers(); len(got) != 1 || got[0] != f.Issuer {
		t.Errorf("Issuers() = %q, want [%q]", got, f.Issuer)
	}
}

func TestAuth0_AccessTokenForTheAPIWithUserinfoInAudIsAccepted(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newAuth0(t, f)

	id, err := c.VerifyToken(t.Context(), f.AccessToken(alice, api), upstream.TokenTypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != alice.Sub {
		t.Errorf("subject = %q", id.Subject)
	}
}

func TestAuth0_AccessTokenForAnotherAPIIsRefused(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newAuth0(t, f)

	_, err := c.VerifyToken(t.Context(), f.AccessToken(alice, "https://other.example.com"), upstream.TokenTypeAccessToken)
	if !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
}

func TestAuth0_OrganizationIsMappedAndAnotherIsRefused(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newAuth0(t, f, func(c *oidc.Auth0Config) { c.Organization = "org_acme" })
	member := alice
	member.OrgID = "org_acme"
	f.SetNextUser(member)

	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}
	if id.Organization != "org_acme" {
		t.Errorf("organization = %q", id.Organization)
	}

	outsider := alice
	outsider.OrgID = "org_evil"
	f.SetNextUser(outsider)
	if _, err := login(t, c, newLoginState()); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("other organization: err = %v, want ErrInvalidToken", err)
	}
	if _, err := c.VerifyToken(t.Context(), f.AccessToken(alice, api), upstream.TokenTypeAccessToken); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("no organization: err = %v, want ErrInvalidToken", err)
	}
}

func TestAuth0_NamespacedCustomClaimsAreMapped(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newAuth0(t, f, func(c *oidc.Auth0Config) {
		c.Claims = oidc.ClaimMapping{Email: "https://example.com/email", EmailVerified: "https://example.com/email_verified"}
	})

	token := f.AccessToken(alice, api,
		testenv.WithClaim("https://example.com/email", "Dave@Example.com"))
	id, err := c.VerifyToken(t.Context(), token, upstream.TokenTypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != "dave@example.com" || id.EmailVerified {
		t.Errorf("email = %q verified %v, want dave@example.com unverified", id.Email, id.EmailVerified)
	}
}
