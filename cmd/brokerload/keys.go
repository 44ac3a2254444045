package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-jose/go-jose/v4"
)

// upstreamAlgs are the algorithms the tool's upstream can sign with. It
// publishes a key for each, so a broker that discovered the upstream once
// verifies tokens of any of them without rediscovering.
var upstreamAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// newPrivateKey generates a signing key for alg.
func newPrivateKey(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
	switch alg {
	case jose.RS256:
		return rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("algorithm %q is not one of RS256, ES256, EdDSA", alg)
}

// newJWK generates a private JWK for alg, its key id the start of its
// RFC 7638 thumbprint.
func newJWK(alg jose.SignatureAlgorithm) (jose.JSONWebKey, error) {
	k, err := newPrivateKey(alg)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	jwk := jose.JSONWebKey{Key: k, Algorithm: string(alg), Use: "sig"}
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("thumbprint: %w", err)
	}
	jwk.KeyID = "brokerload-" + base64.RawURLEncoding.EncodeToString(tp[:9])
	return jwk, nil
}

// upstreamKeys loads the upstream's private keys from path, or generates
// them and writes them there (mode 0600) when the file does not exist.
// An empty path means fresh keys kept in memory only.
//
// Why a file: a broker caches an upstream's keys and refetches on an
// unknown key id at most every 30 s, so a tool restarted with new keys
// against a broker still running would see its first tokens refused.
func upstreamKeys(path string) (map[jose.SignatureAlgorithm]jose.JSONWebKey, error) {
	if path != "" {
		keys, err := readKeys(path)
		if err == nil {
			return keys, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	keys := map[jose.SignatureAlgorithm]jose.JSONWebKey{}
	var set jose.JSONWebKeySet
	for _, alg := range upstreamAlgs {
		k, err := newJWK(alg)
		if err != nil {
			return nil, fmt.Errorf("upstream key: %w", err)
		}
		keys[alg] = k
		set.Keys = append(set.Keys, k)
	}
	if path == "" {
		return keys, nil
	}
	data, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("upstream keys: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("upstream keys: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("upstream keys: %w", err)
	}
	return keys, nil
}

func readKeys(path string) (map[jose.SignatureAlgorithm]jose.JSONWebKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("upstream keys: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("upstream keys %s: %w", path, err)
	}
	keys := map[jose.SignatureAlgorithm]jose.JSONWebKey{}
	for _, k := range set.Keys {
		if k.IsPublic() {
			return nil, fmt.Errorf("upstream keys %s: key %q has no private part", path, k.KeyID)
		}
		keys[jose.SignatureAlgorithm(k.Algorithm)] = k
	}
	for _, alg := range upstreamAlgs {
		if _, ok := keys[alg]; !ok {
			return nil, fmt.Errorf("upstream keys %s: no %s key (delete the file to make new keys)", path, alg)
		}
	}
	return keys, nil
}

// defaultKeysPath is where upstream keys are kept between runs.
func defaultKeysPath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "brokerload", "upstream-keys.json")
}
