package keys

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/broker/storage"
)

// Errors New and ReencryptAll return (wrapped, with the kid) when a stored
// private key cannot be opened. They are told apart because the fixes differ:
// the first needs the right root secret, the second a restore from backup.
var (
	// ErrUnknownKEK means the key was encrypted under a key-encryption key
	// that is not configured: the root secret is wrong or missing.
	ErrUnknownKEK = errors.New("keys: encrypted under a key-encryption key that is not configured (wrong or missing root secret)")
	// ErrTampered means the key's own key-encryption key is configured but
	// the ciphertext, or the kid, algorithm or use it is bound to, has been
	// altered.
	ErrTampered = errors.New("keys: private key does not decrypt: ciphertext or its kid/alg/use was tampered with or corrupted")
)

const (
	// KEKSize is the length of a key-encryption key: AES-256.
	KEKSize = 32

	// sealVersion is the first byte of every ciphertext, so the format can
	// change without guessing.
	sealVersion = 1
	// kekIDSize is the length of the KEK fingerprint stored with each
	// ciphertext. It lets New say "wrong root secret" rather than the
	// ambiguous "does not decrypt", and picks the KEK without trial
	// decryption.
	kekIDSize = 8
)

// KeyError is a problem with one stored key. It wraps ErrUnknownKEK,
// ErrTampered or a more particular cause.
type KeyError struct {
	ID, Algorithm, Use string
	Err                error
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("keys: signing key %q (%s, %s): %s", e.ID, e.Algorithm, e.Use, strings.TrimPrefix(e.Err.Error(), "keys: "))
}

func (e *KeyError) Unwrap() error { return e.Err }

func keyError(row storage.SigningKey, err error) error {
	return &KeyError{ID: row.ID, Algorithm: row.Algorithm, Use: row.Use, Err: err}
}

// kek is a key-encryption key with its fingerprint and ready AEAD.
type kek struct {
	id   [kekIDSize]byte
	aead cipher.AEAD
}

func newKEKs(raw [][]byte) ([]kek, error) {
	out := make([]kek, 0, len(raw))
	for i, k := range raw {
		if len(k) != KEKSize {
			return nil, fmt.Errorf("keys: key-encryption key %d is %d bytes, want %d", i, len(k), KEKSize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("keys: key-encryption key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keys: key-encryption key %d: %w", i, err)
		}
		// The fingerprint is a MAC under the KEK of a fixed label: it
		// identifies the KEK and reveals nothing about it.
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte("idbroker keys: key-encryption key id"))
		var kk kek
		copy(kk.id[:], mac.Sum(nil))
		kk.aead = aead
		out = append(out, kk)
	}
	return out, nil
}

// additionalData binds a ciphertext to its row, so an attacker with write
// access to storage cannot move one key's ciphertext under another kid, or
// relabel an ES256 key as an ID-token key.
func additionalData(header []byte, kid, alg, use string) []byte {
	ad := make([]byte, 0, len(header)+len(kid)+len(alg)+len(use)+32)
	ad = append(ad, "idbroker signing key\x00"...)
	ad = append(ad, header...)
	for _, s := range []string{kid, alg, use} {
		ad = append(ad, 0)
		ad = append(ad, s...)
	}
	return ad
}

// seal encrypts a PKCS #8 private key under k.
func seal(k kek, plaintext []byte, kid, alg, use string) ([]byte, error) {
	header := make([]byte, 0, 1+kekIDSize)
	header = append(header, sealVersion)
	header = append(header, k.id[:]...)
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	out := make([]byte, 0, len(header)+len(nonce)+len(plaintext)+k.aead.Overhead())
	out = append(out, header...)
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, additionalData(header, kid, alg, use)), nil
}

// open decrypts what seal made, with whichever of keks sealed it.
func open(keks []kek, ciphertext []byte, kid, alg, use string) (plaintext []byte, kekIndex int, err error) {
	if len(ciphertext) < 1+kekIDSize || ciphertext[0] != sealVersion {
		return nil, -1, ErrTampered
	}
	header := ciphertext[:1+kekIDSize]
	for i, k := range keks {
		if !bytes.Equal(k.id[:], header[1:]) {
			continue
		}
		rest := ciphertext[len(header):]
		if len(rest) < k.aead.NonceSize() {
			return nil, i, ErrTampered
		}
		nonce, sealed := rest[:k.aead.NonceSize()], rest[k.aead.NonceSize():]
		pt, err := k.aead.Open(nil, nonce, sealed, additionalData(header, kid, alg, use))
		if err != nil {
			return nil, i, ErrTampered
		}
		return pt, i, nil
	}
	return nil, -1, ErrUnknownKEK
}

// Algorithms the broker can sign with.
const (
	RS256 = string(jose.RS256)
	ES256 = string(jose.ES256)
	EdDSA = string(jose.EdDSA)
)

func supportedAlg(alg string) bool {
	return alg == RS256 || alg == ES256 || alg == EdDSA
}

// generate makes a fresh private key for alg.
func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case RS256:
		return rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("keys: unsupported algorithm %q (want RS256, ES256 or EdDSA)", alg)
}

// matchesAlg reports whether priv is the kind of key alg signs with.
func matchesAlg(priv crypto.Signer, alg string) bool {
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		return alg == RS256 && p.N.BitLen() >= 2048
	case *ecdsa.PrivateKey:
		return alg == ES256 && p.Curve == elliptic.P256()
	case ed25519.PrivateKey:
		return alg == EdDSA
	}
	return false
}

func newKID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("keys: kid: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// publicJWK is the JWK the JWKS publishes for a key.
func publicJWK(pub crypto.PublicKey, kid, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}
}

// newRow generates a key for use and alg and returns it as a storage row
// with its private part sealed under k. The caller sets the dates.
func newRow(k kek, use Use, alg string, now time.Time) (storage.SigningKey, error) {
	priv, err := generate(alg)
	if err != nil {
		return storage.SigningKey{}, err
	}
	kid, err := newKID()
	if err != nil {
		return storage.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: encode %s key: %w", alg, err)
	}
	sealed, err := seal(k, der, kid, alg, string(use))
	if err != nil {
		return storage.SigningKey{}, err
	}
	pub, err := publicJWK(priv.Public(), kid, alg).MarshalJSON()
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: encode %s public key: %w", alg, err)
	}
	return storage.SigningKey{
		ID:         kid,
		Algorithm:  alg,
		Use:        string(use),
		PublicJWK:  pub,
		PrivateKey: sealed,
		CreatedAt:  now,
	}, nil
}

// decode opens a stored key. The public key served in the JWKS is derived
// from the decrypted private key, never taken from the row's PublicJWK:
// that column is not encrypted, and trusting it would let anyone who can
// write to storage publish a key of their own. A PublicJWK that disagrees
// is reported as tampering.
func decode(keks []kek, row storage.SigningKey) (*material, error) {
	if len(keks) == 0 {
		return nil, keyError(row, ErrUnknownKEK)
	}
	der, _, err := open(keks, row.PrivateKey, row.ID, row.Algorithm, row.Use)
	if err != nil {
		return nil, keyError(row, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, keyError(row, fmt.Errorf("decrypted, but not a PKCS #8 key: %w", err))
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok || !matchesAlg(priv, row.Algorithm) {
		return nil, keyError(row, fmt.Errorf("decrypted a %T, which is not a %s key", parsed, row.Algorithm))
	}
	var stored jose.JSONWebKey
	if err := stored.UnmarshalJSON(row.PublicJWK); err != nil {
		return nil, keyError(row, fmt.Errorf("public JWK: %w", err))
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := priv.Public().(equaler); !ok || !e.Equal(stored.Key) || stored.KeyID != row.ID {
		return nil, keyError(row, fmt.Errorf("stored public JWK does not match its private key: %w", ErrTampered))
	}
	jwk := publicJWK(priv.Public(), row.ID, row.Algorithm)
	return &material{
		sealed: row.PrivateKey,
		priv:   priv,
		pub:    jwk,
		alg:    jose.SignatureAlgorithm(row.Algorithm),
	}, nil
}
