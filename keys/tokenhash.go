package keys

import (
	"crypto/sha256"
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
