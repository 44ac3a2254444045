package keys_test

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/idbroker/broker/keys"
)

// TestTokenHash_IsSHA256OfKindAndToken pins the stored form: changing it
// would make every stored code, refresh token and session unfindable.
func TestTokenHash_IsSHA256OfKindAndToken(t *testing.T) {
	want := sha256.Sum256([]byte("refresh token:abc"))
	if got := keys.TokenHash("refresh token", "abc"); !bytes.Equal(got, want[:]) {
		t.Errorf("TokenHash = %x, want %x", got, want)
	}
}

func TestTokenHash_KindSeparatesEqualTokens(t *testing.T) {
	if bytes.Equal(keys.TokenHash("session", "abc"), keys.TokenHash("browser", "abc")) {
		t.Error("a session and a browser binding with the same value hash alike")
	}
}
