package oidc_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/oidc"
)

const (
	discoveryPath = "/.well-known/openid-configuration"
	jwksPath      = "/.well-known/jwks.json"
	// attemptTimeout is the connectors' timeout here; a call may take
	// attemptSlack more.
	attemptTimeout = 300 * time.Millisecond
	attemptSlack   = time.Second
)

// withAttempts gives a connector attemptTimeout and clock.
func withAttempts(clock *testenv.Clock) func(*oidc.Config) {
	return func(c *oidc.Config) { c.Timeout, c.Clock = attemptTimeout, clock.Now }
}

// callTogether runs n calls of f at once and returns their errors and how
// long the slowest took.
func callTogether(n int, f func() error) ([]error, time.Duration) {
	errs := make([]error, n)
	took := make([]time.Duration, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			began := time.Now()
			errs[i] = f()
			took[i] = time.Since(began)
		})
	}
	close(start)
	wg.Wait()
	var slowest time.Duration
	for _, d := range took {
		slowest = max(slowest, d)
	}
	return errs, slowest
}

func assertUnavailable(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if !errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("call %d: err = %v, want ErrUnavailable", i, err)
		}
	}
}

func TestDiscovery_ConcurrentCallersShareOneAttempt(t *testing.T) {
	f := testenv.NewAuth0(t)
	f.Hang()
	clock := testenv.NewClock()
	c := newGeneric(t, f, withAttempts(clock))
	// The attempt New made has failed (New may stop waiting for it just
	// before), and its backoff is past: the calls below make a fresh one.
	if err := c.Ready(t.Context()); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("Ready: err = %v, want ErrUnavailable", err)
	}
	clock.Advance(oidc.RetryBackoff)
	before := f.Requests(discoveryPath)

	errs, slowest := callTogether(10, func() error {
		_, err := c.LoginURL(context.Background(), newLoginState())
		return err
	})
	assertUnavailable(t, errs)
	if slowest > attemptTimeout+attemptSlack {
		t.Errorf("the slowest of 10 calls waited %s on a hung upstream with a %s timeout", slowest, attemptTimeout)
	}
	if n := f.Requests(discoveryPath) - before; n != 1 {
		t.Errorf("10 concurrent calls asked for discovery %d times, want once", n)
	}
}

func TestDiscovery_AFailureIsEveryCallersAnswerUntilTheBackoff(t *testing.T) {
	f := testenv.NewAuth0(t)
	f.FailWith(http.StatusInternalServerError)
	clock := testenv.NewClock()
	c := newGeneric(t, f, withAttempts(clock))
	before := f.Requests(discoveryPath)

	// Recovered, but within the backoff: the failure is the answer, at
	// once and without asking the upstream.
	f.Recover()
	began := time.Now()
	errs, _ := callTogether(10, func() error {
		_, err := c.LoginURL(t.Context(), newLoginState())
		return err
	})
	assertUnavailable(t, errs)
	if took := time.Since(began); took > attemptSlack {
		t.Errorf("calls within the backoff took %s", took)
	}
	if n := f.Requests(discoveryPath) - before; n != 0 {
		t.Errorf("%d discovery requests within the backoff, want none", n)
	}

	// Past the backoff, the next call tries again.
	clock.Advance(oidc.RetryBackoff)
	f.SetNextUser(alice)
	if _, err := login(t, c, newLoginState()); err != nil {
		t.Fatalf("after the backoff: %v", err)
	}
	if n := f.Requests(discoveryPath) - before; n != 1 {
		t.Errorf("%d discovery requests after the backoff, want 1", n)
	}
}

// A caller that gives up (a browser closing its tab) does not fail the
// attempt the others wait for.
func TestDiscovery_ACallerGivingUpDoesNotFailTheOthers(t *testing.T) {
	f := testenv.NewAuth0(t)
	f.FailWith(http.StatusInternalServerError)
	clock := testenv.NewClock()
	c := newGeneric(t, f, func(c *oidc.Config) { c.Timeout, c.Clock = 2*time.Second, clock.Now })
	clock.Advance(oidc.RetryBackoff)
	f.Delay(500 * time.Millisecond)
	before := f.Requests(discoveryPath)

	// The impatient caller starts the attempt and gives up during it; the
	// patient one arrives while it runs.
	impatient, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var impatientErr error
	wg.Go(func() { _, impatientErr = c.LoginURL(impatient, newLoginState()) })
	for f.Requests(discoveryPath) == before {
		time.Sleep(time.Millisecond)
	}
	_, patientErr := c.LoginURL(t.Context(), newLoginState())
	wg.Wait()
	if !errors.Is(impatientErr, upstream.ErrUnavailable) {
		t.Errorf("the caller that gave up: err = %v, want ErrUnavailable", impatientErr)
	}
	if patientErr != nil {
		t.Errorf("the caller that waited: %v", patientErr)
	}
	if n := f.Requests(discoveryPath) - before; n != 1 {
		t.Errorf("%d discovery requests, want 1", n)
	}
}

func TestRemoteKeySet_ConcurrentFetchesShareOneAttemptAndItsFailure(t *testing.T) {
	f := testenv.NewAuth0(t)
	clock := testenv.NewClock()
	ks := oidc.NewRemoteKeySet(f.URL+jwksPath, oidc.KeySetConfig{
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
	errs, slowest := callTogether(10, verify)
	assertUnavailable(t, errs)
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

	clock.Advance(oidc.RetryBackoff)
	if err := verify(); err != nil {
		t.Fatalf("after the backoff: %v", err)
	}
	if n := f.Requests(jwksPath); n != 2 {
		t.Errorf("%d fetches after the backoff, want 2", n)
	}
}
