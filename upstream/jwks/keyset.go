package jwks

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/internal/fetch"
)

// DefaultMinKeyRefreshInterval is how often, at most, a RemoteKeySet
// fetches its JWKS when tokens name key ids it does not hold.
const DefaultMinKeyRefreshInterval = 30 * time.Second

// A RemoteKeySet remembers the tokens it verified with VerifyCompact for
// rememberFor, at most maxRemembered of them: a service that swaps the
// token it holds on every call it makes presents the same bytes again and
// again, and the public-key operation is most of what checking them
// costs. The bound keeps the memory small: a digest and a time each, in
// at most two maps of maxRemembered/2, under rememberedBytesBound.
const (
	rememberFor          = 5 * time.Minute
	maxRemembered        = 1 << 16
	rememberedBytesBound = 8 << 20
)

// Defaults for KeySetConfig, and how long a failed fetch is the answer.
const (
	DefaultTimeout = fetch.DefaultTimeout
	RetryBackoff   = fetch.RetryBackoff
)

// KeySetConfig configures a RemoteKeySet.
type KeySetConfig struct {
	// HTTPClient fetches the JWKS; http.DefaultClient when nil (set one
	// with a timeout).
	HTTPClient *http.Client
	// MinRefreshInterval is the least time between two fetches;
	// DefaultMinKeyRefreshInterval when zero.
	MinRefreshInterval time.Duration
	// Timeout bounds one fetch, which every caller waiting for it shares;
	// DefaultTimeout when zero.
	Timeout time.Duration
	// Clock is time.Now when nil.
	Clock func() time.Time
}

// RemoteKeySet is a gooidc.KeySet backed by an upstream's JWKS. It caches
// the keys and fetches them again when a token names a key id it does not
// hold (the upstream rotated its keys), but at most once per
// MinRefreshInterval, however many unknown key ids arrive: unlike go-oidc's
// own remote key set, a flood of forged key ids cannot make the broker
// hammer the upstream. Callers that need the keys while a fetch is under
// way wait for it (at most KeySetConfig.Timeout) and share its outcome; a
// failed fetch is the answer for RetryBackoff, after which the next
// caller tries again.
//
// A RemoteKeySet does not check the algorithm against what the upstream
// publishes (its callers pin that when parsing); it only refuses "none"
// and HMAC.
type RemoteKeySet struct {
	url         string
	client      *http.Client
	minInterval time.Duration
	now         func() time.Time
	fetches     *fetch.Attempt

	mu        sync.Mutex // guards the fields below
	keys      []jose.JSONWebKey
	lastFetch time.Time // last successful fetch
	// generation counts the fetches that replaced keys, so that a
	// verification that began with the keys before one is not
	// remembered after it.
	generation uint64
	// verified holds, by the SHA-256 of its compact serialization, each
	// token VerifyCompact found signed by one of keys, with when that
	// stops counting (Unix nanoseconds: a map without pointers is one
	// the garbage collector need not scan). Once it holds
	// maxRemembered/2 it becomes previous, whose tokens still count, and
	// a new one begins: a map is only ever added to, then dropped whole,
	// as Go does not reuse all of the room of entries deleted from a map
	// (one held at its bound by deleting grew past 40 MiB for 20 million
	// tokens). Both are dropped whenever keys are replaced.
	verified, previous map[[sha256.Size]byte]int64
}

// NewRemoteKeySet returns a key set for the JWKS at jwksURL. Nothing is
// fetched until a token is verified.
func NewRemoteKeySet(jwksURL string, cfg KeySetConfig) *RemoteKeySet {
	ks := &RemoteKeySet{
		url:         jwksURL,
		client:      cfg.HTTPClient,
		minInterval: cfg.MinRefreshInterval,
		now:         cfg.Clock,
	}
	if ks.client == nil {
		ks.client = http.DefaultClient
	}
	if ks.minInterval <= 0 {
		ks.minInterval = DefaultMinKeyRefreshInterval
	}
	if ks.now == nil {
		ks.now = time.Now
	}
	ks.fetches = fetch.NewAttempt(fmt.Sprintf("keys from %q", jwksURL), cfg.Timeout, ks.now)
	return ks
}

// VerifySignature implements gooidc.KeySet. Use Verify rather than calling
// it directly: it checks only the signature.
func (ks *RemoteKeySet) VerifySignature(ctx context.Context, rawToken string) ([]byte, error) {
	// Tokens are compact JWS; the JSON serialization is never accepted.
	jws, err := ParseCompact(rawToken)
	if err != nil {
		return nil, fmt.Errorf("jwks: malformed or unacceptable token: %w: %w", err, upstream.ErrInvalidToken)
	}
	payload, err := ks.VerifyJWS(ctx, jws)
	if err != nil {
		if f, ok := ctx.Value(verifyFailureKey{}).(*verifyFailure); ok {
			f.err = err
		}
		return nil, err
	}
	return payload, nil
}

// VerifyCompact is VerifyJWS for jws, which the caller parsed from raw,
// its compact serialization: it remembers the tokens it verified, so that
// the same bytes presented again cost a hash instead of a public-key
// operation, with the same answer. A token is remembered only while the
// key set that verified it is the one held: fetching the keys again,
// for a key id the set does not hold, forgets every token, and a token
// is checked again after rememberFor in any case. Only a successful
// verification is remembered, and only the signature is: the claims
// (expiry above all) are the caller's to check on every use, as with
// VerifyJWS.
//
// The digest covers every byte of raw, protected header included, so a
// token whose header differs from a remembered one in any byte (its typ,
// its kid) is verified afresh; jws must be the parse of raw, or what is
// remembered of raw would be answered for another token.
func (ks *RemoteKeySet) VerifyCompact(ctx context.Context, raw string, jws *jose.JSONWebSignature) ([]byte, error) {
	if err := checkSignatures(jws); err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte(raw))
	remembered, generation := ks.remembered(digest)
	if remembered {
		return jws.UnsafePayloadWithoutVerification(), nil
	}
	payload, err := ks.verifySignature(ctx, jws)
	if err != nil {
		return nil, err
	}
	ks.remember(digest, generation)
	return payload, nil
}

// remembered reports whether the token of digest was verified with the
// keys held, and returns their generation.
func (ks *RemoteKeySet) remembered(digest [sha256.Size]byte) (bool, uint64) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	until, ok := ks.verified[digest]
	if !ok {
		until, ok = ks.previous[digest]
	}
	return ok && ks.now().UnixNano() < until, ks.generation
}

// remember records that the token of digest verified with the keys of
// generation, unless they have been replaced since. A full map becomes
// previous, and the one before is forgotten: the cost is a verification
// more for each of its tokens presented again.
func (ks *RemoteKeySet) remember(digest [sha256.Size]byte, generation uint64) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if generation != ks.generation {
		return
	}
	if len(ks.verified) >= maxRemembered/2 {
		ks.previous, ks.verified = ks.verified, nil
	}
	if ks.verified == nil {
		ks.verified = make(map[[sha256.Size]byte]int64)
	}
	ks.verified[digest] = ks.now().UnixNano() + int64(rememberFor)
}

// checkSignatures refuses a token with other than one signature, or one
// signed with "none" or HMAC, whoever parsed it.
func checkSignatures(jws *jose.JSONWebSignature) error {
	if len(jws.Signatures) != 1 {
		return fmt.Errorf("jwks: token has %d signatures, want 1: %w", len(jws.Signatures), upstream.ErrInvalidToken)
	}
	if alg := jws.Signatures[0].Header.Algorithm; !Asymmetric(jose.SignatureAlgorithm(alg)) {
		return fmt.Errorf("jwks: token algorithm %q not accepted: %w", alg, upstream.ErrInvalidToken)
	}
	return nil
}

// VerifyJWS verifies the signature of jws, a token the caller parsed (with
// jose.ParseSignedCompact, pinning the algorithms it accepts), and returns
// its payload. jws must carry exactly one signature, by an asymmetric
// algorithm: "none" and HMAC are refused whoever parsed it. The key is
// looked up by the header's key id, and the keys are fetched again when
// the set does not hold it (at most once per MinRefreshInterval); a key
// whose alg differs from the header's is skipped. Errors wrap
// upstream.ErrUnavailable when the keys could not be fetched, and
// upstream.ErrInvalidToken otherwise.
//
// VerifyJWS checks only the signature: the claims, and whether the
// upstream publishes the algorithm, are the caller's.
func (ks *RemoteKeySet) VerifyJWS(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	if err := checkSignatures(jws); err != nil {
		return nil, err
	}
	return ks.verifySignature(ctx, jws)
}

// verifySignature is VerifyJWS for a token checkSignatures accepted.
func (ks *RemoteKeySet) verifySignature(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	header := jws.Signatures[0].Header
	keys := ks.cached(header.KeyID)
	if len(keys) == 0 {
		var err error
		if keys, err = ks.refresh(ctx, header.KeyID); err != nil {
			return nil, err
		}
	}
	for _, key := range keys {
		if key.Algorithm != "" && key.Algorithm != header.Algorithm {
			continue
		}
		if payload, err := jws.Verify(&key); err == nil {
			return payload, nil
		}
	}
	return nil, fmt.Errorf("jwks: no key %q verifies the %s signature: %w", header.KeyID, header.Algorithm, upstream.ErrInvalidToken)
}

// Verify verifies rawToken with v, which must have been built over ks, and
// sorts failures: upstream.ErrUnavailable when the upstream's keys could
// not be fetched, upstream.ErrInvalidToken otherwise. (go-oidc flattens a
// key set's errors to text, so ks hands its own errors, already sorted,
// over beside it, through the context.)
func (ks *RemoteKeySet) Verify(ctx context.Context, v *gooidc.IDTokenVerifier, rawToken string) (*gooidc.IDToken, error) {
	failure := new(verifyFailure)
	tok, err := v.Verify(context.WithValue(ctx, verifyFailureKey{}, failure), rawToken)
	switch {
	case failure.err != nil:
		return nil, failure.err
	case err != nil:
		return nil, fmt.Errorf("jwks: token rejected: %w: %w", err, upstream.ErrInvalidToken)
	}
	return tok, nil
}

// verifyFailure carries VerifyJWS's error out of go-oidc's verifier.
type verifyFailure struct{ err error }

type verifyFailureKey struct{}

// cached returns the cached keys with the key id, or all of them for a
// token that names none.
func (ks *RemoteKeySet) cached(kid string) []jose.JSONWebKey {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return matching(ks.keys, kid)
}

func matching(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	if kid == "" {
		return keys
	}
	var out []jose.JSONWebKey
	for _, k := range keys {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// refresh fetches the JWKS unless it was fetched less than minInterval
// ago, and returns the keys with the key id. Callers that arrive while a
// fetch is under way share it instead of fetching again.
func (ks *RemoteKeySet) refresh(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if ks.due() {
		if err := ks.fetches.Do(ctx, ks.fetchIfDue); err != nil {
			return nil, err
		}
	}
	ks.mu.Lock()
	keys, last := ks.keys, ks.lastFetch
	ks.mu.Unlock()
	if found := matching(keys, kid); len(found) > 0 {
		return found, nil
	}
	return nil, fmt.Errorf("jwks: unknown key id %q (keys from %q fetched %s ago): %w",
		kid, ks.url, ks.now().Sub(last).Round(time.Millisecond), upstream.ErrInvalidToken)
}

// due reports whether minInterval has passed since the last successful
// fetch (or there was none).
func (ks *RemoteKeySet) due() bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.lastFetch.IsZero() || ks.now().Sub(ks.lastFetch) >= ks.minInterval
}

// fetchIfDue fetches the keys unless a fetch that ended while the caller
// waited to start one has made that needless.
func (ks *RemoteKeySet) fetchIfDue(ctx context.Context) error {
	if !ks.due() {
		return nil
	}
	keys, err := ks.fetch(ctx)
	if err != nil {
		return err
	}
	ks.mu.Lock()
	ks.keys, ks.lastFetch = keys, ks.now()
	ks.generation++
	ks.verified, ks.previous = nil, nil
	ks.mu.Unlock()
	return nil
}

// fetch gets and parses the JWKS. Keys go-jose cannot use, and keys for
// encryption, are skipped rather than failing the whole set; so are
// symmetric keys, which have no place in a published key set.
func (ks *RemoteKeySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := fetch.GetJSON(ctx, ks.client, ks.url, "", &set); err != nil {
		return nil, err
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil {
			continue
		}
		if !k.IsPublic() || k.Use == "enc" {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("jwks: no usable signing keys at %q: %w", ks.url, upstream.ErrUnavailable)
	}
	return keys, nil
}
