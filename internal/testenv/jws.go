package testenv

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// SameClaimsTwoKeys mints two access tokens for u and audience with the
// same payload, one signed RS256 and one ES256, each by a key the fake
// publishes (give it WithSigningAlgs("RS256", "ES256") when discovery
// must list both).
func (f *Auth0) SameClaimsTwoKeys(t testing.TB, u User, audience string) (rs, es string) {
	t.Helper()
	now := time.Now()
	same := []TokenOption{WithClaim("iat", now.Unix()), ExpiresAt(now.Add(time.Hour))}
	rs = f.AccessToken(u, audience, same...)
	es = f.AccessToken(u, audience, append(same, SignedWithEC())...)
	if compactParts(t, rs)[1] != compactParts(t, es)[1] {
		t.Fatal("payloads differ")
	}
	return rs, es
}

func compactParts(t testing.TB, raw string) []string {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", raw)
	}
	return parts
}

// FlattenedJSON re-serializes a compact JWS in the flattened JSON
// serialization (RFC 7515 section 7.2.2), signature untouched.
func FlattenedJSON(t testing.TB, compact string) string {
	t.Helper()
	p := compactParts(t, compact)
	b, err := json.Marshal(map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// GeneralJSON re-serializes compact JWSs over one payload as one JWS in
// the general JSON serialization (RFC 7515 section 7.2.1), with each
// token's signature.
func GeneralJSON(t testing.TB, compact ...string) string {
	t.Helper()
	type signature struct {
		Protected string `json:"protected"`
		Signature string `json:"signature"`
	}
	var sigs []signature
	for _, c := range compact {
		p := compactParts(t, c)
		sigs = append(sigs, signature{p[0], p[2]})
	}
	b, err := json.Marshal(struct {
		Payload    string      `json:"payload"`
		Signatures []signature `json:"signatures"`
	}{compactParts(t, compact[0])[1], sigs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
