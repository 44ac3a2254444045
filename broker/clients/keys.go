package clients

// The keys of private_key_jwt: RFC 7523 sections 2.2 and 3, as OpenID
// Connect Core section 9 profiles it. A client registers its public keys
// (inline or by URL) and authenticates by signing a short-lived JWT about
// itself.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/idbroker/broker/upstream/jwks"
)

// MaxAssertionLifetime bounds how far ahead an assertion's exp may be, so
// a leaked assertion is short-lived and its jti need be kept only briefly.
const MaxAssertionLifetime = 5 * time.Minute

// MaxJTILength bounds an assertion's jti, which is kept in storage as part
// of a key until the assertion expires: RFC 7519 sets no length, and an
// assertion's signer (a self-described client holds its own key) could
// otherwise send a key larger than an index entry may be.
const MaxJTILength = 256

// jwksMaxAge bounds how long keys fetched from a client's jwksURI are
// trusted without fetching again, so a key the client withdrew stops
// working within it. Unknown key ids refetch sooner, at most once per
// jwks.DefaultMinKeyRefreshInterval.
const jwksMaxAge = 10 * time.Minute

// maxKeySets bounds the key sets a KeySets keeps: client metadata
// documents may each name a jwks_uri of their own, so distinct URLs are
// as many as documents an attacker can serve.
const maxKeySets = 4096

// ParseJWKS reads a client's key set: public asymmetric signing keys
// only, at least one. Keys marked for encryption are left out.
func ParseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("jwks is not a JSON Web Key Set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("jwks key %q is not a public key (a private or symmetric key must never be registered)", k.KeyID)
		}
		if k.Use == "enc" {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks holds no signing keys")
	}
	return keys, nil
}

// ValidateKeys checks a client's private_key_jwt keys: inline or by URL,
// not both, and only for a confidential client. A key-set URL must be
// https, or http on a loopback address (for development and tests). It
// does not fetch the URL.
func ValidateKeys(public bool, jwks []byte, jwksURI string) error {
	if len(jwks) == 0 && jwksURI == "" {
		return nil
	}
	if public {
		return errors.New("a public client authenticates with nothing, so it has no jwks or jwksURI")
	}
	if len(jwks) > 0 && jwksURI != "" {
		return errors.New("give jwks or jwksURI, not both")
	}
	if len(jwks) > 0 {
		_, err := ParseJWKS(jwks)
		return err
	}
	u, err := url.Parse(jwksURI)
	if err != nil || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("jwksURI %q is not an absolute URL", jwksURI)
	}
	if _, loopback := LoopbackURL(jwksURI); u.Scheme != "https" && !loopback {
		return fmt.Errorf("jwksURI %q must be https (http only on a loopback address)", jwksURI)
	}
	return nil
}

// KeySets caches the key sets fetched from clients' jwksURIs, one per
// URL, each for at most ten minutes, for at most maxKeySets URLs. Its
// zero value is not usable; call NewKeySets.
type KeySets struct {
	client *http.Client
	now    func() time.Time

	mu   sync.Mutex // guards sets
	sets map[string]cachedKeySet
}

type cachedKeySet struct {
	ks      *jwks.RemoteKeySet
	created time.Time
}

// NewKeySets returns an empty cache that fetches with client (nil for
// http.DefaultClient) and tells time by now.
func NewKeySets(client *http.Client, now func() time.Time) *KeySets {
	return &KeySets{client: client, now: now, sets: map[string]cachedKeySet{}}
}

// Get returns the key set at jwksURL. It fetches nothing itself: the key
// set fetches when it verifies.
func (c *KeySets) Get(jwksURL string) *jwks.RemoteKeySet {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.sets[jwksURL]; ok && now.Sub(s.created) < jwksMaxAge {
		return s.ks
	}
	if len(c.sets) >= maxKeySets {
		c.makeRoom(now)
	}
	ks := jwks.NewRemoteKeySet(jwksURL, jwks.KeySetConfig{HTTPClient: c.client, Clock: c.now})
	c.sets[jwksURL] = cachedKeySet{ks: ks, created: now}
	return ks
}

// makeRoom replaces a full cache with its key sets that are not stale,
// at most half of them: stale ones (of deleted clients among them) are
// dropped only here, and the walk is paid once per maxKeySets/2 new URLs
// rather than on every one. c.mu is held.
func (c *KeySets) makeRoom(now time.Time) {
	kept := make(map[string]cachedKeySet, maxKeySets/2)
	for u, s := range c.sets {
		if len(kept) == maxKeySets/2 {
			break
		}
		if now.Sub(s.created) < jwksMaxAge {
			kept[u] = s
		}
	}
	c.sets = kept
}
