package resource

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxDocument bounds a discovery document or key set read from the
// broker; a real one is a few KiB.
const maxDocument = 1 << 20

// fetchTimeout bounds one fetch of the key set. The fetch is shared by
// every request waiting for it, so it runs past any one request's context.
const fetchTimeout = 10 * time.Second

// keySet is the broker's key set, fetched from url and cached. It is
// fetched again when it is older than maxAge or a token names a kid it
// lacks, but never sooner than minGap after the last attempt; while a
// fetch runs, requests that need it wait for it rather than start another.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time
	maxAge time.Duration
	minGap time.Duration

	mu       sync.Mutex // guards the fields below
	keys     []jose.JSONWebKey
	fetched  time.Time     // when keys were fetched; zero before the first success
	tried    time.Time     // when the last fetch started
	err      error         // the last fetch's failure; nil after a success
	inflight chan struct{} // closed when the running fetch ends; nil when none runs
}

// lookup returns the keys of the set named kid, fetching the set first
// when it is stale or lacks kid and the rate limit allows. A failed fetch
// leaves the keys fetched before in use; with none fetched yet, the
// failure is the answer until the next attempt is allowed.
func (s *keySet) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	s.mu.Lock()
	now := s.now()
	found := byKID(s.keys, kid)
	stale := s.fetched.IsZero() || now.Sub(s.fetched) >= s.maxAge
	if !stale && len(found) > 0 {
		s.mu.Unlock()
		return found, nil
	}
	if s.inflight == nil && (s.tried.IsZero() || now.Sub(s.tried) >= s.minGap) {
		s.tried = now
		s.inflight = make(chan struct{})
		go s.fetch(context.WithoutCancel(ctx), s.inflight)
	}
	wait := s.inflight
	s.mu.Unlock()

	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("resource: waiting for the key set: %w", ctx.Err())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetched.IsZero() {
		return nil, s.err
	}
	return byKID(s.keys, kid), nil
}

// fetch fetches the set and closes done.
func (s *keySet) fetch(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	keys, err := fetchKeys(ctx, s.client, s.url)
	s.mu.Lock()
	if err == nil {
		s.keys, s.fetched = keys, s.now()
	}
	s.err = err
	s.inflight = nil
	s.mu.Unlock()
	close(done)
}

func byKID(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// fetchKeys fetches a JWKS and keeps the public signing keys it can use.
// A key it cannot parse (a type newer than go-jose, say) is skipped, not
// a reason to refuse the whole set; a private or symmetric key is never
// used.
func fetchKeys(ctx context.Context, client *http.Client, url string) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, client, url, &set); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// getJSON GETs url and decodes its JSON answer into v.
func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("resource: GET %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("resource: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("resource: GET %s: status %d", url, resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" && mt != "application/jwk-set+json" {
		return fmt.Errorf("resource: GET %s: content type %q is not JSON", url, mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("resource: GET %s: %w", url, err)
	}
	if len(body) > maxDocument {
		return fmt.Errorf("resource: GET %s: answer larger than %d bytes", url, maxDocument)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("resource: GET %s: %w", url, err)
	}
	return nil
}

// discoverKeySet reads the issuer's OpenID Connect discovery document and
// returns its jwks_uri. The document's issuer must be exactly issuer
// (OpenID Connect Discovery 1.0 section 4.3): a document that names
// another could hand this service an attacker's keys.
func discoverKeySet(ctx context.Context, client *http.Client, issuer string) (string, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, client, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return "", err
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("resource: discovery names issuer %q, not %q", doc.Issuer, issuer)
	}
	if err := checkURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("resource: discovery jwks_uri %q: %w", doc.JWKSURI, err)
	}
	return doc.JWKSURI, nil
}
