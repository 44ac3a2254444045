package jwks_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/jwks"
)

const (
	jwksPath = "/.well-known/jwks.json"
	api      = "https://api.example.com"
	// attemptTimeout is the key sets' timeout here; a call may take
	// attemptSlack more.
	attemptTimeout = 300 * time.Millisecond
	attemptSlack   = time.Second
)

var alice = testenv.User{Sub: "auth0|alice", Email: "alice@example.com", EmailVerified: true}

func TestRemoteKeySet_VerifyJWSWantsOneAsymmetricSignature(t *testing.T) {
	f := testenv.NewAuth0(t)
	ks := jwks.NewRemoteKeySet(f.URL+"/.well-known/jwks.json", jwks.KeySetConfig{})
	rs, es := f.SameClaimsTwoKeys(t, alice, api)
	both := []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

	one, err := jose.ParseSignedJSON(testenv.GeneralJSON(t, rs), both)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.VerifyJWS(t.Context(), one); err != nil {
		t.Fatalf("one signature refused: %v", err)
	}
	two, err := jose.ParseSignedJSON(testenv.GeneralJSON(t, rs, es), both)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.VerifyJWS(t.Context(), two); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Errorf("two signatures: err = %v, want ErrInvalidToken", err)
	}
	// A caller that let HMAC through its parse is still refused.
	hs, err := jose.ParseSignedCompact(f.AccessToken(alice, api, testenv.HS256WithPublicKey()), []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.VerifyJWS(t.Context(), hs); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Errorf("HS256: err = %v, want ErrInvalidToken", err)
	}
}

func TestRemoteKeySet_ConcurrentFetchesShareOneAttemptAndItsFailure(t *testing.T) {
	f := testenv.NewAuth0(t)
	clock := testenv.NewClock()
	ks := jwks.NewRemoteKeySet(f.URL+jwksPath, jwks.KeySetConfig{
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Timeout:    attemptTimeout,
		Clock:      clock.Now,
	})
	jws, err := jose.ParseSignedCompact(f.AccessToken(alice, api), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	verify := func() error {
		_, err := ks.VerifyJWS(context.Background(), jws)
		return err
	}

	f.Hang()
	errs, slowest := testenv.CallTogether(10, verify)
	for i, err := range errs {
		if !errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("call %d: err = %v, want ErrUnavailable", i, err)
		}
	}
	if slowest > attemptTimeout+attemptSlack {
		t.Errorf("the slowest of 10 calls waited %s on a hung upstream with a %s timeout", slowest, attemptTimeout)
	}
	if n := f.Requests(jwksPath); n != 1 {
		t.Errorf("10 concurrent calls fetched the keys %d times, want once", n)
	}

	// Recovered, but within the backoff: the failure, at once.
	f.Recover()
	began := time.Now()
	if err := verify(); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("within the backoff: err = %v, want ErrUnavailable", err)
	}
	if took := time.Since(began); took > attemptSlack || f.Requests(jwksPath) != 1 {
		t.Errorf("within the backoff: took %s, %d fetches", took, f.Requests(jwksPath))
	}

	clock.Advance(jwks.RetryBackoff)
	if err := verify(); err != nil {
		t.Fatalf("after the backoff: %v", err)
	}
	if n := f.Requests(jwksPath); n != 2 {
		t.Errorf("%d fetches after the backoff, want 2", n)
	}
}
