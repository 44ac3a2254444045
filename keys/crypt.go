package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
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

// signingKeyLabel is the additional data every sealed private key starts
// with, before its header, kid, algorithm and use.
const signingKeyLabel = "idbroker signing key"

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
	sealed, err := seal(k, der, signingKeyLabel, kid, alg, string(use))
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
	der, _, err := open(keks, row.PrivateKey, signingKeyLabel, row.ID, row.Algorithm, row.Use)
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
