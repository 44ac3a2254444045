package oidc_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/jwks"
	"github.com/idbroker/broker/upstream/oidc"
)

// TestVerifyIdentityAssertion holds an ID-JAG to
// draft-ietf-oauth-identity-assertion-authz-grant section 4.4.1 and RFC
// 7523: the connector's keys, typ, issuer, the broker alone as audience,
// the claims a redemption needs, expiry.
func TestVerifyIdentityAssertion(t *testing.T) {
	const broker, client = "https://broker.example.com", "wiki"
	f := testenv.NewAuth0(t)
	accepting := newGeneric(t, f, func(c *oidc.Config) { c.AcceptsIdentityAssertions = true })
	tests := []struct {
		name string
		conn *oidc.Connector
		opts []testenv.TokenOption
		ok   bool
	}{
		{"an ID-JAG for the broker", accepting, nil, true},
		{"aud a one-element array", accepting, []testenv.TokenOption{testenv.WithClaim("aud", []string{broker})}, true},
		{"resource an array", accepting, []testenv.TokenOption{testenv.WithClaim("resource", []string{"https://a.example.com", "https://b.example.com"})}, true},
		{"a connector without acceptsIdentityAssertions", newGeneric(t, f), nil, false},
		{"typ JWT", accepting, []testenv.TokenOption{testenv.WithType("JWT")}, false},
		{"another audience too", accepting, []testenv.TokenOption{testenv.WithClaim("aud", []string{broker, "https://other.example.com"})}, false},
		{"another audience", accepting, []testenv.TokenOption{testenv.WithClaim("aud", "https://other.example.com")}, false},
		{"another issuer", accepting, []testenv.TokenOption{testenv.WithClaim("iss", "https://other-idp.example.com")}, false},
		{"no client_id", accepting, []testenv.TokenOption{testenv.WithoutClaim("client_id")}, false},
		{"no jti", accepting, []testenv.TokenOption{testenv.WithoutClaim("jti")}, false},
		{"no iat", accepting, []testenv.TokenOption{testenv.WithoutClaim("iat")}, false},
		{"expired", accepting, []testenv.TokenOption{testenv.Expired()}, false},
		{"an unpublished key", accepting, []testenv.TokenOption{testenv.SignedByOtherKey()}, false},
		{"resource not a URI list", accepting, []testenv.TokenOption{testenv.WithClaim("resource", 7)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jws, err := jwks.ParseCompact(f.IdentityAssertion(alice, broker, client, tt.opts...))
			if err != nil {
				t.Fatal(err)
			}
			a, err := tt.conn.VerifyIdentityAssertion(t.Context(), jws, broker)
			switch {
			case tt.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tt.ok && !errors.Is(err, upstream.ErrInvalidToken):
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			case tt.ok && (a.ClientID != client || a.ID == "" || a.Identity.Subject != alice.Sub || !a.Identity.EmailVerified ||
				!slices.Equal(a.Scope, []string{"chat.read"}) || len(a.Resource) == 0):
				t.Errorf("assertion %+v", a)
			}
		})
	}
}
