package testenv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"
)

// BareSeal seals plaintext as releases before keys.Envelope sealed
// upstream refresh tokens (nonce ‖ AES-256-GCM ciphertext, no header, no
// additional data), for tests that what they stored still opens.
func BareSeal(t testing.TB, key, plaintext []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	return gcm.Seal(nonce, nonce, plaintext, nil)
}
