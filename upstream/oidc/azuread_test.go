package oidc_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/oidc"
)

func newAzure(t *testing.T, f *testenv.AzureAD, change ...func(*oidc.AzureConfig)) *oidc.Connector {
	t.Helper()
	cfg := oidc.AzureConfig{
		ID:                "entra",
		Tenant:            "organizations",
		ClientID:          f.ClientID,
		ClientSecret:      f.ClientSecret,
		TrustEmail:        true,
		ExchangeAudiences: []string{f.ClientID},
		AuthorityURL:      f.URL,
		HTTPClient:        &http.Client{Timeout: 2 * time.Second},
	}
	for _, ch := range change {
		ch(&cfg)
	}
	c, err := oidc.NewAzureAD(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func entraUser(f *testenv.AzureAD) testenv.User {
	return testenv.User{
		Sub:                 "per-app-sub-erin",
		TenantID:            f.TenantB,
		ObjectID:            "00000000-0000-0000-0000-00000000e71e",
		Email:               "Erin@Corp.Example.com",
		EmailDomainVerified: true,
		Name:                "Erin",
	}
}

func TestAzureAD_MultiTenantLoginSubjectIsTenantAndObjectID(t *testing.T) {
	f := testenv.NewAzureAD(t)
	c := newAzure(t, f)
	u := entraUser(f)
	f.SetNextUser(u)

	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}
	if want := u.TenantID + ":" + u.ObjectID; id.Subject != want {
		t.Errorf("subject = %q, want %q (never the per-app sub)", id.Subject, want)
	}
	if id.Email != "erin@corp.example.com" || !id.EmailVerified {
		t.Errorf("email = %q verified %v", id.Email, id.EmailVerified)
	}
}

func TestAzureAD_EmailWithoutVerifiedDomainIsNotVerified(t *testing.T) {
	f := testenv.NewAzureAD(t)
	c := newAzure(t, f)
	u := entraUser(f)
	u.EmailDomainVerified = false
	f.SetNextUser(u)

	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}
	if id.EmailVerified {
		t.Error("email verified without xms_edov")
	}
}

func TestAzureAD_EmailVerifiedClaimIsIgnored(t *testing.T) {
	f := testenv.NewAzureAD(t)
	c := newAzure(t, f)
	u := entraUser(f)
	u.EmailDomainVerified = false

	id, err := c.VerifyToken(t.Context(), f.IDToken(u, testenv.WithClaim("email_verified", true)), upstream.TokenTypeIDToken)
	if err != nil {
		t.Fatal(err)
	}
	if id.EmailVerified {
		t.Error("email verified from email_verified, which Entra never sends")
	}
}

func TestAzureAD_PreferredUsernameIsNeverAVerifiedEmail(t *testing.T) {
	f := testenv.NewAzureAD(t)
	c := newAzure(t, f)
	u := entraUser(f)
	u.Email = ""
	u.PreferredUsername = "Erin@Corp.Example.com"

	id, err := c.VerifyToken(t.Context(), f.IDToken(u), upstream.TokenTypeIDToken)
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != "erin@corp.example.com" || id.EmailVerified {
		t.Errorf("email = %q verified %v, want the display value, unverified", id.Email, id.EmailVerified)
	}
}

func TestAzureAD_TenantNotAllowedIsRefused(t *testing.T) {
	f := testenv.NewAzureAD(t)
	c := newAzure(t, f, func(c *oidc.AzureConfig) { c.AllowedTenants = []string{f.TenantA} })
	u := entraUser(f) // in TenantB
	f.SetNextUser(u)

	if _, err := login(t, c, newLoginState()); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("login: err = %v, want ErrInvalidToken", err)
	}
	if _, err := c.VerifyToken(t.Context(), f.IDToken(u), upstream.TokenTypeIDToken); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("exchange: err = %v, want ErrInvalidToken", err)
	}
	if got := c.Issuers(); len(got) != 1 || got[0] != f.Issuer(f.TenantA) {
		t.Errorf("Issuers() = %q", got)
	}
}

func TestAzureAD_EachBadTokenDiffersFromAPassingControl(t *testing.T) {
	f := testenv.NewAzureAD(t)
	c := newAzure(t, f)
	u := entraUser(f)

	if _, err := c.VerifyToken(t.Context(), f.IDToken(u), upstream.TokenTypeIDToken); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	tests := []struct {
		name string
		opt  testenv.TokenOption
	}{
		{"issuer of another tenant than tid", testenv.WithClaim("iss", f.Issuer(f.TenantA))},
		{"issuer template, not an issuer", testenv.WithClaim("iss", f.Issuer("{tenantid}"))},
		{"foreign issuer", testenv.WithClaim("iss", "https://evil.example.com/"+f.TenantB+"/v2.0")},
		{"no tid", testenv.WithoutClaim("tid")},
		{"no oid", testenv.WithoutClaim("oid")},
		{"wrong audience", testenv.WithClaim("aud", "another-app")},
		{"signed by another key", testenv.SignedByOtherKey()},
		{"alg none", testenv.AlgNone()},
		{"HS256 keyed with the public key", testenv.HS256WithPublicKey()},
		{"expired", testenv.Expired()},
		{"unknown kid", testenv.UnknownKID()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.VerifyToken(t.Context(), f.IDToken(u, tt.opt), upstream.TokenTypeIDToken)
			if !errors.Is(err, upstream.ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestAzureAD_SingleTenantRefusesAnotherTenant(t *testing.T) {
	f := testenv.NewAzureAD(t)
	c := newAzure(t, f, func(c *oidc.AzureConfig) { c.Tenant = f.TenantA })
	u := entraUser(f)
	u.TenantID = f.TenantA

	if _, err := c.VerifyToken(t.Context(), f.IDToken(u), upstream.TokenTypeIDToken); err != nil {
		t.Fatalf("own tenant refused: %v", err)
	}
	u.TenantID = f.TenantB
	if _, err := c.VerifyToken(t.Context(), f.IDToken(u), upstream.TokenTypeIDToken); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("other tenant: err = %v, want ErrInvalidToken", err)
	}
}

func TestAzureAD_RefreshKeepsTheSubject(t *testing.T) {
	f := testenv.NewAzureAD(t)
	c := newAzure(t, f, func(c *oidc.AzureConfig) { c.Scopes = []string{"openid", "email", "offline_access"} })
	u := entraUser(f)
	f.SetNextUser(u)
	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}

	again, err := c.Refresh(t.Context(), id.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if again.Subject != id.Subject {
		t.Errorf("subject after refresh = %q, want %q", again.Subject, id.Subject)
	}
}

// v1.0 access tokens are refused unless accepted, and then checked as
// v2.0 ones against the v1.0 issuer of their tenant, which Issuers lists.
func TestAzureAD_V1AccessTokensOnlyWhenAccepted(t *testing.T) {
	f := testenv.NewAzureAD(t)
	u := entraUser(f)
	u.TenantID = f.TenantA
	v1 := f.AccessTokenV1(u, f.ClientID)

	if _, err := newAzure(t, f).VerifyToken(t.Context(), v1, upstream.TokenTypeAccessToken); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("v1.0 token by default: err = %v, want ErrInvalidToken", err)
	}
	c := newAzure(t, f, func(c *oidc.AzureConfig) {
		c.Tenant, c.AcceptV1Tokens, c.V1AuthorityURL = f.TenantA, true, f.URL
	})
	id, err := c.VerifyToken(t.Context(), v1, upstream.TokenTypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := c.VerifyToken(t.Context(), f.AccessToken(u, f.ClientID), upstream.TokenTypeAccessToken)
	if err != nil || id.Subject != v2.Subject {
		t.Errorf("v1.0 subject %q, v2.0 subject %q (%v)", id.Subject, v2.Subject, err)
	}
	if got := c.Issuers(); len(got) != 2 || got[1] != f.V1Issuer(f.TenantA) {
		t.Errorf("Issuers() = %q, want the v2.0 and v1.0 issuers of %s", got, f.TenantA)
	}
	u.TenantID = f.TenantB
	if _, err := c.VerifyToken(t.Context(), f.AccessTokenV1(u, f.ClientID), upstream.TokenTypeAccessToken); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Errorf("v1.0 token of another tenant: err = %v, want ErrInvalidToken", err)
	}
}

// An email claim that upstream.NormalizeEmail refuses counts as absent:
// preferred_username stands in, unverified, as it does for no email.
func TestAzureAD_EmailThatDoesNotNormaliseFallsBackUnverified(t *testing.T) {
	f := testenv.NewAzureAD(t)
	c := newAzure(t, f)
	u := entraUser(f)
	u.Email = "erin@corp" // verified domain, but no dot: not an address
	u.PreferredUsername = "Erin@Corp.Example.com"

	id, err := c.VerifyToken(t.Context(), f.IDToken(u), upstream.TokenTypeIDToken)
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != "erin@corp.example.com" || id.EmailVerified {
		t.Errorf("email = %q verified %v, want preferred_username, unverified", id.Email, id.EmailVerified)
	}
}
