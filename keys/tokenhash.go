package keys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// TokenHash is how a bearer secret the broker hands out (an authorization
// code, a refresh token, a session cookie, a browser binding) is held at
// rest and looked up: SHA-256 of kind, a colon and the token. kind keeps
// one kind of token from matching another's hash. The tokens carry 256
// random bits, so an unkeyed hash cannot be reversed by search, and unlike
// a keyed hash it survives a rotation of the root secret. It is no fit for
// low-entropy values (one-time codes), which need a keyed hash.
func TokenHash(kind, token string) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s:%s", kind, token)
	return h.Sum(nil)
}

// KeyedHash is an HMAC-SHA256 under a derived key, for low-entropy values
// stored only as a hash (one-time codes) and for derived values (CSRF
// tokens, refresh-token successors).
type KeyedHash []byte

// Sum is the HMAC of parts, each length-prefixed so that ("ab","c") and
// ("a","bc") stay apart.
func (k KeyedHash) Sum(parts ...string) []byte {
	m := hmac.New(sha256.New, k)
	for _, p := range parts {
		fmt.Fprintf(m, "%d:%s", len(p), p)
	}
	return m.Sum(nil)
}

// RandomID returns 256 random bits, base64url: for ids and tokens that
// must not be guessed (auth requests, codes, refresh tokens, sessions).
func RandomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
