package jwks

import (
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// algorithms are the only algorithms a token verified with a key set may
// be signed with: an upstream's token, a client's assertion, a token
// presented for exchange. "none" and the HMAC algorithms are absent on
// purpose: such tokens are verified with public keys, never a shared
// secret (nor a public key passed off as one).
var algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// Asymmetric reports whether alg is one of the asymmetric signature
// algorithms the broker accepts.
func Asymmetric(alg jose.SignatureAlgorithm) bool {
	return slices.Contains(algorithms, alg)
}

// AlgorithmNames returns the names of the asymmetric signature algorithms
// the broker accepts, in a new slice, as discovery lists them.
func AlgorithmNames() []string {
	names := make([]string, len(algorithms))
	for i, a := range algorithms {
		names[i] = string(a)
	}
	return names
}

// ParseCompact parses raw as a JWS in compact serialization signed with
// one of the asymmetric algorithms; the JSON serializations are refused. It checks no
// signature: that is RemoteKeySet.VerifyJWS's, or the caller's.
func ParseCompact(raw string) (*jose.JSONWebSignature, error) {
	return jose.ParseSignedCompact(raw, algorithms)
}
