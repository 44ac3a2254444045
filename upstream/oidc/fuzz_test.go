package oidc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
)

// FuzzVerifyToken hands arbitrary strings, and mutations of a real token,
// to the verifier. It must never panic, and must accept nothing but the
// real (control) token.
func FuzzVerifyToken(f *testing.F) {
	fake := testenv.NewAuth0(f)
	c := newGeneric(f, fake)
	u := testenv.User{Sub: "auth0|fuzz", Email: "fuzz@example.com", EmailVerified: true}
	control := fake.AccessToken(u, "https://api.example.com")
	if _, err := c.VerifyToken(context.Background(), control, upstream.TokenTypeAccessToken); err != nil {
		f.Fatalf("control token refused: %v", err)
	}
	parts := strings.Split(control, ".")
	for _, seed := range []string{
		control,
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1] + "." + parts[2] + "A",
		"eyJhbGciOiJub25lIn0." + parts[1] + ".",
		fake.AccessToken(u, "https://api.example.com", testenv.HS256WithPublicKey()),
		fake.AccessToken(u, "https://api.example.com", testenv.AlgNone()),
		fake.AccessToken(u, "https://api.example.com", testenv.UnknownKID()),
		"", ".", "..", "a.b.c.d.e", strings.Repeat("A", 10000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := c.VerifyToken(context.Background(), raw, upstream.TokenTypeAccessToken)
		if err == nil && raw != control {
			t.Fatalf("accepted a token other than the control: %q (subject %q)", raw, id.Subject)
		}
	})
}
